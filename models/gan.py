"""The two-player update shared by every model of the zoo.

`GAN` is a `keras.Model` whose `train_step` performs one iteration of Algorithm 1 of
Goodfellow et al. 2014 (https://arxiv.org/abs/1406.2661): `d_steps` discriminator updates, each
on its own slice of the real batch and fresh noise, then one generator update. Each update has
its own `tf.GradientTape` and its own optimizer. With `update="simultaneous"` the step is
instead the single-step gradient method of f-GAN (Nowozin et al. 2016,
https://arxiv.org/abs/1606.00709, Algorithm 1): one tape, one batch, both players' gradients
taken at the same parameters and applied together.

What `fit` does with a dataset. One step of `fit` is one generator update, and it consumes one
batch of the dataset, whatever its size (a final partial batch too):

- the batch of n samples is cut into `d_steps` slices of consecutive samples, of near-equal
  size, the larger first (`split_batch`): n=64 with d_steps=5 gives 13, 13, 13, 13, 12; n=32
  gives 7, 7, 6, 6, 6; when d_steps divides n the slices are equal (n=320: 5 x 64). Each
  discriminator (critic) update takes one slice and as many fresh latents;
- the generator update then draws as many latents as the first slice has samples;
- a batch smaller than d_steps (a last batch of 3 with d_steps=5) still makes d_steps updates,
  on one-sample slices that cycle through it (samples 0, 1, 2, 0, 1).

So the "batch size" of a critic update is about n / d_steps: to give each of WGAN's 5 critic
updates 64 samples, batch the dataset by 5 * 64 = 320, as the trainer in train/ does (it feeds
`d_steps * batch_size` samples per step, with drop_remainder, so its slices are always equal).
An epoch of N samples batched by n is ceil(N / n) generator updates. WGAN's schedule="paper"
makes 100 critic updates in some steps: they cycle through the step's d_steps slices (each
trimmed to floor(n / d_steps) samples so that the loop has one shape), reusing every slice about
100 / d_steps times instead of reading new data.

Families change *what* is optimised, never the loop, by overriding small hooks:

    sample_latent(batch_size, seed)          the generator's input
    discriminator_objective(real, fake, latent) -> (loss, logs)
    generator_objective(fake, latent, real)  -> (loss, logs)
    discriminator_variables / generator_variables
    after_discriminator_step()               e.g. WGAN's weight clipping
    discriminator_phase(real, slices)        the discriminator updates of a step: one per slice,
                                             or a schedule (WGAN's 100-update phases)
    simultaneous_objective(real, fake, latent) -> (d_loss, g_loss, logs), for update="simultaneous"
    training_callbacks(logdir)               e.g. InfoGAN's traversal figure in TensorBoard
    default_optimizers()                     the paper's optimizers, used by compile()

`real` is the step's batch of real samples, or `(samples, labels)` for a family whose
`conditional` is true (the pipeline then yields labels). `logs` maps tracker names (listed in
`metric_names`) to scalars; they reach the progress bar, `History` and TensorBoard through
`keras.metrics.Mean` trackers.

Arguments are declared once, with their types and ranges, in each family's `options` (see
models/options.py); `models.get` and `from_config` check values against them.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from losses import gan as gan_losses
from models import options as declared
from models.errors import GanZooError
from models.options import FLOAT, INT, RANGE, STR, Option

LATENT_DISTRIBUTIONS = ("uniform", "normal")
UPDATES = ("alternating", "simultaneous")


def _batch_size(real):
    """The number of samples in `real` (a tensor, or a tuple whose first entry is the samples):
    an int when the batch size is static, else a scalar tensor."""
    samples = tf.nest.flatten(real)[0]
    return samples.shape[0] or tf.shape(samples)[0]


def split_batch(real, parts):
    """`real` (a tensor, or a tuple of tensors sharing their first axis) cut into `parts` slices,
    one per discriminator update.

    A batch of n >= parts samples gives runs of consecutive samples of near-equal size, the
    larger first (n=32, parts=5: 7, 7, 6, 6, 6); when parts divides n they are `tf.split`'s
    equal slices. A batch smaller than `parts` gives one-sample slices that cycle through it
    (n=3, parts=5: samples 0, 1, 2, 0, 1). n may be known only when the step runs.
    """
    if parts == 1:
        return [real]
    n = _batch_size(real)
    if isinstance(n, int) and n % parts == 0:
        pieces = [tf.split(t, parts) for t in tf.nest.flatten(real)]
        return [tf.nest.pack_sequence_as(real, list(piece)) for piece in zip(*pieces)]
    return [batch_slice(real, i, parts) for i in range(parts)]


def batch_slice(real, index, parts, equal=False):
    """Slice `index` (an int or a scalar tensor) of `split_batch(real, parts)`.

    `equal=True` trims every slice to floor(n / parts) samples (at least one), so that all have
    one shape: for a loop whose index is a tensor (WGAN's 100-update phases).
    """
    n = _batch_size(real)
    if isinstance(n, int):
        small, extra = divmod(n, parts)
        if n < parts:
            start, size = index % n, 1
        elif isinstance(index, int):
            start = index * small + min(index, extra)
            size = small + (1 if index < extra and not equal else 0)
        else:
            start = index * small + tf.minimum(index, extra)
            size = small if equal else small + tf.cast(index < extra, tf.int32)
    else:
        small, extra = n // parts, n % parts
        start = tf.where(n < parts, index % n, index * small + tf.minimum(index, extra))
        if equal:
            size = tf.maximum(small, 1)
        else:
            size = tf.where(n < parts, 1, small + tf.cast(index < extra, tf.int32))
    rows = start + tf.range(size)
    return tf.nest.map_structure(lambda t: tf.gather(t, rows), real)


def draw_noise(shape, seed, distribution="uniform"):
    """Noise from a `keras.random.SeedGenerator` or an int seed: uniform on [-1, 1] or normal.

    The same seed gives the same noise in the same execution mode; XLA's random-number kernels
    differ from TensorFlow's, so a `jit_compile=True` step draws another (equally seeded) stream.
    """
    if distribution == "uniform":
        return keras.random.uniform(shape, minval=-1.0, maxval=1.0, seed=seed)
    return keras.random.normal(shape, seed=seed)


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy set to `name` (e.g. "mixed_bfloat16"; None keeps it) for the
    layers built inside the block, and restored after it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or previous)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@keras.saving.register_keras_serializable(package="gan_zoo")
class GAN(keras.Model):
    """A generator and a discriminator trained against each other with `fit()`.

    Args:
        generator: a model from latent vectors to samples.
        discriminator: a model from samples to one logit per sample.
        latent_dim: size of the generator's input; read from `generator` when omitted.
        d_steps: discriminator updates per generator update (k in Algorithm 1; the family's
            `default_d_steps` when omitted). Each takes its own slice of the batch (see the
            module docstring), so batches of `d_steps * batch_size` samples give each update
            `batch_size` of them.
        generator_loss: one of the family's `generator_losses`; for the GAN `"non_saturating"`
            (maximise log D(G(z)), the default) or `"minimax"` (minimise log(1 - D(G(z)))).
        latent_distribution: `"uniform"` on [-1, 1] or standard `"normal"`.
        output_range: the generator's output range, e.g. (-1, 1) for tanh; `None` for
            unbounded outputs such as 2-D points.
        seed: seeds the model's noise (`keras.random.SeedGenerator`).
        update: `"alternating"` (discriminator step(s), then a generator step on fresh noise) or
            `"simultaneous"` (both players' gradients from one tape on one batch, taken at the
            same parameters and applied together; needs d_steps=1).
        ema_decay: keep an exponential moving average of the generator's weights, with this decay
            (e.g. 0.999), and draw samples with it (see `sampler`); None: no average.
    """

    metric_names = ("d_loss", "g_loss", "d_real", "d_fake")
    # The generator objectives a family offers, the first being its default.
    generator_losses = gan_losses.GENERATOR_LOSSES
    output_range = (-1.0, 1.0)  # of the generator; families with other outputs override it
    default_batch_size = 64
    default_d_steps = 1
    conditional = False  # True: trained on (samples, labels) batches
    # XLA for jit_compile="auto" on a CPU: only where the CPU benchmark measured it faster.
    xla_on_cpu = False

    # The arguments every family shares (see models/options.py); a family adds its own with
    # `options = GAN.options + (...)`, and gives a shared one its own default or help with
    # `models.options.replace(GAN.options, name=dict(default=...))`.
    options = (
        Option("latent_dim", INT, None, "size of the generator's input noise", minimum=1),
        Option("d_steps", INT, lambda family: family.default_d_steps,
               "discriminator updates per generator update, each on its own slice of the batch",
               minimum=1),
        Option("generator_loss", STR, lambda family: next(iter(family.generator_losses)),
               "the generator's objective", choices=lambda family: tuple(family.generator_losses),
               noun="generator loss"),
        Option("latent_distribution", STR, "uniform",
               "the noise: uniform on [-1, 1] or standard normal", choices=LATENT_DISTRIBUTIONS),
        Option("output_range", RANGE, lambda family: family.output_range,
               "the generator's output range [low, high]; none for unbounded samples such as 2-D "
               "points", optional=True),
        Option("seed", INT, None, "seeds the model's noise (none: a random stream)", optional=True),
        Option("update", STR, "alternating",
               "alternating (discriminator step(s), then a generator step) or simultaneous "
               "(both players' gradients from one tape; needs d_steps=1)", choices=UPDATES),
        Option("ema_decay", FLOAT, None,
               "decay of a moving average of G's weights that samples are drawn with, e.g. 0.999 "
               "(none: no average)", minimum=0, maximum=1, exclusive_maximum=True, optional=True),
    )

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim=None,
        *,
        d_steps=None,
        generator_loss=None,
        latent_distribution="uniform",
        output_range=(-1.0, 1.0),
        seed=None,
        update="alternating",
        ema_decay=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Types and ranges are checked by the declarations (`options`) in models.get and
        # from_config; what needs more than one value is checked here.
        d_steps = self.default_d_steps if d_steps is None else d_steps
        if update == "simultaneous" and int(d_steps) != 1:
            raise GanZooError(f"update=simultaneous takes one step for both players, not d_steps={d_steps}: "
                              "pass --d_steps 1 or use update=alternating")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim or generator.inputs[0].shape[-1])
        self.d_steps = int(d_steps)
        self.generator_loss = generator_loss or next(iter(self.generator_losses))
        self._generator_loss_fn = self.generator_losses[self.generator_loss]
        # The discriminator's loss that goes with the objective (LSGAN changes both players').
        self._discriminator_loss_fn, self._discriminator_summary = gan_losses.DISCRIMINATOR_LOSSES.get(
            self.generator_loss, gan_losses.DISCRIMINATOR_LOSSES["non_saturating"])
        self.latent_distribution = latent_distribution
        self.update = update
        self.output_range = None if output_range is None else tuple(map(float, output_range))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self.d_optimizer = None
        self.g_optimizer = None
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_weights = self._make_ema_weights() if self.ema_decay is not None else []
        self.sample_with_ema = True  # False: `sampler` is the trained generator even with an average
        self.built = True

    # ----------------------------------------------------------------- hooks for families
    def sample_latent(self, batch_size, seed=None):
        """Draws the generator's input for `batch_size` samples."""
        return draw_noise(
            (batch_size, self.latent_dim),
            self.seed_generator if seed is None else seed,
            self.latent_distribution,
        )

    def discriminator_objective(self, real, fake, latent):
        """The discriminator's loss, -V(D, G), and what to track."""
        real_logits = self.discriminator(real, training=True)
        fake_logits = self.discriminator(fake, training=True)
        d_loss = self._discriminator_loss_fn(real_logits, fake_logits)
        d_real, d_fake = self._discriminator_summary(real_logits, fake_logits)
        return d_loss, {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake}

    def generator_objective(self, fake, latent, real=None):
        """The generator's loss under the chosen objective."""
        fake_logits = self.discriminator(fake, training=True)
        g_loss = self._generator_loss_fn(fake_logits)
        return g_loss, {"g_loss": g_loss}

    def simultaneous_objective(self, real, fake, latent):
        """Both players' losses on one batch, for `update="simultaneous"`: the two hooks above
        by default; a family whose players share one objective can compute it once."""
        d_loss, d_logs = self.discriminator_objective(real, fake, latent)
        g_loss, g_logs = self.generator_objective(fake, latent, real)
        return d_loss, g_loss, {**d_logs, **g_logs}

    @property
    def discriminator_variables(self):
        return self.discriminator.trainable_variables

    @property
    def generator_variables(self):
        return self.generator.trainable_variables

    def after_discriminator_step(self):
        """Runs after every discriminator update (nothing for the plain GAN)."""
        return None

    def training_callbacks(self, logdir):
        """Family-specific callbacks the trainer adds (e.g. InfoGAN's traversal figure)."""
        return []

    def default_optimizers(self):
        """The optimizers `compile()` uses when none are given: `(d_optimizer, g_optimizer)`."""
        return (
            keras.optimizers.Adam(2e-4, beta_1=0.5),
            keras.optimizers.Adam(2e-4, beta_1=0.5),
        )

    # --------------------------------------------------------------------- Keras plumbing
    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`; a `tf.data.Dataset` is not shuffled again unless `shuffle` is
        given (it shuffles itself; Keras would only warn that it ignores `shuffle=True`)."""
        if isinstance(x, tf.data.Dataset) and "shuffle" not in kwargs and len(args) < 8:
            kwargs["shuffle"] = False
        return super().fit(x, *args, **kwargs)

    def call(self, latent, training=False):
        return self.generator(latent, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, d_optimizer=None, g_optimizer=None, *, jit_compile="auto", **kwargs):
        """Sets the two optimizers (the paper's when omitted) and builds them.

        `jit_compile="auto"` (Keras' spelling) or None (an unset flag) compiles the train step
        with XLA where that is faster, see `xla_by_default`; True or False decide.
        """
        default_d, default_g = self.default_optimizers()
        self.d_optimizer = keras.optimizers.get(d_optimizer) if d_optimizer else default_d
        self.g_optimizer = keras.optimizers.get(g_optimizer) if g_optimizer else default_g
        if self.d_optimizer is self.g_optimizer:
            raise GanZooError(
                "d_optimizer and g_optimizer must be two optimizer objects, not the same one"
            )
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            # float16 gradients underflow without loss scaling; each optimizer scales its own.
            self.d_optimizer, self.g_optimizer = (
                opt if isinstance(opt, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(opt)
                for opt in (self.d_optimizer, self.g_optimizer)
            )
        if jit_compile is None or jit_compile == "auto":
            jit_compile = self.xla_by_default()
        # Passing the generator's optimizer keeps Keras from creating a stray default one
        # (TensorBoard reads `model.optimizer` for its learning-rate scalar).
        super().compile(optimizer=self.g_optimizer, jit_compile=jit_compile, **kwargs)
        # Both optimizers must exist before fit(), in particular under a distribution strategy.
        self.d_optimizer.build(self.discriminator_variables)
        self.g_optimizer.build(self.generator_variables)

    def xla_by_default(self):
        """Whether `jit_compile="auto"` means XLA: on a GPU or TPU yes; on a CPU only for the
        families whose `xla_on_cpu` is set, and never under a multi-replica strategy.

        TensorFlow's own CPU kernels run convolutions and matmuls through oneDNN, which XLA's
        CPU backend does not match: `python -m train.benchmark` measures most families faster
        without XLA on a CPU, and a family turns XLA on there only where it measured faster.
        """
        if self._replicas() > 1:
            return False
        if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
            return True
        return self.xla_on_cpu

    def get_compile_config(self):
        if self.d_optimizer is None:
            return None
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            "jit_compile": self.jit_compile,
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
            jit_compile=config.get("jit_compile", "auto"),
        )

    def _state_variables(self):
        # The noise state is saved with the weights so that a resumed run draws the noise an
        # uninterrupted one would have drawn.
        return self._trainable_variables + self._non_trainable_variables + [self.seed_generator.state]

    def _layer_seed_states(self):
        """The states of the networks' random layers (e.g. Dropout's SeedGenerator).

        Keras leaves them out of the weights (`variables` has them, `weights` does not); they are
        saved with the GAN's own values so that a resumed run draws the same dropout masks.
        """
        own = {id(v) for v in self._state_variables()}
        weights = {id(v) for v in self.weights}
        return [v for v in self.variables if id(v) not in weights and id(v) not in own]

    def save_own_variables(self, store):
        for i, variable in enumerate(self._state_variables() + self._layer_seed_states()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        variables = self._state_variables()
        seed_states = self._layer_seed_states()
        # Files saved before the layers' seed states were included hold only `variables`.
        if len(store.keys()) not in (len(variables), len(variables) + len(seed_states)):
            raise GanZooError(
                f"the weights file holds {len(store.keys())} values for {self.name}, which has "
                f"{len(variables) + len(seed_states)}: it was saved by another model"
            )
        if len(store.keys()) > len(variables):
            variables = variables + seed_states
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])

    def load_weights(self, filepath, *args, **kwargs):
        """`keras.Model.load_weights`, failing with one `GanZooError` that names the file when
        it is missing, truncated, tampered with (a `<file>.sha256` next to it disagrees) or was
        saved by another model."""
        from models import saving

        saving.load_weights(self, filepath, lambda path: super(GAN, self).load_weights(path, *args, **kwargs))

    def _base_config(self):
        """The arguments every family shares; families add their own to it."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "d_steps": self.d_steps,
            "generator_loss": self.generator_loss,
            "latent_distribution": self.latent_distribution,
            "output_range": self.output_range,
            "seed": self.seed,
            "update": self.update,
            "ema_decay": self.ema_decay,
            # The dtype policy the networks compute in (mixed_bfloat16, ...): a loaded model
            # computes as the saved one did, whatever the global policy at load time.
            "precision": self.generator.dtype_policy.name,
        }

    def get_config(self):
        return {
            **self._base_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
        }

    @classmethod
    def from_config(cls, config):
        # A stored configuration is checked as keyword arguments are (the networks, the name
        # and the precision are not declared options and pass as they are).
        config = declared.parse(cls, dict(config), config.get("name"), unknown="keep")
        with dtype_policy(config.pop("precision", None)):
            for key in ("generator", "discriminator"):
                if key in config:
                    config[key] = keras.saving.deserialize_keras_object(config[key])
            return cls(**config)

    # ------------------------------------------------------------------- the update itself
    # ------------------------------------------------------------- per-replica arithmetic
    # Under a distribution strategy `train_step` runs once per replica on its slice of the
    # global batch. Three rules keep every replica count equivalent to one device:
    #  - each replica's loss (a mean over its slice) is divided by the replica count, and the
    #    optimizer sums the replicas' gradients: the gradient of the global-batch mean;
    #  - every replica draws the noise of the whole global batch from the shared seed state and
    #    keeps its own slice, so the samples do not depend on the replica count;
    #  - tracked values are averaged over replicas before they reach the trackers.
    @staticmethod
    def _replicas():
        return tf.distribute.get_strategy().num_replicas_in_sync

    def _scale_for_replicas(self, loss):
        return loss / self._replicas()

    def replica_noise(self, draw, batch_size):
        """`draw(n)` for the whole global batch, cut to this replica's `batch_size` rows.

        Families use it for any per-sample randomness of the train step (the latent, WGAN-GP's
        interpolation weights) so that replicas get different draws and N replicas draw
        exactly what one device would.
        """
        replicas = self._replicas()
        if replicas == 1:
            return draw(batch_size)
        noise = draw(batch_size * replicas)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        rows = tf.range(batch_size) + replica * batch_size
        return keras.tree.map_structure(lambda t: tf.gather(t, rows), noise)

    def _replica_latent(self, batch_size):
        return self.replica_noise(self.sample_latent, batch_size)

    def _track(self, logs):
        context = tf.distribute.get_replica_context()
        for name, value in logs.items():
            value = tf.cast(value, tf.float32)
            if context is not None and context.num_replicas_in_sync > 1:
                value = context.all_reduce(tf.distribute.ReduceOp.MEAN, value)
            self.trackers[name].update_state(value)

    def _real(self, data):
        """The real samples of a batch, or (samples, labels) for a conditional family."""
        if isinstance(data, (tuple, list)):
            return tuple(data[:2]) if self.conditional else data[0]
        if self.conditional:
            raise GanZooError(f"{self.name} is conditional: train it on (images, labels) batches, "
                              "e.g. a labelled dataset such as fashion_mnist")
        return data

    def _discriminator_update(self, real):
        batch_size = _batch_size(real)
        latent = self._replica_latent(batch_size)
        fake = self.generator(latent, training=True)
        with tf.GradientTape() as tape:
            d_loss, logs = self.discriminator_objective(real, fake, latent)
            scaled = self.d_optimizer.scale_loss(self._scale_for_replicas(d_loss))
        variables = self.discriminator_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self.after_discriminator_step()
        self._track(logs)

    def _generator_update(self, real):
        latent = self._replica_latent(_batch_size(real))
        with tf.GradientTape() as tape:
            fake = self.generator(latent, training=True)
            g_loss, logs = self.generator_objective(fake, latent, real)
            scaled = self.g_optimizer.scale_loss(self._scale_for_replicas(g_loss))
        variables = self.generator_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self._update_ema()
        self._track(logs)

    def _simultaneous_update(self, real):
        """Algorithm 1 of f-GAN: one tape over both players on one batch; each player's gradient
        is taken at the current parameters of both, then both optimizers step."""
        latent = self._replica_latent(_batch_size(real))
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator(latent, training=True)
            d_loss, g_loss, logs = self.simultaneous_objective(real, fake, latent)
            d_scaled = self.d_optimizer.scale_loss(self._scale_for_replicas(d_loss))
            g_scaled = self.g_optimizer.scale_loss(self._scale_for_replicas(g_loss))
        d_variables, g_variables = self.discriminator_variables, self.generator_variables
        d_gradients = tape.gradient(d_scaled, d_variables)
        g_gradients = tape.gradient(g_scaled, g_variables)
        del tape
        self.d_optimizer.apply_gradients(zip(d_gradients, d_variables))
        self.after_discriminator_step()
        self.g_optimizer.apply_gradients(zip(g_gradients, g_variables))
        self._update_ema()
        self._track(logs)

    def discriminator_phase(self, real, slices):
        """The discriminator's updates of one train step: one per slice of the batch (`d_steps`).
        `real` is the whole batch, for a family with a schedule of its own (WGAN's)."""
        for part in slices:
            self._discriminator_update(part)

    def train_step(self, data):
        """One generator update: the batch is cut into `d_steps` slices (see `split_batch`), one
        per discriminator update, then the generator takes as many samples as the first slice."""
        real = self._real(data)
        slices = split_batch(real, self.d_steps)
        if self.update == "simultaneous":
            self._simultaneous_update(slices[0])
        else:
            self.discriminator_phase(real, slices)
            self._generator_update(slices[0])
        return self._logs()

    def _logs(self):
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker logs with a mean over axis 0, which scalars lack.
            logs = {name: tf.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    # ------------------------------------------------------- moving average of G's weights
    # With `ema_decay` set, the GAN holds a shadow of every trainable weight of the generator,
    # updated after each generator step (see `_update_ema`). The shadows are the GAN's own
    # weights, so checkpoints, `.weights.h5` and `.keras` files carry them, and a resumed run
    # continues the same average. Under a distribution strategy every replica computes the same
    # update from the same (synchronized) generator weights; the first replica's is kept.
    def _make_ema_weights(self):
        shadows = []
        for i, weight in enumerate(self.generator.trainable_variables):
            shadow = self.add_weight(shape=weight.shape, initializer="zeros", dtype=weight.dtype,
                                     trainable=False, autocast=False,
                                     aggregation="only_first_replica", name=f"ema_{i}")
            shadow.assign(weight)
            shadows.append(shadow)
        return shadows

    def ema_decay_now(self):
        """The decay of the next update: `ema_decay`, lowered early in training to
        (1 + t) / (10 + t) after t generator steps, so that the average forgets the random
        initial weights within a short run (the warm-up of `tf.train.ExponentialMovingAverage`'s
        `num_updates`)."""
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        return tf.minimum(tf.constant(self.ema_decay, tf.float32), (1.0 + step) / (10.0 + step))

    def _update_ema(self):
        if self.ema_decay is None:
            return
        decay = self.ema_decay_now()
        for shadow, weight in zip(self.ema_weights, self.generator.trainable_variables):
            shadow.assign_sub((1.0 - decay) * (shadow.value - tf.cast(weight.value, shadow.dtype)))

    # ------------------------------------------------------------------------ inference
    @property
    def sampler(self):
        """The network to draw samples with: what `generate()`, the sample grids, evaluation and
        export use. `self.generator` is the network being trained; with `ema_decay` set, the
        sampler is a copy of it holding the moving average of its trainable weights (and its
        current batch-norm statistics), refreshed at every access, unless `sample_with_ema` is
        set to False."""
        if self.ema_decay is None or not self.sample_with_ema:
            return self.generator
        network = self.__dict__.get("_ema_network")
        if network is None:
            with dtype_policy(self.generator.dtype_policy.name):
                network = keras.models.clone_model(self.generator)
            # Kept out of Keras' tracking: the copy is not part of the model's saved state.
            object.__setattr__(self, "_ema_network", network)
        for target, shadow in zip(network.trainable_variables, self.ema_weights):
            target.assign(shadow)
        for target, source in zip(network.non_trainable_variables, self.generator.non_trainable_variables):
            target.assign(source)
        return network

    def to_unit_range(self, samples):
        """Maps generator outputs from `output_range` to [0, 1] (identity for 2-D data), in
        float32 whatever the compute dtype."""
        samples = tf.cast(samples, tf.float32)
        if self.output_range is None:
            return samples
        low, high = self.output_range
        return tf.clip_by_value((samples - low) / (high - low), 0.0, 1.0)

    def generate(self, n, seed=None, batch_size=500):
        """`n` samples as a numpy array; images in [0, 1]. The same `seed` gives the same samples."""
        seed_generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        sampler = self.sampler
        chunks = []
        for start in range(0, n, batch_size):
            latent = self.sample_latent(min(batch_size, n - start), seed=seed_generator)
            chunks.append(self.to_unit_range(sampler(latent, training=False)))
        return np.concatenate([np.asarray(c) for c in chunks], axis=0)
