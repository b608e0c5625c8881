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
    sigmoid = lambda x: 1 / (1 + np.exp(-x))
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
