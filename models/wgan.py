"""Wasserstein GANs.

WGAN: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN". Paper: https://arxiv.org/abs/1701.07875.
WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of
Wasserstein GANs". Paper: https://arxiv.org/abs/1704.00028.

Both replace the discriminator by a critic f with no sigmoid, trained to estimate the
Wasserstein-1 distance mean(f(x)) - mean(f(G(z))) (tracked as `wasserstein`), while the
generator minimises -mean(f(G(z))); see `losses/wgan.py`. They differ in how f is kept
Lipschitz:

WGAN (Algorithm 1 of the paper and the authors' released code):

- every trainable critic parameter is clipped to [-0.01, 0.01] after every critic update. As in
  the authors' code, which clamps all of `netD.parameters()`, this includes the batch-norm
  scales and offsets (a clipped scale of 0.01 is what their critic trains with); the moving
  mean and variance are statistics, not parameters, and are left alone;
- 5 critic updates per generator update, batches of 64, RMSProp with learning rate 5e-5 for
  both networks. The paper warns against momentum, so momentum is 0; rho = 0.99 and
  epsilon = 1e-16 inside the square root (sqrt(1e-16) = 1e-8) reproduce the PyTorch RMSprop
  defaults the authors ran (alpha = 0.99, eps = 1e-8 added to the root). Keras' own defaults
  (rho = 0.9, epsilon = 1e-7 under the root) would average over ~10 instead of ~100 steps and
  damp every gradient whose RMS is below sqrt(1e-7) = 3e-4, which through a clipped critic is
  most of the generator's (RMS 2e-5 to 1e-4 per layer on 28x28 images at the start);
- optionally (`schedule="paper"`) the authors' schedule: 100 critic updates for each of the
  first 25 generator updates and for every 500th one, `d_steps` otherwise;
- the critic is DCGAN's discriminator without the sigmoid: strided 4x4 convolutions,
  LeakyReLU(0.2), batch norm on every layer but the first, one linear output; the generator is
  DCGAN's (`models/dcgan.py`). The latent is 100-d standard normal noise, as in the authors'
  code (`normal_(0, 1)`).

WGAN-GP (Algorithm 1 of the paper):

- no clipping: lambda * (||grad f(x_hat)||_2 - 1)^2 on x_hat = eps * x + (1 - eps) * G(z), eps
  uniform on [0, 1] per sample, lambda = 10; the gradient comes from a nested GradientTape;
- no batch norm in the critic, because the penalty is per sample and batch norm makes each
  output depend on the whole batch. The default is layer normalization over (height, width,
  channels) with one scale and offset per channel, as in the authors' DCGAN-style critics
  (`GroupNormalization(groups=1)` is exactly that); `normalization="none"` is their MNIST critic;
- 5 critic updates per generator update, Adam(1e-4, beta1 = 0, beta2 = 0.9) for both networks.

Both also take 2-D points (`image_shape=(2,)`, the ring8 / grid25 mixtures): generator and
critic are then the ReLU MLPs of the WGAN-GP authors' toy experiments (three hidden layers of
512, 2-d normal noise, no normalization), with a linear generator output.
"""

import keras
import tensorflow as tf

from losses import wgan as wgan_losses
from models import dcgan, layers
from models.errors import GanZooError
from models.gan import GAN, batch_slice
from models.options import FLOAT, INT, STR, Option, replace

NORMALIZATIONS = ("batch", "layer", "none")
SCHEDULES = ("constant", "paper")

# The authors' schedule (`schedule="paper"`): PAPER_CRITIC_STEPS critic updates while fewer than
# PAPER_WARMUP generator updates were made and at every PAPER_PERIOD-th generator update.
PAPER_CRITIC_STEPS = 100
PAPER_WARMUP = 25
PAPER_PERIOD = 500


def _is_point_shape(image_shape, family):
    """True for 2-D points (2,), False for square images a DCGAN can take; else a GanZooError."""
    if image_shape == (2,):
        return True
    try:
        dcgan.upsampling_plan(image_shape)
    except GanZooError:
        raise GanZooError(
            f"{family} takes square images (side, side, channels) of side 4..8 x 2^n with "
            f"n >= 2 (e.g. 28, 32, 64) or 2-D points (2,), got shape "
            f"{tuple(image_shape)}; pass --image_size 32 or 64 to resize"
        ) from None
    return False


def _normalization(kind):
    """The layer normalizing a critic's hidden features."""
    if kind == "batch":
        return dcgan.batch_norm()  # the authors' (PyTorch default) momentum and epsilon
    # One group: normalise each sample over all its features, one scale/offset per channel.
    return keras.layers.GroupNormalization(groups=1, epsilon=1e-5)


def build_critic(image_shape, width, normalization, name="critic"):
    """DCGAN's discriminator with a choice of normalization and a linear output (no sigmoid)."""
    _, doublings = dcgan.upsampling_plan(image_shape)
    init = keras.initializers.RandomNormal(0.0, 0.02)
    image = keras.Input(tuple(image_shape), name="image")
    x = image
    for i in range(doublings):
        normalized = i > 0 and normalization != "none"  # never on the input layer
        x = layers.Conv2D(
            width * 2**i, 4, strides=2, padding="same", use_bias=not normalized,
            kernel_initializer=init,
        )(x)
        if normalized:
            x = _normalization(normalization)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Flatten()(x)
    score = keras.layers.Dense(1, kernel_initializer=init, name="score")(x)
    return keras.Model(image, score, name=name)


def build_point_generator(dim, latent_dim, width):
    """Noise -> three ReLU layers of `width` -> a linear point in R^dim."""
    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for i in range(3):
        x = keras.layers.Dense(width, activation="relu", name=f"hidden_{i}")(x)
    point = keras.layers.Dense(dim, name="point")(x)
    return keras.Model(latent, point, name="generator")


def build_point_critic(dim, width, normalization, name="critic"):
    """A point in R^dim -> three ReLU layers of `width` (normalized after the first) -> a score."""
    point = keras.Input((dim,), name="point")
    x = point
    for i in range(3):
        x = keras.layers.Dense(width, name=f"hidden_{i}")(x)
        if i > 0 and normalization != "none":
            x = _normalization(normalization)(x)
        x = keras.layers.ReLU()(x)
    score = keras.layers.Dense(1, name="score")(x)
    return keras.Model(point, score, name=name)


@keras.saving.register_keras_serializable(package="gan_zoo")
class WGAN(GAN):
    """Arjovsky et al. 2017: a weight-clipped critic estimating the Wasserstein distance.

    Args:
        image_shape: square images (side, side, channels) of a DCGAN size, or 2-D points (2,).
        latent_dim: noise size; 100 for images, 2 for points when omitted.
        width: critic filters in its first layer (64) for images, hidden units (512) for points.
        normalization: of the critic's hidden layers, `"batch"`, `"layer"` or `"none"`; batch
            norm for image critics and none for point critics when omitted.
        clip_value: c; every trainable critic weight is clipped to [-c, c] after every critic
            update. `None` turns clipping off.
        schedule: `"constant"` (`d_steps` critic updates per generator update) or `"paper"`
            (100 for the first 25 generator updates and every 500th, `d_steps` otherwise).
            The 100-update phases cycle through the `d_steps` slices of the step's batch (the
            trainer feeds `d_steps * batch_size` samples per step), so they reuse each slice
            about 100 / d_steps times, where the authors' code drew a fresh batch per update;
            a batch that d_steps does not divide has its slices trimmed to one size there.
        generator_loss: only `"wasserstein"`, -mean(critic(G(z))).
        **kwargs: `d_steps` (5), `latent_distribution` ("normal"), `seed`, ... of `GAN`.
    """

    paper = "https://arxiv.org/abs/1701.07875"
    default_batch_size = 64
    default_d_steps = 5
    output_range = (-1.0, 1.0)  # tanh images; points are unbounded
    metric_names = ("d_loss", "g_loss", "wasserstein")
    generator_losses = {"wasserstein": wgan_losses.wasserstein_generator_loss}
    default_normalization = "batch"  # of image critics; point critics default to "none"
    options = replace(
        GAN.options,
        latent_dim=dict(help="noise size (100 for images, 2 for 2-D points when omitted)"),
        latent_distribution=dict(default="normal"),
        output_range=dict(help="the generator's output range [low, high] ((-1, 1) for images, "
                               "none for 2-D points)"),
    ) + (
        Option("width", INT, None, "critic filters in its first layer for images (64), hidden "
               "units for 2-D points (512), when omitted", minimum=1),
        Option("normalization", STR, None, "of the critic's hidden layers (batch for image "
               "critics, none for point critics when omitted)", choices=NORMALIZATIONS),
        Option("clip_value", FLOAT, 0.01, "c: critic weights are clipped to [-c, c] after every "
               "update; none turns clipping off", minimum=0, exclusive_minimum=True, optional=True),
        Option("schedule", STR, "constant", "constant (d_steps critic updates per generator "
               "update) or paper (100 for the first 25 generator updates and every 500th)",
               choices=SCHEDULES),
    )

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=None,
        width=None,
        normalization=None,
        clip_value=0.01,
        schedule="constant",
        **kwargs,
    ):
        kwargs.setdefault("name", "wgan")
        family = kwargs["name"]
        self.image_shape = tuple(int(s) for s in image_shape)
        points = _is_point_shape(self.image_shape, family)
        normalization = normalization or ("none" if points else self.default_normalization)
        if schedule == "paper" and kwargs.get("update") == "simultaneous":
            raise GanZooError(f"{family} with schedule=paper varies its critic updates per step, "
                              "which update=simultaneous cannot follow: use update=alternating")
        self.width = int(width or (512 if points else 64))
        self.normalization = normalization
        self.clip_value = None if clip_value is None else float(clip_value)
        self.schedule = schedule
        latent_dim = int(latent_dim or (2 if points else 100))
        kwargs.setdefault("latent_distribution", "normal")
        kwargs.setdefault("output_range", None if points else (-1.0, 1.0))
        if points:
            generator = build_point_generator(self.image_shape[0], latent_dim, self.width)
            critic = build_point_critic(self.image_shape[0], self.width, normalization)
        else:
            generator = dcgan.build_generator(self.image_shape, latent_dim, self.width)
            critic = build_critic(self.image_shape, self.width, normalization)
        super().__init__(generator, critic, latent_dim, **kwargs)

    @property
    def critic(self):
        """The paper's name for the discriminator."""
        return self.discriminator

    # ---------------------------------------------------------------------------- hooks
    def discriminator_objective(self, real, fake, latent):
        real_scores = self.discriminator(real, training=True)
        fake_scores = self.discriminator(fake, training=True)
        d_loss = wgan_losses.wasserstein_critic_loss(real_scores, fake_scores)
        return d_loss, {"d_loss": d_loss, "wasserstein": -d_loss}

    def generator_objective(self, fake, latent, real=None):
        g_loss = self._generator_loss_fn(self.discriminator(fake, training=True))
        return g_loss, {"g_loss": g_loss}

    def after_discriminator_step(self):
        """Clips every trainable critic weight (batch-norm scales and offsets too) to [-c, c]."""
        if self.clip_value is None:
            return
        for variable in self.discriminator_variables:
            variable.assign(tf.clip_by_value(variable, -self.clip_value, self.clip_value))

    def discriminator_phase(self, real, slices):
        """The critic updates of one train step: one per slice (`d_steps`), or under the paper's
        schedule 100 of them in the long phases, cycling through the slices.

        The schedule reads the number of generator updates made so far
        (`g_optimizer.iterations`, saved with the optimizer, so a resumed run continues it).
        """
        if self.schedule == "constant":
            return super().discriminator_phase(real, slices)
        generator_steps = self.g_optimizer.iterations
        long_phase = (generator_steps < PAPER_WARMUP) | (generator_steps % PAPER_PERIOD == 0)
        iterations = tf.where(long_phase, PAPER_CRITIC_STEPS, self.d_steps)

        def update(i):
            # Slices of one shape, as a loop whose index is a tensor needs.
            self._discriminator_update(batch_slice(real, i % self.d_steps, self.d_steps, equal=True))
            return (i + 1,)

        tf.while_loop(lambda i: i < iterations, update, (tf.constant(0),))

    def default_optimizers(self):
        def rmsprop():
            return keras.optimizers.RMSprop(5e-5, rho=0.99, momentum=0.0, epsilon=1e-16)

        return rmsprop(), rmsprop()

    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "width": self.width,
            "normalization": self.normalization,
            "clip_value": self.clip_value,
            "schedule": self.schedule,
        }


@keras.saving.register_keras_serializable(package="gan_zoo")
class WGANGP(WGAN):
    """Gulrajani et al. 2017: the WGAN critic kept Lipschitz by a gradient penalty.

    Args:
        image_shape: as for `WGAN`.
        penalty_weight: lambda, the penalty coefficient (10).
        **kwargs: as for `WGAN`, with `clip_value=None` (no clipping) and layer-normalized image
            critics by default; batch norm is refused.
    """

    paper = "https://arxiv.org/abs/1704.00028"
    metric_names = ("d_loss", "g_loss", "wasserstein", "gradient_penalty")
    default_normalization = "layer"
    options = replace(
        WGAN.options,
        # Batch norm couples the samples of a batch, and the penalty is per sample.
        normalization=dict(help="of the critic's hidden layers (layer for image critics, none "
                                "for point critics when omitted); not batch, which couples the "
                                "samples the penalty takes one by one", choices=("layer", "none")),
        clip_value=dict(default=None),
    ) + (
        Option("penalty_weight", FLOAT, 10.0, "lambda, the gradient penalty's weight", minimum=0),
    )

    def __init__(self, image_shape=(28, 28, 1), penalty_weight=10.0, **kwargs):
        kwargs.setdefault("name", "wgan_gp")
        self.penalty_weight = float(penalty_weight)
        kwargs.setdefault("clip_value", None)
        super().__init__(image_shape, **kwargs)

    def interpolation_weights(self, real):
        """eps ~ U[0, 1], one per sample, shaped (batch, 1, ..., 1) to broadcast over it."""
        trailing = (1,) * (len(real.shape) - 1)

        def draw(n):
            return keras.random.uniform((n, *trailing), 0.0, 1.0, seed=self.seed_generator)

        # Each replica keeps its own slice of one global draw, as for the latent.
        return self.replica_noise(draw, real.shape[0] or tf.shape(real)[0])

    def discriminator_objective(self, real, fake, latent):
        real_scores = self.discriminator(real, training=True)
        fake_scores = self.discriminator(fake, training=True)
        critic_loss = wgan_losses.wasserstein_critic_loss(real_scores, fake_scores)
        x_hat = wgan_losses.interpolate(real, fake, self.interpolation_weights(real))
        # The inner tape gives d critic / d x_hat; the base class's outer tape, still recording,
        # differentiates the penalty built from it with respect to the critic's weights.
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            scores = self.discriminator(x_hat, training=True)
        penalty = wgan_losses.gradient_penalty(tape.gradient(scores, x_hat), self.penalty_weight)
        d_loss = critic_loss + penalty
        return d_loss, {"d_loss": d_loss, "wasserstein": -critic_loss, "gradient_penalty": penalty}

    def default_optimizers(self):
        def adam():
            return keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)

        return adam(), adam()

    def get_config(self):
        return {**super().get_config(), "penalty_weight": self.penalty_weight}
