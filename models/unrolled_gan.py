"""Unrolled GAN: Metz, Poole, Pfau & Sohl-Dickstein 2016, "Unrolled Generative Adversarial
Networks". Paper: https://arxiv.org/abs/1611.02163.

The generator is trained against the discriminator it would face k updates from now. With
theta_D^0 the discriminator's current parameters and

    theta_D^{i+1} = theta_D^i - eta * d L_D(theta_G, theta_D^i) / d theta_D^i    (k times),

the generator minimises its usual loss under theta_D^k, differentiating through the k updates:
its gradient includes how the discriminator would react to a change of the generator, which
is what discourages it from hopping from mode to mode. The discriminator itself takes its
normal single step; the unrolled parameters are thrown away. `unroll_steps=0` is exactly the
plain GAN.

The simulated updates follow the discriminator's own optimizer (Adam with its current moment
estimates and step count, or SGD with momentum), all k on the step's real slice and the
generator's fake batch. Weight constraints (the MLP GAN's max-norm) are not applied to the
simulated parameters, and batch-norm statistics are those of each simulated batch.

Architectures (`architecture`):
- "mlp" for 2-D points, the paper's mixture-of-Gaussians networks: G 256-d standard normal
  noise -> 128 ReLU -> 128 ReLU -> 2 (linear); D 2 -> 128 ReLU -> 1 logit; Adam(1e-4,
  beta1=0.5) for both, batches of 512;
- "mlp" for images: the MLP GAN's networks (models/mlp_gan.py), outputs rescaled to [-1, 1],
  with its SGD (learning rate 0.1, momentum 0.5);
- "dcgan" for images (the default for images): DCGAN's networks and Adam (models/dcgan.py).
"""

import keras
import tensorflow as tf

from models import dcgan, mlp_gan
from models.errors import GanZooError
from models.gan import GAN
from models.options import FLOAT, INT, STR, Option, replace

ARCHITECTURES = ("mlp", "dcgan")
MAX_UNROLL_STEPS = 10


def build_point_generator(latent_dim, hidden=128):
    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for i in range(2):
        x = keras.layers.Dense(hidden, activation="relu", name=f"hidden_{i}")(x)
    return keras.Model(latent, keras.layers.Dense(2, name="point")(x), name="generator")


def build_point_discriminator(hidden=128):
    point = keras.Input((2,), name="point")
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(point)
    return keras.Model(point, keras.layers.Dense(1, name="logit")(x), name="discriminator")


@keras.saving.register_keras_serializable(package="gan_zoo")
class UnrolledGAN(GAN):
    """The GAN whose generator looks `unroll_steps` discriminator updates ahead."""

    paper = "https://arxiv.org/abs/1611.02163"
    default_batch_size = 64
    options = replace(
        GAN.options,
        latent_dim=dict(help="noise size (256 for 2-D points, 100 for images when omitted)"),
        latent_distribution=dict(help="the noise: uniform on [-1, 1] or standard normal "
                                      "(uniform for images, normal for 2-D points)"),
        output_range=dict(help="the generator's output range [low, high] ((-1, 1) for images, "
                               "none for 2-D points)"),
    ) + (
        Option("unroll_steps", INT, 5, "k: discriminator updates the generator looks ahead (0: the "
               "plain GAN)", minimum=0, maximum=MAX_UNROLL_STEPS),
        Option("architecture", STR, None, "the networks (mlp for 2-D points, dcgan for images "
               "when omitted)", choices=ARCHITECTURES),
        Option("learning_rate", FLOAT, None, "both optimizers' learning rate (1e-4 for 2-D points, "
               "0.1 with architecture=mlp, 2e-4 with dcgan when omitted)", minimum=0,
               exclusive_minimum=True),
    )

    def __init__(self, image_shape=(28, 28, 1), unroll_steps=5, architecture=None, latent_dim=None,
                 learning_rate=None, **kwargs):
        self.image_shape = tuple(int(s) for s in image_shape)
        points = self.image_shape == (2,)
        if not points and len(self.image_shape) != 3:
            raise GanZooError(f"unrolled_gan takes images (height, width, channels) or 2-D points, "
                              f"got shape {self.image_shape}")
        self.architecture = architecture or ("mlp" if points else "dcgan")
        if points and self.architecture != "mlp":
            raise GanZooError("unrolled_gan on 2-D points takes architecture=mlp")
        self.unroll_steps = int(unroll_steps)
        self.learning_rate = learning_rate
        kwargs.setdefault("name", "unrolled_gan")
        if points:
            latent_dim = latent_dim or 256
            kwargs.setdefault("latent_distribution", "normal")
            kwargs.setdefault("output_range", None)
            generator = build_point_generator(latent_dim)
            discriminator = build_point_discriminator()
        elif self.architecture == "mlp":
            latent_dim = latent_dim or 100
            sigmoid = mlp_gan.build_generator(self.image_shape, latent_dim, 1200)
            # tanh's range, as the DCGAN networks: the data pipeline scales to [-1, 1]
            generator = keras.Model(sigmoid.input, keras.layers.Rescaling(2.0, offset=-1.0)(sigmoid.output),
                                    name="generator")
            discriminator = mlp_gan.build_discriminator(self.image_shape, 240, 5, 0.2, 0.5)
        else:
            latent_dim = latent_dim or 100
            generator = dcgan.build_generator(self.image_shape, latent_dim, 64)
            discriminator = dcgan.build_discriminator(self.image_shape, 64)
        super().__init__(generator, discriminator, latent_dim, **kwargs)

    def default_optimizers(self):
        if self.image_shape == (2,):
            rate = self.learning_rate or 1e-4
            return (keras.optimizers.Adam(rate, beta_1=0.5), keras.optimizers.Adam(rate, beta_1=0.5))
        if self.architecture == "mlp":
            def sgd():
                return keras.optimizers.SGD(self.learning_rate or 0.1, momentum=0.5)

            return sgd(), sgd()
        rate = self.learning_rate or 2e-4
        return (keras.optimizers.Adam(rate, beta_1=0.5), keras.optimizers.Adam(rate, beta_1=0.5))

    # ------------------------------------------------------------------ the unrolled objective
    def generator_objective(self, fake, latent, real=None):
        if self.unroll_steps == 0 or real is None:
            return super().generator_objective(fake, latent)
        parameters = self.unrolled_discriminator(real, fake, self.unroll_steps)
        fake_logits = self._discriminator_logits(parameters, fake)
        g_loss = self._generator_loss_fn(fake_logits)
        return g_loss, {"g_loss": g_loss}

    def unrolled_discriminator(self, real, fake, steps):
        """D's trainable parameters after `steps` simulated updates on (real, fake), as tensors
        that stay differentiable with respect to `fake` (and so to the generator)."""
        parameters = [tf.convert_to_tensor(v) for v in self.discriminator.trainable_variables]
        rule = _UpdateRule(self.d_optimizer, self.discriminator.trainable_variables)
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(parameters)
                d_loss = self._discriminator_loss_fn(self._discriminator_logits(parameters, real),
                                                     self._discriminator_logits(parameters, fake))
            parameters = rule.step(parameters, tape.gradient(d_loss, parameters))
        return parameters

    def _discriminator_logits(self, parameters, samples):
        non_trainable = [tf.convert_to_tensor(v) for v in self.discriminator.non_trainable_variables]
        logits, _ = self.discriminator.stateless_call(parameters, non_trainable, samples, training=True)
        return logits

    def get_config(self):
        return {
            **self._base_config(),
            "image_shape": self.image_shape,
            "unroll_steps": self.unroll_steps,
            "architecture": self.architecture,
            "latent_dim": self.latent_dim,
            "learning_rate": self.learning_rate,
        }


class _UpdateRule:
    """The discriminator optimizer's update as a pure function of tensors, started from the
    optimizer's current state (Adam's moments and step count, SGD's momentum)."""

    def __init__(self, optimizer, variables):
        if optimizer is None:
            raise GanZooError("compile() the model before training it: the unrolled steps follow "
                              "the discriminator's optimizer")
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # loss scaling wrapper
        self.optimizer = optimizer
        self.learning_rate = tf.cast(optimizer.learning_rate, tf.float32)
        indices = [optimizer._get_variable_index(v) for v in variables]
        if isinstance(optimizer, keras.optimizers.Adam) and not optimizer.amsgrad:
            self.kind = "adam"
            self.first = [tf.convert_to_tensor(optimizer._momentums[i]) for i in indices]
            self.second = [tf.convert_to_tensor(optimizer._velocities[i]) for i in indices]
            self.step_count = tf.cast(optimizer.iterations, tf.float32)
        elif isinstance(optimizer, keras.optimizers.SGD) and not optimizer.nesterov:
            self.kind = "sgd"
            self.first = ([tf.convert_to_tensor(optimizer.momentums[i]) for i in indices]
                          if optimizer.momentum else None)
        else:
            raise GanZooError(f"unrolled_gan simulates Adam or SGD discriminator updates, not "
                              f"{type(optimizer).__name__}: compile with one of them")

    def step(self, parameters, gradients):
        opt = self.optimizer
        if self.kind == "adam":
            self.step_count = self.step_count + 1.0
            beta_1, beta_2 = float(opt.beta_1), float(opt.beta_2)
            alpha = (self.learning_rate * tf.sqrt(1.0 - beta_2 ** self.step_count)
                     / (1.0 - beta_1 ** self.step_count))
            self.first = [m + (g - m) * (1.0 - beta_1) for m, g in zip(self.first, gradients)]
            self.second = [v + (g * g - v) * (1.0 - beta_2) for v, g in zip(self.second, gradients)]
            return [p - alpha * m / (tf.sqrt(v) + opt.epsilon)
                    for p, m, v in zip(parameters, self.first, self.second)]
        if self.first is None:
            return [p - self.learning_rate * g for p, g in zip(parameters, gradients)]
        momentum = float(opt.momentum)
        self.first = [momentum * m - self.learning_rate * g for m, g in zip(self.first, gradients)]
        return [p + m for p, m in zip(parameters, self.first)]
