"""f-GAN: the divergences' functions against the paper's tables and values computed by hand,
the critic's estimate against divergences integrated numerically, and the two update schemes."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, optimize, stats

import models
from losses import fgan as L
from models.errors import GanZooError
from models.fgan import FGAN
from models.gan import GAN
from train.trainer import TrainConfig, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIVERGENCES = L.DIVERGENCES


def _log1pexp(x):
    return math.log1p(math.exp(x))


# The paper's Table 2 written literally: (g_f(v), f*(t)).
TABLE = {
    "kl": (lambda v: v, lambda t: math.exp(t - 1)),
    "reverse_kl": (lambda v: -math.exp(-v), lambda t: -1 - math.log(-t)),
    "pearson": (lambda v: v, lambda t: t * t / 4 + t),
    "squared_hellinger": (lambda v: 1 - math.exp(-v), lambda t: t / (1 - t)),
    "jensen_shannon": (lambda v: math.log(2) - _log1pexp(-v), lambda t: -math.log(2 - math.exp(t))),
    "gan": (lambda v: -_log1pexp(-v), lambda t: -math.log(1 - math.exp(t))),
    "total_variation": (lambda v: math.tanh(v) / 2, lambda t: t),
}
REAL, FAKE = [1.0, -0.5], [0.3, 2.0]


def literal_estimate(name, real, fake):
    g, conjugate = TABLE[name]
    return np.mean([g(v) for v in real]) - np.mean([conjugate(g(v)) for v in fake])


# ------------------------------------------------------------------------------ losses
def test_estimate_by_hand():
    # KL: mean(v_real) - mean(exp(v_fake - 1)) = 0.25 - (e^-0.7 + e^1) / 2
    assert float(L.variational_divergence_estimate(REAL, FAKE, "kl")) == pytest.approx(-1.3574336, abs=1e-6)
    # Pearson: 0.25 - ((0.09/4 + 0.3) + (4/4 + 2)) / 2
    assert float(L.variational_divergence_estimate(REAL, FAKE, "pearson")) == pytest.approx(-1.41125, abs=1e-6)
    # total variation: (tanh(1) + tanh(-0.5)) / 4 - (tanh(0.3) + tanh(2)) / 4
    assert float(L.variational_divergence_estimate(REAL, FAKE, "total_variation")) == pytest.approx(-0.2389658, abs=1e-6)
    # GAN: mean(-log(1 + e^-v_real)) - mean(log(1 + e^v_fake))
    assert float(L.variational_divergence_estimate(REAL, FAKE, "gan")) == pytest.approx(-2.1343110, abs=1e-6)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_losses_match_the_papers_table(name):
    g, conjugate = TABLE[name]
    estimate = literal_estimate(name, REAL, FAKE)
    assert float(L.variational_divergence_estimate(REAL, FAKE, name)) == pytest.approx(estimate, rel=1e-5)
    assert float(L.fgan_discriminator_loss(REAL, FAKE, name)) == pytest.approx(-estimate, rel=1e-5)
    assert float(L.saddle_generator_loss(FAKE, name)) == pytest.approx(
        -np.mean([conjugate(g(v)) for v in FAKE]), rel=1e-5)
    assert float(L.alternative_generator_loss(FAKE, name)) == pytest.approx(
        -np.mean([g(v) for v in FAKE]), rel=1e-5)
    for v in (-3.0, -0.2, 0.0, 0.7, 4.0):
        assert float(L.output_activation(v, name)) == pytest.approx(g(v), rel=1e-5, abs=1e-6)
        assert float(L.conjugate(g(v), name)) == pytest.approx(conjugate(g(v)), rel=1e-5, abs=1e-6)
        assert float(L.conjugate_of_activation(v, name)) == pytest.approx(conjugate(g(v)), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_identical_outputs_at_the_optimum_give_f_of_one(name):
    # P = Q: the best critic is the constant T = f'(1), i.e. v = 1 for KL and v = 0 otherwise,
    # and F = f'(1) - f*(f'(1)) = f(1): 0, or -log 4 for the GAN's f.
    v = [1.0, 1.0] if name == "kl" else [0.0, 0.0]
    assert float(L.variational_divergence_estimate(v, v, name)) == pytest.approx(L.F_AT_ONE[name], abs=1e-6)
    assert float(L.generator_function(1.0, name)) == pytest.approx(L.F_AT_ONE[name], abs=1e-6)
    assert L.F_AT_ONE["gan"] == pytest.approx(-math.log(4))


# t inside each conjugate's domain
CONJUGATE_POINTS = {
    "kl": (-1.0, 0.5, 2.0), "reverse_kl": (-3.0, -1.0, -0.2), "pearson": (-1.5, 0.0, 3.0),
    "squared_hellinger": (-2.0, 0.0, 0.8), "jensen_shannon": (-2.0, 0.0, 0.6),
    "gan": (-3.0, -math.log(2), -0.1), "total_variation": (-0.4, 0.0, 0.45),
}


@pytest.mark.parametrize("name", DIVERGENCES)
def test_conjugate_is_the_supremum_over_u(name):
    """f*(t) = sup_u {u t - f(u)}, found numerically over u = exp(s)."""
    for t in CONJUGATE_POINTS[name]:
        def negative(s):
            u = math.exp(s)
            return -(u * t - float(L.generator_function(np.float64(u), name)))

        best = optimize.minimize_scalar(negative, bounds=(-20, 8), method="bounded",
                                        options={"xatol": 1e-10})
        assert -best.fun == pytest.approx(float(L.conjugate(np.float64(t), name)), abs=2e-5), t


@pytest.mark.parametrize("name", DIVERGENCES)
def test_activation_stays_in_the_conjugates_domain_and_is_stable(name):
    v = tf.constant([-1e4, -80.0, -30.0, -5.0, 0.0, 5.0, 30.0, 80.0, 1e4])
    t = L.output_activation(v, name).numpy()
    upper = {"reverse_kl": 0.0, "squared_hellinger": 1.0, "jensen_shannon": math.log(2), "gan": 0.0,
             "total_variation": 0.5}.get(name, math.inf)
    assert np.all(t[np.isfinite(t)] <= upper)
    composed = L.conjugate_of_activation(v, name).numpy()
    # Finite wherever the exact value fits float32 (exp(v - 1), expm1(v) and v^2 do not at 1e4).
    growing = {"kl": v > 80, "squared_hellinger": v > 80, "pearson": abs(v) > 1e3}.get(name, v < -1e9)
    assert np.all(np.isfinite(composed[~growing.numpy()]))
    # as exact as the literal composition in float64 at |v| = 15, where float32 already rounds
    # 1 - exp(-15) by a few percent
    g, conjugate = TABLE[name]
    for value in (-15.0, 15.0):
        expected = conjugate(g(value))
        assert float(L.conjugate_of_activation(value, name)) == pytest.approx(expected, rel=1e-5, abs=1e-6)


# Table 2's f*(g_f(v)) composed literally in float32
LITERAL_FLOAT32 = {
    "gan": lambda v: -np.log(1 - np.exp(-np.log1p(np.exp(-v)))),
    "jensen_shannon": lambda v: -np.log(2 - np.exp(np.log(np.float32(2)) - np.log1p(np.exp(-v)))),
    "squared_hellinger": lambda v: (1 - np.exp(-v)) / (1 - (1 - np.exp(-v))),
}


@pytest.mark.parametrize("name, exact", [
    ("gan", 30 + math.log1p(math.exp(-30))),  # softplus(30)
    ("jensen_shannon", 30 + math.log1p(math.exp(-30)) - math.log(2)),
    ("squared_hellinger", math.expm1(30)),
])
def test_composition_in_closed_form_where_the_literal_one_fails(name, exact):
    # v = 30: g_f(v) rounds onto the edge of f*'s domain in float32 (exp(t) = 1 for the GAN,
    # 1 - t = 0 for the squared Hellinger), so f*(g_f(v)) computed literally is inf or far off.
    with np.errstate(divide="ignore"):
        literal = float(LITERAL_FLOAT32[name](np.float32(30.0)))
    assert not math.isfinite(literal) or abs(literal - exact) > 0.01 * abs(exact)
    assert float(L.conjugate_of_activation(30.0, name)) == pytest.approx(exact, rel=1e-6)


def test_unknown_divergence_in_the_losses():
    with pytest.raises(ValueError, match="unknown divergence 'hellinger'"):
        L.variational_divergence_estimate([0.0], [0.0], "hellinger")


# --------------------------------------------------------- the estimate and the truth
# P (the data) = N(0, 1), Q (the generator, held fixed) = N(1, 1): every divergence is finite.
SHIFT = 1.0
CLOSED_FORMS = {  # for unit-variance Gaussians whose means differ by SHIFT
    "kl": SHIFT**2 / 2,
    "reverse_kl": SHIFT**2 / 2,
    "pearson": math.exp(SHIFT**2) - 1,
    "squared_hellinger": 2 * (1 - math.exp(-SHIFT**2 / 8)),
    "total_variation": 2 * stats.norm.cdf(SHIFT / 2) - 1,
}


def true_divergence(name):
    """integral q(x) f(p(x) / q(x)) dx by quadrature, with the paper's f."""
    p, q = stats.norm(0.0, 1.0), stats.norm(SHIFT, 1.0)

    def integrand(x):
        u = np.exp(p.logpdf(x) - q.logpdf(x))
        return q.pdf(x) * float(L.generator_function(np.float64(u), name))

    value, error = integrate.quad(integrand, -30, 30, points=[SHIFT / 2], limit=200)
    assert error < 1e-7
    return value


CRITIC_STEPS, CRITIC_BATCH, CRITIC_RATE = 600, 256, 1e-2


@pytest.mark.parametrize("name", DIVERGENCES)
def test_trained_critic_approaches_the_divergence_from_below(name):
    truth = true_divergence(name)
    if name in CLOSED_FORMS:
        assert truth == pytest.approx(CLOSED_FORMS[name], rel=1e-6)
    keras.utils.set_random_seed(0)
    model = models.get("fgan", image_shape=(1,), divergence=name, seed=0)
    critic = model.critic
    optimizer = keras.optimizers.Adam(CRITIC_RATE)
    optimizer.build(critic.trainable_variables)

    @tf.function(jit_compile=True)
    def fit_critic():
        for step in tf.range(CRITIC_STEPS):
            real = tf.random.stateless_normal((CRITIC_BATCH, 1), seed=tf.stack([0, step]))
            fake = SHIFT + tf.random.stateless_normal((CRITIC_BATCH, 1), seed=tf.stack([1, step]))
            with tf.GradientTape() as tape:
                d_loss, _ = model.discriminator_objective(real, fake, None)
            gradients = tape.gradient(d_loss, critic.trainable_variables)
            optimizer.apply_gradients(zip(gradients, critic.trainable_variables))

    fit_critic()
    # F of the trained critic on fresh samples, with its Monte-Carlo standard error
    n = 200_000
    rng = np.random.default_rng(1)
    real = rng.normal(0.0, 1.0, (n, 1)).astype("float32")
    fake = rng.normal(SHIFT, 1.0, (n, 1)).astype("float32")
    real_terms = L.output_activation(critic(real), name).numpy().ravel().astype("float64")
    fake_terms = L.conjugate_of_activation(critic(fake), name).numpy().ravel().astype("float64")
    estimate = real_terms.mean() - fake_terms.mean()
    error = math.sqrt(real_terms.var() / n + fake_terms.var() / n)
    offset = L.F_AT_ONE[name]  # the GAN's f reads -log 4 at P = Q: compare what lies above it
    print(f"{name}: estimate {estimate:.4f}, truth {truth:.4f}, standard error {error:.4f}")
    assert estimate <= truth + 4 * error
    assert estimate - offset >= 0.9 * (truth - offset)


# ----------------------------------------------------------------- the update schemes
class FixedNoise:
    """The latent as a fixed function of the batch, so a step can be recomputed by hand."""

    def sample_latent(self, batch_size, seed=None):
        grid = tf.reshape(tf.range(batch_size * self.latent_dim, dtype=tf.float32), (batch_size, self.latent_dim))
        return tf.sin(grid)


class FixedNoiseGAN(FixedNoise, GAN):
    pass


class FixedNoiseFGAN(FixedNoise, FGAN):
    pass


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_simultaneous_step_of_a_linear_gan_by_hand():
    """Both gradients at the same (pre-step) parameters and on the same batch: G's step uses
    the critic before its update, which an alternating step would not."""
    generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    discriminator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model = FixedNoiseGAN(generator, discriminator, output_range=None, update="simultaneous")
    a, b, w, c = 0.8, 0.3, 1.5, -0.2
    generator.set_weights([np.array([[a]], "float32"), np.array([b], "float32")])
    discriminator.set_weights([np.array([[w]], "float32"), np.array([c], "float32")])
    rate = 0.1
    model.compile(keras.optimizers.SGD(rate), keras.optimizers.SGD(rate), jit_compile=False)
    x = np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    z = model.sample_latent(4).numpy()
    history = model.fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0).history

    x, z = x.ravel().astype("float64"), z.ravel().astype("float64")
    y = a * z + b
    real_logits, fake_logits = w * x + c, w * y + c
    # d_loss = mean softplus(-real_logits) + mean softplus(fake_logits)
    d_w = np.mean(-sigmoid(-real_logits) * x) + np.mean(sigmoid(fake_logits) * y)
    d_c = np.mean(-sigmoid(-real_logits)) + np.mean(sigmoid(fake_logits))
    # g_loss = mean softplus(-fake_logits), with the critic's pre-step w
    g_a = np.mean(-sigmoid(-fake_logits) * w * z)
    g_b = np.mean(-sigmoid(-fake_logits) * w)
    new_w, new_c = (float(t.ravel()[0]) for t in discriminator.get_weights())
    new_a, new_b = (float(t.ravel()[0]) for t in generator.get_weights())
    np.testing.assert_allclose([new_w, new_c], [w - rate * d_w, c - rate * d_c], rtol=1e-5)
    np.testing.assert_allclose([new_a, new_b], [a - rate * g_a, b - rate * g_b], rtol=1e-5)
    d_loss = np.mean(np.log1p(np.exp(-real_logits))) + np.mean(np.log1p(np.exp(fake_logits)))
    assert history["d_loss"][0] == pytest.approx(d_loss, rel=1e-5)
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 1


def test_simultaneous_step_ascends_and_descends_one_f():
    """Algorithm 1 with the saddle objective: the critic moves by +rate * dF/domega and the
    generator by -rate * dF/dtheta, both taken from one F on one batch."""
    keras.utils.set_random_seed(0)
    model = FixedNoiseFGAN(image_shape=(1,), divergence="pearson", generator_loss="saddle",
                           update="simultaneous", seed=0)
    rate = 0.05
    model.compile(keras.optimizers.SGD(rate), keras.optimizers.SGD(rate), jit_compile=False)
    real = np.random.default_rng(0).normal(size=(8, 1)).astype("float32")
    critic, generator = model.critic, model.generator
    critic_before, generator_before = critic.get_weights(), generator.get_weights()
    with tf.GradientTape() as tape:
        estimate = L.variational_divergence_estimate(critic(real), critic(generator(model.sample_latent(8))),
                                                     "pearson")
    d_gradients, g_gradients = tape.gradient(estimate, [critic.trainable_variables,
                                                        generator.trainable_variables])
    history = model.fit(tf.data.Dataset.from_tensors(real), epochs=1, verbose=0).history
    assert history["divergence_estimate"][0] == pytest.approx(float(estimate), rel=1e-5)
    assert history["d_loss"][0] == pytest.approx(-float(estimate), rel=1e-5)
    for before, gradient, after in zip(critic_before, d_gradients, critic.get_weights()):
        np.testing.assert_allclose(after, before + rate * gradient.numpy(), rtol=1e-5, atol=1e-7)
    for before, gradient, after in zip(generator_before, g_gradients, generator.get_weights()):
        np.testing.assert_allclose(after, before - rate * gradient.numpy(), rtol=1e-5, atol=1e-7)
    assert any(np.abs(g.numpy()).max() > 1e-3 for g in d_gradients)  # both players moved
    assert any(np.abs(g.numpy()).max() > 1e-3 for g in g_gradients)


def test_alternating_update_through_fit():
    keras.utils.set_random_seed(0)
    model = models.get("fgan", image_shape=(2,), divergence="reverse_kl", seed=0)
    model.compile(jit_compile=False)
    assert model.update == "alternating" and model.generator_loss == "alternative"
    g_before, d_before = model.generator.get_weights(), model.critic.get_weights()
    points = np.random.default_rng(0).normal(3.0, 0.5, (5 * 32, 2)).astype("float32")

    # One step by hand first: the noise the step will draw (the seed state is put back), the
    # critic's outputs before its update, and reverse KL's g_f(v) = -exp(-v), f*(g_f(v)) = v - 1.
    state = model.seed_generator.state.numpy()
    z_critic, z_generator = model.sample_latent(32), model.sample_latent(32)
    model.seed_generator.state.assign(state)
    v_real = model.critic(points[:32]).numpy().astype("float64")
    v_fake = model.critic(model.generator(z_critic)).numpy().astype("float64")
    estimate = np.mean(-np.exp(-v_real)) - np.mean(v_fake - 1.0)
    first = model.fit(tf.data.Dataset.from_tensors(points[:32]), epochs=1, verbose=0).history
    assert first["divergence_estimate"][0] == pytest.approx(estimate, rel=1e-5)
    assert first["d_loss"][0] == pytest.approx(-estimate, rel=1e-5)
    # G's step: the updated critic on G's (not yet updated) samples of fresh noise;
    # the alternative objective -mean(g_f(v)) = mean(exp(-v)).
    generator_now = model.generator.get_weights()
    model.generator.set_weights(g_before)
    v_generated = model.critic(model.generator(z_generator)).numpy().astype("float64")
    model.generator.set_weights(generator_now)
    assert first["g_loss"][0] == pytest.approx(np.mean(np.exp(-v_generated)), rel=1e-5)

    history = model.fit(tf.data.Dataset.from_tensor_slices(points).batch(32), epochs=2, verbose=0).history
    assert set(history) == {"d_loss", "g_loss", "divergence_estimate"}
    assert all(np.all(np.isfinite(v)) for v in history.values())
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 11
    assert any(not np.array_equal(p, q) for p, q in zip(g_before, model.generator.get_weights()))
    assert any(not np.array_equal(p, q) for p, q in zip(d_before, model.critic.get_weights()))


def test_single_step_method_fits_a_gaussian():
    """The paper's section 4.1 in miniature: Algorithm 1 on KL moves the generator onto N(2, 0.5^2)."""
    keras.utils.set_random_seed(0)
    model = models.get("fgan", image_shape=(1,), divergence="kl", generator_loss="saddle",
                       update="simultaneous", seed=0)
    model.compile()
    start = model.generate(5000, seed=1)
    assert abs(start.mean() - 2.0) > 1.5
    data = np.random.default_rng(0).normal(2.0, 0.5, (400 * 128, 1)).astype("float32")
    model.fit(tf.data.Dataset.from_tensor_slices(data).batch(128), epochs=1, verbose=0)
    samples = model.generate(20000, seed=1)
    assert abs(samples.mean() - 2.0) < 0.25
    assert 0.2 < samples.std() < 0.8


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("overrides, message", [
    ({"divergence": "hellinger"}, "unknown divergence 'hellinger' for fgan: use one of kl, reverse_kl, pearson"),
    ({"update": "parallel"}, "unknown update 'parallel' for fgan: use one of alternating, simultaneous"),
    ({"update": "simultaneous", "d_steps": 3}, "update=simultaneous takes one step for both players, "
                                               "not d_steps=3: pass --d_steps 1 or use update=alternating"),
    ({"architecture": "resnet"}, "unknown architecture 'resnet' for fgan: use one of mlp, dcgan"),
    ({"generator_loss": "minimax"}, "unknown generator loss 'minimax' for fgan: use one of alternative, saddle"),
])
def test_mistakes_are_one_line_errors(overrides, message):
    with pytest.raises(GanZooError) as raised:
        models.get("fgan", **overrides)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_image_shapes_dcgan_cannot_take_point_to_the_mlp():
    with pytest.raises(GanZooError, match="or pass --model_option architecture=mlp"):
        models.get("fgan", image_shape=(30, 30, 1))
    assert models.get("fgan", image_shape=(30, 30, 1), architecture="mlp").generator.output_shape == (None, 30, 30, 1)
    with pytest.raises(GanZooError, match="fgan on points takes architecture=mlp"):
        models.get("fgan", image_shape=(2,), architecture="dcgan")


def test_config_round_trip():
    model = models.get("fgan", image_shape=(2,), divergence="squared_hellinger", update="simultaneous",
                       generator_loss="saddle", seed=3)
    config = model.get_config()
    assert config["divergence"] == "squared_hellinger" and config["update"] == "simultaneous"
    assert config["architecture"] == "mlp" and config["output_range"] is None
    assert FGAN.from_config(config).get_config() == config


# ----------------------------------------------------------- through the trainer, distributed
def test_trains_through_the_trainer(fashion_dir, tmp_path):
    result = train(TrainConfig(model="fgan", epochs=1, batch_size=16, steps_per_epoch=2, jit_compile=False,
                               logdir=str(tmp_path / "fgan"), samples=4, verbose=0,
                               model_options={"divergence": "pearson", "update": "simultaneous"}))
    assert set(result.history) == {"d_loss", "g_loss", "divergence_estimate"}
    assert all(np.isfinite(v[0]) for v in result.history.values())
    assert int(result.model.d_optimizer.iterations) == int(result.model.g_optimizer.iterations) == 2
    config = json.loads((tmp_path / "fgan" / "run.json").read_text())["model_config"]
    assert config["divergence"] == "pearson" and config["update"] == "simultaneous"


TWO_REPLICAS = """
import json, os, sys
sys.path.insert(0, {root!r})
import numpy as np
import tensorflow as tf
from train import distribute
mirrored = distribute.make_strategy("mirrored", virtual_devices=2)
import keras
import models
real = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
out = {{}}
for strategy in (tf.distribute.get_strategy(), mirrored):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = models.get("fgan", image_shape=(2,), divergence="kl", generator_loss="saddle",
                           update="simultaneous", seed=0)
        # SGD: a step proportional to the gradient shows any error in the per-replica scaling
        model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), jit_compile=False)
    history = model.fit(tf.data.Dataset.from_tensor_slices(real).batch(32), epochs=1, verbose=0).history
    weights = np.concatenate([w.numpy().ravel() for w in model.generator.weights + model.critic.weights])
    out[strategy.num_replicas_in_sync] = {{"history": {{k: v[0] for k, v in history.items()}},
                                          "weights": weights.tolist()}}
print(json.dumps(out))
"""


def test_simultaneous_step_on_two_replicas_equals_one_device():
    done = subprocess.run([sys.executable, "-c", TWO_REPLICAS.format(root=ROOT)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    one, two = report["1"], report["2"]
    for key, value in one["history"].items():
        assert two["history"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    np.testing.assert_allclose(two["weights"], one["weights"], rtol=0, atol=1e-5)
