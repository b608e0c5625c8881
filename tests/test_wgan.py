"""WGAN and WGAN-GP: losses and penalty against values computed by hand, weight clipping, the
paper's critic schedule, the per-sample interpolation and the penalty's gradients.

The registry-wide suite (tests/test_models.py) covers shapes, fitting, saving and seeding."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from losses import wgan as L
from models.errors import GanZooError


def linear_critic(weights, bias=0.0, activation=None):
    """f(x) = activation(w . x + b) on vectors of len(weights)."""
    weights = np.asarray(weights, np.float32)
    critic = keras.Sequential(
        [keras.Input((weights.size,)), keras.layers.Dense(1, activation=activation)]
    )
    critic.layers[0].kernel.assign(weights.reshape(-1, 1))
    critic.layers[0].bias.assign([bias])
    return critic


def input_gradients(critic, x):
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = critic(x)
    return tape.gradient(scores, x)


def points_model(name, **overrides):
    """A small model of 2-D points, compiled for eager-speed tests."""
    keras.utils.set_random_seed(0)
    model = models.get(name, image_shape=(2,), width=16, seed=0, **overrides)
    model.compile(jit_compile=False)
    return model


def points(n, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(size=(n, 2)).astype("float32"))


def batches(x, per_step):
    """Batches of `per_step` samples (d_steps slices of the generator's batch), static size."""
    return tf.data.Dataset.from_tensor_slices(x).batch(per_step, drop_remainder=True)


# ------------------------------------------------------------------------------- losses
def test_critic_loss_by_hand():
    real, fake = [1.0, 2.0, 3.0], [0.5, -1.0]
    # mean(fake) - mean(real) = -0.25 - 2
    assert float(L.wasserstein_critic_loss(real, fake)) == pytest.approx(-2.25)


def test_generator_loss_by_hand():
    assert float(L.wasserstein_generator_loss([0.5, -1.5, 4.0])) == pytest.approx(-1.0)


def test_interpolate_by_hand():
    real = [[1.0, 2.0], [3.0, 4.0], [-2.0, 6.0]]
    fake = [[0.0, 0.0], [1.0, 1.0], [2.0, -2.0]]
    eps = tf.constant([[0.25], [1.0], [0.0]])
    expected = [[0.25, 0.5], [3.0, 4.0], [2.0, -2.0]]
    np.testing.assert_allclose(L.interpolate(real, fake, eps), expected)


def test_gradient_norms_by_hand():
    np.testing.assert_allclose(L.gradient_norms([[3.0, 4.0], [0.0, -2.0]]), [5.0, 2.0], rtol=1e-6)
    # images: the norm runs over every axis but the batch
    image = np.array([1.0, 2.0, 2.0, 4.0], np.float32).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(L.gradient_norms(image), [5.0], rtol=1e-6)
    # the epsilon sits inside the square root
    assert float(L.gradient_norms([[0.0, 0.0]])[0]) == pytest.approx(1e-6)


def test_gradient_penalty_by_hand():
    gradients = [[3.0, 4.0], [0.0, 0.5]]  # norms 5 and 0.5
    expected = 10 * ((5 - 1) ** 2 + (0.5 - 1) ** 2) / 2
    assert float(L.gradient_penalty(gradients)) == pytest.approx(expected, rel=1e-6)
    assert float(L.gradient_penalty(gradients, weight=2.0)) == pytest.approx(expected / 5, rel=1e-6)


@pytest.mark.parametrize("w", [[0.6, 0.8], [1.0, 0.0, 0.0], [-0.28, 0.96]])
def test_penalty_is_zero_for_a_unit_norm_linear_critic(w):
    x = np.random.default_rng(0).normal(size=(8, len(w)))
    gradients = input_gradients(linear_critic(w, bias=0.3), x)
    assert float(L.gradient_penalty(gradients)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.1, -0.2], [2.0, 2.0, 1.0]])
def test_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared(w):
    x = np.random.default_rng(1).normal(size=(8, len(w)))
    gradients = input_gradients(linear_critic(w), x)
    expected = 10 * (np.linalg.norm(w) - 1) ** 2
    assert float(L.gradient_penalty(gradients)) == pytest.approx(expected, rel=1e-5)


def test_penalty_gradient_is_finite_where_the_input_gradient_vanishes():
    # real == fake and eps = 1, so x_hat = real, and a ReLU critic that is dead there: its input
    # gradient is exactly zero, where d sqrt(s)/ds is infinite without the epsilon.
    critic = linear_critic([0.5, -0.25], bias=-100.0, activation="relu")
    real = points(4)
    x_hat = L.interpolate(real, real, tf.ones((4, 1)))
    np.testing.assert_array_equal(x_hat, real)

    def penalty_gradients(penalty_fn):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x_hat)
                scores = critic(x_hat)
            penalty = penalty_fn(inner.gradient(scores, x_hat))
        return penalty, outer.gradient(penalty, critic.trainable_variables)

    penalty, grads = penalty_gradients(L.gradient_penalty)
    assert float(penalty) == pytest.approx(10.0, rel=1e-5)  # lambda * (0 - 1)^2
    assert all(np.all(np.isfinite(g)) for g in grads)
    # The same penalty through tf.norm (no epsilon) gives NaN: the test can tell them apart.
    _, naive = penalty_gradients(lambda g: 10 * tf.reduce_mean((tf.norm(g, axis=1) - 1) ** 2))
    assert any(np.any(np.isnan(g)) for g in naive)


# ------------------------------------------------------------------------------ WGAN-GP
def test_interpolation_weight_is_drawn_per_sample():
    model = points_model("wgan_gp")
    # two very different samples: each x_hat must lie on its own segment real_i -- fake_i
    real = tf.constant([[1.0, -1.0], [50.0, 20.0]])
    fake = tf.constant([[-1.0, 1.0], [-30.0, 60.0]])
    eps = model.interpolation_weights(real)
    assert eps.shape == (2, 1)
    x_hat = L.interpolate(real, fake, eps).numpy()
    t = (x_hat - fake.numpy()) / (real.numpy() - fake.numpy())  # position on each segment
    np.testing.assert_allclose(t[:, 0], t[:, 1], atol=1e-5)  # the same along both coordinates
    assert np.all((t >= 0) & (t <= 1))
    assert abs(t[0, 0] - t[1, 0]) > 1e-3  # a different weight for each sample
    # for images the weight broadcasts over height, width and channels
    images_real, images_fake = tf.ones((3, 4, 4, 2)), -tf.ones((3, 4, 4, 2))
    eps = model.interpolation_weights(images_real)
    assert eps.shape == (3, 1, 1, 1)
    x_hat = L.interpolate(images_real, images_fake, eps).numpy()
    per_sample = x_hat.reshape(3, -1)
    np.testing.assert_allclose(per_sample, per_sample[:, :1].repeat(32, axis=1))
    assert len(np.unique(per_sample[:, 0])) == 3
    # and it is uniform on [0, 1]
    many = model.interpolation_weights(tf.zeros((4000, 2))).numpy()
    assert many.min() >= 0 and many.max() <= 1
    assert many.mean() == pytest.approx(0.5, abs=0.03)
    assert many.std() == pytest.approx(1 / math.sqrt(12), abs=0.02)


def test_objective_with_a_linear_critic_by_hand():
    model = points_model("wgan_gp")
    w = np.array([3.0, 4.0])
    model.discriminator = critic = linear_critic(w, bias=0.5)
    real = tf.constant([[1.0, 2.0], [3.0, -1.0]])
    fake = tf.constant([[0.0, 0.0], [1.0, 1.0]])
    with tf.GradientTape() as tape:
        d_loss, logs = model.discriminator_objective(real, fake, None)
    mean_gap = real.numpy().mean(0) - fake.numpy().mean(0)  # [1.5, 0]
    assert float(logs["wasserstein"]) == pytest.approx(w @ mean_gap)
    assert float(logs["gradient_penalty"]) == pytest.approx(10 * (5 - 1) ** 2)
    assert float(d_loss) == pytest.approx(-w @ mean_gap + 160.0)
    # The nested tape lets the penalty's gradient reach the weights:
    # d/dw [w.(mean fake - mean real) + lambda (|w| - 1)^2] = -gap + 2 lambda (|w| - 1) w / |w|
    kernel, bias = tape.gradient(d_loss, critic.trainable_variables)
    expected = -mean_gap + 2 * 10 * (5 - 1) * w / 5
    np.testing.assert_allclose(kernel.numpy().ravel(), expected, rtol=1e-5)
    assert float(bias[0]) == pytest.approx(0.0, abs=1e-6)


def test_penalty_gradient_is_finite_where_real_equals_fake():
    model = points_model("wgan_gp")
    real = points(16)
    with tf.GradientTape() as tape:
        d_loss, logs = model.discriminator_objective(real, real, None)
    assert float(logs["wasserstein"]) == pytest.approx(0.0, abs=1e-6)
    grads = tape.gradient(d_loss, model.critic.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)


def test_wgan_gp_critic_has_no_batch_norm_and_no_clipping():
    model = models.get("wgan_gp")
    layers = model.critic.layers
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in layers)
    norms = [l for l in layers if isinstance(l, keras.layers.GroupNormalization)]
    assert norms and all(l.groups == 1 for l in norms)  # layer norm over (h, w, c)
    assert model.clip_value is None and model.d_steps == 5 and model.penalty_weight == 10.0
    d_opt, g_opt = model.default_optimizers()
    for opt in (d_opt, g_opt):
        assert isinstance(opt, keras.optimizers.Adam)
        assert (float(opt.learning_rate), opt.beta_1, opt.beta_2) == pytest.approx((1e-4, 0.0, 0.9))
    with pytest.raises(GanZooError, match="unknown normalization 'batch' for wgan_gp: use one of layer, none"):
        models.get("wgan_gp", normalization="batch")
    assert not any(
        isinstance(l, (keras.layers.BatchNormalization, keras.layers.GroupNormalization))
        for l in models.get("wgan_gp", normalization="none").critic.layers
    )


# --------------------------------------------------------------------------------- WGAN
def test_wgan_follows_the_paper():
    model = models.get("wgan")
    assert model.critic is model.discriminator
    assert model.d_steps == 5 and model.clip_value == 0.01 and model.schedule == "constant"
    assert model.latent_dim == 100 and model.latent_distribution == "normal"
    assert model.default_batch_size == 64
    assert any(isinstance(l, keras.layers.BatchNormalization) for l in model.critic.layers)
    score = model.critic.layers[-1]
    assert score.units == 1 and score.activation is keras.activations.linear  # no sigmoid
    d_opt, g_opt = model.default_optimizers()
    assert d_opt is not g_opt
    for opt in (d_opt, g_opt):
        assert isinstance(opt, keras.optimizers.RMSprop)
        assert float(opt.learning_rate) == pytest.approx(5e-5) and opt.momentum == 0.0


def test_every_critic_weight_is_clipped_after_training_steps():
    keras.utils.set_random_seed(0)
    model = models.get("wgan", seed=0)
    model.compile(jit_compile=False)
    assert max(np.abs(w.numpy()).max() for w in model.critic.trainable_weights) > 0.01
    x = np.random.default_rng(0).uniform(-1, 1, (3 * 5 * 8, 28, 28, 1)).astype("float32")
    model.fit(batches(x, 5 * 8), epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations) == 15
    names = []
    for w in model.critic.trainable_weights:
        assert np.abs(w.numpy()).max() <= 0.01, w.path
        names.append(w.path)
    assert any("gamma" in n for n in names) and any("beta" in n for n in names)  # BN params too


@pytest.mark.parametrize("jit_compile", [False, True])
def test_paper_schedule_of_critic_updates(jit_compile):
    keras.utils.set_random_seed(0)
    model = models.get("wgan", image_shape=(2,), width=16, seed=0, schedule="paper")
    model.compile(jit_compile=jit_compile)
    data = batches(points(5 * 8), 5 * 8).repeat()

    def critic_updates_in_one_step():
        before = int(model.d_optimizer.iterations)
        model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
        return int(model.d_optimizer.iterations) - before

    assert critic_updates_in_one_step() == 100
    assert int(model.d_optimizer.iterations) == 100
    assert critic_updates_in_one_step() == 100
    assert int(model.d_optimizer.iterations) == 200
    # The schedule reads the generator updates made so far (saved with the optimizer).
    expected = {23: 100, 24: 100, 25: 5, 26: 5, 499: 5, 500: 100, 501: 5, 1000: 100}
    for generator_steps, critic_steps in expected.items():
        model.g_optimizer.iterations.assign(generator_steps)
        assert critic_updates_in_one_step() == critic_steps, generator_steps
    assert max(np.abs(w.numpy()).max() for w in model.critic.trainable_weights) <= 0.01


def test_constant_schedule_makes_d_steps_critic_updates():
    model = points_model("wgan")
    data = batches(points(2 * 5 * 8), 5 * 8)
    model.fit(data, epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations) == 10 and int(model.g_optimizer.iterations) == 2


# ----------------------------------------------------------------------------- both
@pytest.mark.parametrize("name", ["wgan", "wgan_gp"])
def test_trains_on_2d_points(name, tmp_path):
    model = points_model(name)
    assert model.output_range is None and model.latent_dim == 2
    data = batches(points(4 * 5 * 16), 5 * 16)
    history = model.fit(data, epochs=2, verbose=0).history
    assert set(history) == set(model.metric_names)
    assert all(np.all(np.isfinite(v)) for v in history.values())
    assert model.generate(10, seed=0).shape == (10, 2)
    path = str(tmp_path / "points.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    latent = model.sample_latent(3, seed=1)
    np.testing.assert_array_equal(model.generator(latent), loaded.generator(latent))


@pytest.mark.parametrize("name", ["wgan", "wgan_gp"])
def test_bad_arguments(name):
    for shape in [(30, 30, 3), (28, 32, 1), (784,)]:
        with pytest.raises(GanZooError, match=f"{name} takes square images .* or 2-D points"):
            models.get(name, image_shape=shape)
    with pytest.raises(GanZooError, match="unknown generator loss .minimax. for wgan.*: use one of wasserstein"):
        models.get(name, generator_loss="minimax")
    with pytest.raises(GanZooError, match=f"unknown schedule 'fast' for {name}: use one of constant, paper"):
        models.get(name, schedule="fast")
    with pytest.raises(GanZooError, match="unknown normalization"):
        models.get(name, normalization="instance")
    with pytest.raises(GanZooError, match="clip_value=0: clip_value takes a positive number or none"):
        models.get(name, clip_value=0)
    with pytest.raises(GanZooError, match=f"{name} with schedule=paper varies its critic updates per step, "
                                          "which update=simultaneous cannot follow"):
        models.get(name, schedule="paper", update="simultaneous", d_steps=1)


def test_negative_penalty_weight_is_refused():
    with pytest.raises(GanZooError, match=r"penalty_weight=-1: penalty_weight takes a number >= 0 \(default 10.0\)"):
        models.get("wgan_gp", penalty_weight=-1)
