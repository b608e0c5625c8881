"""A real TensorBoard server on loopback finds a run's scalars and sample images."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from train.trainer import TrainConfig, train


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def tensorboard(tmp_path):
    """Starts `tensorboard` on 127.0.0.1 for a logdir; yields a function that reads its API."""
    servers = []

    def start(logdir):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                get_json(f"{base}/data/runs")
                return base
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("tensorboard did not start")
                time.sleep(0.5)

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=30)


def wait_for(read, check, seconds=60):
    deadline = time.time() + seconds
    while True:
        value = read()
        if check(value) or time.time() > deadline:
            return value
        time.sleep(1)


def test_tensorboard_serves_the_runs_scalars_and_images(fashion_dir, tmp_path, tensorboard):
    logdir = tmp_path / "run"
    train(TrainConfig(model="dcgan", epochs=2, batch_size=16, steps_per_epoch=4, logdir=str(logdir),
                      jit_compile=False, samples=4, verbose=0, log_every_steps=3))
    base = tensorboard(logdir)
    scalars = wait_for(lambda: get_json(f"{base}/data/plugin/scalars/tags"),
                       lambda tags: "epoch_d_loss" in tags.get("train", {}))
    for tag in ("epoch_d_loss", "epoch_g_loss", "epoch_d_real", "epoch_d_fake", "epoch_learning_rate"):
        assert tag in scalars["train"], (tag, scalars)
    images = wait_for(lambda: get_json(f"{base}/data/plugin/images/tags"),
                      lambda tags: "samples" in tags.get("images", {}))
    assert "samples" in images["images"], images
    points = get_json(f"{base}/data/plugin/scalars/scalars?run=train&tag=epoch_d_loss")
    assert [p[1] for p in points] == [1, 2]  # one point per epoch, step N after epoch N
    # The step-level series: --log_every_steps 3 over 2 epochs of 4 steps.
    for tag in ("steps/d_loss", "steps/g_loss", "steps/d_real", "steps/d_fake"):
        assert tag in scalars["train"], (tag, scalars)
        points = get_json(f"{base}/data/plugin/scalars/scalars?run=train&tag={tag.replace('/', '%2F')}")
        assert [p[1] for p in points] == [3, 6], (tag, points)
    samples = get_json(f"{base}/data/plugin/images/images?run=images&tag=samples")
    assert len(samples) == 2


def step_series(logdir, tag):
    """{step: value} of a scalar over every event file of the run `train`."""
    import glob

    import tensorflow as tf

    found = {}
    for path in sorted(glob.glob(str(logdir / "train" / "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    assert event.step not in found, f"{tag} twice at step {event.step}"
                    found[event.step] = float(tf.make_ndarray(value.tensor))
    return found


def test_step_series_are_the_means_of_the_steps_since_the_last_point(tmp_path):
    import keras
    import numpy as np
    import tensorflow as tf

    import models
    from train.callbacks import StepScalars

    class Running(keras.callbacks.Callback):  # Keras' logs: the epoch's running means
        def __init__(self):
            super().__init__()
            self.means = []

        def on_epoch_begin(self, epoch, logs=None):
            self.means.append([])

        def on_train_batch_end(self, batch, logs=None):
            self.means[-1].append({k: float(v) for k, v in logs.items()})

    model = models.get("dcgan", width=4, seed=0, d_steps=2)
    model.compile(jit_compile=False)
    x = np.random.default_rng(0).uniform(-1, 1, (5 * 16, 28, 28, 1)).astype("float32")
    running = Running()
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=2, verbose=0,
              callbacks=[StepScalars(str(tmp_path), 2), running])
    # Points at steps 2, 4 | 6, 8, 10: step 6 is the first of epoch 2, so its window is that step.
    windows = {2: (0, 0, 2), 4: (0, 2, 4), 6: (1, 0, 1), 8: (1, 1, 3), 10: (1, 3, 5)}
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        series = step_series(tmp_path, f"steps/{name}")
        assert sorted(series) == [2, 4, 6, 8, 10], series
        for step, (epoch, start, stop) in windows.items():
            means = running.means[epoch]
            total = means[stop - 1][name] * stop - (means[start - 1][name] * start if start else 0.0)
            assert series[step] == pytest.approx(total / (stop - start), rel=1e-5, abs=1e-6), (name, step)
    assert len(set(step_series(tmp_path, "steps/g_loss").values())) == 5  # the series moves


def test_a_resumed_run_goes_on_with_the_step_numbers(fashion_dir, tmp_path):
    run = dict(model="wgan", batch_size=8, steps_per_epoch=4, logdir=str(tmp_path), jit_compile=False,
               samples=4, verbose=0, log_every_steps=2)
    train(TrainConfig(**run, epochs=1))
    train(TrainConfig(**run, epochs=2))
    for name in ("d_loss", "g_loss", "wasserstein"):  # the family's own values too
        assert sorted(step_series(tmp_path, f"steps/{name}")) == [2, 4, 6, 8], name
