"""f-GAN: Nowozin, Cseke & Tomioka 2016, "f-GAN: Training Generative Neural Samplers using
Variational Divergence Minimization". Paper: https://arxiv.org/abs/1606.00709.

The original GAN is one member of a family: any f-divergence D_f(P || Q) between the data P and
the generator's Q has the variational lower bound

    F(theta, omega) = E_P[g_f(V(x))] - E_Q[f*(g_f(V(G(z))))]

where V is the critic (the paper's variational function, a network with a linear output v) and
g_f an output activation that keeps T = g_f(v) in the domain of f's Fenchel conjugate f*. The
critic ascends F, which makes F an estimate of D_f (tracked as `divergence_estimate`); the
generator descends it. The divergences (`divergence`): kl, reverse_kl, pearson,
squared_hellinger, jensen_shannon, gan and total_variation, with the paper's f, g_f and f*
(losses/fgan.py). The default is `jensen_shannon`: its f*(g_f(v)) = softplus(v) - log 2 has
bounded gradients and F stays bounded (by 2 log 2) and finite even while the generator's samples
and the data barely overlap, as they do early in training, whereas kl, reverse_kl and pearson
weigh the critic's outputs exponentially or quadratically and their divergences are unbounded
there. It is the original GAN's objective shifted to read 0 at P = Q.

Generator objectives (`generator_loss`):
- "alternative" (default): maximise E_Q[g_f(V(G(z)))], the paper's section 3.2 generalisation
  of the non-saturating GAN loss; it keeps the saddle point and gives strong gradients while the
  critic rejects the samples;
- "saddle": minimise F itself (the part the generator moves, -E_Q[f*(g_f(V(G(z))))]).

Updates (`update`, from `models.gan.GAN`):
- "alternating" (default): a critic step, then a generator step on fresh noise, as the zoo's
  other families;
- "simultaneous": the paper's Algorithm 1 (single-step gradient method): F is computed once, on
  one batch, under one tape; the critic's ascent and the generator's descent directions are
  both differentiated from it at the same parameters and applied together. Needs d_steps=1.

Architectures (`architecture`; the default follows the data's shape):
- "mlp" for points (image_shape=(d,)): the variational function of the paper's Gaussian
  experiments (section 4.1), two hidden layers of 64 tanh units and a linear output; the
  generator maps 16-d standard normal noise through two ReLU layers of 128 to a linear point;
- "mlp" for images: the layer types of the paper's MNIST networks (section 4.2): G takes 100-d
  uniform noise on [-1, 1] through two linear layers, each followed by batch norm and ReLU; V
  has three linear layers with ELUs in between. The widths, 1200 in G and 240 in V, are those
  of Goodfellow et al.'s MNIST networks, on which the paper builds. G's output is tanh on
  [-1, 1] instead of the paper's sigmoid on [0, 1], the range the family's data pipeline
  scales to;
- "dcgan" for images (the default for images): DCGAN's networks (models/dcgan.py), whose
  discriminator already ends in one linear output, as the paper used for LSUN.

Optimizers: Adam(2e-4, beta1=0.5) for both players, the paper's for images (following DCGAN).
The paper trains its MNIST networks on batches of 4096; the default here is DCGAN's 64, which
fits a CPU. For points the paper took plain gradient steps of 0.01 on batches of 1024; here
Adam(1e-3, beta1=0.5) is used for both players, which trains the small MLPs in far fewer steps.
"""

import keras

from losses import fgan as fgan_losses
from models import dcgan
from models.errors import GanZooError
from models.gan import GAN
from models.options import INT, STR, Option, replace

ARCHITECTURES = ("mlp", "dcgan")
DEFAULT_DIVERGENCE = "jensen_shannon"


def build_point_generator(dim, latent_dim, hidden=128):
    """Noise -> two ReLU layers of `hidden` -> a linear point in R^dim."""
    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for i in range(2):
        x = keras.layers.Dense(hidden, activation="relu", name=f"hidden_{i}")(x)
    return keras.Model(latent, keras.layers.Dense(dim, name="point")(x), name="generator")


def build_point_critic(dim, hidden=64, name="critic"):
    """A point in R^dim -> two tanh layers of `hidden` -> the raw critic output v."""
    point = keras.Input((dim,), name="point")
    x = point
    for i in range(2):
        x = keras.layers.Dense(hidden, activation="tanh", name=f"hidden_{i}")(x)
    return keras.Model(point, keras.layers.Dense(1, name="output")(x), name=name)


def build_image_generator(image_shape, latent_dim, hidden=1200):
    """Noise -> two (linear, batch norm, ReLU) layers of `hidden` -> a tanh image."""
    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for i in range(2):
        x = keras.layers.Dense(hidden, use_bias=False, name=f"hidden_{i}")(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    x = keras.layers.Dense(int(image_shape[0] * image_shape[1] * image_shape[2]), activation="tanh",
                           name="output")(x)
    return keras.Model(latent, keras.layers.Reshape(tuple(image_shape))(x), name="generator")


def build_image_critic(image_shape, hidden=240, name="critic"):
    """An image -> three linear layers with ELUs in between -> the raw critic output v."""
    image = keras.Input(tuple(image_shape), name="image")
    x = keras.layers.Flatten()(image)
    for i in range(2):
        x = keras.layers.Dense(hidden, activation="elu", name=f"hidden_{i}")(x)
    return keras.Model(image, keras.layers.Dense(1, name="output")(x), name=name)


@keras.saving.register_keras_serializable(package="gan_zoo")
class FGAN(GAN):
    """Nowozin et al. 2016: a generator trained to minimise a chosen f-divergence, estimated by
    a critic through its variational lower bound F.

    Args:
        image_shape: images (height, width, channels) or points (d,).
        divergence: one of `losses.fgan.DIVERGENCES` (default `"jensen_shannon"`).
        architecture: `"mlp"` or `"dcgan"`; `"mlp"` for points and `"dcgan"` for images when
            omitted.
        latent_dim: noise size; 100 for images, 16 for points when omitted.
        width: DCGAN's filters in D's first layer (64) with `architecture="dcgan"`.
        generator_loss: `"alternative"` (default) or `"saddle"`.
        update: `"alternating"` (default) or `"simultaneous"` (the paper's Algorithm 1).
        **kwargs: `latent_distribution` (uniform for images, normal for points), `seed`, ... of
            `GAN`.
    """

    paper = "https://arxiv.org/abs/1606.00709"
    default_batch_size = 64
    output_range = (-1.0, 1.0)  # tanh images; points are unbounded
    metric_names = ("d_loss", "g_loss", "divergence_estimate")
    generator_losses = fgan_losses.GENERATOR_LOSSES
    options = replace(
        GAN.options,
        latent_dim=dict(help="noise size (100 for images, 16 for points when omitted)"),
        latent_distribution=dict(help="the noise: uniform on [-1, 1] or standard normal "
                                      "(uniform for images, normal for points)"),
        output_range=dict(help="the generator's output range [low, high] ((-1, 1) for images, "
                               "none for points)"),
    ) + (
        Option("divergence", STR, DEFAULT_DIVERGENCE, "the f-divergence the generator minimises",
               choices=tuple(fgan_losses.DIVERGENCES)),
        Option("architecture", STR, None, "the networks (mlp for points, dcgan for images when "
               "omitted)", choices=ARCHITECTURES),
        Option("width", INT, 64, "DCGAN's filters in D's first layer (architecture=dcgan)",
               minimum=1),
    )

    def __init__(
        self,
        image_shape=(28, 28, 1),
        divergence=DEFAULT_DIVERGENCE,
        architecture=None,
        latent_dim=None,
        width=64,
        **kwargs,
    ):
        self.image_shape = tuple(int(s) for s in image_shape)
        points = len(self.image_shape) == 1
        if not points and len(self.image_shape) != 3:
            raise GanZooError(f"fgan takes images (height, width, channels) or points (d,), "
                              f"got shape {self.image_shape}")
        architecture = architecture or ("mlp" if points else "dcgan")
        if points and architecture != "mlp":
            raise GanZooError("fgan on points takes architecture=mlp")
        self.divergence = divergence
        self.architecture = architecture
        self.width = int(width)
        kwargs.setdefault("name", "fgan")
        if points:
            latent_dim = int(latent_dim or 16)
            kwargs.setdefault("latent_distribution", "normal")
            kwargs.setdefault("output_range", None)
            generator = build_point_generator(self.image_shape[0], latent_dim)
            critic = build_point_critic(self.image_shape[0])
        elif architecture == "mlp":
            latent_dim = int(latent_dim or 100)
            generator = build_image_generator(self.image_shape, latent_dim)
            critic = build_image_critic(self.image_shape)
        else:
            latent_dim = int(latent_dim or 100)
            try:
                dcgan.upsampling_plan(self.image_shape)
            except GanZooError as error:
                raise GanZooError(f"{error}, or pass --model_option architecture=mlp") from None
            generator = dcgan.build_generator(self.image_shape, latent_dim, self.width)
            critic = dcgan.build_discriminator(self.image_shape, self.width, name="critic")
        super().__init__(generator, critic, latent_dim, **kwargs)

    @property
    def critic(self):
        """The paper's variational function V (the discriminator)."""
        return self.discriminator

    # ---------------------------------------------------------------------------- hooks
    def _estimate(self, real_outputs, fake_outputs):
        return fgan_losses.variational_divergence_estimate(real_outputs, fake_outputs, self.divergence)

    def discriminator_objective(self, real, fake, latent):
        """-F on the batch: the critic ascends the lower bound."""
        estimate = self._estimate(self.discriminator(real, training=True),
                                  self.discriminator(fake, training=True))
        return -estimate, {"d_loss": -estimate, "divergence_estimate": estimate}

    def generator_objective(self, fake, latent, real=None):
        g_loss = self._generator_loss_fn(self.discriminator(fake, training=True), self.divergence)
        return g_loss, {"g_loss": g_loss}

    def simultaneous_objective(self, real, fake, latent):
        """F once, from one critic pass on each half of the batch: the critic's loss is -F and
        the generator's is its objective on the same fake outputs (F's own part for `saddle`)."""
        real_outputs = self.discriminator(real, training=True)
        fake_outputs = self.discriminator(fake, training=True)
        estimate = self._estimate(real_outputs, fake_outputs)
        g_loss = self._generator_loss_fn(fake_outputs, self.divergence)
        return -estimate, g_loss, {"d_loss": -estimate, "g_loss": g_loss, "divergence_estimate": estimate}

    def default_optimizers(self):
        rate = 1e-3 if len(self.image_shape) == 1 else 2e-4
        return keras.optimizers.Adam(rate, beta_1=0.5), keras.optimizers.Adam(rate, beta_1=0.5)

    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "divergence": self.divergence,
            "architecture": self.architecture,
            "latent_dim": self.latent_dim,
            "width": self.width,
        }
