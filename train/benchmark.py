"""Benchmark: how fast the real training step runs on this machine.

    python -m train.benchmark --model dcgan                 # the full report for one model
    python -m train.benchmark --model all --quick           # one line per zoo model (README table)
    python -m train.benchmark --pipeline --dataset fashion_mnist   # the input pipeline alone

Figures, for the model's own `train_step` on random data of the dataset's shape:

- images/s: real training images consumed per second (batch x d_steps per generator step),
  median and spread (min..max) of several timed repeats after an untimed warm-up that includes
  compilation;
- FLOPs per image of one train step, counted by TensorFlow's profiler on the step's graph;
- achieved GFLOP/s, and its ratio to a float32 matmul ceiling measured on the same machine;
- the same with XLA off, and how images/s grows with the batch size and the image size.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import models  # noqa: E402
from models.errors import GanZooError  # noqa: E402
from train import data  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "dcgan", f"A zoo model ({', '.join(models.names())}) or 'all'.")
flags.DEFINE_integer("batch_size", 64, "Samples per generator step.")
flags.DEFINE_integer("steps", 20, "Train steps per timed repeat.")
flags.DEFINE_integer("repeats", 5, "Timed repeats.")
flags.DEFINE_boolean("quick", False, "Only the main figures (no batch / image-size sweeps).")
flags.DEFINE_boolean("pipeline", False, "Measure the input pipeline alone.")
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset for --pipeline.")

IMAGE_SHAPES = ((28, 28, 1), (32, 32, 3), (64, 64, 3))
BATCH_SIZES = (16, 32, 64, 128, 256)


def matmul_ceiling(size=2048, repeats=5):
    """GFLOP/s of a float32 (size x size) @ (size x size) matmul, the best of several runs."""
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            matmul().numpy()
        best = max(best, 5 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def build(name, image_shape, jit_compile):
    keras.utils.set_random_seed(0)
    model = models.get(name, image_shape=image_shape, seed=0)
    model.compile(jit_compile=jit_compile)
    return model


def random_batch(model, batch_size):
    """Random samples for one train step; (samples, labels) for a conditional model."""
    shape = (batch_size * model.d_steps, *model.generator.outputs[0].shape[1:])
    low, high = model.output_range or (-2.0, 2.0)
    samples = tf.random.uniform(shape, low, high, seed=1)
    if model.conditional:
        return samples, tf.random.uniform(shape[:1], 0, model.num_classes, tf.int32, seed=2)
    return samples


def _count(batch):
    return int(tf.nest.flatten(batch)[0].shape[0])


def flops_per_image(name, image_shape, batch_size):
    """FLOPs of one train step divided by the real images it consumes (profiler count)."""
    model = build(name, image_shape, jit_compile=False)
    batch = random_batch(model, batch_size)
    graph = tf.function(model.train_step).get_concrete_function(batch).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph, options=options)
    return profile.total_float_ops / _count(batch)


def images_per_second(name, image_shape, batch_size, jit_compile, steps, repeats):
    """(median, min, max) real images per second of `fit` on a cached in-memory batch."""
    model = build(name, image_shape, jit_compile)
    batch = random_batch(model, batch_size)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # warm-up and compilation
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        rates.append(steps * _count(batch) / (time.perf_counter() - start))
    return statistics.median(rates), min(rates), max(rates)


def pipeline_rate(name, batch_size, batches=400):
    """Images per second the input pipeline delivers, with nothing else running."""
    dataset = data.load(name, batch_size=batch_size).repeat()
    iterator = iter(dataset)
    for _ in range(20):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def report(name, ceiling):
    image_shape = (28, 28, 1)
    flops = flops_per_image(name, image_shape, FLAGS.batch_size)
    lines = [f"{name}: {flops / 1e6:.1f} MFLOP per image (train step, 28x28x1, batch {FLAGS.batch_size})"]
    figures = {}
    for jit in (True, False):
        median, low, high = images_per_second(name, image_shape, FLAGS.batch_size, jit, FLAGS.steps, FLAGS.repeats)
        gflops = median * flops / 1e9
        figures[jit] = median
        lines.append(
            f"  XLA {'on ' if jit else 'off'}: {median:8.0f} images/s ({low:.0f}..{high:.0f}), "
            f"{gflops:6.1f} GFLOP/s = {100 * gflops / ceiling:5.1f}% of the matmul ceiling"
        )
    lines.append(f"  XLA speed-up: {figures[True] / figures[False]:.2f}x")
    if not FLAGS.quick:
        sweep = []
        for batch_size in BATCH_SIZES:
            rate = images_per_second(name, image_shape, batch_size, True, max(4, FLAGS.steps // 2), 3)[0]
            sweep.append(f"{batch_size}: {rate:.0f}")
        lines.append("  batch size (XLA, 28x28x1) -> images/s: " + ", ".join(sweep))
        sweep = []
        for shape in IMAGE_SHAPES:
            try:
                rate = images_per_second(name, shape, FLAGS.batch_size, True, max(4, FLAGS.steps // 2), 3)[0]
                sweep.append(f"{'x'.join(map(str, shape))}: {rate:.0f}")
            except GanZooError as e:
                sweep.append(f"{'x'.join(map(str, shape))}: n/a ({e})")
        lines.append(f"  image size (XLA, batch {FLAGS.batch_size}) -> images/s: " + ", ".join(sweep))
    return "\n".join(lines), flops, figures


def main(argv):
    del argv
    try:
        if FLAGS.pipeline:
            rate = pipeline_rate(FLAGS.dataset, FLAGS.batch_size)
            print(f"pipeline {FLAGS.dataset}: {rate:.0f} images/s at batch {FLAGS.batch_size}")
            return
        names = models.names() if FLAGS.model == "all" else [models.family(FLAGS.model) and FLAGS.model]
        ceiling = matmul_ceiling()
        print(f"float32 matmul ceiling: {ceiling:.1f} GFLOP/s ({os.cpu_count()} cores)")
        table = []
        for name in names:
            text, flops, figures = report(name, ceiling)
            print(text, flush=True)
            table.append((name, flops, figures))
        print("\n| model | MFLOP/image | images/s XLA | images/s no XLA | speed-up | % of matmul ceiling |")
        print("|---|---|---|---|---|---|")
        for name, flops, figures in table:
            print(f"| {name} | {flops / 1e6:.1f} | {figures[True]:.0f} | {figures[False]:.0f} | "
                  f"{figures[True] / figures[False]:.2f}x | {100 * figures[True] * flops / 1e9 / ceiling:.0f}% |")
    except GanZooError as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
