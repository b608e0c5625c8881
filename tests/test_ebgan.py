"""EBGAN: the hinge loss, the pulling-away term and the energies, against values by hand.

The registry suite (tests/test_models.py) covers shapes, training, saving and seeding.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from losses import ebgan as L
from models.ebgan import EBGAN
from models.errors import GanZooError


# ------------------------------------------------------------------------ the hinge
def test_discriminator_hinge_by_hand():
    real, fake = [0.1, 0.3], [0.2, 1.5]
    # mean real energy 0.2; the hinge max(0, 1 - e) is 0.8 for 0.2 and 0 for 1.5 (above m).
    assert float(L.ebgan_discriminator_loss(real, fake, margin=1.0)) == pytest.approx(0.2 + (0.8 + 0.0) / 2)
    # With a larger margin both fakes are below it.
    assert float(L.ebgan_discriminator_loss(real, fake, margin=2.0)) == pytest.approx(0.2 + (1.8 + 0.5) / 2)


def test_hinge_stops_pushing_fakes_above_the_margin():
    fake = tf.Variable([0.4, 0.6])
    with tf.GradientTape() as tape:
        loss = L.ebgan_discriminator_loss([0.0], fake, margin=0.5)
    # d/de max(0, m - e) / N: -1/2 below the margin, 0 above it.
    np.testing.assert_allclose(tape.gradient(loss, fake), [-0.5, 0.0])


def test_generator_loss_is_the_mean_fake_energy():
    assert float(L.ebgan_generator_loss([0.2, 0.4, 0.9])) == pytest.approx(0.5)


# ---------------------------------------------------------------- the pulling-away term
def test_pulling_away_term_is_zero_for_orthogonal_embeddings():
    assert float(L.pulling_away_term(np.eye(3, 5))) == pytest.approx(0.0, abs=1e-7)


def test_pulling_away_term_is_one_for_identical_or_parallel_embeddings():
    assert float(L.pulling_away_term([[1.0, 2.0, 3.0]] * 4)) == pytest.approx(1.0, rel=1e-6)
    # Parallel with other lengths or the opposite direction: cosine +-1, squared 1.
    parallel = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [-0.5, -1.0, -1.5]]
    assert float(L.pulling_away_term(parallel)) == pytest.approx(1.0, rel=1e-6)


def test_pulling_away_term_three_vectors_by_hand():
    # cos(s1, s2) = 1/sqrt(2), cos(s1, s3) = 0, cos(s2, s3) = 1/sqrt(2): squared 1/2, 0, 1/2.
    # Each unordered pair appears twice among the N(N-1) = 6 ordered pairs: (2 * 1) / 6 = 1/3.
    s = [[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]]
    assert float(L.pulling_away_term(s)) == pytest.approx(1.0 / 3.0, rel=1e-6)
    # Another: s1 = (1, 0, 0), s2 = (1, 1, 0), s3 = (1, 1, 1).
    # cos^2: (1,2) = 1/2, (1,3) = 1/3, (2,3) = (2 / (sqrt(2) sqrt(3)))^2 = 2/3; sum 3/2, x2 / 6.
    s = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    assert float(L.pulling_away_term(s)) == pytest.approx(0.5, rel=1e-6)


def test_pulling_away_term_edge_cases():
    assert float(L.pulling_away_term([[1.0, 2.0]])) == 0.0  # a single sample has no pairs
    # Feature maps are flattened: (N, 2, 2) behaves like (N, 4).
    maps = np.arange(24, dtype=np.float32).reshape(6, 2, 2) - 11.0
    assert float(L.pulling_away_term(maps)) == pytest.approx(float(L.pulling_away_term(maps.reshape(6, 4))))
    assert np.isfinite(float(L.pulling_away_term(np.zeros((3, 4)))))


# ------------------------------------------------------------------------ the energies
def test_reconstruction_energy_is_the_per_sample_mean_squared_error():
    images = np.zeros((2, 2, 2, 1), np.float32)
    reconstructions = np.zeros((2, 2, 2, 1), np.float32)
    reconstructions[0, 0, 0, 0] = 2.0  # one pixel off by 2 out of 4: 4 / 4 = 1
    reconstructions[1] = 0.5  # every pixel off by 0.5: 0.25
    energy = L.reconstruction_energy(images, reconstructions)
    assert energy.shape == (2,)
    np.testing.assert_allclose(energy, [1.0, 0.25])


def test_model_energies_are_per_sample():
    model = models.get("ebgan", seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 28, 28, 1)).astype("float32")
    energy, embedding = model.energy(x)
    assert energy.shape == (5,) and embedding.shape == (5, 64)
    assert np.all(np.asarray(energy) >= 0)
    outputs = model.discriminator(x)
    np.testing.assert_allclose(energy, np.mean((np.asarray(outputs["reconstruction"]) - x) ** 2, axis=(1, 2, 3)), rtol=1e-5)
    d_loss, logs = model.discriminator_objective(x, x, model.sample_latent(5))
    assert set(logs) == {"d_loss", "real_energy", "fake_energy"}
    g_loss, logs = model.generator_objective(x, model.sample_latent(5))
    assert set(logs) == {"g_loss", "pt"} and 0.0 <= float(logs["pt"]) <= 1.0


def test_default_model_settings():
    model = models.get("ebgan")
    assert (model.margin, model.pt_weight, model.latent_dim) == (0.5, 0.1, 100)
    assert model.discriminator.get_layer("embedding").units == 64
    assert model.discriminator.get_layer("reconstruction").activation is keras.activations.linear
    d_opt, g_opt = model.default_optimizers()
    assert isinstance(d_opt, keras.optimizers.Adam) and float(d_opt.learning_rate) == pytest.approx(1e-3)
    assert float(g_opt.beta_1) == 0.5 and d_opt is not g_opt


def test_margin_and_pt_weight_round_trip(tmp_path):
    model = models.get("ebgan", margin=2.0, pt_weight=0.3, embedding_dim=16, seed=0)
    config = model.get_config()
    assert (config["margin"], config["pt_weight"], config["embedding_dim"]) == (2.0, 0.3, 16)
    other = EBGAN.from_config(config)
    assert (other.margin, other.pt_weight) == (2.0, 0.3)
    assert other.get_config() == config
    model.compile(jit_compile=False)
    path = str(tmp_path / "ebgan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert (loaded.margin, loaded.pt_weight) == (2.0, 0.3)
    # The margin is used: a fake energy of 1 is below m = 2 and counts in D's loss.
    assert float(L.ebgan_discriminator_loss([0.0], [1.0], loaded.margin)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(margin=0.0), "margin=0.0: margin takes a positive number"),
        (dict(pt_weight=-0.1), "pt_weight"),
        (dict(generator_loss="minimax"), "unknown generator loss .minimax. for ebgan: use one of energy"),
        (dict(image_shape=(30, 30, 1)), "ebgan takes"),
    ],
)
def test_bad_configurations_are_refused(overrides, message):
    with pytest.raises(GanZooError, match=message):
        models.get("ebgan", **overrides)


def test_pulling_away_term_reaches_the_generator():
    model = models.get("ebgan", seed=0)
    latent = model.sample_latent(8, seed=0)
    with tf.GradientTape() as tape:
        _, embedding = model.energy(model.generator(latent, training=True), training=True)
        pt = L.pulling_away_term(embedding)
    gradient = tape.gradient(pt, model.generator.trainable_variables[0])
    assert float(tf.reduce_max(tf.abs(gradient))) > 0


# ------------------------------------------------------------------ the generator's objective
def embedding_of_two_pixels(image_shape):
    """A stand-in auto-encoder: the embedding is a sample's first two pixels, the
    reconstruction all zeros (so a sample's energy is its mean squared pixel)."""
    image = keras.Input(image_shape)
    flat = keras.layers.Flatten()(image)
    return keras.Model(image, {"reconstruction": image * 0.0, "embedding": flat[:, :2]})


@pytest.mark.parametrize("pt_weight", [0.0, 0.3])
def test_generator_objective_adds_the_weighted_pulling_away_term(pt_weight):
    model = models.get("ebgan", pt_weight=pt_weight, seed=0)
    model.discriminator = embedding_of_two_pixels((28, 28, 1))
    fake = np.zeros((3, 28, 28, 1), np.float32)
    fake[:, 0, :2, 0] = [[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]]  # the embeddings s1, s2, s3
    g_loss, logs = model.generator_objective(tf.constant(fake), model.sample_latent(3))
    # energies: (1 + 0) / 784, (1 + 1) / 784, (0 + 9) / 784; their mean is 4 / 784.
    energy = (1.0 + 2.0 + 9.0) / 3 / 784
    # squared cosines: (s1, s2) 1/2, (s1, s3) 0, (s2, s3) 1/2; each pair twice over 3 * 2.
    pt = 2 * (0.5 + 0.0 + 0.5) / 6
    assert float(logs["pt"]) == pytest.approx(pt, rel=1e-6)
    assert float(g_loss) == pytest.approx(energy + pt_weight * pt, rel=1e-6)
    assert float(logs["g_loss"]) == float(g_loss)


def test_generator_objective_of_the_real_networks_uses_the_fakes_embeddings():
    model = models.get("ebgan", pt_weight=0.25, seed=0)
    fake = model.generator(model.sample_latent(4, seed=1), training=True)
    g_loss, logs = model.generator_objective(fake, None)
    outputs = model.discriminator(fake, training=True)
    s = np.asarray(outputs["embedding"], np.float64)
    unit = s / np.linalg.norm(s, axis=1, keepdims=True)
    cosine2 = (unit @ unit.T) ** 2
    pt = (cosine2.sum() - np.trace(cosine2)) / (4 * 3)
    energy = np.mean((np.asarray(outputs["reconstruction"], np.float64) - np.asarray(fake)) ** 2)
    assert 0 < pt < 1
    assert float(logs["pt"]) == pytest.approx(pt, rel=1e-4)
    assert float(g_loss) == pytest.approx(energy + 0.25 * pt, rel=1e-4)
