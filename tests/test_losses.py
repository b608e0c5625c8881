"""The original GAN's objectives against values computed by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from losses import gan as L
from models.errors import GanZooError


def softplus(x):
    return math.log1p(math.exp(x))


def test_discriminator_loss_at_chance_is_two_log_two():
    # D(x) = D(G(z)) = 1/2: -log(1/2) - log(1 - 1/2) = 2 log 2.
    assert float(L.gan_discriminator_loss([0.0, 0.0], [0.0])) == pytest.approx(2 * math.log(2))


def test_discriminator_loss_by_hand():
    real, fake = [2.0, -1.0], [0.5, 3.0, -2.0]
    expected = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(3.0) + softplus(-2.0)) / 3
    assert float(L.gan_discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-6)


def test_discriminator_loss_equals_negative_value_function():
    real, fake = np.array([1.3, -0.2]), np.array([0.7])

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    value = np.mean(np.log(sigmoid(real))) + np.mean(np.log(1 - sigmoid(fake)))
    assert float(L.gan_discriminator_loss(real, fake)) == pytest.approx(-value, rel=1e-6)


def test_generator_objectives_by_hand():
    fake = [0.5, -1.5]
    # minimax: mean log(1 - D(G(z))) = -mean softplus(logit)
    assert float(L.minimax_generator_loss(fake)) == pytest.approx(-(softplus(0.5) + softplus(-1.5)) / 2)
    # non-saturating: -mean log D(G(z)) = mean softplus(-logit)
    assert float(L.non_saturating_generator_loss(fake)) == pytest.approx((softplus(-0.5) + softplus(1.5)) / 2)


def test_minimax_saturates_where_non_saturating_does_not():
    # Early in training D rejects samples confidently (logit -10): the paper's reason for the
    # non-saturating objective is that log(1 - D(G(z))) then has almost no gradient.
    logit = tf.Variable([-10.0])
    grads = {}
    for name, fn in L.GENERATOR_LOSSES.items():
        with tf.GradientTape() as tape:
            loss = fn(logit)
        grads[name] = abs(float(tape.gradient(loss, logit)[0]))
    assert grads["minimax"] == pytest.approx(1 / (1 + math.exp(10)), rel=1e-4)  # sigmoid(-10)
    assert grads["non_saturating"] == pytest.approx(1 / (1 + math.exp(-10)), rel=1e-4)  # ~1


def test_losses_are_finite_for_extreme_logits():
    big = tf.constant([1e4, -1e4])
    assert np.isfinite(float(L.gan_discriminator_loss(big, big)))
    assert np.isfinite(float(L.minimax_generator_loss(big)))
    assert np.isfinite(float(L.non_saturating_generator_loss(big)))
    assert float(L.non_saturating_generator_loss([-1e4])) == pytest.approx(1e4)


def test_mean_probabilities():
    d_real, d_fake = L.discriminator_accuracy_terms([0.0, math.log(3)], [-math.log(3)])
    assert float(d_real) == pytest.approx((0.5 + 0.75) / 2)
    assert float(d_fake) == pytest.approx(0.25)


def test_unknown_generator_loss_lists_choices():
    import models

    with pytest.raises(GanZooError, match="unknown generator loss 'hinge' for dcgan: use one of non_saturating, minimax"):
        models.get("dcgan", generator_loss="hinge")


# ------------------------------------------------------------------ golden values, every loss
# One row per call: a public function of losses/, small literal inputs, and the expected output
# written out by hand with math on those inputs (never by calling losses/). Rows at +-50 check
# the numerically stable forms: a log of a rounded sigmoid would give 0 or inf there.
from losses import ebgan as EB  # noqa: E402
from losses import fgan as FG  # noqa: E402
from losses import infogan as IG  # noqa: E402
from losses import lsgan as LS  # noqa: E402
from losses import wgan as WG  # noqa: E402

LOSS_MODULES = (L, LS, WG, EB, IG, FG)


def row(fn, *args, expected, rtol=1e-5, atol=0.0, **kwargs):
    return pytest.param(fn, args, kwargs, expected, rtol, atol, id=fn.__name__)


def mean(values):
    return sum(values) / len(values)


def cos2(a, b):
    """Squared cosine similarity of two short vectors, zero for a zero vector."""
    dot = sum(x * y for x, y in zip(a, b))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 0.0 if norms == 0 else (dot / norms) ** 2


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


LOG2 = math.log(2.0)

# The f-GAN divergences as the paper's Tables 1 and 2 write them: g_f(v), f*(t), f(u).
F_DIVERGENCES = {
    "kl": (lambda v: v, lambda t: math.exp(t - 1.0), lambda u: u * math.log(u) if u else 0.0),
    "reverse_kl": (lambda v: -math.exp(-v), lambda t: -1.0 - math.log(-t), lambda u: -math.log(u)),
    "pearson": (lambda v: v, lambda t: t * t / 4.0 + t, lambda u: (u - 1.0) ** 2),
    "squared_hellinger": (lambda v: 1.0 - math.exp(-v), lambda t: t / (1.0 - t),
                          lambda u: (math.sqrt(u) - 1.0) ** 2),
    "jensen_shannon": (lambda v: LOG2 - softplus(-v), lambda t: -math.log(2.0 - math.exp(t)),
                       lambda u: (u * math.log(u) if u else 0.0) - (u + 1.0) * math.log((u + 1.0) / 2.0)),
    "gan": (lambda v: -softplus(-v), lambda t: -math.log(1.0 - math.exp(t)),
            lambda u: (u * math.log(u) if u else 0.0) - (u + 1.0) * math.log(u + 1.0)),
    "total_variation": (lambda v: math.tanh(v) / 2.0, lambda t: t, lambda u: abs(u - 1.0) / 2.0),
}
# t inside each conjugate's domain (t < 0 for reverse_kl and gan, t < 1 for squared_hellinger,
# t < log 2 for jensen_shannon, |t| <= 1/2 for total_variation); u >= 0 (u > 0 for reverse_kl).
F_POINTS_T = {"kl": [-1.0, 0.5, 2.0], "reverse_kl": [-3.0, -1.0, -0.2], "pearson": [-1.5, 0.0, 3.0],
              "squared_hellinger": [-2.0, 0.0, 0.8], "jensen_shannon": [-2.0, 0.0, 0.6],
              "gan": [-3.0, -0.5, -0.1], "total_variation": [-0.4, 0.0, 0.45]}
F_POINTS_U = {name: [0.5, 1.0, 3.0] for name in F_DIVERGENCES} | {
    "kl": [0.0, 0.5, 1.0, 3.0], "jensen_shannon": [0.0, 0.5, 3.0], "gan": [0.0, 0.5, 3.0]}
F_V = [-1.5, 0.0, 0.7, 2.0]
F_REAL, F_FAKE = [1.0, -0.5], [0.3, 2.0, -0.8]


def fgan_rows():
    for name, (g, conj, f) in F_DIVERGENCES.items():
        yield row(FG.output_activation, F_V, name, expected=[g(v) for v in F_V], atol=1e-7)
        yield row(FG.conjugate, F_POINTS_T[name], name, expected=[conj(t) for t in F_POINTS_T[name]], atol=1e-7)
        yield row(FG.conjugate_of_activation, F_V, name, expected=[conj(g(v)) for v in F_V], atol=1e-7)
        yield row(FG.generator_function, F_POINTS_U[name], name, expected=[f(u) for u in F_POINTS_U[name]],
                  atol=1e-7)
        estimate = mean([g(v) for v in F_REAL]) - mean([conj(g(v)) for v in F_FAKE])
        yield row(FG.variational_divergence_estimate, F_REAL, F_FAKE, name, expected=estimate)
        yield row(FG.fgan_discriminator_loss, F_REAL, F_FAKE, name, expected=-estimate)
        yield row(FG.saddle_generator_loss, F_FAKE, name, expected=-mean([conj(g(v)) for v in F_FAKE]))
        yield row(FG.alternative_generator_loss, F_FAKE, name, expected=-mean([g(v) for v in F_FAKE]))


GOLDEN = [
    # ---- losses/gan.py: -log D = softplus(-logit), -log(1 - D) = softplus(logit)
    row(L.gan_discriminator_loss, [2.0, -1.0], [0.5, 3.0, -2.0],
        expected=(softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(3.0) + softplus(-2.0)) / 3),
    # D is right with logit 50: the loss is 2 log(1 + e^-50) = 3.9e-22, not log(1) = 0
    row(L.gan_discriminator_loss, [50.0], [-50.0], expected=2 * math.log1p(math.exp(-50.0))),
    # D is wrong with logit 50: 2 x 50, not inf
    row(L.gan_discriminator_loss, [-50.0, -50.0], [50.0], expected=2 * (50.0 + math.log1p(math.exp(-50.0)))),
    row(L.minimax_generator_loss, [0.5, -1.5], expected=-(softplus(0.5) + softplus(-1.5)) / 2),
    row(L.minimax_generator_loss, [-50.0], expected=-math.log1p(math.exp(-50.0))),
    row(L.minimax_generator_loss, [50.0, 50.0], expected=-50.0),
    row(L.non_saturating_generator_loss, [0.5, -1.5], expected=(softplus(-0.5) + softplus(1.5)) / 2),
    row(L.non_saturating_generator_loss, [50.0], expected=math.log1p(math.exp(-50.0))),
    row(L.non_saturating_generator_loss, [-50.0], expected=50.0),
    row(L.discriminator_accuracy_terms, [1.0, -2.0], [0.5],
        expected=[(sigmoid(1.0) + sigmoid(-2.0)) / 2, sigmoid(0.5)]),
    row(L.discriminator_accuracy_terms, [50.0], [-50.0], expected=[1.0, math.exp(-50.0)]),
    # ---- losses/lsgan.py: 1/2 mean((D(x) - b)^2) + 1/2 mean((D(G(z)) - a)^2); G: 1/2 mean((D - c)^2)
    row(LS.least_squares_discriminator_loss, [0.8, 1.5], [0.2, -0.4, 1.0],
        expected=0.5 * ((0.8 - 1) ** 2 + (1.5 - 1) ** 2) / 2 + 0.5 * (0.2**2 + 0.4**2 + 1.0**2) / 3),
    # the paper's other coding a, b, c = -1, 1, 0
    row(LS.least_squares_discriminator_loss, [0.8, 1.5], [0.2, -0.4, 1.0], targets=(-1.0, 1.0, 0.0),
        expected=0.5 * ((0.8 - 1) ** 2 + (1.5 - 1) ** 2) / 2 + 0.5 * (1.2**2 + 0.6**2 + 2.0**2) / 3),
    # three different targets, so that a swap of any two shows
    row(LS.least_squares_discriminator_loss, [0.0], [0.0], targets=(-2.0, 3.0, 7.0),
        expected=0.5 * 3.0**2 + 0.5 * 2.0**2),
    row(LS.least_squares_generator_loss, [0.2, -0.4, 1.0], expected=0.5 * (0.8**2 + 1.4**2 + 0.0) / 3),
    row(LS.least_squares_generator_loss, [0.2, -0.4, 1.0], targets=(-1.0, 1.0, 0.0),
        expected=0.5 * (0.2**2 + 0.4**2 + 1.0**2) / 3),
    row(LS.least_squares_generator_loss, [0.0], targets=(-2.0, 3.0, 7.0), expected=0.5 * 7.0**2),
    # no sigmoid, so no saturation: the loss keeps growing with the output
    row(LS.least_squares_generator_loss, [-50.0], expected=0.5 * 51.0**2),
    row(LS.mean_outputs, [0.8, 1.5], [0.2, -0.4, 1.0], expected=[(0.8 + 1.5) / 2, (0.2 - 0.4 + 1.0) / 3]),
    # ---- losses/wgan.py
    row(WG.wasserstein_critic_loss, [1.0, 3.0], [0.5, -1.0, 2.0], expected=(0.5 - 1.0 + 2.0) / 3 - (1.0 + 3.0) / 2),
    row(WG.wasserstein_critic_loss, [50.0], [-50.0], expected=-100.0),
    row(WG.wasserstein_generator_loss, [0.5, -1.0, 2.0], expected=-(0.5 - 1.0 + 2.0) / 3),
    row(WG.interpolate, [[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [-1.0, 1.0]], [[0.25], [0.5]],
        expected=[[0.25 * 1.0, 0.25 * 2.0], [0.5 * 3.0 - 0.5 * 1.0, 0.5 * 4.0 + 0.5 * 1.0]]),
    row(WG.interpolate, [[[[2.0]], [[4.0]]]], [[[[-2.0]], [[0.0]]]], [[[[0.75]]]],
        expected=[[[[0.75 * 2.0 - 0.25 * 2.0]], [[0.75 * 4.0]]]]),
    # sqrt(sum g^2 + 1e-12): 5 for (3, 4), 1e-6 (not 0) for a zero gradient; images are flattened
    row(WG.gradient_norms, [[3.0, 4.0], [0.0, 0.0]], expected=[math.sqrt(25.0 + 1e-12), math.sqrt(1e-12)]),
    row(WG.gradient_norms, [[[[1.0], [2.0]], [[2.0], [4.0]]]], expected=[math.sqrt(1 + 4 + 4 + 16)]),
    row(WG.gradient_penalty, [[3.0, 4.0], [0.6, 0.8]], weight=2.0, expected=2.0 * ((5.0 - 1.0) ** 2 + 0.0) / 2),
    row(WG.gradient_penalty, [[0.0, 2.0]], expected=10.0 * (2.0 - 1.0) ** 2),  # lambda = 10
    row(WG.gradient_penalty, [[0.0, 0.0]], expected=10.0 * (1e-6 - 1.0) ** 2),
    # ---- losses/ebgan.py
    row(EB.reconstruction_energy, [[[1.0, -2.0], [0.5, 0.0]], [[1.0, 1.0], [1.0, 1.0]]],
        [[[3.0, -2.0], [0.0, 0.0]], [[0.5, 1.5], [1.0, 2.0]]],
        expected=[(2.0**2 + 0.0 + 0.5**2 + 0.0) / 4, (0.5**2 + 0.5**2 + 0.0 + 1.0**2) / 4]),
    # three samples of two values: the batch axis is the first, whatever the others' sizes
    row(EB.reconstruction_energy, [[1.0, 2.0], [0.0, 0.0], [-1.0, 4.0]], [[1.0, 0.0], [3.0, 1.0], [0.0, 4.0]],
        expected=[(0.0 + 2.0**2) / 2, (3.0**2 + 1.0**2) / 2, (1.0**2 + 0.0) / 2]),
    row(EB.ebgan_discriminator_loss, [0.1, 0.3], [0.2, 1.5], margin=1.0,
        expected=(0.1 + 0.3) / 2 + (max(0.0, 1.0 - 0.2) + max(0.0, 1.0 - 1.5)) / 2),
    row(EB.ebgan_discriminator_loss, [0.0], [0.5, 0.9], 0.7, expected=0.0 + (0.2 + 0.0) / 2),
    row(EB.ebgan_generator_loss, [0.2, 0.4, 0.9], expected=(0.2 + 0.4 + 0.9) / 3),
    row(EB.pulling_away_term, [[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]],
        expected=2 * (cos2([1, 0], [1, 1]) + cos2([1, 0], [0, 3]) + cos2([1, 1], [0, 3])) / (3 * 2)),
    row(EB.pulling_away_term, [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, -2.0]],
        expected=2 * (0.5 + 1 / 3 + 0.0 + 2 / 3 + 0.0 + 1 / 3) / (4 * 3)),
    # cosines do not depend on the lengths, however short
    row(EB.pulling_away_term, [[0.3, 0.0], [0.0, 0.02], [0.1, 0.1]], expected=2 * (0.0 + 0.5 + 0.5) / 6),
    # a zero embedding is orthogonal to everything; feature maps are flattened
    row(EB.pulling_away_term, [[[0.0, 0.0]], [[1.0, 0.0]], [[2.0, 2.0]]], expected=2 * (0.0 + 0.0 + 0.5) / 6, atol=1e-7),
    row(EB.pulling_away_term, [[1.0, 2.0]], expected=0.0),  # no pairs
    # ---- losses/infogan.py
    row(IG.categorical_info_loss, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]],
        expected=(-(2.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3))) + math.log(3.0)) / 2),
    # -log softmax at logits +-50: log(1 + e^-100) ~ 0 and 100, never log(0)
    row(IG.categorical_info_loss, [[1.0, 0.0], [0.0, 1.0]], [[50.0, -50.0], [50.0, -50.0]],
        expected=(math.log1p(math.exp(-100.0)) + 100.0 + math.log1p(math.exp(-100.0))) / 2),
    row(IG.continuous_info_loss, [[0.5, -1.0], [2.0, 0.0]], [[0.0, -1.5], [1.0, 1.0]],
        expected=(0.5 * (0.5**2 + 0.5**2) + 0.5 * (1.0**2 + 1.0**2)) / 2),
    row(IG.continuous_info_loss, [[0.5, -1.0], [2.0, 0.0]], [[0.0, -1.5], [1.0, 1.0]],
        [[0.0, math.log(2.0)], [-math.log(2.0), 1.0]],
        expected=((0.5 * 0.5**2 + 0.0) + (0.5 * (0.5 / 2) ** 2 + math.log(2.0))
                  + (0.5 * (1.0 * 2) ** 2 - math.log(2.0)) + (0.5 * (1.0 / math.e) ** 2 + 1.0)) / 2),
    # one sample of a three-dimensional code: the sum runs over the code, the mean over the batch
    row(IG.continuous_info_loss, [[0.5, -1.0, 2.0]], [[0.0, 0.0, 0.0]], expected=0.5 * (0.25 + 1.0 + 4.0)),
    row(IG.continuous_info_loss, [[0.5, -1.0, 2.0]], [[0.0, 0.0, 0.0]], [[0.0, 0.0, math.log(2.0)]],
        expected=0.5 * (0.25 + 1.0 + 1.0) + math.log(2.0)),
    row(IG.uniform_categorical_entropy, 10, expected=math.log(10.0)),
    row(IG.uniform_categorical_entropy, 1, expected=0.0),
    row(IG.categorical_mi_lower_bound, math.log(10.0), 0.5, expected=math.log(10.0) - 0.5),
    # ---- losses/fgan.py, every divergence
    *fgan_rows(),
    # stable at +-50 where the literal composition of Table 2 overflows or rounds to 0
    row(FG.output_activation, [-50.0, 50.0], "gan", expected=[-50.0, -math.exp(-50.0)]),
    row(FG.output_activation, [-50.0, 50.0], "jensen_shannon", expected=[LOG2 - 50.0, LOG2 - math.exp(-50.0)]),
    row(FG.conjugate_of_activation, [-50.0, 50.0], "gan", expected=[math.exp(-50.0), 50.0]),
    row(FG.conjugate_of_activation, [-50.0, 50.0], "jensen_shannon",
        expected=[math.exp(-50.0) - LOG2, 50.0 - LOG2]),
    row(FG.conjugate_of_activation, [-50.0, 30.0], "squared_hellinger", expected=[-1.0, math.expm1(30.0)]),
    row(FG.conjugate_of_activation, [-50.0, 50.0], "reverse_kl", expected=[-51.0, 49.0]),
    row(FG.conjugate_of_activation, [-50.0, 50.0], "kl", expected=[math.exp(-51.0), math.exp(49.0)]),
]


@pytest.mark.parametrize("fn, args, kwargs, expected, rtol, atol", GOLDEN)
def test_golden_values(fn, args, kwargs, expected, rtol, atol):
    result = fn(*args, **kwargs)
    values = [np.asarray(r) for r in result] if isinstance(result, tuple) else np.asarray(result)
    np.testing.assert_allclose(np.asarray(values, np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=atol)
    # float32 whatever the inputs (float64 stays float64 in f-GAN; plain Python floats here)
    for r in result if isinstance(result, tuple) else [result]:
        if isinstance(r, tf.Tensor):
            assert r.dtype == tf.float32


def test_every_public_loss_function_has_golden_values():
    covered = {(p.values[0].__module__, p.values[0].__name__) for p in GOLDEN}
    public = {(m.__name__, name) for m in LOSS_MODULES for name, obj in vars(m).items()
              if callable(obj) and not name.startswith("_") and getattr(obj, "__module__", None) == m.__name__}
    assert public and public <= covered, sorted(public - covered)


@pytest.mark.parametrize("fn, args", [
    (L.gan_discriminator_loss, ([1.0, -2.0], [0.5])),
    (L.minimax_generator_loss, ([0.5, -1.5],)),
    (L.non_saturating_generator_loss, ([0.5, -1.5],)),
    (LS.least_squares_discriminator_loss, ([0.8, 1.5], [0.2, -0.4])),
    (LS.least_squares_generator_loss, ([0.2, -0.4],)),
    (WG.wasserstein_critic_loss, ([1.0, 3.0], [0.5, -1.0])),
    (WG.gradient_penalty, ([[3.0, 4.0], [0.6, 0.8]],)),
    (EB.ebgan_discriminator_loss, ([0.1, 0.3], [0.2, 1.5], 1.0)),
    (EB.pulling_away_term, ([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]],)),
    (IG.continuous_info_loss, ([[0.5, -1.0]], [[0.0, -1.5]], [[0.0, 0.5]])),
    (FG.fgan_discriminator_loss, ([1.0, -0.5], [0.3, 2.0], "gan")),
])
def test_half_precision_inputs_give_the_float32_value(fn, args):
    """Under mixed precision the networks output float16; every loss computes in float32."""
    half = [np.asarray(a, np.float16) if not isinstance(a, (str, float)) else a for a in args]
    exact = [np.asarray(np.asarray(a, np.float16), np.float32) if not isinstance(a, (str, float)) else a
             for a in args]
    result = fn(*half)
    assert result.dtype == tf.float32
    assert float(result) == pytest.approx(float(fn(*exact)), rel=1e-6)


def test_unknown_divergence_lists_the_choices():
    with pytest.raises(ValueError, match="unknown divergence 'hellinger': use one of kl, reverse_kl, pearson, "
                                         "squared_hellinger, jensen_shannon, gan, total_variation$"):
        FG.output_activation([0.0], "hellinger")


def test_fgan_keeps_float64_for_numerical_integration():
    assert FG.generator_function(np.float64(2.0), "kl").dtype == tf.float64
    assert float(FG.generator_function(np.float64(2.0), "kl")) == 2.0 * math.log(2.0)
