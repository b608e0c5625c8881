"""InfoGAN: the information loss by hand, its gradients, the codes, and the traversal figure.

The registry suite (tests/test_models.py) covers shapes, training, saving and seeding; this file
covers what is particular to InfoGAN. Tests that train use a narrow 16x16 model (same code
paths, a fraction of the cost of the paper's 28x28 networks).
"""

import glob
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from losses import infogan as L
from models.errors import GanZooError
from models.infogan import CodeTraversal, InfoGAN

SMALL = dict(image_shape=(16, 16, 1), width=32, fc_units=256, q_units=64, noise_dim=16)


def small_model(**overrides):
    keras.utils.set_random_seed(0)
    model = models.get("infogan", **{**SMALL, **overrides}, seed=0)
    model.compile(jit_compile=False)
    return model


def random_images(n, shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype("float32")


# ----------------------------------------------------------------------- losses by hand
def test_categorical_info_loss_by_hand():
    logits = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
    onehot = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    first = math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3.0  # -log softmax(logits)[2]
    second = math.log(3.0)  # uniform prediction over 3 classes
    assert float(L.categorical_info_loss(onehot, logits)) == pytest.approx((first + second) / 2, rel=1e-6)


def test_uniform_prediction_gives_log_k_and_a_zero_bound():
    onehot = tf.one_hot([3, 7], 10)
    cross_entropy = L.categorical_info_loss(onehot, tf.zeros((2, 10)))
    assert float(cross_entropy) == pytest.approx(math.log(10), rel=1e-6)
    entropy = L.uniform_categorical_entropy(10)
    assert entropy == pytest.approx(2.302585, rel=1e-6)
    assert float(L.categorical_mi_lower_bound(entropy, cross_entropy)) == pytest.approx(0.0, abs=1e-6)
    # A confident, correct Q brings the bound up to H(c) = log 10.
    confident = L.categorical_info_loss(onehot, 50.0 * onehot)
    assert float(L.categorical_mi_lower_bound(entropy, confident)) == pytest.approx(math.log(10), abs=1e-5)


def test_continuous_info_loss_with_fixed_std_by_hand():
    code = [[0.5, -1.0], [1.0, 1.0]]
    mean = [[0.0, 0.0], [1.0, 0.0]]
    # std 1: 0.5 * squared error summed over the two dimensions, then averaged over the batch.
    expected = (0.5 * (0.25 + 1.0) + 0.5 * (0.0 + 1.0)) / 2
    assert float(L.continuous_info_loss(code, mean)) == pytest.approx(expected, rel=1e-6)
    # The same as passing log_std = 0 explicitly.
    assert float(L.continuous_info_loss(code, mean, tf.zeros((2, 2)))) == pytest.approx(expected, rel=1e-6)


def test_continuous_info_loss_with_learned_std_by_hand():
    # c = 1, mean 0, std 2: 0.5 * (1/2)^2 + log 2; plus 0.5 log(2 pi) it is -log N(1; 0, 2^2).
    value = float(L.continuous_info_loss([[1.0]], [[0.0]], [[math.log(2.0)]]))
    assert value == pytest.approx(0.125 + math.log(2.0), rel=1e-6)
    density = math.exp(-0.5 * (1.0 / 2.0) ** 2) / (2.0 * math.sqrt(2 * math.pi))
    assert value + L.HALF_LOG_TWO_PI == pytest.approx(-math.log(density), rel=1e-6)


# ------------------------------------------------------------------------ the model
def test_default_model_follows_the_paper():
    model = models.get("infogan")
    assert model.latent_dim == 62 + 10 + 2
    assert (model.noise_dim, model.categorical_dims, model.continuous_dims) == (62, (10,), 2)
    convs = [l for l in model.discriminator.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(l.filters, l.kernel_size, l.strides) for l in convs] == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2))]
    dense = {l.name: l.units for l in model.discriminator.layers if isinstance(l, keras.layers.Dense)}
    assert sorted(dense.values()) == [1, 2, 10, 128, 1024]
    assert all(l.negative_slope == pytest.approx(0.1) for l in model.discriminator.layers
               if isinstance(l, keras.layers.LeakyReLU))
    g_dense = [l.units for l in model.generator.layers if isinstance(l, keras.layers.Dense)]
    assert g_dense == [1024, 7 * 7 * 128]
    upconvs = [l for l in model.generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [l.filters for l in upconvs] == [64, 1] and upconvs[-1].activation is keras.activations.tanh
    d_opt, g_opt = model.default_optimizers()
    assert float(d_opt.learning_rate) == pytest.approx(2e-4) and float(g_opt.learning_rate) == pytest.approx(1e-3)
    assert float(d_opt.beta_1) == float(g_opt.beta_1) == 0.5


def test_latent_holds_noise_one_hot_and_continuous_codes():
    model = models.get("infogan", categorical_dims=(10, 3), continuous_dims=2, seed=0)
    latent = model.sample_latent(256)
    assert latent.shape == (256, 62 + 13 + 2)
    noise, onehots, continuous = model.split_latent(latent)
    assert noise.shape == (256, 62) and [o.shape for o in onehots] == [(256, 10), (256, 3)]
    for onehot in onehots:
        np.testing.assert_array_equal(np.sum(onehot, axis=1), 1.0)
        assert set(np.unique(onehot)) == {0.0, 1.0}
    assert len(np.unique(np.argmax(onehots[0], 1))) == 10  # every class drawn
    assert np.all(np.abs(continuous) <= 1.0) and np.std(continuous) > 0.4  # Uniform(-1, 1)
    np.testing.assert_array_equal(model.join_latent(noise, onehots, continuous), latent)
    # An int seed gives the same latents every time, and different streams for noise and codes.
    np.testing.assert_array_equal(model.sample_latent(4, seed=3), model.sample_latent(4, seed=3))


def test_info_loss_gradient_reaches_generator_and_discriminator_trunk():
    model = small_model()
    latent = model.sample_latent(16, seed=1)
    with tf.GradientTape(persistent=True) as tape:
        fake = model.generator(latent, training=True)
        info = model.info_loss(fake, latent)
    trunk = [l for l in model.discriminator.layers if isinstance(l, keras.layers.Conv2D)][0]
    for network, variable in [
        ("generator", model.generator.layers[1].kernel),  # G's first dense layer
        ("discriminator trunk", trunk.kernel),  # D's first convolution, shared with Q
        ("Q head", model.discriminator.get_layer("categorical_logits").kernel),
    ]:
        gradient = tape.gradient(info, variable)
        assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0, network
    # Q's variables are D's, so D's optimizer trains them.
    q_ids = {id(v) for v in model.discriminator.get_layer("q_hidden").trainable_variables}
    assert q_ids <= {id(v) for v in model.discriminator_variables}


def test_categorical_code_becomes_recoverable():
    # 300 seeded steps on 256 random 16x16 images: Q learns to read the 10-way code that G
    # learns to write; the cross-entropy starts at log 10 = 2.30.
    model = small_model()
    images = tf.data.Dataset.from_tensor_slices(random_images(256, SMALL["image_shape"]))
    history = model.fit(
        images.repeat().batch(32, drop_remainder=True), epochs=6, steps_per_epoch=50, verbose=0
    ).history
    cross_entropy = [math.log(10) - bound for bound in history["mi_lower_bound"]]
    assert cross_entropy[0] > 1.5
    assert cross_entropy[-1] < 1.5
    assert history["mi_lower_bound"][-1] > history["mi_lower_bound"][0]


def test_generate_with_explicit_codes():
    model = small_model()
    a = model.generate(4, seed=1, categorical=3, continuous=[0.5, -0.5])
    b = model.generate(4, seed=1, categorical=3, continuous=[0.5, -0.5])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 16, 16, 1) and a.min() >= 0 and a.max() <= 1
    assert not np.array_equal(a, model.generate(4, seed=1, categorical=4, continuous=[0.5, -0.5]))
    assert not np.array_equal(a, model.generate(4, seed=1, categorical=3, continuous=[-0.5, 0.5]))
    # One row per sample, across generate()'s chunks.
    rows = model.generate(3, seed=2, categorical=[[0], [5], [9]], batch_size=2)
    assert rows.shape == (3, 16, 16, 1)
    # The base signature still works.
    np.testing.assert_array_equal(model.generate(2, seed=5), model.generate(2, seed=5))


def test_with_codes_replaces_only_the_codes():
    model = small_model()
    latent = model.sample_latent(3, seed=0)
    fixed = model.with_codes(latent, categorical=[2], continuous=[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    noise, onehots, continuous = model.split_latent(fixed)
    np.testing.assert_array_equal(noise, model.split_latent(latent)[0])
    np.testing.assert_array_equal(np.argmax(onehots[0], 1), [2, 2, 2])
    np.testing.assert_allclose(continuous, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])


def test_bad_codes_are_refused():
    model = small_model()
    with pytest.raises(GanZooError, match=r"integers in \[0, 9\]"):
        model.generate(2, categorical=10)
    with pytest.raises(GanZooError, match="do not broadcast"):
        model.generate(2, continuous=[1.0, 2.0, 3.0])
    with pytest.raises(GanZooError, match="no continuous codes"):
        small_model(continuous_dims=0).generate(2, continuous=0.5)
    with pytest.raises(GanZooError, match="code must index"):
        model.traversal(code=2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(image_shape=(30, 30, 1)), "multiple of 4"),
        (dict(image_shape=(28, 32, 1)), "square images"),
        (dict(categorical_dims=(10, 1)), r"categorical_dims=\[10, 1\]: categorical_dims takes a list of integers >= 2"),
        (dict(categorical_dims=(), continuous_dims=0), "at least one code"),
        (dict(lambda_cont=-1.0), "lambda"),
        (dict(latent_dim=80), "noise_dim"),
    ],
)
def test_bad_configurations_are_refused(overrides, message):
    with pytest.raises(GanZooError, match=message):
        models.get("infogan", **overrides)


def test_traversal_figure_shape():
    model = small_model()
    samples = model.traversal_samples(seed=0, code=1, steps=7)
    assert samples.shape == (10, 7, 16, 16, 1)
    # The noise is shared by the whole figure: within a row, only the continuous code moves.
    grid = model.traversal(seed=0, code=1, steps=7)
    assert grid.shape == (10 * 17 + 1, 7 * 17 + 1, 1) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid, model.traversal(seed=0, code=1, steps=7))
    assert not np.array_equal(samples[0, 0], samples[0, -1])  # the code changes the image
    assert not np.array_equal(samples[0, 0], samples[1, 0])  # and so does the category


def test_learned_std_trains_and_round_trips():
    model = small_model(learn_std=True, categorical_dims=(4,), continuous_dims=1)
    assert model.discriminator.get_layer("continuous_log_std").units == 1
    model.fit(tf.data.Dataset.from_tensor_slices(random_images(32, (16, 16, 1))).batch(16), epochs=1, verbose=0)
    other = InfoGAN.from_config(model.get_config())
    assert other.get_config() == model.get_config()
    assert other.learn_std and other.categorical_dims == (4,)


def test_traversal_callback_writes_png_and_tensorboard_event(tmp_path):
    model = small_model()
    logdir = str(tmp_path / "run")
    callbacks = model.training_callbacks(logdir)
    assert len(callbacks) == 1 and isinstance(callbacks[0], CodeTraversal)
    images = tf.data.Dataset.from_tensor_slices(random_images(32, (16, 16, 1))).batch(16)
    model.fit(images, epochs=1, steps_per_epoch=2, callbacks=callbacks, verbose=0)
    pngs = sorted(glob.glob(os.path.join(logdir, "traversal", "*.png")))
    assert [os.path.basename(p) for p in pngs] == ["epoch_0001_code_0.png", "epoch_0001_code_1.png"]
    picture = tf.io.decode_png(tf.io.read_file(pngs[0]))
    assert picture.shape == (10 * 17 + 1, 10 * 17 + 1, 1)
    events = glob.glob(os.path.join(logdir, "traversal", "events.out.tfevents.*"))
    assert len(events) == 1
    tags = [
        value.tag
        for event in tf.compat.v1.train.summary_iterator(events[0])
        for value in event.summary.value
    ]
    assert "traversal" in tags


def test_read_code_is_q_most_likely_value_of_that_code():
    """`read_code` (what train.evaluate's code_accuracy reads) is the argmax of Q's logits of
    the asked categorical code, in batches."""
    model = small_model(categorical_dims=(4, 3), continuous_dims=1)
    images = random_images(7, (16, 16, 1), seed=3)
    logits = np.asarray(model.discriminator(images, training=False)["categorical_logits"])
    np.testing.assert_array_equal(model.read_code(images, batch_size=3), logits[:, :4].argmax(axis=1))
    np.testing.assert_array_equal(model.read_code(images, code=1, batch_size=5), logits[:, 4:].argmax(axis=1))
    with pytest.raises(GanZooError, match="one of the 2 categorical codes, got 2"):
        model.read_code(images, code=2)
