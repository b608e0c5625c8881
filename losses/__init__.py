"""Loss functions of the zoo: pure functions of discriminator outputs.

Every function takes the discriminator's raw outputs (logits, energies or critic values, named
by role: `real_logits`, `fake_logits`, ...) and returns a scalar averaged over the batch. No
function holds state or creates variables.
"""

from losses.ebgan import (
    ebgan_discriminator_loss,
    ebgan_generator_loss,
    pulling_away_term,
    reconstruction_energy,
)
from losses.gan import (
    GENERATOR_LOSSES,
    discriminator_accuracy_terms,
    gan_discriminator_loss,
    minimax_generator_loss,
    non_saturating_generator_loss,
)
from losses.infogan import (
    categorical_info_loss,
    categorical_mi_lower_bound,
    continuous_info_loss,
    uniform_categorical_entropy,
)
from losses.wgan import (
    gradient_norms,
    gradient_penalty,
    interpolate,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

__all__ = [
    "discriminator_accuracy_terms",
    "gan_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_generator_loss",
    "GENERATOR_LOSSES",
    "gradient_norms",
    "gradient_penalty",
    "interpolate",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "ebgan_discriminator_loss",
    "ebgan_generator_loss",
    "pulling_away_term",
    "reconstruction_energy",
    "categorical_info_loss",
    "categorical_mi_lower_bound",
    "continuous_info_loss",
    "uniform_categorical_entropy",
]
