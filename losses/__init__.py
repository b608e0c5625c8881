"""Loss functions of the zoo: pure functions of discriminator outputs.

Every function takes the discriminator's raw outputs (logits, energies or critic values, named
by role: `real_logits`, `fake_logits`, ...) and returns a scalar averaged over the batch. No
function holds state or creates variables.
"""

from losses.gan import (
    discriminator_accuracy_terms,
    gan_discriminator_loss,
    minimax_generator_loss,
    non_saturating_generator_loss,
    GENERATOR_LOSSES,
    generator_loss_fn,
)

__all__ = [
    "discriminator_accuracy_terms",
    "gan_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_generator_loss",
    "GENERATOR_LOSSES",
    "generator_loss_fn",
]
