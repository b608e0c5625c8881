"""The least-squares objectives of LSGAN (Mao et al. 2017, https://arxiv.org/abs/1611.04076).

D's output is used as it is (no sigmoid) and regressed onto targets: `a` for fake samples and
`b` for real ones; G pulls D's output on its samples towards `c`:

    D: min 1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]
    G: min 1/2 E_z[(D(G(z)) - c)^2]

The paper's two codings are a, b, c = 0, 1, 1 (the default: G wants D to call its samples real)
and -1, 1, 0 (b - c = 1, b - a = 2, which makes the objective the Pearson chi^2 divergence of
p_data + p_g and 2 p_g).
"""

import tensorflow as tf

TARGETS = (0.0, 1.0, 1.0)  # a (fake), b (real), c (what G wants)


def _squared_error(outputs, target):
    return 0.5 * tf.reduce_mean(tf.square(tf.cast(outputs, tf.float32) - target))


def least_squares_discriminator_loss(real_logits, fake_logits, targets=TARGETS):
    """1/2 mean((D(x) - b)^2) + 1/2 mean((D(G(z)) - a)^2)."""
    a, b, _ = targets
    return _squared_error(real_logits, b) + _squared_error(fake_logits, a)


def least_squares_generator_loss(fake_logits, targets=TARGETS):
    """1/2 mean((D(G(z)) - c)^2)."""
    return _squared_error(fake_logits, targets[2])


def mean_outputs(real_logits, fake_logits):
    """Mean D(x) and mean D(G(z)) as D outputs them: they approach b and a as D wins."""
    return (tf.reduce_mean(tf.cast(real_logits, tf.float32)),
            tf.reduce_mean(tf.cast(fake_logits, tf.float32)))
