"""The original GAN of Goodfellow et al. 2014, "Generative Adversarial Nets".

Paper: https://arxiv.org/abs/1406.2661. The MNIST networks of the paper's released code:

    G: 100-d uniform noise -> 1200 ReLU -> 1200 ReLU -> sigmoid image (values in [0, 1])
    D: dropout 0.2 -> maxout 240 units x 5 pieces -> dropout 0.5 -> maxout 240 x 5
       -> dropout 0.5 -> one logit

with the code's weight initialisation (uniform on +-0.05 in G, +-0.005 in D) and its max-norm
constraint on D (every column of a D weight matrix kept at norm <= 1.9365), trained with SGD
(learning rate 0.1 decayed by a factor 1.000004 per step, momentum 0.5) on batches of 100.
The constraint is what keeps that large learning rate stable: without it D's weights blow up
within the first epoch. For 2-D data (`image_shape=(2,)`) the same shapes are used with small widths and
a linear output, as in the mixture-of-Gaussians studies that followed the paper.
"""

import keras
import numpy as np

from models.errors import GanZooError
from models.gan import GAN
from models.options import FLOAT, INT, Option, replace


@keras.saving.register_keras_serializable(package="gan_zoo")
class Maxout(keras.layers.Layer):
    """A dense layer of `units` maxout units with `pieces` linear pieces each."""

    def __init__(
        self, units, pieces, kernel_initializer="glorot_uniform", kernel_constraint=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.units = units
        self.pieces = pieces
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.dense = keras.layers.Dense(
            units * pieces,
            kernel_initializer=self.kernel_initializer,
            kernel_constraint=self.kernel_constraint,
        )

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        z = self.dense(inputs)
        z = keras.ops.reshape(z, (-1, self.units, self.pieces))
        return keras.ops.max(z, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "pieces": self.pieces,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
        }


MAX_COLUMN_NORM = 1.9365  # D's weight constraint in the paper's code


def build_generator(image_shape, latent_dim, hidden):
    init = keras.initializers.RandomUniform(-0.05, 0.05)
    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for i in range(2):
        x = keras.layers.Dense(hidden, activation="relu", kernel_initializer=init, name=f"hidden_{i}")(x)
    is_image = len(image_shape) > 1
    x = keras.layers.Dense(
        int(np.prod(image_shape)),
        activation="sigmoid" if is_image else None,
        kernel_initializer=init,
        name="output",
    )(x)
    x = keras.layers.Reshape(image_shape)(x)
    return keras.Model(latent, x, name="generator")


def build_discriminator(image_shape, units, pieces, input_dropout, hidden_dropout):
    sample = keras.Input(image_shape, name="sample")
    x = keras.layers.Flatten()(sample)
    x = keras.layers.Dropout(input_dropout)(x)
    init = keras.initializers.RandomUniform(-0.005, 0.005)
    constraint = keras.constraints.MaxNorm(MAX_COLUMN_NORM, axis=0)
    for i in range(2):
        x = Maxout(units, pieces, init, constraint, name=f"maxout_{i}")(x)
        x = keras.layers.Dropout(hidden_dropout)(x)
    logit = keras.layers.Dense(
        1, kernel_initializer=init, kernel_constraint=constraint, name="logit"
    )(x)
    return keras.Model(sample, logit, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_zoo")
class MLPGAN(GAN):
    """Goodfellow et al. 2014: fully connected G and maxout D, for images or 2-D points."""

    paper = "https://arxiv.org/abs/1406.2661"
    default_batch_size = 100
    xla_on_cpu = True  # its dense layers gain from XLA's fusion on a CPU (1.02-1.12x measured)
    output_range = (0.0, 1.0)
    options = replace(
        GAN.options,
        latent_dim=dict(default=100),
        output_range=dict(help="the generator's output range [low, high] ((0, 1) for images, "
                               "none for 2-D points)"),
    ) + (
        Option("g_hidden", INT, None, "units of G's two hidden layers (1200 for images, 128 for "
               "2-D points when omitted)", minimum=1),
        Option("d_units", INT, None, "maxout units of D's two layers (240 for images, 64 for 2-D "
               "points when omitted)", minimum=1),
        Option("d_pieces", INT, 5, "linear pieces of each maxout unit", minimum=1),
        Option("input_dropout", FLOAT, None, "dropout rate of D's input (0.2 for images, 0 for "
               "2-D points when omitted)", minimum=0, maximum=1, exclusive_maximum=True),
        Option("hidden_dropout", FLOAT, None, "dropout rate after D's maxout layers (0.5 for "
               "images, 0 for 2-D points when omitted)", minimum=0, maximum=1,
               exclusive_maximum=True),
        Option("learning_rate", FLOAT, 0.1, "SGD's initial learning rate (decayed by 1.000004 per "
               "step)", minimum=0, exclusive_minimum=True),
        Option("momentum", FLOAT, 0.5, "SGD's momentum", minimum=0, maximum=1),
    )

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        g_hidden=None,
        d_units=None,
        d_pieces=5,
        input_dropout=None,
        hidden_dropout=None,
        learning_rate=0.1,
        momentum=0.5,
        **kwargs,
    ):
        image_shape = tuple(int(s) for s in image_shape)
        points = image_shape == (2,)
        if not points and len(image_shape) != 3:
            raise GanZooError(
                f"mlp_gan takes images (height, width, channels) or 2-D points, got shape {image_shape}"
            )
        # Paper widths for images; small widths and no input dropout for 2-D points.
        self.g_hidden = g_hidden or (128 if points else 1200)
        self.d_units = d_units or (64 if points else 240)
        self.d_pieces = d_pieces
        self.input_dropout = (0.0 if points else 0.2) if input_dropout is None else input_dropout
        self.hidden_dropout = (0.0 if points else 0.5) if hidden_dropout is None else hidden_dropout
        self.image_shape = image_shape
        self.learning_rate = learning_rate
        self.momentum = momentum
        kwargs.setdefault("name", "mlp_gan")
        kwargs.setdefault("output_range", None if points else (0.0, 1.0))
        super().__init__(
            build_generator(image_shape, latent_dim, self.g_hidden),
            build_discriminator(
                image_shape, self.d_units, d_pieces, self.input_dropout, self.hidden_dropout
            ),
            latent_dim,
            **kwargs,
        )

    def default_optimizers(self):
        def sgd():
            schedule = keras.optimizers.schedules.ExponentialDecay(
                self.learning_rate, decay_steps=1, decay_rate=1 / 1.000004
            )
            return keras.optimizers.SGD(schedule, momentum=self.momentum)

        return sgd(), sgd()

    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "g_hidden": self.g_hidden,
            "d_units": self.d_units,
            "d_pieces": self.d_pieces,
            "input_dropout": self.input_dropout,
            "hidden_dropout": self.hidden_dropout,
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
        }
