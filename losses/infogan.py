"""The information term of InfoGAN (Chen et al. 2016, https://arxiv.org/abs/1606.03657).

InfoGAN maximises a variational lower bound on the mutual information between the structured
codes c fed to the generator and its samples x = G(z, c) (the paper's Lemma 5.1):

    I(c; G(z, c)) >= E_{c ~ P(c), x ~ G(z, c)}[log Q(c | x)] + H(c)  =  L_I(G, Q)

Q is a recognition head that reads x. Both G and Q minimise the *information loss*
-E[log Q(c | x)], a sum of one term per code:

* a categorical code (one-hot, drawn uniformly from k classes): Q outputs k logits and the term
  is the softmax cross-entropy -log softmax(logits)[c];
* a continuous code: Q outputs a factored Gaussian and the term is its negative log-likelihood
  without the constant 0.5 * log(2 pi) per dimension, 0.5 * ((c - mean) / std)^2 + log std,
  summed over the code's dimensions. With `log_std=None` the std is fixed to 1, as in the
  authors' released MNIST code, and the term is half the squared error.

The constant is left out because it changes no gradient and would put a floor of 0.92 per
continuous code under the information loss (and under D's loss, which includes it): without it
the information loss of a Q that recovers every code exactly is 0 (with a fixed std).

H(c) does not depend on G or Q; for a uniform categorical code it is log k, so
`H(c) - cross-entropy` is a lower bound on the information the samples carry about that code,
reaching log k when Q recovers the code perfectly.

All functions average over the batch and hold no state.
"""

import math

import tensorflow as tf

HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def categorical_info_loss(code_onehot, logits):
    """Mean over the batch of -log Q(c | x) for a categorical code given as one-hot rows.

    Args:
        code_onehot: (batch, k) one-hot codes fed to the generator.
        logits: (batch, k) Q's unnormalised log-probabilities for the code.
    """
    code_onehot = tf.cast(code_onehot, tf.float32)
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=code_onehot, logits=logits))


def continuous_info_loss(code, mean, log_std=None):
    """Mean over the batch of the factored-Gaussian negative log-likelihood of continuous codes,
    up to the constant 0.5 * log(2 pi) per dimension (add `HALF_LOG_TWO_PI * d` for the exact
    negative log-density).

    Args:
        code: (batch, d) continuous codes fed to the generator.
        mean: (batch, d) Q's means.
        log_std: (batch, d) Q's log standard deviations, or `None` for a fixed std of 1 (then
            the loss is 0.5 * squared error).

    The NLL is summed over the d dimensions (they are independent).
    """
    code = tf.cast(code, tf.float32)
    mean = tf.cast(mean, tf.float32)
    if log_std is None:
        nll = 0.5 * tf.square(code - mean)
    else:
        log_std = tf.cast(log_std, tf.float32)
        nll = 0.5 * tf.square((code - mean) * tf.exp(-log_std)) + log_std
    return tf.reduce_mean(tf.reduce_sum(nll, axis=-1))


def uniform_categorical_entropy(num_categories):
    """H(c) of a code drawn uniformly from `num_categories` classes: log k nats."""
    return math.log(num_categories)


def categorical_mi_lower_bound(code_entropy, cross_entropy):
    """H(c) - E[-log Q(c | x)]: the lower bound on I(c; G(z, c)) for categorical codes.

    It is at most H(c) (log 10 = 2.30 for one 10-way code), reached when Q always recovers c,
    and 0 when Q outputs the uniform distribution.
    """
    return tf.cast(code_entropy, tf.float32) - tf.cast(cross_entropy, tf.float32)
