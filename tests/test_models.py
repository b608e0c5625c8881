"""The shared suite every registered model goes through: a new family gets it for free."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models.errors import GanZooError
from models.gan import dtype_policy

NAMES = models.names()


def tiny_data(model, steps=4, batch=16, seed=0, bright=False):
    """`steps` batches of random samples in the model's output range, sized for its d_steps;
    `bright` keeps them in the top quarter of the range, far from an untrained generator's."""
    rng = np.random.default_rng(seed)
    per_step = batch * model.d_steps
    shape = (steps * per_step, *model.generator.outputs[0].shape[1:])
    low, high = model.output_range or (-2.0, 2.0)
    if bright:
        low = high - (high - low) / 4
    x = rng.uniform(low, high, shape).astype("float32")
    return tf.data.Dataset.from_tensor_slices(labelled(model, x, seed)).batch(per_step, drop_remainder=True)


def labelled(model, x, seed=0):
    """`x`, or `(x, random class labels)` for a conditional family."""
    if not model.conditional:
        return x
    return x, np.random.default_rng(seed).integers(0, model.num_classes, len(x)).astype("int32")


def paired(model, samples, latent):
    """What the discriminator takes: `samples`, or `(samples, labels of latent)` if conditional."""
    return (samples, latent[1]) if model.conditional else samples


def build(name, image_shape=(28, 28, 1), compile_kwargs=None, **overrides):
    keras.utils.set_random_seed(0)
    model = models.get(name, image_shape=image_shape, seed=0, **overrides)
    model.compile(jit_compile=False, **(compile_kwargs or {}))
    return model


def weights_of(network):
    return [w.numpy().copy() for w in network.trainable_weights]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("name", NAMES)
def test_shapes(name):
    model = build(name)
    latent = model.sample_latent(5)
    assert keras.tree.flatten(latent)[0].shape == (5, model.latent_dim)
    fake = model.generator(latent)
    assert fake.shape == (5, 28, 28, 1)
    d_loss, logs = model.discriminator_objective(paired(model, fake, latent), fake, latent)
    assert d_loss.shape == () and np.isfinite(float(d_loss))
    assert set(logs) <= set(model.metric_names)
    samples = model.generate(7, seed=1)
    assert samples.shape == (7, 28, 28, 1)
    assert samples.min() >= 0.0 and samples.max() <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_two_tiny_epochs_move_both_networks(name):
    model = build(name)
    g_before, d_before = weights_of(model.generator), weights_of(model.discriminator)
    history = model.fit(tiny_data(model), epochs=2, verbose=0).history
    assert set(history) == set(model.metric_names)
    for key, values in history.items():
        assert len(values) == 2 and np.all(np.isfinite(values)), key
    assert changed(g_before, weights_of(model.generator))
    assert changed(d_before, weights_of(model.discriminator))
    assert int(model.g_optimizer.iterations) == 2 * 4
    assert int(model.d_optimizer.iterations) == 2 * 4 * model.d_steps


@pytest.mark.parametrize("name", NAMES)
def test_discriminator_loss_falls_against_a_frozen_generator(name):
    model = build(name, compile_kwargs={"g_optimizer": keras.optimizers.SGD(0.0)})
    g_before = weights_of(model.generator)
    data = tiny_data(model, steps=2, batch=32, bright=True).cache()
    history = model.fit(data, epochs=40, verbose=0).history
    assert not changed(g_before, weights_of(model.generator))
    first, last = np.mean(history["d_loss"][:3]), np.mean(history["d_loss"][-3:])
    assert last < first - 0.2 * abs(first)


@pytest.mark.parametrize("name", NAMES)
def test_d_steps_per_generator_step(name):
    model = build(name, d_steps=3)
    model.fit(tiny_data(model, steps=2), epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations) == 3 * int(model.g_optimizer.iterations) == 6


@pytest.mark.parametrize("name", NAMES)
def test_batch_that_does_not_split_into_d_steps(name):
    # 16 samples make discriminator slices of 6, 5 and 5 (see models.gan.split_batch)
    model = build(name, d_steps=3)
    x = np.zeros((16, 28, 28, 1), np.float32)
    history = model.fit(tf.data.Dataset.from_tensor_slices(labelled(model, x)).batch(16, drop_remainder=True),
                        verbose=0).history
    assert all(np.isfinite(values[0]) for values in history.values())
    assert int(model.d_optimizer.iterations) == 3 and int(model.g_optimizer.iterations) == 1


@pytest.mark.parametrize("name", ["mlp_gan", "dcgan"])
def test_minimax_objective_trains(name):
    model = build(name, generator_loss="minimax")
    history = model.fit(tiny_data(model), epochs=1, verbose=0).history
    assert history["g_loss"][0] < 0  # mean log(1 - D(G(z))) is negative


@pytest.mark.parametrize("name", NAMES)
def test_generate_is_seeded(name):
    model = build(name)
    a, b, c = model.generate(6, seed=3), model.generate(6, seed=3), model.generate(6, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_keras_file_round_trip(name, tmp_path):
    model = build(name)
    model.fit(tiny_data(model), epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    latent = model.sample_latent(4, seed=7)
    np.testing.assert_array_equal(model.generator(latent), loaded.generator(latent))
    fake = paired(model, model(latent), latent)
    for a, b in zip(keras.tree.flatten(model.discriminator(fake)), keras.tree.flatten(loaded.discriminator(fake))):
        np.testing.assert_array_equal(a, b)
    # The optimizers come back with their state, so training continues where it was.
    assert int(loaded.d_optimizer.iterations) == int(model.d_optimizer.iterations) == 4 * model.d_steps
    assert type(loaded.d_optimizer) is type(model.d_optimizer)
    np.testing.assert_array_equal(model.seed_generator.state, loaded.seed_generator.state)
    loaded.fit(tiny_data(loaded), epochs=1, verbose=0)


@pytest.mark.parametrize("name", NAMES)
def test_weights_file_round_trip(name, tmp_path):
    model = build(name)
    model.fit(tiny_data(model), epochs=1, verbose=0)
    path = str(tmp_path / "gan.weights.h5")
    model.save_weights(path)
    other = models.family(name).from_config(model.get_config())
    other.compile(jit_compile=False)
    latent = model.sample_latent(4, seed=7)
    assert not np.array_equal(model.generator(latent), other.generator(latent))
    other.load_weights(path)
    np.testing.assert_array_equal(model.generator(latent), other.generator(latent))
    np.testing.assert_array_equal(model.generate(3, seed=1), other.generate(3, seed=1))
    # the noise stream continues where it was
    for a, b in zip(keras.tree.flatten(model.sample_latent(2)), keras.tree.flatten(other.sample_latent(2))):
        np.testing.assert_array_equal(a, b)


# Keras warns about the optimizer state it skips on its way to the refusal this test expects.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer:UserWarning")
def test_weights_of_another_model_are_refused(tmp_path):
    dcgan = build("dcgan")
    path = str(tmp_path / "dcgan.weights.h5")
    dcgan.save_weights(path)
    import re

    pattern = rf"weights file '{re.escape(path)}' does not fit mlp_gan \(.*\): it was saved by another model"
    with pytest.raises(GanZooError, match=pattern):
        build("mlp_gan").load_weights(path)


def test_generic_gan_from_any_networks_round_trips(tmp_path):
    generator = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)])
    model = models.GAN(generator, discriminator, output_range=None, seed=1)
    model.compile(jit_compile=False)
    points = tf.data.Dataset.from_tensor_slices(np.random.default_rng(0).normal(size=(64, 2)).astype("float32"))
    model.fit(points.batch(16, drop_remainder=True), epochs=1, verbose=0)
    path = str(tmp_path / "generic.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    z = model.sample_latent(5, seed=2)
    np.testing.assert_array_equal(model(z), loaded(z))
    assert loaded.latent_dim == 3


class FixedNoiseDCGAN(models.family("dcgan")):
    """DCGAN whose noise is a fixed function of the batch, so two execution modes can agree."""

    def sample_latent(self, batch_size, seed=None):
        grid = tf.reshape(tf.range(batch_size * self.latent_dim, dtype=tf.float32), (batch_size, self.latent_dim))
        return tf.sin(grid)


def test_xla_train_step_computes_the_same_update():
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = FixedNoiseDCGAN(seed=0)
        model.compile(jit_compile=jit)
        history = model.fit(tiny_data(model, steps=3), epochs=1, verbose=0).history
        results.append((history, [w.numpy() for w in model.generator.trainable_weights]))
    (plain, plain_weights), (xla, xla_weights) = results
    for key in plain:
        assert plain[key][0] == pytest.approx(xla[key][0], rel=1e-3), key
    # Adam turns tiny gradient differences (float reassociation) into lr-sized steps on a few
    # entries, so compare almost all entries tightly rather than every one.
    for a, b in zip(plain_weights, xla_weights):
        assert np.mean(np.isclose(a, b, rtol=0, atol=1e-5)) > 0.99


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_sizes_follow_the_paper(shape):
    model = models.get("dcgan", image_shape=shape)
    assert model.generator.output_shape == (None, *shape)
    convs = [l for l in model.generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert all(l.strides == (2, 2) for l in convs)
    assert convs[-1].activation is keras.activations.tanh
    d_convs = [l for l in model.discriminator.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.filters for l in d_convs] == [64 * 2**i for i in range(len(d_convs))]
    # no batch norm on G's output or D's input; none of them pool
    assert not any(isinstance(l, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))
                   for l in model.discriminator.layers)
    layers = model.discriminator.layers
    first_conv = next(i for i, l in enumerate(layers) if isinstance(l, keras.layers.Conv2D))
    assert isinstance(layers[first_conv + 1], keras.layers.LeakyReLU)
    if shape == (64, 64, 3):
        dense = model.generator.layers[1]
        assert dense.units == 4 * 4 * 512


def test_mlp_gan_follows_the_paper():
    model = models.get("mlp_gan")
    hidden = [l for l in model.generator.layers if isinstance(l, keras.layers.Dense)]
    assert [l.units for l in hidden] == [1200, 1200, 784]
    assert hidden[-1].activation is keras.activations.sigmoid
    maxouts = [l for l in model.discriminator.layers if l.__class__.__name__ == "Maxout"]
    assert [(l.units, l.pieces) for l in maxouts] == [(240, 5), (240, 5)]
    rates = [l.rate for l in model.discriminator.layers if isinstance(l, keras.layers.Dropout)]
    assert rates == [0.2, 0.5, 0.5]
    assert model.latent_dim == 100 and model.output_range == (0.0, 1.0)
    d_opt, g_opt = model.default_optimizers()
    assert isinstance(d_opt, keras.optimizers.SGD) and float(d_opt.momentum) == 0.5


def test_maxout_takes_the_max_of_its_pieces():
    from models.mlp_gan import Maxout

    layer = Maxout(2, 3)
    layer.build((None, 1))
    layer.dense.kernel.assign([[1.0, -1.0, 2.0, 0.5, 0.0, -3.0]])
    layer.dense.bias.assign(np.zeros(6, np.float32))
    np.testing.assert_allclose(layer(np.array([[1.0], [-1.0]], np.float32)), [[2.0, 0.5], [1.0, 3.0]])


def test_mlp_gan_on_2d_points():
    model = build("mlp_gan", image_shape=(2,))
    assert model.output_range is None
    points = tiny_data(model, steps=4, batch=32)
    history = model.fit(points, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["d_loss"]))
    samples = model.generate(10, seed=0)
    assert samples.shape == (10, 2)


def test_unknown_model_lists_the_registry():
    with pytest.raises(GanZooError, match="unknown model 'stylegan'.*dcgan"):
        models.get("stylegan")


def test_unknown_override_lists_accepted_ones():
    with pytest.raises(GanZooError, match="dcgan does not take depth; it takes .*width"):
        models.get("dcgan", depth=3)


@pytest.mark.parametrize("shape", [(28, 32, 1), (30, 30, 3), (784,)])
def test_dcgan_refuses_shapes_it_cannot_take(shape):
    with pytest.raises(GanZooError, match="dcgan takes"):
        models.get("dcgan", image_shape=shape)


def test_bad_arguments():
    with pytest.raises(GanZooError, match="d_steps"):
        models.get("dcgan", d_steps=0)
    with pytest.raises(GanZooError, match="generator loss"):
        models.get("dcgan", generator_loss="wasserstein")
    with pytest.raises(GanZooError, match="latent_distribution"):
        models.get("dcgan", latent_distribution="cauchy")
    model = models.get("dcgan")
    opt = keras.optimizers.Adam()
    with pytest.raises(GanZooError, match="two optimizer objects"):
        model.compile(d_optimizer=opt, g_optimizer=opt)


def test_zoo_refuses_unknown_presets():
    import zoo

    assert zoo.list() == sorted(zoo.PRESETS)
    with pytest.raises(GanZooError, match="unknown preset 'dcgan_imagenet'"):
        zoo.load("dcgan_imagenet")


def test_mlp_gan_keeps_discriminator_columns_within_the_papers_norm():
    model = build("mlp_gan", compile_kwargs={"d_optimizer": keras.optimizers.SGD(50.0)})
    model.fit(tiny_data(model, steps=3), epochs=1, verbose=0)
    kernels = [w for w in model.discriminator.trainable_weights if len(w.shape) == 2]
    assert len(kernels) == 3
    for kernel in kernels:
        norms = np.linalg.norm(kernel.numpy(), axis=0)
        assert norms.max() <= 1.9365 + 1e-4
    assert np.isclose(np.linalg.norm(kernels[0].numpy(), axis=0).max(), 1.9365, atol=1e-3)  # it binds


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_trains_every_family(name, policy):
    with dtype_policy(policy):
        model = build(name)
    compute = policy.split("_")[1]
    assert {layer.compute_dtype for layer in model.generator.layers[1:]} == {compute}
    assert all(w.dtype == "float32" for w in model.generator.weights + model.discriminator.weights)
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer) == (compute == "float16")
    g_before, d_before = weights_of(model.generator), weights_of(model.discriminator)
    # Dynamic loss scaling starts at 2^15 and skips the steps whose scaled gradients overflow
    # while it finds its scale, so float16 gets a few more steps to move both networks.
    steps = 2 if compute == "bfloat16" else 8
    history = model.fit(tiny_data(model, steps=steps), epochs=1, verbose=0).history
    for key, values in history.items():
        assert np.all(np.isfinite(values)), key
    assert changed(g_before, weights_of(model.generator))
    assert changed(d_before, weights_of(model.discriminator))
    samples = model.generate(3, seed=0)
    assert samples.dtype == np.float32 and samples.min() >= 0.0 and samples.max() <= 1.0


def test_auto_jit_compile_follows_the_family_on_this_cpu():
    assert not tf.config.list_logical_devices("GPU")
    for name in NAMES:
        model = models.get(name, image_shape=(28, 28, 1))
        model.compile()
        assert model.jit_compile is type(model).xla_on_cpu, name
    assert {name for name in NAMES if models.family(name).xla_on_cpu} == {"mlp_gan", "infogan"}
    model = models.get("dcgan")
    model.compile(jit_compile=True)
    assert model.jit_compile is True
