"""The objectives of the Wasserstein GAN and its gradient-penalty variant.

WGAN (Arjovsky, Chintala & Bottou 2017, https://arxiv.org/abs/1701.07875) trains a critic f,
a real-valued function with no sigmoid, to estimate the Wasserstein-1 distance through the
Kantorovich-Rubinstein duality

    W(P_r, P_g) = sup_{||f||_L <= 1} E_x[f(x)] - E_z[f(G(z))].

As losses to minimise: the critic minimises mean(f(G(z))) - mean(f(x)), whose negative is the
running estimate of W; the generator minimises -mean(f(G(z))).

WGAN-GP (Gulrajani et al. 2017, https://arxiv.org/abs/1704.00028) enforces the Lipschitz
constraint softly, penalising the critic's input-gradient norm on random points between real
and fake samples:

    x_hat = eps * x + (1 - eps) * G(z),      eps ~ U[0, 1], one draw per sample
    penalty = lambda * mean((||grad_x_hat f(x_hat)||_2 - 1)^2).

The gradient itself is taken by the model (a nested `tf.GradientTape`, see `models/wgan.py`);
these functions only combine critic outputs and gradients, and hold no state. They compute in
float32 whatever the inputs' dtype (float16 under mixed precision).
"""

import tensorflow as tf

# Added under the square root of the gradient norm: d sqrt(s)/ds is infinite at s = 0, which
# turns a zero input-gradient (e.g. a dead ReLU region) into NaN critic updates.
NORM_EPSILON = 1e-12


def wasserstein_critic_loss(real_scores, fake_scores):
    """The critic's loss, mean(f(G(z))) - mean(f(x)): minus the Wasserstein estimate."""
    real_scores = tf.cast(real_scores, tf.float32)
    fake_scores = tf.cast(fake_scores, tf.float32)
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def wasserstein_generator_loss(fake_scores):
    """The generator's loss, -mean(f(G(z)))."""
    return -tf.reduce_mean(tf.cast(fake_scores, tf.float32))


def interpolate(real, fake, eps):
    """x_hat = eps * real + (1 - eps) * fake.

    `eps` holds one weight per sample, shaped to broadcast over the sample's axes:
    (batch, 1, 1, 1) for images, (batch, 1) for vectors.
    """
    real, fake, eps = (tf.cast(t, tf.float32) for t in (real, fake, eps))
    return eps * real + (1.0 - eps) * fake


def gradient_norms(input_gradients):
    """Per-sample L2 norm of the critic's input gradients, sqrt(sum(g^2) + 1e-12)."""
    input_gradients = tf.cast(input_gradients, tf.float32)
    flat = tf.reshape(input_gradients, (tf.shape(input_gradients)[0], -1))
    return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1) + NORM_EPSILON)


def gradient_penalty(input_gradients, weight=10.0):
    """lambda * mean over samples of (||grad f(x_hat)||_2 - 1)^2.

    Args:
        input_gradients: d f(x_hat) / d x_hat, one row (or image) per sample.
        weight: lambda, the penalty coefficient (10 in the paper).
    """
    return weight * tf.reduce_mean(tf.square(gradient_norms(input_gradients) - 1.0))
