"""A plain small DCGAN: the reference point the zoo's presets are measured against.

The architecture of the GAN example in the Keras documentation ("Customizing what happens in
`fit()`": a GAN with an overridden `train_step`, for 28x28 MNIST digits), written for any image
of side 4 x 2^n:

    G: 128-d standard normal noise -> dense 7x7x128 -> LeakyReLU(0.2)
       -> [transposed conv 128, 4x4, stride 2 -> LeakyReLU(0.2)] x 2 -> conv 7x7 -> sigmoid
    D: [conv 64 then 128, 3x3, stride 2 -> LeakyReLU(0.2)] -> global max pooling -> one logit

no batch norm, Keras' default initialisers, Adam(3e-4) for both networks, the GAN objective with
the non-saturating generator loss, batches of 64. The example's random jitter of the
discriminator's labels is left out: this is the plain GAN objective.
"""

import keras

from models import layers
from models.errors import GanZooError
from models.gan import GAN
from models.options import FLOAT, INT, Option, replace


def _doublings(image_shape):
    if len(image_shape) != 3 or image_shape[0] != image_shape[1] or image_shape[0] % 4:
        raise GanZooError(
            f"baseline_dcgan takes square images whose side is a multiple of 4 (e.g. 28, 32), "
            f"got shape {tuple(image_shape)}; pass --image_size 28 or 32 to resize"
        )
    return image_shape[0] // 4


def build_generator(image_shape, latent_dim, width):
    start = _doublings(image_shape)
    latent = keras.Input((latent_dim,), name="latent")
    x = keras.layers.Dense(start * start * width)(latent)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Reshape((start, start, width))(x)
    for _ in range(2):
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    image = layers.Conv2D(image_shape[-1], 7, padding="same", activation="sigmoid")(x)
    return keras.Model(latent, image, name="generator")


def build_discriminator(image_shape, width):
    _doublings(image_shape)
    image = keras.Input(tuple(image_shape), name="image")
    x = image
    for filters in (width // 2, width):
        x = layers.Conv2D(filters, 3, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(image, logit, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_zoo")
class BaselineDCGAN(GAN):
    """The small DCGAN of the Keras documentation's GAN example, as a baseline."""

    paper = "https://keras.io/guides/custom_train_step_in_tensorflow/"
    default_batch_size = 64
    output_range = (0.0, 1.0)
    options = replace(GAN.options, latent_dim=dict(default=128),
                      latent_distribution=dict(default="normal")) + (
        Option("width", INT, 128, "filters of G's layers and of D's last (D's first has half)",
               minimum=2),
        Option("learning_rate", FLOAT, 3e-4, "Adam's learning rate for both networks", minimum=0,
               exclusive_minimum=True),
    )

    def __init__(self, image_shape=(28, 28, 1), latent_dim=128, width=128, learning_rate=3e-4,
                 **kwargs):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.width = int(width)
        self.learning_rate = float(learning_rate)
        kwargs.setdefault("name", "baseline_dcgan")
        kwargs.setdefault("latent_distribution", "normal")
        kwargs.setdefault("output_range", (0.0, 1.0))
        super().__init__(
            build_generator(self.image_shape, latent_dim, self.width),
            build_discriminator(self.image_shape, self.width),
            latent_dim,
            **kwargs,
        )

    def default_optimizers(self):
        return keras.optimizers.Adam(self.learning_rate), keras.optimizers.Adam(self.learning_rate)

    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "width": self.width,
            "learning_rate": self.learning_rate,
        }
