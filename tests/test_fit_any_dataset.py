"""`fit` on any batched dataset: one fit step is one generator update on one batch, cut into
`d_steps` near-equal slices for the discriminator updates (models/gan.py's docstring).

The registry-wide test fits every family on `Dataset.from_tensor_slices(x).batch(b)` with a b
that d_steps does not divide and a final partial batch smaller than d_steps; the XLA step (the
default of `compile()` for mlp_gan and infogan on a CPU) is tested on mlp_gan and WGAN's loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models.gan import batch_slice, split_batch

NAMES = models.names()
POINTS = {"unrolled_gan", "wgan", "wgan_gp", "fgan", "mlp_gan"}  # trained on 2-D points here
TINY = {  # small networks, so that the whole file stays quick
    "mlp_gan": dict(g_hidden=16, d_units=8, d_pieces=2),
    "infogan": dict(width=4, fc_units=16, q_units=8),
    "ebgan": dict(width=4, embedding_dim=8),
    "baseline_dcgan": dict(width=8),
    "wgan": dict(width=8),
    "wgan_gp": dict(width=8),
    "dcgan": dict(width=4),
    "lsgan": dict(width=4),
    "cgan": dict(width=4),
    "fgan": dict(),
    "unrolled_gan": dict(unroll_steps=1),
}


def rows(t):
    return np.asarray(t).tolist()


# ----------------------------------------------------------------------------- slicing
@pytest.mark.parametrize("n, parts, expected", [
    (32, 5, [range(0, 7), range(7, 14), range(14, 20), range(20, 26), range(26, 32)]),  # 7, 7, 6, 6, 6
    (14, 3, [range(0, 5), range(5, 10), range(10, 14)]),  # 5, 5, 4
    (10, 5, [range(0, 2), range(2, 4), range(4, 6), range(6, 8), range(8, 10)]),  # even: tf.split
    (11, 2, [range(0, 6), range(6, 11)]),
    (5, 5, [[0], [1], [2], [3], [4]]),
    (3, 5, [[0], [1], [2], [0], [1]]),  # smaller than parts: one sample each, cycling
    (1, 3, [[0], [0], [0]]),
    (7, 1, [range(0, 7)]),
])
def test_split_batch_static_and_dynamic(n, parts, expected):
    x = tf.range(n)
    expected = [list(e) for e in expected]
    assert [rows(s) for s in split_batch(x, parts)] == expected

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def dynamic(t):
        assert t.shape[0] is None  # the batch size is known only when the step runs
        return split_batch(t, parts)

    assert [rows(s) for s in dynamic(x)] == expected


def test_split_batch_keeps_samples_and_labels_together():
    images = tf.reshape(tf.range(14 * 2), (14, 2))
    labels = tf.range(100, 114)
    slices = split_batch((images, labels), 3)
    assert [rows(l) for _, l in slices] == [list(range(100, 105)), list(range(105, 110)), list(range(110, 114))]
    for image, label in slices:
        assert rows(image[:, 0]) == [2 * (l - 100) for l in rows(label)]


def test_evenly_divided_batches_are_tf_split():
    x = tf.random.stateless_uniform((12, 3), seed=(1, 2))
    for mine, reference in zip(split_batch(x, 4), tf.split(x, 4)):
        assert mine.shape == (3, 3)
        np.testing.assert_array_equal(mine, reference)


@pytest.mark.parametrize("n, parts, starts, size", [
    (32, 5, [0, 7, 14, 20, 26], 6),  # every slice trimmed to floor(32 / 5) = 6
    (30, 5, [0, 6, 12, 18, 24], 6),
    (3, 5, [0, 1, 2, 0, 1], 1),
])
def test_equal_slices_for_a_loop_with_a_tensor_index(n, parts, starts, size):
    x = tf.range(n)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
    def dynamic(t, i):
        return batch_slice(t, i, parts, equal=True)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def static(i):
        piece = batch_slice(x, i, parts, equal=True)
        assert piece.shape == (size,)  # one shape for every index
        return piece

    for i, start in enumerate(starts + starts):  # the index cycles: i and i + parts agree
        expected = list(range(start, start + size))
        assert rows(dynamic(x, tf.constant(i % parts))) == expected
        assert rows(static(tf.constant(i % parts))) == expected


# --------------------------------------------------------------- what one fit step feeds
class RecordingGAN(models.GAN):
    """A GAN of 2-D points that records the first coordinate of every real batch its
    discriminator gets and the size of every generator batch."""

    seen = []

    def discriminator_objective(self, real, fake, latent):
        self._record("d", real[:, 0])
        return super().discriminator_objective(real, fake, latent)

    def generator_objective(self, fake, latent, real=None):
        self._record("g", tf.cast(tf.shape(fake)[:1], tf.float32))
        return super().generator_objective(fake, latent, real)

    def _record(self, who, values):
        def record(v):
            self.seen.append((who, [int(a) for a in v.numpy()]))
            return 0.0

        tf.py_function(record, [values], tf.float32)


@pytest.mark.parametrize("run_eagerly", [False, True])
def test_one_fit_step_slices_its_batch_for_the_discriminator(run_eagerly):
    keras.utils.set_random_seed(0)
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model = RecordingGAN(generator, discriminator, d_steps=3, output_range=None, seed=0)
    model.compile(jit_compile=False, run_eagerly=run_eagerly)
    model.seen = []
    x = np.stack([np.arange(31), np.zeros(31)], axis=1).astype("float32")  # sample i is (i, 0)
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(14), epochs=1, verbose=0)
    assert model.seen == [
        # batch 0..13: slices of 5, 5, 4, then a generator batch of 5
        ("d", list(range(0, 5))), ("d", list(range(5, 10))), ("d", list(range(10, 14))), ("g", [5]),
        ("d", list(range(14, 19))), ("d", list(range(19, 24))), ("d", list(range(24, 28))), ("g", [5]),
        # the partial batch 28..30: one sample per discriminator update
        ("d", [28]), ("d", [29]), ("d", [30]), ("g", [1]),
    ]
    assert int(model.g_optimizer.iterations) == 3 and int(model.d_optimizer.iterations) == 9


# ------------------------------------------------------------------- every family
def family_data(name, model, n, seed=0):
    rng = np.random.default_rng(seed)
    shape = model.generator.outputs[0].shape[1:]
    low, high = model.output_range or (-2.0, 2.0)
    x = rng.uniform(low, high, (n, *shape)).astype("float32")
    if model.conditional:
        return x, rng.integers(0, model.num_classes, n).astype("int32")
    return x


def fit_any_dataset(name, jit_compile):
    """Fits `name` for two epochs of batches of 14 (the last of 3 samples) and checks it."""
    keras.utils.set_random_seed(0)
    shape = (2,) if name in POINTS else (16, 16, 1)
    d_steps = models.family(name).default_d_steps
    d_steps = d_steps if d_steps > 1 else 3
    batch = 14  # d_steps (3 or 5) does not divide it
    model = models.get(name, image_shape=shape, seed=0, d_steps=d_steps, **TINY[name])
    model.compile(jit_compile=jit_compile)  # the family's default optimizers
    data = tf.data.Dataset.from_tensor_slices(family_data(name, model, 2 * batch + 3)).batch(batch)
    assert tf.nest.flatten(data.element_spec)[0].shape[0] is None  # a dynamic batch size
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    history = model.fit(data, epochs=2, verbose=0).history
    assert set(history) == set(model.metric_names)
    for key, values in history.items():
        assert len(values) == 2 and np.all(np.isfinite(values)), key
    # three steps per epoch (14, 14 and the last 3 samples), each one generator update
    assert int(model.g_optimizer.iterations) == 2 * 3
    assert int(model.d_optimizer.iterations) == 2 * 3 * d_steps
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, model.generator.trainable_weights))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d_before, model.discriminator.trainable_weights))


@pytest.mark.parametrize("name", NAMES)
def test_fit_on_any_batched_dataset(name):
    fit_any_dataset(name, jit_compile=False)


def test_fit_on_any_batched_dataset_with_xla():
    assert models.family("mlp_gan").xla_on_cpu  # so this is what compile() does for it here
    fit_any_dataset("mlp_gan", jit_compile="auto")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_wgan_paper_schedule_on_uneven_batches(jit_compile):
    keras.utils.set_random_seed(0)
    model = models.get("wgan", image_shape=(2,), width=8, seed=0, schedule="paper")
    model.compile(jit_compile=jit_compile)
    x = np.random.default_rng(0).normal(size=(14 + 3, 2)).astype("float32")
    history = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(14), epochs=1, verbose=0).history
    assert np.all(np.isfinite(history["d_loss"]))
    # two steps of the warm-up: 100 critic updates each, cycling through the 5 trimmed slices
    assert int(model.d_optimizer.iterations) == 200 and int(model.g_optimizer.iterations) == 2
    assert max(np.abs(w.numpy()).max() for w in model.critic.trainable_weights) <= 0.01
