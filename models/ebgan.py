"""EBGAN: Zhao, Mathieu & LeCun 2016, "Energy-based Generative Adversarial Network".
Paper: https://arxiv.org/abs/1609.03126.

The discriminator is an auto-encoder that assigns each sample an energy, its reconstruction
error; it learns low energies on data and energies of at least a margin m on fakes, while the
generator lowers the energy of its samples (see `losses.ebgan`):

    D loss = mean D(x) + mean max(0, m - D(G(z)))
    G loss = mean D(G(z)) + pt_weight * PT(Enc(G(z)))         (EBGAN-PT, pt_weight = 0.1)

The energy here is the *mean* squared reconstruction error over a sample's pixels and channels,
on images in [-1, 1], so it lies around 0.01-0.05 for a good reconstruction and around E[x^2]
(about 0.7 for Fashion-MNIST) for a reconstruction that is all zeros.

Margin. The paper uses m = 10 on MNIST for the L2 reconstruction norm ||Dec(Enc(x)) - x|| of
784 pixels in [0, 1]; that norm equals 10 at a per-pixel mean squared error of 10^2 / 784 = 0.13
in [0, 1] units, i.e. 4 x 0.13 = 0.51 for pixels in [-1, 1]. The default `margin=0.5` is that
same operating point on this energy's scale: far above the energy of a good reconstruction, and
a little below that of an all-zero reconstruction, so D must do real work to push fakes there
and the hinge switches off once it has. It does not depend on the image size.

Networks ("DCGAN-style", the paper's setup for its convolutional experiments, at 28x28):

    G:  DCGAN's generator (`models.dcgan.build_generator`), 100-d uniform noise
        -> 7x7x128 BN ReLU -> upconv 64 4x4 s2 BN ReLU -> upconv 1 4x4 s2, tanh
    D:  encoder  conv 64 4x4 s2 lReLU(0.2) -> conv 128 4x4 s2 BN lReLU(0.2)
                 -> flatten -> FC `embedding_dim` (64, linear): the embedding s that PT uses
        decoder  FC 7x7x128 BN ReLU -> upconv 64 4x4 s2 BN ReLU -> upconv 1 4x4 s2 (linear)

The dense embedding is a bottleneck (64 numbers for 784 pixels), so the auto-encoder cannot
simply learn the identity and give every input a low energy. The decoder's output is linear so
fake energies are not capped below the margin. Other square sizes of side 4..8 x 2^n follow
DCGAN's plan (one stride-2 stage per doubling, widths doubling from 64). Weights start from
N(0, 0.02).

Optimizer: Adam with learning rate 1e-3 for both networks, the paper's best EBGAN-PT setting in
its MNIST grid search; beta1 = 0.5 as in DCGAN, whose setup the paper's convolutional models
follow. Batches of 64.
"""

import keras
import tensorflow as tf

from losses import ebgan as ebgan_losses
from models import layers

# Batch norm here is the ordinary, per-replica one (synchronized=False).
from models.dcgan import batch_norm, build_generator, upsampling_plan, weight_init
from models.errors import GanZooError
from models.gan import GAN
from models.options import FLOAT, INT, Option, replace


def autoencoder_plan(image_shape):
    """(smallest side, number of stride-2 stages) for the auto-encoder and the generator."""
    try:
        return upsampling_plan(image_shape)
    except GanZooError:
        raise GanZooError(
            f"ebgan takes square images of side 4..8 x 2^n with n >= 2 (e.g. 28, 32, 64), got "
            f"shape {tuple(image_shape)}; pass --image_size 32 or 64 to resize"
        ) from None


def build_discriminator(image_shape, width, embedding_dim):
    """The auto-encoder: image -> {"reconstruction": image-shaped, "embedding": (embedding_dim,)}."""
    side, stages = autoencoder_plan(image_shape)
    image = keras.Input(tuple(image_shape), name="image")

    # Encoder: DCGAN's discriminator convolutions, then a dense code.
    x = image
    for i in range(stages):
        x = layers.Conv2D(
            width * 2**i, 4, strides=2, padding="same", use_bias=i == 0, kernel_initializer=weight_init()
        )(x)
        if i > 0:  # no batch norm on the input layer
            x = batch_norm(False)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Flatten()(x)
    embedding = keras.layers.Dense(embedding_dim, kernel_initializer=weight_init(), name="embedding")(x)

    # Decoder: the mirror image, back to the input's shape.
    channels = width * 2 ** (stages - 1)
    x = keras.layers.Dense(side * side * channels, use_bias=False, kernel_initializer=weight_init())(embedding)
    x = keras.layers.ReLU()(batch_norm(False)(x))
    x = keras.layers.Reshape((side, side, channels))(x)
    for _ in range(stages - 1):
        channels //= 2
        x = layers.Conv2DTranspose(
            channels, 4, strides=2, padding="same", use_bias=False, kernel_initializer=weight_init()
        )(x)
        x = keras.layers.ReLU()(batch_norm(False)(x))
    reconstruction = layers.Conv2DTranspose(
        image_shape[-1], 4, strides=2, padding="same", kernel_initializer=weight_init(), name="reconstruction"
    )(x)
    return keras.Model(
        image, {"reconstruction": reconstruction, "embedding": embedding}, name="discriminator"
    )


@keras.saving.register_keras_serializable(package="gan_zoo")
class EBGAN(GAN):
    """Zhao et al. 2016: an auto-encoder discriminator whose reconstruction error is the energy."""

    paper = "https://arxiv.org/abs/1609.03126"
    default_batch_size = 64
    default_d_steps = 1
    output_range = (-1.0, 1.0)
    metric_names = ("d_loss", "g_loss", "real_energy", "fake_energy", "pt")
    generator_losses = {"energy": ebgan_losses.ebgan_generator_loss}
    options = replace(GAN.options, latent_dim=dict(default=100)) + (
        Option("margin", FLOAT, 0.5, "m: D pushes the energy of fakes up to at least m", minimum=0,
               exclusive_minimum=True),
        Option("pt_weight", FLOAT, 0.1, "weight of the pulling-away term in G's loss", minimum=0),
        Option("width", INT, 64, "filters of the encoder's first layer, doubling per layer",
               minimum=1),
        Option("embedding_dim", INT, 64, "size of the auto-encoder's code", minimum=1),
        Option("learning_rate", FLOAT, 1e-3, "Adam's learning rate for both networks", minimum=0,
               exclusive_minimum=True),
    )

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        margin=0.5,
        pt_weight=0.1,
        width=64,
        embedding_dim=64,
        learning_rate=1e-3,
        **kwargs,
    ):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.margin = float(margin)
        self.pt_weight = float(pt_weight)
        self.width = int(width)
        self.embedding_dim = int(embedding_dim)
        self.learning_rate = float(learning_rate)
        autoencoder_plan(self.image_shape)  # the family's own message for shapes it cannot take
        kwargs.setdefault("name", "ebgan")
        super().__init__(
            build_generator(self.image_shape, latent_dim, self.width),
            build_discriminator(self.image_shape, self.width, self.embedding_dim),
            latent_dim,
            **kwargs,
        )

    def energy(self, samples, training=False):
        """(per-sample energy of shape (batch,), encoder embedding) of `samples`."""
        outputs = self.discriminator(samples, training=training)
        energy = ebgan_losses.reconstruction_energy(samples, outputs["reconstruction"])
        return energy, outputs["embedding"]

    def discriminator_objective(self, real, fake, latent):
        """Low energy on data, at least `margin` on fakes."""
        real_energy, _ = self.energy(real, training=True)
        fake_energy, _ = self.energy(fake, training=True)
        d_loss = ebgan_losses.ebgan_discriminator_loss(real_energy, fake_energy, self.margin)
        return d_loss, {
            "d_loss": d_loss,
            "real_energy": tf.reduce_mean(real_energy),
            "fake_energy": tf.reduce_mean(fake_energy),
        }

    def generator_objective(self, fake, latent, real=None):
        """The energy of the fakes plus the pulling-away term on their embeddings."""
        fake_energy, embedding = self.energy(fake, training=True)
        pt = ebgan_losses.pulling_away_term(embedding)
        g_loss = self._generator_loss_fn(fake_energy) + self.pt_weight * pt
        return g_loss, {"g_loss": g_loss, "pt": pt}

    def default_optimizers(self):
        return (
            keras.optimizers.Adam(self.learning_rate, beta_1=0.5),
            keras.optimizers.Adam(self.learning_rate, beta_1=0.5),
        )

    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "margin": self.margin,
            "pt_weight": self.pt_weight,
            "width": self.width,
            "embedding_dim": self.embedding_dim,
            "learning_rate": self.learning_rate,
        }

