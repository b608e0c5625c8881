"""Unrolled GAN: k = 0 is the plain GAN, the simulated discriminator updates are the optimizer's
own, and the generator's gradient goes through them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models.errors import GanZooError
from models.gan import GAN
from train import data
from train.trainer import TrainConfig, train


def points(n=64, seed=0):
    return data.sample_mixture("ring8", n, seed=seed).astype("float32")


def unrolled(steps, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = models.get("unrolled_gan", image_shape=(2,), unroll_steps=steps, seed=seed, **kwargs)
    model.compile(jit_compile=False)
    return model


def warm_up(model, batches=3):
    """A few real steps, so that the optimizers' moments are not zero."""
    model.fit(tf.data.Dataset.from_tensor_slices(points(64 * batches)).batch(64), verbose=0)


def test_zero_unroll_steps_is_the_plain_gan():
    model = unrolled(0)
    keras.utils.set_random_seed(1)
    plain = GAN(keras.models.clone_model(model.generator), keras.models.clone_model(model.discriminator),
                latent_distribution="normal", output_range=None, seed=0)
    plain.generator.set_weights(model.generator.get_weights())
    plain.discriminator.set_weights(model.discriminator.get_weights())
    plain.compile(*model.default_optimizers(), jit_compile=False)
    batches = tf.data.Dataset.from_tensor_slices(points(256)).batch(64)
    model.fit(batches, verbose=0)
    plain.fit(batches, verbose=0)
    for a, b in zip(model.generator.get_weights() + model.discriminator.get_weights(),
                    plain.generator.get_weights() + plain.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("architecture, image_shape", [("mlp", (2,)), ("mlp", (28, 28, 1))])
def test_a_simulated_step_is_the_optimizers_step(architecture, image_shape):
    """One unrolled step equals the discriminator update the loop performs (Adam for the 2-D
    networks, SGD with momentum for the MLP GAN's)."""
    keras.utils.set_random_seed(0)
    model = models.get("unrolled_gan", image_shape=image_shape, architecture=architecture, seed=0)
    model.compile(jit_compile=False)
    rng = np.random.default_rng(0)
    shape = (32, *image_shape)
    real = tf.constant(points(32) if image_shape == (2,) else rng.uniform(-1, 1, shape), tf.float32)
    latent = model.sample_latent(32, seed=3)
    fake = model.generator(latent)
    for _ in range(2):  # non-zero optimizer state
        model._discriminator_update(real)
    if architecture == "mlp" and image_shape != (2,):
        # Dropout draws other masks in the two computations: compare without it.
        for layer in model.discriminator.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
    simulated = model.unrolled_discriminator(real, fake, 1)
    with tf.GradientTape() as tape:
        d_loss = model._discriminator_loss_fn(model.discriminator(real, training=True),
                                             model.discriminator(fake, training=True))
    variables = model.discriminator.trainable_variables
    model.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, variables), variables))
    for s, v in zip(simulated, variables):
        np.testing.assert_allclose(s.numpy(), v.numpy(), rtol=1e-5, atol=1e-6)


def generator_gradient(model, real, latent):
    with tf.GradientTape() as tape:
        fake = model.generator(latent, training=True)
        g_loss, _ = model.generator_objective(fake, latent, real)
    return [g.numpy() for g in tape.gradient(g_loss, model.generator.trainable_variables)]


def test_the_generator_gradient_goes_through_the_unrolled_updates():
    model = unrolled(5)
    warm_up(model)
    real, latent = tf.constant(points(64, seed=1)), model.sample_latent(64, seed=2)
    unrolled_grad = generator_gradient(model, real, latent)
    model.unroll_steps = 0
    plain_grad = generator_gradient(model, real, latent)
    difference = max(np.abs(a - b).max() for a, b in zip(unrolled_grad, plain_grad))
    assert difference > 1e-4
    # With a vanishing discriminator learning rate the unrolled D stays put: same gradient.
    model.unroll_steps = 5
    model.d_optimizer.learning_rate.assign(1e-12)
    for a, b in zip(generator_gradient(model, real, latent), plain_grad):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_xla_step_matches_eager_graph_step():
    a, b = unrolled(3), unrolled(3)
    b.compile(jit_compile=True)
    real = tf.constant(points(64))
    latent = a.sample_latent(64, seed=5)
    np.testing.assert_allclose(
        tf.function(lambda: a.unrolled_discriminator(real, a.generator(latent), 3)[0])().numpy(),
        tf.function(lambda: b.unrolled_discriminator(real, b.generator(latent), 3)[0], jit_compile=True)().numpy(),
        rtol=1e-4, atol=1e-6)


def test_trains_from_the_trainer_on_ring8_and_images(fashion_dir, tmp_path):
    ring = train(TrainConfig(model="unrolled_gan", dataset="ring8", epochs=1, steps_per_epoch=3,
                             batch_size=64, logdir=str(tmp_path / "ring"), verbose=0,
                             model_options={"unroll_steps": 2}))
    assert ring.model.unroll_steps == 2 and int(ring.model.g_optimizer.iterations) == 3
    for architecture in ("dcgan", "mlp"):
        run = train(TrainConfig(model="unrolled_gan", epochs=1, steps_per_epoch=2, batch_size=16,
                                logdir=str(tmp_path / architecture), verbose=0, samples=4,
                                model_options={"unroll_steps": 1, "architecture": architecture}))
        assert np.isfinite(run.history["g_loss"][-1])
        assert run.model.generate(2).shape == (2, 28, 28, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"unroll_steps": 11}, "unroll_steps=11: unroll_steps takes an integer from 0 to 10"),
    ({"unroll_steps": -1}, "unroll_steps=-1: unroll_steps takes an integer from 0 to 10"),
    ({"architecture": "resnet"}, "unknown architecture 'resnet'"),
    ({"architecture": "dcgan", "image_shape": (2,)}, "2-D points takes architecture=mlp"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(GanZooError, match=message):
        models.get("unrolled_gan", **kwargs)


def test_unsupported_discriminator_optimizer():
    model = models.get("unrolled_gan", image_shape=(2,))
    model.compile(keras.optimizers.RMSprop(1e-3), keras.optimizers.Adam(1e-3), jit_compile=False)
    with pytest.raises(GanZooError, match="simulates Adam or SGD discriminator updates, not RMSprop"):
        model.fit(tf.data.Dataset.from_tensor_slices(points(64)).batch(64), verbose=0)
