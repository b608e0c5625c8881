"""The objectives of the original GAN (Goodfellow et al. 2014, https://arxiv.org/abs/1406.2661).

With D(x) = sigmoid(logit(x)), the value function is

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

D ascends V; written as a loss to minimise that is -V. G descends V (the `minimax` objective),
or, as the paper recommends because log(1 - D(G(z))) saturates early in training, ascends
log D(G(z)) (the `non_saturating` objective). `least_squares` swaps both losses for LSGAN's
(losses/lsgan.py). Everything is computed from logits with softplus,
which is exact and never takes the log of a rounded sigmoid:

    -log D(x)        = softplus(-logit)
    -log(1 - D(x))   = softplus(logit)
"""

import tensorflow as tf

from losses import lsgan


def gan_discriminator_loss(real_logits, fake_logits):
    """-V(D, G): mean(-log D(x)) + mean(-log(1 - D(G(z))))."""
    real_logits = tf.cast(real_logits, tf.float32)
    fake_logits = tf.cast(fake_logits, tf.float32)
    return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(
        tf.nn.softplus(fake_logits)
    )


def minimax_generator_loss(fake_logits):
    """The paper's minimax objective for G: minimise mean(log(1 - D(G(z))))."""
    fake_logits = tf.cast(fake_logits, tf.float32)
    return -tf.reduce_mean(tf.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits):
    """The paper's practical objective for G: maximise log D(G(z)), i.e. minimise -log D(G(z))."""
    fake_logits = tf.cast(fake_logits, tf.float32)
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def discriminator_accuracy_terms(real_logits, fake_logits):
    """Mean D(x) and mean D(G(z)) as probabilities; both approach 1/2 at the equilibrium."""
    return (
        tf.reduce_mean(tf.sigmoid(tf.cast(real_logits, tf.float32))),
        tf.reduce_mean(tf.sigmoid(tf.cast(fake_logits, tf.float32))),
    )


# The generator objectives of the GAN family, the first being the default.
GENERATOR_LOSSES = {
    "non_saturating": non_saturating_generator_loss,
    "minimax": minimax_generator_loss,
    "least_squares": lsgan.least_squares_generator_loss,
}



# What each objective makes of the discriminator: its loss and the (d_real, d_fake) summary.
# `least_squares` (LSGAN) replaces both players' losses.
DISCRIMINATOR_LOSSES = {
    "non_saturating": (gan_discriminator_loss, discriminator_accuracy_terms),
    "minimax": (gan_discriminator_loss, discriminator_accuracy_terms),
    "least_squares": (lsgan.least_squares_discriminator_loss, lsgan.mean_outputs),
}
