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
    train(TrainConfig(model="dcgan", epochs=2, batch_size=16, steps_per_epoch=2, logdir=str(logdir),
                      jit_compile=False, samples=4, verbose=0))
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
    samples = get_json(f"{base}/data/plugin/images/images?run=images&tag=samples")
    assert len(samples) == 2
