"""The variational f-divergence objectives of f-GAN (Nowozin, Cseke & Tomioka 2016, "f-GAN:
Training Generative Neural Samplers using Variational Divergence Minimization",
https://arxiv.org/abs/1606.00709).

An f-divergence of P (the data) from Q (the generator) is D_f(P || Q) = integral q(x) f(p(x) / q(x)) dx
for a convex f with f(1) = 0. Its Fenchel conjugate f*(t) = sup_u {u t - f(u)} gives the lower
bound (the paper's eq. 6 and 7)

    F = E_P[T(x)] - E_Q[f*(T(x))] <= D_f(P || Q),    equality at T(x) = f'(p(x) / q(x)).

The critic (the paper's variational function) outputs a raw value v = V(x); an output
activation g_f maps it into the domain of f*, T = g_f(v). The critic ascends F (its loss is -F);
the generator descends F (the `saddle` objective) or, as section 3.2 proposes by analogy with
the original GAN's non-saturating loss, ascends E_Q[g_f(V(G(z)))] (the `alternative` objective).

The divergences of the paper's Table 1 with the output activations and conjugates of its
Table 2, f(u), g_f(v) and f*(t):

    kl                 u log u                          v                 exp(t - 1)
    reverse_kl         -log u                           -exp(-v)          -1 - log(-t)
    pearson            (u - 1)^2                        v                 t^2 / 4 + t
    squared_hellinger  (sqrt(u) - 1)^2                  1 - exp(-v)       t / (1 - t)
    jensen_shannon     -(u + 1) log((1 + u) / 2)        log 2 - log(1 + exp(-v))
                         + u log u                                        -log(2 - exp(t))
    gan                u log u - (u + 1) log(u + 1)     -log(1 + exp(-v)) -log(1 - exp(t))
    total_variation    |u - 1| / 2                      tanh(v) / 2       t  (|t| <= 1/2)

With these f, `jensen_shannon` is twice the Jensen-Shannon divergence (at most 2 log 2) and
`gan` is 2 JS - log 4 (f(1) = -log 4, so it is -log 4 for P = Q, not 0); every other f has
f(1) = 0. The critic's optimum is T = f'(1) for P = Q: v = 1 for `kl`, v = 0 for the others.

The losses never compose f* with g_f literally: f*(g_f(v)) is written in closed form in v
(`conjugate_of_activation`), e.g. softplus(v) for `gan` and expm1(v) for `squared_hellinger`,
which stays exact where the literal composition rounds 1 - exp(...) to 0 and returns inf or NaN.
Only `kl` (exp(v - 1)), `squared_hellinger` (expm1(v)) and `reverse_kl` (-exp(-v)) grow
exponentially in v, and they reach float32's limit only where the exact value itself exceeds it
(|v| > ~88). Everything is computed in float32 whatever the outputs' dtype.
"""

import math

import tensorflow as tf

LOG2 = math.log(2.0)


def _float(x):
    """float32 (float64 inputs, e.g. for numerical integration, stay float64)."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype == tf.float64 else tf.cast(x, tf.float32)


# --------------------------------------------------------------- per-divergence functions
# Each divergence: (g_f(v), f*(t), f*(g_f(v)) in closed form, f(u)).

def _kl():
    return (
        lambda v: v,
        lambda t: tf.exp(t - 1.0),
        lambda v: tf.exp(v - 1.0),
        lambda u: tf.math.xlogy(u, u),
    )


def _reverse_kl():
    return (
        lambda v: -tf.exp(-v),
        lambda t: -1.0 - tf.math.log(-t),
        lambda v: v - 1.0,  # -1 - log(exp(-v))
        lambda u: -tf.math.log(u),
    )


def _pearson():
    return (
        lambda v: v,
        lambda t: 0.25 * tf.square(t) + t,
        lambda v: 0.25 * tf.square(v) + v,
        lambda u: tf.square(u - 1.0),
    )


def _squared_hellinger():
    return (
        lambda v: -tf.math.expm1(-v),
        lambda t: t / (1.0 - t),
        lambda v: tf.math.expm1(v),  # (1 - e^-v) / e^-v
        lambda u: tf.square(tf.sqrt(u) - 1.0),
    )


def _jensen_shannon():
    return (
        lambda v: LOG2 - tf.nn.softplus(-v),
        lambda t: -tf.math.log(2.0 - tf.exp(t)),
        lambda v: tf.nn.softplus(v) - LOG2,  # exp(g_f(v)) = 2 sigmoid(v), 2 - 2 sigmoid(v) = 2 sigmoid(-v)
        lambda u: tf.math.xlogy(u, u) - (u + 1.0) * tf.math.log((u + 1.0) / 2.0),
    )


def _gan():
    return (
        lambda v: -tf.nn.softplus(-v),  # log sigmoid(v)
        lambda t: -tf.math.log(-tf.math.expm1(t)),
        lambda v: tf.nn.softplus(v),  # -log(1 - sigmoid(v))
        lambda u: tf.math.xlogy(u, u) - (u + 1.0) * tf.math.log(u + 1.0),
    )


def _total_variation():
    return (
        lambda v: 0.5 * tf.tanh(v),
        lambda t: t,
        lambda v: 0.5 * tf.tanh(v),
        lambda u: 0.5 * tf.abs(u - 1.0),
    )


_TABLE = {
    "kl": _kl(),
    "reverse_kl": _reverse_kl(),
    "pearson": _pearson(),
    "squared_hellinger": _squared_hellinger(),
    "jensen_shannon": _jensen_shannon(),
    "gan": _gan(),
    "total_variation": _total_variation(),
}

DIVERGENCES = tuple(_TABLE)

# f(1): the value of D_f(P || Q) and of the critic's best F when P = Q.
F_AT_ONE = {name: 0.0 for name in DIVERGENCES} | {"gan": -math.log(4.0)}


def _entry(divergence, position):
    try:
        return _TABLE[divergence][position]
    except KeyError:
        raise ValueError(f"unknown divergence {divergence!r}: use one of {', '.join(DIVERGENCES)}") from None


def output_activation(critic_outputs, divergence):
    """g_f(v): the critic's raw outputs mapped into the domain of f*."""
    return _entry(divergence, 0)(_float(critic_outputs))


def conjugate(t, divergence):
    """f*(t), the Fenchel conjugate, for t in its domain (e.g. t < 0 for `gan`)."""
    return _entry(divergence, 1)(_float(t))


def conjugate_of_activation(critic_outputs, divergence):
    """f*(g_f(v)) in closed form in v, finite wherever its exact value is."""
    return _entry(divergence, 2)(_float(critic_outputs))


def generator_function(u, divergence):
    """f(u), the convex function defining D_f (u = p / q >= 0)."""
    return _entry(divergence, 3)(_float(u))


# ------------------------------------------------------------------------ the objectives
def variational_divergence_estimate(real_outputs, fake_outputs, divergence):
    """F = mean(g_f(V(x))) - mean(f*(g_f(V(G(z))))): the critic's lower bound on D_f(P || Q)."""
    return tf.reduce_mean(output_activation(real_outputs, divergence)) - tf.reduce_mean(
        conjugate_of_activation(fake_outputs, divergence)
    )


def fgan_discriminator_loss(real_outputs, fake_outputs, divergence):
    """The critic's loss, -F: it ascends the lower bound."""
    return -variational_divergence_estimate(real_outputs, fake_outputs, divergence)


def saddle_generator_loss(fake_outputs, divergence):
    """The generator's side of the saddle point, min F: the part of F it moves,
    -mean(f*(g_f(V(G(z))))). Its gradient is the gradient of F."""
    return -tf.reduce_mean(conjugate_of_activation(fake_outputs, divergence))


def alternative_generator_loss(fake_outputs, divergence):
    """Section 3.2's objective: maximise mean(g_f(V(G(z)))), i.e. minimise its negative."""
    return -tf.reduce_mean(output_activation(fake_outputs, divergence))


# The generator objectives of f-GAN, the first being the default; each takes
# (fake_outputs, divergence).
GENERATOR_LOSSES = {
    "alternative": alternative_generator_loss,
    "saddle": saddle_generator_loss,
}
