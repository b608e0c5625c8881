"""Conditional GAN (Mirza & Osindero 2014): the label reaches both players, generate() takes
labels, and the trainer, train.evaluate and zoo.sample handle a conditional family.

The shared suite (tests/test_models.py) covers the rest: shapes, fitting, saving, seeding.
"""

import inspect
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl_cli import run_main
from test_train import read_png, run_cli, tiny
from zoo_helpers import redirected_zoo, store_preset

import models
from models.cgan import CGAN
from models.errors import GanZooError
from train import evaluate, images
from train.trainer import train
from zoo import sample


def build(**overrides):
    keras.utils.set_random_seed(0)
    model = models.get("cgan", seed=0, **overrides)
    model.compile(jit_compile=False)
    return model


@pytest.fixture(scope="module")
def model():
    return build()


@pytest.mark.parametrize("encoding, d_channels", [("embedding", 1 + 1), ("onehot", 1 + 10)])
def test_both_networks_take_the_label(encoding, d_channels):
    gan = build(label_encoding=encoding)
    noise, labels = gan.sample_latent(6, seed=1)
    assert noise.shape == (6, 100) and labels.shape == (6,) and labels.dtype == tf.int32
    assert [tuple(t.shape) for t in gan.generator.inputs] == [(None, 100), (None,)]
    fake = gan.generator([noise, labels])
    assert fake.shape == (6, 28, 28, 1)
    assert gan.discriminator([fake, labels]).shape == (6, 1)
    joined = gan.discriminator.get_layer("image_and_label").output
    assert joined.shape == (None, 28, 28, d_channels)


def test_sampled_labels_are_uniform_over_the_classes(model):
    _, labels = model.sample_latent(5000, seed=3)
    counts = np.bincount(np.asarray(labels), minlength=10)
    assert len(counts) == 10 and counts.min() > 400


def test_changing_the_label_changes_both_players(model):
    noise, _ = model.sample_latent(4, seed=2)
    shirts, boots = tf.fill((4,), 6), tf.fill((4,), 9)
    assert not np.allclose(model.generator([noise, shirts]), model.generator([noise, boots]))
    images = model.generator([noise, shirts])
    assert not np.allclose(model.discriminator([images, shirts]), model.discriminator([images, boots]))


def test_generate_takes_an_int_a_sequence_or_none(model):
    one_class = model.generate(5, seed=1, labels=3)
    per_sample = model.generate(5, seed=1, labels=[3, 3, 3, 3, 3])
    np.testing.assert_array_equal(one_class, per_sample)
    np.testing.assert_array_equal(per_sample, model.generate(5, seed=1, labels=np.full(5, 3)))
    assert one_class.shape == (5, 28, 28, 1) and 0 <= one_class.min() <= one_class.max() <= 1
    # the noise is drawn as without labels: the drawn labels reproduce the unlabelled samples
    _, drawn = model.sample_latent(5, seed=keras.random.SeedGenerator(1))
    np.testing.assert_array_equal(model.generate(5, seed=1), model.generate(5, seed=1, labels=np.asarray(drawn)))
    # another label, same noise: other samples
    assert not np.allclose(one_class, model.generate(5, seed=1, labels=4))
    # each chunk of batch_size takes its own slice of the labels: a label changes its sample only
    a = model.generate(7, seed=2, labels=[0, 1, 2, 3, 4, 5, 6], batch_size=3)
    b = model.generate(7, seed=2, labels=[0, 1, 2, 3, 9, 5, 6], batch_size=3)
    changed = [not np.array_equal(x, y) for x, y in zip(a, b)]
    assert changed == [False, False, False, False, True, False, False]


@pytest.mark.parametrize("labels, message", [
    (10, r"label 10 out of range: pass classes in \[0, 9\]"),
    ([0, -1, 12], r"labels -1, 12 out of range"),
    ([1, 2], r"2 labels for n=3 samples: pass an int in \[0, 9\]"),
    (2.0, r"labels must be class numbers, got 2.0"),
    ([1.0, 2.0, 3.0], r"labels must be class numbers, got \[1.0, 2.0, 3.0\]"),
    ("dress", r"labels must be class numbers, got 'dress'"),
    (True, r"labels must be class numbers, got True"),
    ([[1, 2, 3]], r"labels must be class numbers"),
])
def test_bad_labels_are_one_line(model, labels, message):
    with pytest.raises(GanZooError, match=message) as error:
        model.generate(3, seed=0, labels=labels)
    assert "\n" not in str(error.value)


def test_real_pairs_take_the_data_labels_and_fake_pairs_the_generators():
    gan = build()
    latent = gan.sample_latent(8, seed=4)
    fake = gan.generator(latent)
    images = tf.random.uniform((8, 28, 28, 1), -1, 1, seed=5)
    labels = tf.constant([0, 1, 2, 3, 4, 5, 6, 7])
    d_loss, logs = gan.discriminator_objective((images, labels), fake, latent)
    real_logits = gan.discriminator([images, labels], training=True)
    fake_logits = gan.discriminator([fake, latent[1]], training=True)
    np.testing.assert_allclose(d_loss, gan._discriminator_loss_fn(real_logits, fake_logits), rtol=1e-5)
    other, _ = gan.discriminator_objective((images, (labels + 1) % 10), fake, latent)
    assert not np.isclose(float(other), float(d_loss))
    g_loss, _ = gan.generator_objective(fake, latent)
    np.testing.assert_allclose(g_loss, gan._generator_loss_fn(fake_logits), rtol=1e-5)


def test_one_step_moves_both_networks_and_the_label_codes():
    gan = build(label_encoding="embedding")
    g_code = gan.generator.get_layer("label_embedding").embeddings.numpy().copy()
    d_code = gan.discriminator.get_layer("label_embedding").embeddings.numpy().copy()
    g_before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    images = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    labels = np.arange(16, dtype="int32") % 10
    history = gan.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(16), epochs=1, verbose=0)
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert int(gan.d_optimizer.iterations) == int(gan.g_optimizer.iterations) == 1
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, gan.generator.trainable_weights))
    assert not np.array_equal(g_code, gan.generator.get_layer("label_embedding").embeddings.numpy())
    assert not np.array_equal(d_code, gan.discriminator.get_layer("label_embedding").embeddings.numpy())


def test_unlabelled_batches_are_refused(model):
    x = tf.data.Dataset.from_tensor_slices(np.zeros((8, 28, 28, 1), np.float32)).batch(8)
    with pytest.raises(GanZooError, match="cgan is conditional: train it on \\(images, labels\\) batches"):
        model.fit(x, verbose=0)


def test_get_config_mirrors_init(model):
    config = model.get_config()
    arguments = set(inspect.signature(CGAN.__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config)
    rebuilt = CGAN.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config


@pytest.mark.parametrize("override, message", [
    ({"label_encoding": "binary"}, "unknown label_encoding 'binary' for cgan: use one of onehot, embedding"),
    ({"num_classes": 1}, "num_classes=1: num_classes takes an integer >= 2"),
    ({"image_shape": (2,)}, r"cgan generates images \(height, width, channels\), not samples of shape \(2,\)"),
    ({"image_shape": (30, 30, 1)}, "cgan takes square images of side 4..8 x 2\\^n"),
])
def test_bad_arguments(override, message):
    with pytest.raises(GanZooError, match=message):
        models.get("cgan", **override)


def test_class_grid_has_a_row_per_class_and_a_noise_per_column(model):
    (noise, labels), columns = model.class_grid_latent(25, seed=0)
    assert columns == 3
    np.testing.assert_array_equal(np.asarray(labels).reshape(10, 3), np.repeat(np.arange(10), 3).reshape(10, 3))
    noise = np.asarray(noise).reshape(10, 3, -1)
    assert np.array_equal(noise[0], noise[9]) and not np.array_equal(noise[0, 0], noise[0, 1])


# ------------------------------------------------------------- the pipeline around the model
@pytest.fixture(scope="module")
def cgan_run(small_fashion, tmp_path_factory):
    return train(tiny(tmp_path_factory.mktemp("runs") / "cgan", model="cgan", samples=20))


def test_trainer_feeds_labels_and_draws_a_row_per_class(cgan_run):
    logdir = cgan_run.logdir
    assert int(cgan_run.model.g_optimizer.iterations) == 3
    assert all(np.isfinite(v[0]) for v in cgan_run.history.values())
    record = json.loads(open(f"{logdir}/run.json").read())
    assert record["model"] == "cgan" and record["image_shape"] == [28, 28, 1]
    # 10 rows (classes) of 2 samples
    assert read_png(f"{logdir}/samples.png").shape == (10 * 29 + 1, 2 * 29 + 1, 1)
    assert read_png(f"{logdir}/samples/epoch_0001.png").shape == (10 * 29 + 1, 2 * 29 + 1, 1)
    loaded = models.load(f"{logdir}/model.keras")
    np.testing.assert_array_equal(loaded.generate(4, seed=1, labels=2), cgan_run.model.generate(4, seed=1, labels=2))


def test_trainer_resumes_with_labels(cgan_run, tmp_path):
    import shutil

    logdir = tmp_path / "again"
    shutil.copytree(cgan_run.logdir, logdir)
    resumed = train(tiny(logdir, model="cgan", samples=20, epochs=2))
    assert resumed.resumed_from is not None and int(resumed.model.g_optimizer.iterations) == 6


def test_unlabelled_datasets_are_refused_with_one_line(small_fashion, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy())
    common = ("--model", "cgan", "--steps_per_epoch", "1", "--batch_size", "2", "--logdir")
    message = run_cli(*common, str(tmp_path / "a"), "--dataset", str(folder))
    assert message == (f"error: cgan is class-conditional and dataset '{folder}' has no labels: train it "
                       "on a labelled dataset such as fashion_mnist, or pick an unconditional model such as dcgan")
    message = run_cli(*common, str(tmp_path / "b"), "--dataset", "ring8")
    assert message.startswith("error: cgan generates images (height, width, channels), not samples of shape (2,)")
    assert "\n" not in message


def test_evaluate_reports_label_accuracy(cgan_run, tmp_path):
    report = evaluate.evaluate(evaluate.EvalConfig(logdir=cgan_run.logdir, n=100, output_dir=str(tmp_path),
                                                   kid_subsets=2, parzen=False))
    entry = report["metrics"]["label_accuracy"]
    assert 0 <= entry["value"] <= 1 and 0 <= entry["floor"] <= 1 and entry["better"] == "higher"
    assert {"fcd", "kid", "interpolation_step_evenness"} <= set(report["metrics"])
    assert "interpolation" in report["figures"] and "arithmetic" not in report["figures"]


# ------------------------------------------------------------------- zoo.sample --label
@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """A temporary zoo with an (untrained) cgan preset and a dcgan one."""
    with redirected_zoo(tmp_path_factory.mktemp("zoo")):
        store_preset("tiny_cgan", models.get("cgan", seed=0), "cgan")
        store_preset("tiny_dcgan", models.get("dcgan", seed=0, width=8), "dcgan")
        yield


def test_zoo_samples_a_chosen_class(presets, tmp_path):
    import zoo

    gan = zoo.load("tiny_cgan", compile=False)
    out = tmp_path / "threes.png"
    assert run_main(sample, "--preset", "tiny_cgan", "--label", "3", "--n", "6", "--columns", "3",
                    "--out", str(out)) is None
    picture = read_png(out)
    assert picture.shape == (2 * 29 + 1, 3 * 29 + 1, 1)
    np.testing.assert_array_equal(picture, images.image_grid(gan.generate(6, seed=0, labels=3), columns=3))
    other = tmp_path / "fours.png"
    run_main(sample, "--preset", "tiny_cgan", "--label", "4", "--n", "6", "--columns", "3", "--out", str(other))
    assert out.read_bytes() != other.read_bytes()


@pytest.mark.parametrize("args, message", [
    (("--preset", "tiny_cgan", "--label", "10"), "error: label 10 out of range: pass classes in [0, 9]"),
    (("--preset", "tiny_cgan", "--label", "-1"), "error: label -1 out of range"),
    (("--preset", "tiny_dcgan", "--label", "3"),
     "error: preset 'tiny_dcgan' (dcgan) is not class-conditional: --label is for conditional presets"),
])
def test_zoo_sample_label_errors(presets, tmp_path, args, message):
    error = run_main(sample, *args, "--out", str(tmp_path / "x.png"))
    assert error.startswith(message) and "\n" not in error, error
