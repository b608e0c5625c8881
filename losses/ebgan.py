"""The objectives of the energy-based GAN (Zhao, Mathieu & LeCun 2016,
https://arxiv.org/abs/1609.03126).

The discriminator is an auto-encoder and the energy of a sample is its reconstruction error,
D(x) = ||Dec(Enc(x)) - x||. Here the energy is the *mean* squared error over the sample's
pixels (and channels), so its scale does not depend on the image size. With a margin m:

    L_D = E_x[D(x)] + E_z[max(0, m - D(G(z)))]          (low energy on data, >= m on fakes)
    L_G = E_z[D(G(z))] + lambda_PT * PT(Enc(G(z)))

The pulling-away term PT (the paper's eq. 6) keeps a batch of fakes from collapsing onto one
mode: it is the mean squared cosine similarity between the encoder embeddings s_i of the N
fakes of a batch, over the N(N - 1) ordered pairs with i != j,

    PT = 1 / (N (N - 1)) * sum_{i != j} (s_i . s_j / (|s_i| |s_j|))^2,

so 0 for mutually orthogonal embeddings and 1 for parallel ones.

Every function is pure; losses average over the batch.
"""

import tensorflow as tf


def reconstruction_energy(images, reconstructions):
    """Per-sample energy: mean squared error over every non-batch axis, shape (batch,)."""
    images = tf.cast(images, tf.float32)
    reconstructions = tf.cast(reconstructions, tf.float32)
    squared = tf.square(reconstructions - images)
    return tf.reduce_mean(tf.reshape(squared, (tf.shape(squared)[0], -1)), axis=-1)


def ebgan_discriminator_loss(real_energy, fake_energy, margin):
    """mean D(x) + mean max(0, margin - D(G(z))): the paper's hinge loss for the discriminator."""
    real_energy = tf.cast(real_energy, tf.float32)
    fake_energy = tf.cast(fake_energy, tf.float32)
    return tf.reduce_mean(real_energy) + tf.reduce_mean(tf.nn.relu(margin - fake_energy))


def ebgan_generator_loss(fake_energy):
    """mean D(G(z)): the generator lowers the energy of its samples (the PT term is added apart)."""
    return tf.reduce_mean(tf.cast(fake_energy, tf.float32))


def pulling_away_term(embeddings):
    """Mean squared cosine similarity over the ordered pairs i != j of a batch of embeddings.

    Args:
        embeddings: (N, ...) encoder outputs of N samples; every non-batch axis is flattened.

    Returns 0 for a batch of fewer than two samples. A zero embedding counts as orthogonal to
    everything (its normalised vector is 0).
    """
    embeddings = tf.cast(embeddings, tf.float32)
    n = tf.shape(embeddings)[0]
    flat = tf.reshape(embeddings, (n, -1))
    unit = tf.math.l2_normalize(flat, axis=-1, epsilon=1e-12)
    cosine = tf.matmul(unit, unit, transpose_b=True)
    off_diagonal = 1.0 - tf.eye(n, dtype=cosine.dtype)
    pairs = tf.cast(n * (n - 1), tf.float32)
    return tf.reduce_sum(tf.square(cosine) * off_diagonal) / tf.maximum(pairs, 1.0)
