"""Conditional GAN: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets".
Paper: https://arxiv.org/abs/1411.1784.

Both players are given the class label y: the generator maps (z, y) to a sample and the
discriminator scores the pair (x, y), so the game of Goodfellow et al. becomes

    min_G max_D  E_{(x, y) ~ data}[log D(x, y)] + E_{z, y}[log(1 - D(G(z, y), y))].

D sees real images with their dataset labels and fakes with the labels G was asked for: a fake
that looks like a garment but not like its class is still caught, which teaches G to draw the
class it is given. G's labels are drawn uniformly over the classes (Fashion-MNIST is balanced).
The generator objective and the matching D loss are the GAN's (non-saturating by default,
`generator_loss="minimax"` or `"least_squares"` as for every logit family).

Networks. The paper's MNIST networks are MLPs (G: z -> 200 ReLU and y -> 1000 ReLU, joined ->
1200 ReLU -> sigmoid image; D: maxout layers on x and on y, joined -> maxout -> sigmoid) trained
with SGD, a decaying learning rate and dropout; the paper itself reports a lower Parzen
log-likelihood for them than for the unconditional GAN (132 against 225). This family keeps the
paper's idea -- y is an extra input of both networks, joined at the input -- on DCGAN networks
(Radford et al. 2015, see models/dcgan.py), which learn garments quickly on a CPU: an epoch of
Fashion-MNIST takes under 1.5 minutes on 2 cores (XLA), and after 0.6 epoch trousers, dresses,
sandals, sneakers and boots are already drawn to order (see below). For 28x28 images
(`width=64`):

    G: [z (100) | label code] -> FC 7x7x128 BN ReLU -> upconv 64 4x4 s2 BN ReLU
       -> upconv (channels) 4x4 s2, tanh
    D: [x | label planes] -> conv 64 4x4 s2 lReLU(0.2) -> conv 128 4x4 s2 BN lReLU -> logit

Other square sizes of side 4..8 x 2^n double the map n times, as in DCGAN. `label_encoding`
chooses how y enters:

    "onehot"     G appends the one-hot y to z (the paper's input); D appends the one-hot y
                 broadcast over the image as `num_classes` constant channels (default);
    "embedding"  G appends a learned `embedding_dim`-vector of y to z; D appends a learned h x w
                 plane of y to the image as one extra channel.

One-hot is the default because it conditions sooner: after 600 steps of batch 64 on
Fashion-MNIST (about 0.6 epoch) the zoo classifier gave the requested class to 69% of one-hot
samples against 41% of embedding ones (the learned plane starts small next to the pixels, so
D reads the label late).

Batch norm is synchronized across replicas (`sync_batch_norm=True`), weights start from
N(0, 0.02) and both players use Adam(2e-4, beta1=0.5) on batches of 64, as in DCGAN.

The generator's input ("latent") is the pair `(noise, labels)`: float32 (n, latent_dim) and int32
(n,). `generate(n, labels=...)` draws a chosen class; `class_grid_latent` gives the training-time
sample grid a row per class with the same noise in each column.
"""

import math
import numbers

import keras
import numpy as np

from models import dcgan
from models.errors import GanZooError
from models.gan import GAN, draw_noise
from models.options import BOOL, INT, STR, Option, replace

LABEL_ENCODINGS = ("onehot", "embedding")


def check_image_shape(image_shape):
    """Refuses, with cgan's own message, a shape DCGAN's networks cannot take."""
    if len(image_shape) != 3:
        raise GanZooError(
            f"cgan generates images (height, width, channels), not samples of shape "
            f"{tuple(image_shape)}: train it on a labelled image dataset such as fashion_mnist"
        )
    try:
        dcgan.upsampling_plan(image_shape)
    except GanZooError:
        raise GanZooError(
            f"cgan takes square images of side 4..8 x 2^n with n >= 2 (e.g. 28, 32, 64), got "
            f"shape {tuple(image_shape)}; pass --image_size 32 or 64 to resize"
        ) from None


def build_generator(image_shape, latent_dim, num_classes, label_encoding, embedding_dim, width,
                    sync_batch_norm=True):
    """G(noise, label): the label's code joined to the noise, then DCGAN's upsampling stack."""
    check_image_shape(image_shape)
    noise = keras.Input((latent_dim,), name="noise")
    labels = keras.Input((), dtype="int32", name="label")
    if label_encoding == "onehot":
        code = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot", name="label_onehot")(labels)
    else:
        code = keras.layers.Embedding(num_classes, embedding_dim, name="label_embedding")(labels)
    x = keras.layers.Concatenate(name="noise_and_label")([noise, code])
    image = dcgan.generator_stack(x, image_shape, width, sync_batch_norm)
    return keras.Model([noise, labels], image, name="generator")


def _label_planes(labels, image_shape, num_classes, label_encoding):
    """The label as extra image channels: one learned plane, or the one-hot over every pixel."""
    height, width = image_shape[:2]
    if label_encoding == "onehot":
        onehot = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot", name="label_onehot")(labels)
        onehot = keras.layers.Reshape((1, 1, num_classes))(onehot)
        return keras.layers.UpSampling2D((height, width), name="label_planes")(onehot)
    plane = keras.layers.Embedding(num_classes, height * width, name="label_embedding")(labels)
    return keras.layers.Reshape((height, width, 1), name="label_planes")(plane)


def build_discriminator(image_shape, num_classes, label_encoding, width, sync_batch_norm=True):
    """D(image, label): the label's planes joined to the image, then DCGAN's strided convs."""
    check_image_shape(image_shape)
    image = keras.Input(tuple(image_shape), name="image")
    labels = keras.Input((), dtype="int32", name="label")
    planes = _label_planes(labels, image_shape, num_classes, label_encoding)
    x = keras.layers.Concatenate(name="image_and_label")([image, planes])
    logit = dcgan.discriminator_stack(x, image_shape, width, sync_batch_norm)
    return keras.Model([image, labels], logit, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_zoo")
class CGAN(GAN):
    """Mirza & Osindero 2014: G(z, y) and D(x, y) on DCGAN networks, y a class label.

    Args (besides the GAN's):
        image_shape: (side, side, channels) of the samples.
        latent_dim: size of the noise z (the label is a separate input).
        num_classes: number of classes; labels are integers in [0, num_classes).
        label_encoding: "onehot" or "embedding" (learned codes), see the module docstring.
        embedding_dim: size of G's learned label code (unused with "onehot").
        width: filters of D's first layer, doubling per layer (G mirrors it).
        sync_batch_norm: batch statistics of the global batch under a multi-replica strategy.
    """

    paper = "https://arxiv.org/abs/1411.1784"
    default_batch_size = 64
    conditional = True
    options = replace(GAN.options, latent_dim=dict(default=100, help="size of the noise z (the "
                                                                   "label is a separate input)")) + (
        Option("num_classes", INT, 10, "number of classes; labels are integers in [0, num_classes)",
               minimum=2),
        Option("label_encoding", STR, "onehot", "how the label enters both networks: one-hot "
               "codes or learned embeddings", choices=LABEL_ENCODINGS),
        Option("embedding_dim", INT, 50, "size of G's learned label code (label_encoding="
               "embedding)", minimum=1),
        Option("width", INT, 64, "filters of D's first layer, doubling per layer (G mirrors it)",
               minimum=1),
        Option("sync_batch_norm", BOOL, True,
               "batch statistics of the global batch under a multi-replica strategy"),
    )

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        num_classes=10,
        label_encoding="onehot",
        embedding_dim=50,
        width=64,
        sync_batch_norm=True,
        **kwargs,
    ):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_classes = int(num_classes)
        self.label_encoding = label_encoding
        self.embedding_dim = int(embedding_dim)
        self.width = int(width)
        self.sync_batch_norm = bool(sync_batch_norm)
        kwargs.setdefault("name", "cgan")
        super().__init__(
            build_generator(self.image_shape, int(latent_dim), self.num_classes, label_encoding,
                            self.embedding_dim, self.width, self.sync_batch_norm),
            build_discriminator(self.image_shape, self.num_classes, label_encoding, self.width,
                                self.sync_batch_norm),
            int(latent_dim),
            **kwargs,
        )

    # ----------------------------------------------------------------- the latent pair
    def sample_latent(self, batch_size, seed=None):
        """(noise (batch_size, latent_dim), labels (batch_size,) uniform over the classes).

        `seed` may be a `keras.random.SeedGenerator`, an int (turned into one, so that the
        noise and the labels come from different streams) or `None` (the model's own stream).
        """
        if seed is None:
            seed = self.seed_generator
        elif isinstance(seed, (int, np.integer)):
            seed = keras.random.SeedGenerator(int(seed))
        noise = draw_noise((batch_size, self.latent_dim), seed, self.latent_distribution)
        labels = keras.random.randint((batch_size,), 0, self.num_classes, dtype="int32", seed=seed)
        return noise, labels

    def class_labels(self, labels, n):
        """`labels` as an int32 array of n classes: an int (one class for all), a sequence of n
        ints, or None (returned as None: draw them). Anything else is a GanZooError."""
        if labels is None:
            return None
        expected = (f"pass an int in [0, {self.num_classes - 1}] (one class for all), a sequence "
                    f"of n={n} of them, or None (uniform over the classes)")
        if isinstance(labels, (bool, np.bool_, str, bytes)):
            raise GanZooError(f"labels must be class numbers, got {labels!r}: {expected}")
        if isinstance(labels, numbers.Integral):
            array = np.full(n, int(labels), np.int64)
        else:
            try:
                array = np.asarray(labels)
            except (TypeError, ValueError):
                array = np.asarray(None)
            if array.ndim != 1 or array.dtype.kind not in "iu":
                raise GanZooError(f"labels must be class numbers, got {_short(labels)}: {expected}")
            if len(array) != n:
                raise GanZooError(f"{len(array)} labels for n={n} samples: {expected}")
        outside = np.unique(array[(array < 0) | (array >= self.num_classes)])
        if outside.size:
            listed = ", ".join(map(str, outside[:5].tolist()))
            raise GanZooError(
                f"label{'s' if outside.size > 1 else ''} {listed} out of range: pass classes "
                f"in [0, {self.num_classes - 1}] ({self.name} has {self.num_classes} classes)"
            )
        return array.astype(np.int32)

    def class_grid_latent(self, n, seed=0):
        """(latent, columns) of a grid with one row per class and ceil(n / num_classes) columns;
        each column shares one noise vector, so a row shows a class and a column a style."""
        columns = max(1, math.ceil(n / self.num_classes))
        seed = seed if isinstance(seed, keras.random.SeedGenerator) else keras.random.SeedGenerator(seed)
        noise, _ = self.sample_latent(columns, seed=seed)
        noise = keras.ops.tile(noise, (self.num_classes, 1))
        labels = np.repeat(np.arange(self.num_classes, dtype=np.int32), columns)
        return (noise, keras.ops.convert_to_tensor(labels)), columns

    # ----------------------------------------------------------------- hooks of the GAN loop
    def discriminator_objective(self, real, fake, latent):
        """D on (real images, their labels) against (G(z, y), y)."""
        images, labels = real
        real_logits = self.discriminator([images, labels], training=True)
        fake_logits = self.discriminator([fake, latent[1]], training=True)
        d_loss = self._discriminator_loss_fn(real_logits, fake_logits)
        d_real, d_fake = self._discriminator_summary(real_logits, fake_logits)
        return d_loss, {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake}

    def generator_objective(self, fake, latent, real=None):
        """G's objective on D(G(z, y), y)."""
        fake_logits = self.discriminator([fake, latent[1]], training=True)
        g_loss = self._generator_loss_fn(fake_logits)
        return g_loss, {"g_loss": g_loss}

    # ------------------------------------------------------------------------ inference
    def generate(self, n, seed=None, batch_size=500, *, labels=None):
        """`n` images in [0, 1] of the classes `labels` (see `class_labels`; None: uniform).

        The same `seed` gives the same images; the noise is drawn exactly as without `labels`,
        so changing the labels changes only the classes.
        """
        labels = self.class_labels(labels, n)
        seed_generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        sampler = self.sampler
        chunks = []
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            noise, drawn = self.sample_latent(stop - start, seed=seed_generator)
            if labels is not None:
                drawn = keras.ops.convert_to_tensor(labels[start:stop])
            chunks.append(self.to_unit_range(sampler([noise, drawn], training=False)))
        return np.concatenate([np.asarray(c) for c in chunks], axis=0)

    # ------------------------------------------------------------------------ config
    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "label_encoding": self.label_encoding,
            "embedding_dim": self.embedding_dim,
            "width": self.width,
            "sync_batch_norm": self.sync_batch_norm,
        }


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
