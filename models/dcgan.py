"""DCGAN: Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks". Paper: https://arxiv.org/abs/1511.06434.

The paper's architecture guidelines, applied to square images of side 4..8 x 2^n (28, 32, 64):

- no pooling: strided convolutions in D, fractionally strided (transposed) convolutions in G;
- G projects 100-d uniform noise to a small spatial map and doubles it n times;
- batch norm everywhere except G's output layer and D's input layer;
- ReLU in G with tanh on the output; LeakyReLU(0.2) in D; D's last feature map is flattened
  into a single logit;
- weights from N(0, 0.02); Adam(2e-4, beta1=0.5) for both networks; batches of 128 in the paper.

Batch norm is synchronized across replicas by default (`sync_batch_norm=True`), so training on
N devices computes the statistics of the global batch, exactly as on one device.

Widths follow the authors' released code (64 filters in D's first layer, doubling per layer;
G mirrors it), e.g. 64x64x3: G 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3.
"""

import keras

from models import layers
from models.errors import GanZooError
from models.gan import GAN
from models.options import BOOL, INT, Option, replace


def upsampling_plan(image_shape):
    """(start side, number of doublings) for a square image, or a GanZooError."""
    if len(image_shape) != 3 or image_shape[0] != image_shape[1]:
        raise GanZooError(
            f"dcgan takes square images (side, side, channels), got shape {tuple(image_shape)}; "
            "pass --image_size 32 or 64 to resize"
        )
    side, doublings = image_shape[0], 0
    while side % 2 == 0 and side // 2 >= 4:
        side //= 2
        doublings += 1
    if doublings < 2 or side > 8:
        raise GanZooError(
            f"dcgan takes images of side 4..8 x 2^n with n >= 2 (e.g. 28, 32, 64), "
            f"got {image_shape[0]}; pass --image_size 32 or 64 to resize"
        )
    return side, doublings


def weight_init():
    """The paper's weight initialisation: N(0, 0.02)."""
    return keras.initializers.RandomNormal(0.0, 0.02)


def batch_norm(synchronized=True, name=None):
    """The batch norm of DCGAN's networks (momentum 0.9, epsilon 1e-5, gamma from N(1, 0.02)).

    Synchronized: under a multi-replica strategy the statistics are those of the global batch,
    as on one device (on one device it is the ordinary batch norm). Training mode runs
    TensorFlow's fused batch-norm kernel (`models.layers.BatchNormalization`).
    """
    return layers.batch_norm_class()(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02),
        synchronized=synchronized,
        name=name,
    )


def generator_stack(x, image_shape, width, sync_batch_norm=True):
    """DCGAN's generator from a flat input tensor `x` to an image tensor: a projection to the
    smallest map, then transposed convolutions doubling it, tanh on the output."""
    side, doublings = upsampling_plan(image_shape)
    channels = width * 2 ** (doublings - 1)
    x = keras.layers.Dense(side * side * channels, use_bias=False, kernel_initializer=weight_init())(x)
    x = keras.layers.Reshape((side, side, channels))(x)
    x = keras.layers.ReLU()(batch_norm(sync_batch_norm)(x))
    for _ in range(doublings - 1):
        channels //= 2
        x = layers.Conv2DTranspose(
            channels, 4, strides=2, padding="same", use_bias=False, kernel_initializer=weight_init()
        )(x)
        x = keras.layers.ReLU()(batch_norm(sync_batch_norm)(x))
    return layers.Conv2DTranspose(
        image_shape[-1], 4, strides=2, padding="same", activation="tanh", kernel_initializer=weight_init()
    )(x)


def discriminator_stack(x, image_shape, width, sync_batch_norm=True):
    """DCGAN's discriminator from an image-sized tensor `x` to one logit: strided convolutions
    (no batch norm on the input layer), LeakyReLU(0.2), flattened into a dense logit."""
    _, doublings = upsampling_plan(image_shape)
    for i in range(doublings):
        x = layers.Conv2D(
            width * 2**i, 4, strides=2, padding="same", use_bias=i == 0, kernel_initializer=weight_init()
        )(x)
        if i > 0:  # no batch norm on the input layer
            x = batch_norm(sync_batch_norm)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(1, kernel_initializer=weight_init(), name="logit")(x)


def build_generator(image_shape, latent_dim, width, sync_batch_norm=True):
    latent = keras.Input((latent_dim,), name="latent")
    image = generator_stack(latent, image_shape, width, sync_batch_norm)
    return keras.Model(latent, image, name="generator")


def build_discriminator(image_shape, width, name="discriminator", sync_batch_norm=True):
    image = keras.Input(tuple(image_shape), name="image")
    logit = discriminator_stack(image, image_shape, width, sync_batch_norm)
    return keras.Model(image, logit, name=name)


@keras.saving.register_keras_serializable(package="gan_zoo")
class DCGAN(GAN):
    """Radford et al. 2015: the all-convolutional GAN."""

    paper = "https://arxiv.org/abs/1511.06434"
    default_batch_size = 64
    options = replace(GAN.options, latent_dim=dict(default=100)) + (
        Option("width", INT, 64, "filters of D's first layer, doubling per layer (G mirrors it)",
               minimum=1),
        Option("sync_batch_norm", BOOL, True,
               "batch statistics of the global batch under a multi-replica strategy"),
    )

    def __init__(
        self, image_shape=(28, 28, 1), latent_dim=100, width=64, sync_batch_norm=True, **kwargs
    ):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.width = int(width)
        self.sync_batch_norm = bool(sync_batch_norm)
        kwargs.setdefault("name", "dcgan")
        super().__init__(
            build_generator(self.image_shape, latent_dim, self.width, self.sync_batch_norm),
            build_discriminator(self.image_shape, self.width, sync_batch_norm=self.sync_batch_norm),
            latent_dim,
            **kwargs,
        )

    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "width": self.width,
            "sync_batch_norm": self.sync_batch_norm,
        }
