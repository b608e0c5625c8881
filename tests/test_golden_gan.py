"""The shared two-player update of models/gan.py on networks small enough to follow by hand.

A generator y = a z + b and a discriminator logit w x + c, both one weight and one bias, with
plain SGD: each test writes the step's gradients out and checks the weights, the tracked values
and the noise against them. Fast (no convolution), so scripts/mutation.sh runs it for every
mutant of models/gan.py.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.errors import GanZooError
from models.gan import GAN, batch_slice, draw_noise, dtype_policy, split_batch

A, B, W, C = 0.8, 0.3, 1.5, -0.2  # generator a, b; discriminator w, c
RATE = 0.1


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


class FixedNoise(GAN):
    """z_i = sin(i + 1) for the i-th sample of any draw, so a step's noise is known."""

    def sample_latent(self, batch_size, seed=None):
        return tf.sin(tf.reshape(tf.range(1, batch_size + 1, dtype=tf.float32), (batch_size, 1)))


def linear_gan(cls=FixedNoise, compile=True, **kwargs):
    generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    discriminator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    generator.set_weights([np.array([[A]], "float32"), np.array([B], "float32")])
    discriminator.set_weights([np.array([[W]], "float32"), np.array([C], "float32")])
    kwargs.setdefault("output_range", None)
    model = cls(generator, discriminator, **kwargs)
    if compile:
        model.compile(keras.optimizers.SGD(RATE), keras.optimizers.SGD(RATE), jit_compile=False)
    return model


def scalars(network):
    return [float(t.ravel()[0]) for t in network.get_weights()]


def z_of(n):
    return np.sin(np.arange(1, n + 1, dtype=np.float64))


def fit_once(model, x):
    return model.fit(tf.data.Dataset.from_tensors(np.asarray(x, "float32").reshape(-1, 1)),
                     epochs=1, verbose=0).history


# ------------------------------------------------------------------- the alternating step
X = np.array([1.0, -2.0, 0.5, 3.0])


def test_alternating_step_by_hand():
    """D steps on real and fake samples first; G then steps against the updated D."""
    model = linear_gan()
    history = fit_once(model, X)
    z = z_of(4)
    y = A * z + B
    real, fake = W * X + C, W * y + C
    # d_loss = mean softplus(-real) + mean softplus(fake)
    d_w = np.mean(-sigmoid(-real) * X) + np.mean(sigmoid(fake) * y)
    d_c = np.mean(-sigmoid(-real)) + np.mean(sigmoid(fake))
    w, c = W - RATE * d_w, C - RATE * d_c
    # g_loss = mean softplus(-(w y + c)) with D's new w, c
    fake_after = w * y + c
    g_a = np.mean(-sigmoid(-fake_after) * w * z)
    g_b = np.mean(-sigmoid(-fake_after) * w)
    np.testing.assert_allclose(scalars(model.discriminator), [w, c], rtol=1e-5)
    np.testing.assert_allclose(scalars(model.generator), [A - RATE * g_a, B - RATE * g_b], rtol=1e-5)
    assert history["d_loss"][0] == pytest.approx(np.mean(softplus(-real)) + np.mean(softplus(fake)), rel=1e-5)
    assert history["g_loss"][0] == pytest.approx(np.mean(softplus(-fake_after)), rel=1e-5)
    assert history["d_real"][0] == pytest.approx(np.mean(sigmoid(real)), rel=1e-5)
    assert history["d_fake"][0] == pytest.approx(np.mean(sigmoid(fake)), rel=1e-5)
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 1


@pytest.mark.parametrize("objective", ["minimax", "least_squares"])
def test_the_objective_changes_the_losses_it_should(objective):
    model = linear_gan(generator_loss=objective)
    history = fit_once(model, X)
    z = z_of(4)
    y = A * z + B
    real, fake = W * X + C, W * y + C
    if objective == "minimax":
        # D keeps the GAN's loss; G minimises mean log(1 - D) = -mean softplus(logit)
        d_w = np.mean(-sigmoid(-real) * X) + np.mean(sigmoid(fake) * y)
        d_c = np.mean(-sigmoid(-real)) + np.mean(sigmoid(fake))
        d_loss = np.mean(softplus(-real)) + np.mean(softplus(fake))
        d_real, d_fake = np.mean(sigmoid(real)), np.mean(sigmoid(fake))
    else:
        # LSGAN: D regresses real outputs on 1 and fake ones on 0, G pulls its outputs to 1
        d_w = np.mean((real - 1) * X) + np.mean(fake * y)
        d_c = np.mean(real - 1) + np.mean(fake)
        d_loss = 0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake**2)
        d_real, d_fake = np.mean(real), np.mean(fake)  # raw outputs, no sigmoid
    w, c = W - RATE * d_w, C - RATE * d_c
    after = w * y + c
    g_loss = -np.mean(softplus(after)) if objective == "minimax" else 0.5 * np.mean((after - 1) ** 2)
    np.testing.assert_allclose(scalars(model.discriminator), [w, c], rtol=1e-5)
    assert history["d_loss"][0] == pytest.approx(d_loss, rel=1e-5)
    assert history["g_loss"][0] == pytest.approx(g_loss, rel=1e-5)
    assert (history["d_real"][0], history["d_fake"][0]) == pytest.approx((d_real, d_fake), rel=1e-5)


def test_two_discriminator_steps_take_one_slice_each():
    """d_steps=2 on a batch of 4: D steps on samples 0-1 then 2-3, each with two fresh latents;
    G steps once, on as many latents as the first slice has samples."""
    model = linear_gan(d_steps=2)
    history = fit_once(model, X)
    z = z_of(2)
    y = A * z + B
    w, c, d_losses = W, C, []
    for part in (X[:2], X[2:]):
        real, fake = w * part + c, w * y + c
        d_losses.append(np.mean(softplus(-real)) + np.mean(softplus(fake)))
        d_w = np.mean(-sigmoid(-real) * part) + np.mean(sigmoid(fake) * y)
        d_c = np.mean(-sigmoid(-real)) + np.mean(sigmoid(fake))
        w, c = w - RATE * d_w, c - RATE * d_c
    np.testing.assert_allclose(scalars(model.discriminator), [w, c], rtol=1e-5)
    after = w * y + c
    g_a = np.mean(-sigmoid(-after) * w * z)
    np.testing.assert_allclose(scalars(model.generator)[0], A - RATE * g_a, rtol=1e-5)
    assert history["d_loss"][0] == pytest.approx(np.mean(d_losses), rel=1e-5)  # tracked per D step
    assert int(model.d_optimizer.iterations) == 2 and int(model.g_optimizer.iterations) == 1


def test_simultaneous_step_takes_both_gradients_before_either_update():
    model = linear_gan(update="simultaneous")
    fit_once(model, X)
    z = z_of(4)
    y = A * z + B
    real, fake = W * X + C, W * y + C
    d_w = np.mean(-sigmoid(-real) * X) + np.mean(sigmoid(fake) * y)
    g_a = np.mean(-sigmoid(-fake) * W * z)  # D's pre-step w
    np.testing.assert_allclose([scalars(model.discriminator)[0], scalars(model.generator)[0]],
                               [W - RATE * d_w, A - RATE * g_a], rtol=1e-5)


def test_simultaneous_objective_hands_the_latent_and_the_real_batch_to_the_hooks():
    seen = {}

    class Recording(FixedNoise):
        def discriminator_objective(self, real, fake, latent):
            seen["d"] = (real.numpy().ravel(), latent.numpy().ravel())
            return super().discriminator_objective(real, fake, latent)

        def generator_objective(self, fake, latent, real=None):
            seen["g"] = (real.numpy().ravel(), latent.numpy().ravel())
            return super().generator_objective(fake, latent, real)

    model = linear_gan(cls=Recording, update="simultaneous")
    model.run_eagerly = True
    fit_once(model, X)
    assert set(seen) == {"d", "g"}
    for real, latent in seen.values():
        np.testing.assert_array_equal(real, X)
        np.testing.assert_allclose(latent, z_of(4), rtol=1e-6)


def batch_norm_generator_gan(cls=FixedNoise, **kwargs):
    generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1), keras.layers.BatchNormalization()])
    discriminator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    return cls(generator, discriminator, output_range=None, **kwargs)


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_the_generator_trains_in_training_mode(update):
    """Batch norm's moving mean moves only when the generator runs in training mode."""
    model = batch_norm_generator_gan(update=update)
    model.compile(keras.optimizers.SGD(RATE), keras.optimizers.SGD(RATE), jit_compile=False)
    fit_once(model, X)
    moving_mean = model.generator.layers[-1].moving_mean.numpy()
    assert np.all(moving_mean != 0.0)


def test_generating_runs_the_generator_in_inference_mode():
    model = batch_norm_generator_gan(cls=GAN, seed=0)
    layer = model.generator.layers[-1]
    layer.moving_mean.assign([5.0])  # inference normalises with these, training with the batch's
    z = tf.constant([[0.5], [-1.0]])
    inference = model.generator(z, training=False).numpy()
    np.testing.assert_array_equal(model(z), inference)
    assert not np.allclose(inference, model.generator(z, training=True).numpy())  # (moves the mean)
    np.testing.assert_allclose(model.generate(2, seed=1), model.generator(model.sample_latent(2, seed=1),
                                                                           training=False))
    # without a seed, generate() draws from the model's own stream
    twin = batch_norm_generator_gan(cls=GAN, seed=0)
    twin.generator.set_weights(model.generator.get_weights())
    np.testing.assert_array_equal(model.generate(3), twin.generate(3))
    assert not np.array_equal(model.generate(3), model.generate(3))


def test_trackers_average_over_the_steps_of_an_epoch():
    model = linear_gan()
    steps = [X[:2], X[2:]]
    history = model.fit(tf.data.Dataset.from_tensor_slices(X.astype("float32").reshape(-1, 1)).batch(2),
                        epochs=1, verbose=0).history
    # replay the two steps by hand, recording D's loss before each of its updates
    w, c, a, b, d_losses = W, C, A, B, []
    z = z_of(2)
    for part in steps:
        y = a * z + b
        real, fake = w * part + c, w * y + c
        d_losses.append(np.mean(softplus(-real)) + np.mean(softplus(fake)))
        w, c = (w - RATE * (np.mean(-sigmoid(-real) * part) + np.mean(sigmoid(fake) * y)),
                c - RATE * (np.mean(-sigmoid(-real)) + np.mean(sigmoid(fake))))
        after = w * y + c
        a, b = a - RATE * np.mean(-sigmoid(-after) * w * z), b - RATE * np.mean(-sigmoid(-after) * w)
    assert history["d_loss"][0] == pytest.approx(np.mean(d_losses), rel=1e-5)
    assert [m.name for m in model.metrics] == ["d_loss", "g_loss", "d_real", "d_fake"]


# ------------------------------------------------------------------- slices of a batch
def test_split_batch_follows_its_documented_examples():
    def sizes(n, parts):
        return [int(tf.shape(s)[0]) for s in split_batch(tf.range(n), parts)]

    assert sizes(64, 5) == [13, 13, 13, 13, 12]
    assert sizes(32, 5) == [7, 7, 6, 6, 6]
    assert sizes(320, 5) == [64] * 5
    assert [s.numpy().tolist() for s in split_batch(tf.range(3), 5)] == [[0], [1], [2], [0], [1]]
    pieces = split_batch((tf.range(4), tf.range(10, 14)), 2)
    assert [[t.numpy().tolist() for t in piece] for piece in pieces] == [[[0, 1], [10, 11]], [[2, 3], [12, 13]]]
    whole = tf.range(5)
    assert split_batch(whole, 1)[0] is whole


RUNS_32_BY_5 = [list(range(0, 7)), list(range(7, 14)), list(range(14, 20)), list(range(20, 26)), list(range(26, 32))]


def test_slices_are_runs_of_consecutive_samples_known_or_not_when_traced():
    assert [s.numpy().tolist() for s in split_batch(tf.range(32), 5)] == RUNS_32_BY_5

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def traced(batch):  # the batch size is known only when the step runs
        return [tf.concat([s, [-1]], 0) for s in split_batch(batch, 5)]

    def runs(n):
        return [t.numpy().tolist()[:-1] for t in traced(tf.range(n))]

    assert runs(32) == RUNS_32_BY_5
    assert runs(10) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert runs(3) == [[0], [1], [2], [0], [1]]


def test_equal_slices_are_trimmed_to_one_shape():
    """`equal=True` keeps each slice's start and cuts it to floor(n / parts) samples (at least 1),
    for an index that is a Python int or a tensor, with a batch size known or not."""
    trimmed = [run[:6] for run in RUNS_32_BY_5]
    assert [batch_slice(tf.range(32), i, 5, equal=True).numpy().tolist() for i in range(5)] == trimmed
    assert [batch_slice(tf.range(32), tf.constant(i), 5, equal=True).numpy().tolist() for i in range(5)] == trimmed
    assert [batch_slice(tf.range(32), tf.constant(i), 5).numpy().tolist() for i in range(5)] == RUNS_32_BY_5

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
    def traced(batch, index):
        return batch_slice(batch, index, 5, equal=True)

    assert [traced(tf.range(32), i).numpy().tolist() for i in range(5)] == trimmed
    assert [traced(tf.range(3), i).numpy().tolist() for i in range(5)] == [[0], [1], [2], [0], [1]]


# --------------------------------------------------------------------------- the noise
def test_noise_distributions_and_seeds():
    uniform = draw_noise((4000, 2), 3).numpy()
    assert uniform.min() >= -1.0 and uniform.max() <= 1.0 and uniform.min() < -0.99 and uniform.max() > 0.99
    assert abs(uniform.mean()) < 0.03 and uniform.var() == pytest.approx(1 / 3, rel=0.05)  # U[-1, 1]
    normal = draw_noise((4000, 2), 3, "normal").numpy()
    assert abs(normal.mean()) < 0.05 and normal.std() == pytest.approx(1.0, rel=0.05) and normal.max() > 2.5
    np.testing.assert_array_equal(draw_noise((3, 2), 3), draw_noise((3, 2), 3))

    model = linear_gan(cls=GAN, compile=False, latent_distribution="normal", seed=5)
    assert model.sample_latent(6).shape == (6, 1)
    np.testing.assert_array_equal(model.sample_latent(4, seed=9), draw_noise((4, 1), 9, "normal"))
    first, second = model.sample_latent(4), model.sample_latent(4)  # the model's stream moves on
    assert not np.array_equal(first, second)
    again = linear_gan(cls=GAN, compile=False, latent_distribution="normal", seed=5)
    again.sample_latent(6)  # the same draws from the same seed: the same stream
    np.testing.assert_array_equal(first, again.sample_latent(4))
    np.testing.assert_array_equal(second, again.sample_latent(4))


# ---------------------------------------------------------------------------- inference
@pytest.mark.parametrize("output_range, expected", [
    ((-1.0, 1.0), [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]),  # (x + 1) / 2, clipped
    ((0.0, 2.0), [0.0, 0.0, 0.0, 0.0, 0.5, 1.0]),  # x / 2, clipped
    (None, [-3.0, -1.0, -0.5, 0.0, 1.0, 3.0]),  # unbounded points stay as they are
])
def test_to_unit_range(output_range, expected):
    model = linear_gan(cls=GAN, compile=False, output_range=output_range)
    x = tf.constant([-3.0, -1.0, -0.5, 0.0, 1.0, 3.0], tf.float16)
    result = model.to_unit_range(x)
    assert result.dtype == tf.float32
    np.testing.assert_allclose(result, expected)


def test_generate_in_chunks_is_one_seeded_stream():
    model = linear_gan(cls=GAN, compile=False, output_range=(-1.0, 1.0), seed=1)
    samples = model.generate(7, seed=4, batch_size=3)
    assert samples.shape == (7, 1)
    stream = keras.random.SeedGenerator(4)
    z = np.concatenate([model.sample_latent(k, seed=stream).numpy() for k in (3, 3, 1)])
    np.testing.assert_allclose(samples, np.clip((A * z + B + 1) / 2, 0, 1), rtol=1e-6)
    np.testing.assert_array_equal(samples, model.generate(7, seed=4, batch_size=3))
    np.testing.assert_allclose(model(tf.constant([[0.5]])), [[A * 0.5 + B]], rtol=1e-6)  # call() generates


# --------------------------------------------------------------------------- plumbing
def test_compile_defaults_and_refusals():
    model = linear_gan(cls=GAN, compile=False)
    model.compile(jit_compile=False)
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert isinstance(optimizer, keras.optimizers.Adam)
        assert float(optimizer.learning_rate) == pytest.approx(2e-4) and float(optimizer.beta_1) == 0.5
    assert model.d_optimizer is not model.g_optimizer and model.optimizer is model.g_optimizer
    assert model.d_optimizer.built and model.g_optimizer.built
    assert model.get_compile_config()["jit_compile"] is False
    shared = keras.optimizers.SGD(0.1)
    with pytest.raises(GanZooError, match="^d_optimizer and g_optimizer must be two optimizer objects, "
                                          "not the same one$"):
        model.compile(shared, shared)
    assert linear_gan(cls=GAN, compile=False).get_compile_config() is None


@pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="XLA is always on with a GPU")
def test_jit_compile_auto_follows_the_family_on_a_cpu():
    class Fast(GAN):
        xla_on_cpu = True

    for cls, expected in ((GAN, False), (Fast, True)):
        model = linear_gan(cls=cls, compile=False)
        model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
        assert model.xla_by_default() is expected and model.jit_compile is expected


def test_mixed_float16_wraps_each_optimizer_in_loss_scaling():
    with dtype_policy("mixed_float16"):
        model = linear_gan(cls=GAN, compile=False)
        model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.2), jit_compile=False)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(model.g_optimizer.inner_optimizer.learning_rate) == pytest.approx(0.2)


def test_dtype_policy_sets_and_restores_even_after_an_error():
    with pytest.raises(RuntimeError):
        with dtype_policy("mixed_bfloat16"):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError
    assert keras.mixed_precision.global_policy().name == "float32"
    with dtype_policy(None):
        assert keras.mixed_precision.global_policy().name == "float32"


def test_config_round_trip():
    model = linear_gan(cls=GAN, compile=False, d_steps=3, generator_loss="minimax",
                       latent_distribution="normal", output_range=(0, 1), seed=7, name="tiny")
    config = model.get_config()
    assert {k: config[k] for k in ("name", "d_steps", "generator_loss", "latent_distribution", "output_range",
                                   "seed", "update", "precision", "latent_dim", "trainable")} == {
        "name": "tiny", "d_steps": 3, "generator_loss": "minimax", "latent_distribution": "normal",
        "output_range": (0.0, 1.0), "seed": 7, "update": "alternating", "precision": "float32", "latent_dim": 1,
        "trainable": True}
    other = GAN.from_config(config)
    assert other.get_config() == config


def test_keras_file_keeps_both_optimizers(tmp_path):
    model = linear_gan(cls=GAN, compile=False)
    # not the defaults (Adam for both, XLA off for the plain GAN on a CPU)
    model.compile(keras.optimizers.Adam(0.3), keras.optimizers.SGD(0.1), jit_compile=True)
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.d_optimizer, keras.optimizers.Adam)
    assert isinstance(loaded.g_optimizer, keras.optimizers.SGD)
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(0.3)
    assert float(loaded.g_optimizer.learning_rate) == pytest.approx(0.1)
    assert loaded.jit_compile is True
    np.testing.assert_allclose(scalars(loaded.generator), [A, B])


def test_a_stored_configuration_is_checked_and_may_predate_the_precision():
    config = linear_gan(cls=GAN, compile=False, name="tiny").get_config()
    with pytest.raises(GanZooError, match="unknown generator loss 'hinge' for tiny"):
        GAN.from_config({**config, "generator_loss": "hinge"})
    del config["precision"]  # written before the precision was recorded
    assert GAN.from_config(config).generator.dtype_policy.name == "float32"


# Keras warns about the layers skip_mismatch leaves out: that is what this test asks for.
@pytest.mark.filterwarnings("ignore:A total of 2 objects could not be loaded:UserWarning")
def test_weights_loading_passes_its_options_on(tmp_path):
    path = str(tmp_path / "tiny.weights.h5")
    linear_gan(cls=GAN, compile=False).save_weights(path)
    wider = GAN(keras.Sequential([keras.Input((1,)), keras.layers.Dense(2), keras.layers.Dense(1)]),
                keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]), output_range=None, name="wider")
    with pytest.raises(GanZooError, match="wider"):
        wider.load_weights(path)
    wider.load_weights(path, True)  # Keras' skip_mismatch, by position
    wider.load_weights(path, skip_mismatch=True)


def test_simultaneous_update_refuses_several_discriminator_steps():
    with pytest.raises(GanZooError, match="^update=simultaneous takes one step for both players, not d_steps=2: "
                                          "pass --d_steps 1 or use update=alternating$"):
        linear_gan(cls=GAN, compile=False, update="simultaneous", d_steps=2)


def test_a_conditional_family_refuses_unlabelled_batches():
    class Conditional(FixedNoise):
        conditional = True

    model = linear_gan(cls=Conditional, name="tiny")
    with pytest.raises(GanZooError, match="^tiny is conditional: train it on \\(images, labels\\) batches"):
        model.train_step(tf.constant([[1.0]]))
    # a plain family reads the samples of an (x, y) batch and ignores the rest
    plain = linear_gan()
    plain.train_step((tf.constant(X.reshape(-1, 1), tf.float32), tf.constant([0, 1, 0, 1])))
    assert int(plain.g_optimizer.iterations) == 1


def test_weights_of_a_model_with_other_variables_are_refused(tmp_path):
    model = linear_gan(cls=GAN, compile=False, name="tiny")
    path = str(tmp_path / "tiny.weights.h5")
    model.save_weights(path)
    other = linear_gan(cls=GAN, compile=False)
    other.generator.set_weights([np.array([[0.0]], "float32"), np.array([0.0], "float32")])
    other.load_weights(path)
    assert scalars(other.generator) == pytest.approx([A, B])
    # The GAN's own values (the noise state) are counted before anything is assigned.
    store = {}
    model.save_own_variables(store)
    assert len(store) == 1 and np.array_equal(store["0"], model.seed_generator.state.numpy())
    with pytest.raises(GanZooError, match="^the weights file holds 3 values for tiny, which has 1: "
                                          "it was saved by another model$"):
        model.load_own_variables({"0": store["0"], "1": 0, "2": 0})


def test_dropout_seed_states_are_saved_and_older_files_without_them_load():
    def build(seed):
        generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        discriminator = keras.Sequential([keras.Input((1,)), keras.layers.Dropout(0.5, seed=seed),
                                          keras.layers.Dense(1)])
        return GAN(generator, discriminator, output_range=None, seed=seed, name="tiny")

    model, other = build(1), build(2)
    store = {}
    model.save_own_variables(store)
    assert len(store) == 2  # the noise state, then Dropout's
    other.load_own_variables(store)
    np.testing.assert_array_equal(other.seed_generator.state, model.seed_generator.state)
    np.testing.assert_array_equal(other._layer_seed_states()[0], model._layer_seed_states()[0])
    older = build(3)
    dropout_state = older._layer_seed_states()[0].numpy()
    older.load_own_variables({"0": store["0"]})  # a file from before the layers' states were saved
    np.testing.assert_array_equal(older.seed_generator.state, model.seed_generator.state)
    np.testing.assert_array_equal(older._layer_seed_states()[0], dropout_state)
    with pytest.raises(GanZooError, match="^the weights file holds 3 values for tiny, which has 2: "):
        older.load_own_variables({**store, "2": 0})


def test_noise_state_is_saved_with_the_weights(tmp_path):
    model = linear_gan(cls=GAN, compile=False, seed=3)
    model.sample_latent(5)
    path = str(tmp_path / "tiny.weights.h5")
    model.save_weights(path)
    other = linear_gan(cls=GAN, compile=False, seed=3)
    other.load_weights(path)
    np.testing.assert_array_equal(model.sample_latent(3), other.sample_latent(3))
    assert math.isfinite(float(model.sample_latent(1)[0, 0]))
