"""InfoGAN: Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel 2016, "InfoGAN: Interpretable
Representation Learning by Information Maximizing Generative Adversarial Nets".
Paper: https://arxiv.org/abs/1606.03657.

The generator's input is split into incompressible noise z and structured codes c. By default
(the paper's MNIST setting) z has 62 dimensions, drawn uniformly from [-1, 1] as in the authors'
code, and c is one 10-way categorical code (uniform over the classes) plus 2 continuous codes
drawn from Uniform(-1, 1). The generator sees one concatenated vector

    latent = [z | one-hot of each categorical code | continuous codes]

so the shared `GAN.train_step` passes it along unchanged; `split_latent` / `join_latent` take it
apart and put it back together.

A recognition head Q shares the discriminator's trunk and predicts c from a sample. Both G and
Q minimise lambda * L_info, the negative of the mutual-information lower bound without the
constant H(c) (see `losses.infogan`): softmax cross-entropy for each categorical code and the
Gaussian negative log-likelihood of the continuous codes (without its constant 0.5 log 2 pi).
Q models each continuous code as a factored Gaussian whose std is fixed to 1 by default (the
authors' released MNIST code, `fix_std=True`), so that term is half the squared error of Q's
mean; `learn_std=True` adds a log-std output instead.

    D loss = GAN loss on real and fake + lambda_cat * cross-entropy + lambda_cont * NLL
    G loss = non-saturating GAN loss      + lambda_cat * cross-entropy + lambda_cont * NLL

Q's variables belong to the discriminator network (one model with several outputs), so they
are in `discriminator_variables` and trained by D's optimizer, on the fakes of each D step.

Trackers: `info_loss` (cross-entropy + NLL, unweighted) and `mi_lower_bound` = H(c_cat) -
cross-entropy of the categorical codes, both measured in G's step; the bound rises towards
log 10 = 2.30 as Q learns to read the code G writes. `traversal()` draws the paper's figure
(a row per categorical value, a column per value of one continuous code from -2 to 2, one noise
vector for the whole figure); `training_callbacks()` gives `CodeTraversal` (below), which writes
it to TensorBoard and PNGs every epoch.

Networks (the paper's appendix, table for MNIST; `width=64`, `fc_units=1024`, `q_units=128`):

    D / Q: conv 64 4x4 s2 lReLU -> conv 128 4x4 s2 BN lReLU -> FC 1024 BN lReLU -> logit
           Q head on that trunk:  FC 128 BN lReLU -> code outputs
    G:     FC 1024 BN ReLU -> FC 7x7x128 BN ReLU -> upconv 64 4x4 s2 BN ReLU
           -> upconv (channels) 4x4 s2, tanh

with leaky ReLUs of slope 0.1 (the paper's "leaky rate 0.1"). Other square sizes whose side is a
multiple of 4 get the same two stride-2 stages (G starts from side/4); weights start from
N(0, 0.02) as in DCGAN, on which the paper builds. Optimizers: Adam with beta1 = 0.5, learning
rate 2e-4 for D (and Q) and 1e-3 for G (the paper); batches of 128 (the authors' code).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from losses import infogan as info_losses
from models import layers

# Batch norm here is the ordinary, per-replica one (synchronized=False).
from models.dcgan import batch_norm, weight_init
from models.errors import GanZooError
from models.gan import GAN, draw_noise
from models.images import image_grid, write_png
from models.options import BOOL, FLOAT, INT, INTS, Option, without

LEAK = 0.1  # the paper's leaky rate for D and Q


def check_image_shape(image_shape):
    """The start side of G (side / 4) for a square image whose side is a multiple of 4."""
    if len(image_shape) != 3 or image_shape[0] != image_shape[1]:
        raise GanZooError(
            f"infogan takes square images (side, side, channels), got shape {tuple(image_shape)}; "
            "pass --image_size 28 or 32 to resize"
        )
    side = image_shape[0]
    if side % 4 or side < 8:
        raise GanZooError(
            f"infogan takes images whose side is a multiple of 4 and at least 8 (e.g. 28, 32), "
            f"got {side}; pass --image_size 28 or 32 to resize"
        )
    return side // 4


def build_generator(image_shape, latent_dim, width, fc_units):
    """G: FC BN ReLU -> FC (side/4)^2 x 2*width BN ReLU -> upconv width -> upconv image, tanh."""
    start = check_image_shape(image_shape)
    latent = keras.Input((latent_dim,), name="latent")
    x = keras.layers.Dense(fc_units, use_bias=False, kernel_initializer=weight_init())(latent)
    x = keras.layers.ReLU()(batch_norm(False)(x))
    x = keras.layers.Dense(start * start * 2 * width, use_bias=False, kernel_initializer=weight_init())(x)
    x = keras.layers.ReLU()(batch_norm(False)(x))
    x = keras.layers.Reshape((start, start, 2 * width))(x)
    x = layers.Conv2DTranspose(
        width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=weight_init()
    )(x)
    x = keras.layers.ReLU()(batch_norm(False)(x))
    image = layers.Conv2DTranspose(
        image_shape[-1], 4, strides=2, padding="same", activation="tanh", kernel_initializer=weight_init()
    )(x)
    return keras.Model(latent, image, name="generator")


def build_discriminator(
    image_shape, width, fc_units, q_units, categorical_dims, continuous_dims, learn_std
):
    """D and Q as one network with a dict of outputs.

    `logit` is D's; `categorical_logits` (sum of the categorical sizes, one block per code),
    `continuous_mean` and, with `learn_std`, `continuous_log_std` are Q's. Outputs of codes the
    model does not have are left out.
    """
    check_image_shape(image_shape)
    image = keras.Input(tuple(image_shape), name="image")
    x = layers.Conv2D(width, 4, strides=2, padding="same", kernel_initializer=weight_init())(image)
    x = keras.layers.LeakyReLU(LEAK)(x)  # no batch norm on the input layer
    x = layers.Conv2D(
        2 * width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=weight_init()
    )(x)
    x = keras.layers.LeakyReLU(LEAK)(batch_norm(False)(x))
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(fc_units, use_bias=False, kernel_initializer=weight_init())(x)
    trunk = keras.layers.LeakyReLU(LEAK)(batch_norm(False)(x))
    outputs = {"logit": keras.layers.Dense(1, kernel_initializer=weight_init(), name="logit")(trunk)}

    # Q: one hidden layer on the shared trunk, then the parameters of Q(c | x).
    q = keras.layers.Dense(q_units, use_bias=False, kernel_initializer=weight_init(), name="q_hidden")(trunk)
    q = keras.layers.LeakyReLU(LEAK)(batch_norm(False, name="q_batch_norm")(q))
    if categorical_dims:
        outputs["categorical_logits"] = keras.layers.Dense(
            sum(categorical_dims), kernel_initializer=weight_init(), name="categorical_logits"
        )(q)
    if continuous_dims:
        outputs["continuous_mean"] = keras.layers.Dense(
            continuous_dims, kernel_initializer=weight_init(), name="continuous_mean"
        )(q)
        if learn_std:
            outputs["continuous_log_std"] = keras.layers.Dense(
                continuous_dims, kernel_initializer=weight_init(), name="continuous_log_std"
            )(q)
    return keras.Model(image, outputs, name="discriminator")


def _categorical_sizes(categorical_dims):
    if isinstance(categorical_dims, (int, np.integer)):
        categorical_dims = (categorical_dims,)
    return tuple(int(k) for k in categorical_dims)


@keras.saving.register_keras_serializable(package="gan_zoo")
class InfoGAN(GAN):
    """Chen et al. 2016: a GAN whose codes c are kept recoverable from G(z, c) by a head Q."""

    paper = "https://arxiv.org/abs/1606.03657"
    default_batch_size = 128
    xla_on_cpu = True  # faster with XLA on a CPU (1.11-1.24x measured at batch 64)
    default_d_steps = 1
    output_range = (-1.0, 1.0)
    metric_names = ("d_loss", "g_loss", "d_real", "d_fake", "info_loss", "mi_lower_bound")
    # The latent size is noise_dim + sum(categorical_dims) + continuous_dims, not an option.
    options = without(GAN.options, "latent_dim") + (
        Option("noise_dim", INT, 62, "size of the incompressible noise z", minimum=1),
        Option("categorical_dims", INTS, (10,), "categories of each categorical code, e.g. [10] "
               "or [10, 4]; [] for none", minimum=2),
        Option("continuous_dims", INT, 2, "number of continuous codes, uniform on [-1, 1]",
               minimum=0),
        Option("lambda_cat", FLOAT, 1.0, "weight of the categorical codes' information loss",
               minimum=0),
        Option("lambda_cont", FLOAT, 1.0, "weight of the continuous codes' information loss",
               minimum=0),
        Option("learn_std", BOOL, False, "Q learns the std of the continuous codes (fixed to 1 "
               "otherwise)"),
        Option("width", INT, 64, "filters of D's first convolution (G mirrors it)", minimum=1),
        Option("fc_units", INT, 1024, "units of the fully connected layers of G and D", minimum=1),
        Option("q_units", INT, 128, "units of Q's hidden layer", minimum=1),
    )

    def __init__(
        self,
        image_shape=(28, 28, 1),
        noise_dim=62,
        categorical_dims=(10,),
        continuous_dims=2,
        lambda_cat=1.0,
        lambda_cont=1.0,
        learn_std=False,
        width=64,
        fc_units=1024,
        q_units=128,
        **kwargs,
    ):
        if "latent_dim" in kwargs:
            raise GanZooError(
                "infogan's latent size is noise_dim + sum(categorical_dims) + continuous_dims: "
                "set those instead of latent_dim"
            )
        self.image_shape = tuple(int(s) for s in image_shape)
        self.noise_dim = int(noise_dim)
        self.categorical_dims = _categorical_sizes(categorical_dims)
        self.continuous_dims = int(continuous_dims)
        if not self.categorical_dims and not self.continuous_dims:
            raise GanZooError(
                "infogan needs at least one code: set categorical_dims (e.g. (10,)) or continuous_dims"
            )
        self.lambda_cat = float(lambda_cat)
        self.lambda_cont = float(lambda_cont)
        self.learn_std = bool(learn_std)
        self.width = int(width)
        self.fc_units = int(fc_units)
        self.q_units = int(q_units)
        latent_dim = self.noise_dim + sum(self.categorical_dims) + self.continuous_dims
        kwargs.setdefault("name", "infogan")
        super().__init__(
            build_generator(self.image_shape, latent_dim, self.width, self.fc_units),
            build_discriminator(
                self.image_shape,
                self.width,
                self.fc_units,
                self.q_units,
                self.categorical_dims,
                self.continuous_dims,
                self.learn_std,
            ),
            latent_dim,
            **kwargs,
        )
        # H(c) of the categorical codes: the ceiling of `mi_lower_bound` (log 10 = 2.30 by default).
        self.categorical_entropy = sum(
            info_losses.uniform_categorical_entropy(k) for k in self.categorical_dims
        )

    # ------------------------------------------------------------------ the latent vector
    def sample_latent(self, batch_size, seed=None):
        """[z | one-hot categorical codes | continuous codes] for `batch_size` samples.

        `seed` may be a `keras.random.SeedGenerator`, an int (turned into one, so that the
        noise and the codes come from different streams) or `None` (the model's own stream).
        """
        if seed is None:
            seed = self.seed_generator
        elif isinstance(seed, (int, np.integer)):
            seed = keras.random.SeedGenerator(int(seed))
        parts = [draw_noise((batch_size, self.noise_dim), seed, self.latent_distribution)]
        for k in self.categorical_dims:
            index = keras.random.randint((batch_size,), 0, k, seed=seed)
            parts.append(tf.one_hot(index, k, dtype=tf.float32))
        if self.continuous_dims:
            parts.append(
                keras.random.uniform((batch_size, self.continuous_dims), -1.0, 1.0, seed=seed)
            )
        return tf.concat(parts, axis=-1)

    def split_latent(self, latent):
        """(noise, [one-hot of each categorical code], continuous codes) of latent vectors."""
        sizes = [self.noise_dim, *self.categorical_dims, self.continuous_dims]
        parts = tf.split(tf.convert_to_tensor(latent, tf.float32), sizes, axis=-1)
        return parts[0], list(parts[1:-1]), parts[-1]

    def join_latent(self, noise, categorical_onehots, continuous):
        """The inverse of `split_latent`."""
        parts = [noise, *categorical_onehots]
        if self.continuous_dims:
            parts.append(continuous)
        return tf.concat([tf.cast(p, tf.float32) for p in parts], axis=-1)

    def with_codes(self, latent, categorical=None, continuous=None):
        """`latent` with its categorical and/or continuous codes replaced (noise kept).

        `categorical`: class indices broadcast (numpy rules) to (n, number of categorical codes);
        `continuous`: values broadcast to (n, continuous_dims). `None` keeps the drawn codes.
        """
        noise, onehots, codes = self.split_latent(latent)
        n = int(noise.shape[0])
        if categorical is not None:
            indices = self._broadcast_codes(categorical, n, len(self.categorical_dims), "categorical")
            for i, k in enumerate(self.categorical_dims):
                if np.any(indices[:, i] != np.round(indices[:, i])) or np.any(
                    (indices[:, i] < 0) | (indices[:, i] >= k)
                ):
                    raise GanZooError(
                        f"categorical code {i} takes integers in [0, {k - 1}], got "
                        f"{np.unique(indices[:, i]).tolist()}"
                    )
            onehots = [
                tf.one_hot(indices[:, i].astype(np.int32), k) for i, k in enumerate(self.categorical_dims)
            ]
        if continuous is not None:
            codes = tf.constant(
                self._broadcast_codes(continuous, n, self.continuous_dims, "continuous"), tf.float32
            )
        return self.join_latent(noise, onehots, codes)

    @staticmethod
    def _broadcast_codes(values, n, count, kind):
        if count == 0:
            raise GanZooError(f"this model has no {kind} codes: leave {kind}=None")
        try:
            return np.broadcast_to(np.asarray(values, np.float64), (n, count))
        except ValueError:
            raise GanZooError(
                f"{kind} codes of shape {np.shape(values)} do not broadcast to ({n}, {count}): "
                f"pass a scalar, one value per code ({count},) or one row per sample ({n}, {count})"
            ) from None

    # ------------------------------------------------------------------ the information term
    def information_terms(self, outputs, latent):
        """(cross-entropy summed over the categorical codes, Gaussian NLL of the continuous codes)
        of Q's `outputs` (the discriminator's dict) for the codes inside `latent`."""
        _, onehots, continuous = self.split_latent(latent)
        cross_entropy = tf.constant(0.0)
        if self.categorical_dims:
            logits = tf.split(outputs["categorical_logits"], self.categorical_dims, axis=-1)
            for onehot, code_logits in zip(onehots, logits):
                cross_entropy += info_losses.categorical_info_loss(onehot, code_logits)
        nll = tf.constant(0.0)
        if self.continuous_dims:
            nll = info_losses.continuous_info_loss(
                continuous, outputs["continuous_mean"], outputs.get("continuous_log_std")
            )
        return cross_entropy, nll

    def info_loss(self, fake, latent, training=True):
        """The unweighted information loss (cross-entropy + NLL) of Q on `fake = G(latent)`."""
        cross_entropy, nll = self.information_terms(self.discriminator(fake, training=training), latent)
        return cross_entropy + nll

    def _weighted_info(self, cross_entropy, nll):
        return self.lambda_cat * cross_entropy + self.lambda_cont * nll

    # ----------------------------------------------------------------- hooks of the GAN loop
    def discriminator_objective(self, real, fake, latent):
        """GAN loss of D plus lambda * information loss of Q, both on the shared trunk."""
        real_out = self.discriminator(real, training=True)
        fake_out = self.discriminator(fake, training=True)
        gan_loss = self._discriminator_loss_fn(real_out["logit"], fake_out["logit"])
        cross_entropy, nll = self.information_terms(fake_out, latent)
        d_loss = gan_loss + self._weighted_info(cross_entropy, nll)
        d_real, d_fake = self._discriminator_summary(real_out["logit"], fake_out["logit"])
        return d_loss, {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake}

    def generator_objective(self, fake, latent, real=None):
        """The GAN objective of G (non-saturating by default) plus lambda * information loss."""
        outputs = self.discriminator(fake, training=True)
        cross_entropy, nll = self.information_terms(outputs, latent)
        g_loss = self._generator_loss_fn(outputs["logit"]) + self._weighted_info(cross_entropy, nll)
        return g_loss, {
            "g_loss": g_loss,
            "info_loss": cross_entropy + nll,
            "mi_lower_bound": info_losses.categorical_mi_lower_bound(
                self.categorical_entropy, cross_entropy
            ),
        }

    def default_optimizers(self):
        return (
            keras.optimizers.Adam(2e-4, beta_1=0.5),
            keras.optimizers.Adam(1e-3, beta_1=0.5),
        )

    def training_callbacks(self, logdir):
        """The code traversal figure, every epoch, in TensorBoard and `<logdir>/traversal/`."""
        if not self.continuous_dims:
            return []
        return [CodeTraversal(logdir)]

    # ------------------------------------------------------------------------ inference
    def generate(self, n, seed=None, batch_size=500, *, categorical=None, continuous=None):
        """`n` images in [0, 1]; the same `seed` gives the same images.

        `categorical` / `continuous` fix the codes (broadcast to (n, number of codes), see
        `with_codes`); the noise and any code left as `None` are drawn from `seed` exactly as
        without them, so changing a code changes only what that code controls.
        """
        seed_generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        if categorical is not None:
            categorical = self._broadcast_codes(categorical, n, len(self.categorical_dims), "categorical")
        if continuous is not None:
            continuous = self._broadcast_codes(continuous, n, self.continuous_dims, "continuous")
        sampler = self.sampler
        chunks = []
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            latent = self.sample_latent(stop - start, seed=seed_generator)
            latent = self.with_codes(
                latent,
                None if categorical is None else categorical[start:stop],
                None if continuous is None else continuous[start:stop],
            )
            chunks.append(self.to_unit_range(sampler(latent, training=False)))
        return np.concatenate([np.asarray(c) for c in chunks], axis=0)

    def traversal_samples(self, seed=0, code=0, steps=10, categorical_code=0, limit=2.0):
        """The images of the paper's traversal figure, shape (rows, steps, h, w, c) in [0, 1].

        Rows take the values 0..k-1 of categorical code `categorical_code` (one row if the model
        has no categorical code); columns sweep continuous code `code` evenly from -limit to
        +limit (the paper goes beyond the prior's [-1, 1] to show extrapolation). The noise, and
        any other categorical code, is drawn once from `seed` and shared by the whole figure;
        the other continuous codes are 0.
        """
        if not 0 <= code < self.continuous_dims:
            raise GanZooError(
                f"code must index one of the {self.continuous_dims} continuous codes, got {code}"
            )
        if self.categorical_dims and not 0 <= categorical_code < len(self.categorical_dims):
            raise GanZooError(
                f"categorical_code must index one of the {len(self.categorical_dims)} categorical "
                f"codes, got {categorical_code}"
            )
        if steps < 1:
            raise GanZooError(f"steps must be at least 1, got {steps}")
        rows = self.categorical_dims[categorical_code] if self.categorical_dims else 1
        base = self.sample_latent(1, seed=keras.random.SeedGenerator(seed))
        latent = tf.tile(base, (rows * steps, 1))
        categorical = None
        if self.categorical_dims:
            _, onehots, _ = self.split_latent(base)
            categorical = np.tile([int(np.argmax(o[0])) for o in onehots], (rows * steps, 1))
            categorical[:, categorical_code] = np.repeat(np.arange(rows), steps)
        continuous = np.zeros((rows * steps, self.continuous_dims))
        continuous[:, code] = np.tile(np.linspace(-limit, limit, steps), rows)
        latent = self.with_codes(latent, categorical, continuous)
        samples = np.asarray(self.to_unit_range(self.sampler(latent, training=False)))
        return samples.reshape(rows, steps, *samples.shape[1:])

    def traversal(self, seed=0, code=0, steps=10, categorical_code=0, limit=2.0):
        """The traversal figure as one uint8 image grid: a row per categorical value, a column
        per value of continuous code `code` from -limit to +limit (see `traversal_samples`)."""
        samples = self.traversal_samples(seed, code, steps, categorical_code, limit)
        return image_grid(samples.reshape(-1, *samples.shape[2:]), columns=steps)

    def read_code(self, images, code=0, batch_size=500):
        """Q's reading of categorical code `code` from `images` (values in `output_range`, as
        the discriminator sees them): the most likely value per image, int64 of shape (n,).
        Read against dataset labels it is the paper's unsupervised classification."""
        if not 0 <= code < len(self.categorical_dims):
            raise GanZooError(
                f"code must index one of the {len(self.categorical_dims)} categorical codes, got {code}"
            )
        start = sum(self.categorical_dims[:code])
        stop = start + self.categorical_dims[code]
        logits = [
            np.asarray(self.discriminator(images[i : i + batch_size], training=False)["categorical_logits"])
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(logits)[:, start:stop].argmax(axis=1)

    # ------------------------------------------------------------------------ config
    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "noise_dim": self.noise_dim,
            "categorical_dims": self.categorical_dims,
            "continuous_dims": self.continuous_dims,
            "lambda_cat": self.lambda_cat,
            "lambda_cont": self.lambda_cont,
            "learn_std": self.learn_std,
            "width": self.width,
            "fc_units": self.fc_units,
            "q_units": self.q_units,
        }


class CodeTraversal(keras.callbacks.Callback):
    """Draws the model's latent-code traversal figure (`InfoGAN.traversal`) after every epoch.

    One figure per continuous code: rows are the values of the first categorical code, columns
    sweep the continuous code from -2 to 2, with the noise fixed by `seed` for the whole figure.
    The figures go to TensorBoard under the tag `traversal` (run `traversal`, its own writer in
    `<logdir>/traversal/`) and to `<logdir>/traversal/epoch_NNNN_code_K.png`.
    """

    def __init__(self, logdir, seed=0, steps=10, codes=None):
        super().__init__()
        self.logdir = logdir
        self.seed = seed
        self.steps = steps
        self.codes = codes  # indices of the continuous codes to draw; None: all of them
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "traversal"))

    def pictures(self):
        """{continuous code index: its traversal figure as a uint8 image}."""
        codes = range(self.model.continuous_dims) if self.codes is None else self.codes
        return {k: self.model.traversal(seed=self.seed, code=k, steps=self.steps) for k in codes}

    def on_epoch_end(self, epoch, logs=None):
        pictures = self.pictures()
        with self._writer.as_default():
            tf.summary.image(
                "traversal", np.stack(list(pictures.values())), step=epoch + 1, max_outputs=len(pictures)
            )
        self._writer.flush()
        for k, picture in pictures.items():
            write_png(os.path.join(self.logdir, "traversal", f"epoch_{epoch + 1:04d}_code_{k}.png"), picture)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
