"""The exponential moving average of the generator's weights (`ema_decay`)."""

import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models.errors import GanZooError
from train.trainer import TrainConfig, checked, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(model="dcgan", batch_size=8, samples=4, jit_compile=False, verbose=0)


def small(name="dcgan", **kwargs):
    kwargs.setdefault("seed", 0)
    model = models.get(name, width=4, **kwargs) if name == "dcgan" else models.get(name, **kwargs)
    model.compile(jit_compile=False)
    return model


def batches(n, size=8, seed=0):
    x = np.random.default_rng(seed).uniform(-1, 1, (n * size, 28, 28, 1)).astype("float32")
    return tf.data.Dataset.from_tensor_slices(x).batch(size)


class GeneratorWeights(keras.callbacks.Callback):
    """The generator's trainable weights after every step."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append([v.numpy().copy() for v in self.model.generator.trainable_variables])


def test_the_average_follows_its_formula_step_by_step():
    model = small(ema_decay=0.9)
    start = [v.numpy().copy() for v in model.generator.trainable_variables]
    for shadow, weight in zip(model.ema_weights, start):  # the average starts at the weights
        np.testing.assert_array_equal(shadow.numpy(), weight)
    record = GeneratorWeights()
    model.fit(batches(5), epochs=1, verbose=0, callbacks=[record])
    expected = [w.astype(np.float64) for w in start]
    for t, weights in enumerate(record.seen, start=1):
        decay = min(0.9, (1 + t) / (10 + t))  # 2/11, 3/12, ..., then 0.9 from t = 81 on
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights)]
    assert len(record.seen) == 5 == int(model.g_optimizer.iterations)
    for shadow, value in zip(model.ema_weights, expected):
        np.testing.assert_allclose(shadow.numpy(), value, rtol=0, atol=2e-7)
    # The average is not the weights themselves (it lags them).
    assert max(np.abs(s.numpy() - w).max() for s, w in zip(model.ema_weights, record.seen[-1])) > 1e-5


def test_the_decay_after_warm_up_is_the_one_asked_for():
    model = small(ema_decay=0.5)
    model.g_optimizer.iterations.assign(0)
    assert float(model.ema_decay_now()) == pytest.approx(1 / 10)
    model.g_optimizer.iterations.assign(1000)
    assert float(model.ema_decay_now()) == 0.5


def test_samples_come_from_the_average_and_the_raw_weights_stay_available():
    model = small(ema_decay=0.9)
    model.fit(batches(3), epochs=1, verbose=0)
    latent = model.sample_latent(4, seed=keras.random.SeedGenerator(1))
    raw = model.to_unit_range(model.generator(latent, training=False)).numpy()
    for shadow in model.ema_weights:  # an average of zeros: the generator's output is tanh(0)
        shadow.assign(tf.zeros_like(shadow))
    np.testing.assert_array_equal(model.generate(4, seed=1), np.full((4, 28, 28, 1), 0.5, np.float32))
    np.testing.assert_array_equal(model.to_unit_range(model.generator(latent, training=False)).numpy(), raw)
    assert raw.std() > 0
    # The sample grid of the trainer draws with the same network.
    from train.callbacks import SampleGrid

    grid = SampleGrid("unused", n=4)
    grid.set_model(model)
    grid._latent = latent
    picture = grid.picture()
    assert picture.dtype == np.uint8 and len(np.unique(picture[2:-2, 2:-2])) <= 2  # tiles and borders


def test_without_ema_nothing_changes():
    model = small()
    assert model.ema_decay is None and model.ema_weights == [] and model.sampler is model.generator
    averaged = small(ema_decay=0.99)
    assert len(averaged.weights) == len(model.weights) + len(model.generator.trainable_variables)


def test_the_average_is_saved_in_keras_and_weights_files(tmp_path):
    model = small(ema_decay=0.99)
    model.fit(batches(3), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    loaded = models.load(str(tmp_path / "m.keras"))
    assert loaded.ema_decay == 0.99
    for a, b in zip(model.ema_weights, loaded.ema_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(loaded.generate(3, seed=2), model.generate(3, seed=2))
    fresh = small(ema_decay=0.99, seed=5)
    fresh.load_weights(str(tmp_path / "m.weights.h5"))
    np.testing.assert_array_equal(fresh.generate(3, seed=2), model.generate(3, seed=2))
    with pytest.raises(GanZooError, match="saved by another model"):
        small().load_weights(str(tmp_path / "m.weights.h5"))


@pytest.mark.parametrize("value", [1.0, -0.1, "abc", float("nan")])
def test_bad_decays_are_one_line(value):
    with pytest.raises(GanZooError, match=r"ema_decay"):
        checked(TrainConfig(**SMALL, ema_decay=value))
    with pytest.raises(GanZooError, match="--model_option ema_decay=... repeats a flag of its own"):
        checked(TrainConfig(**SMALL, model_options={"ema_decay": "0.9"}))


def h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return out


def test_a_resumed_run_continues_the_same_average_bit_for_bit(fashion_dir, tmp_path):
    run = dict(SMALL, steps_per_epoch=3, ema_decay=0.9)
    train(TrainConfig(**run, epochs=2, logdir=str(tmp_path / "straight")))
    train(TrainConfig(**run, epochs=1, logdir=str(tmp_path / "resumed")))
    train(TrainConfig(**run, epochs=2, logdir=str(tmp_path / "resumed")))
    a = h5_arrays(tmp_path / "straight/final.weights.h5")
    b = h5_arrays(tmp_path / "resumed/final.weights.h5")
    assert a.keys() == b.keys()
    shadows = [k for k in a if k.startswith("vars/") and a[k].ndim >= 1]
    assert len(shadows) >= 8  # the generator's kernels, biases, gammas and betas
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    record = json.loads((tmp_path / "resumed/run.json").read_text())
    assert record["ema_decay"] == 0.9 and record["model_config"]["ema_decay"] == 0.9
    with pytest.raises(GanZooError, match="ema_decay"):  # another average is another run
        train(TrainConfig(**dict(run, ema_decay=0.5), epochs=3, logdir=str(tmp_path / "resumed")))


def test_two_replicas_keep_the_average_one_device_keeps(tmp_path):
    script = os.path.join(ROOT, "tests", "scripts", "distributed.py")
    for replicas in (1, 2):
        done = subprocess.run([sys.executable, script, "step", str(replicas), str(tmp_path / f"r{replicas}.npz"),
                               "dcgan", "0.9"], capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = np.load(tmp_path / "r1.npz"), np.load(tmp_path / "r2.npz")
    assert int(two["replicas"]) == 2 and one["ema"].size == two["ema"].size > 1000
    assert float(two["ema_spread"]) == 0.0  # every replica holds the same average
    # As for the weights themselves (see test_distribute): float reassociation only.
    assert np.abs(one["ema"] - two["ema"]).max() < 1e-3
    assert np.isclose(one["ema"], two["ema"], rtol=0, atol=1e-5).mean() > 0.99


def test_evaluation_measures_either_weights_and_leaves_the_model_as_it_was(fashion_dir, tmp_path):
    from train import evaluate

    model = models.get("dcgan", seed=0, ema_decay=0.9)
    model.compile(jit_compile=False)
    model.fit(batches(2), epochs=1, verbose=0)
    record = {"model": "dcgan", "dataset": "fashion_mnist", "data_dir": str(fashion_dir)}
    reports = {}
    for raw in (False, True):
        config = evaluate.EvalConfig(preset="dcgan_ema", n=20, parzen=False, figures=False, kid_subsets=2,
                                     output_dir=str(tmp_path / str(raw)), raw_weights=raw)
        reports[raw] = evaluate.evaluate(config, model=model, record=record)
        assert model.sample_with_ema and model.sampler is not model.generator  # as before the call
    assert reports[False]["weights"] == "ema" and reports[True]["weights"] == "raw"
    assert "--raw_weights measures the trained weights" in reports[False]["notes"][0]
    assert reports[False]["metrics"]["fcd"]["value"] != reports[True]["metrics"]["fcd"]["value"]
