"""Benchmark: how fast the real training step runs on this machine.

    python -m train.benchmark --model dcgan                 # the full report for one model
    python -m train.benchmark --model all --quick           # one line per zoo model (README table)
    python -m train.benchmark --pipeline --dataset fashion_mnist   # the input pipeline alone
    python -m train.benchmark --model dcgan --quick --torch  # + DCGAN against PyTorch (if installed)

Figures, for the model's own `train_step` on random data of the dataset's shape:

- images/s: real training images consumed per second (batch x d_steps per generator step).
  Each configuration's model runs an untimed warm-up (compilation included); then windows of
  `steps` consecutive train steps are timed from Keras' own batch-end callbacks, from the end
  of a `fit`'s first step (so `fit`'s start-up is not in the figures). The configurations of a
  model take turns, one window each per round for `repeats` rounds, so that the drifts of a
  shared machine hit them alike; the median window and the spread (min..max) are reported;
- FLOPs per image of one train step, counted by TensorFlow's profiler on the step's graph;
- achieved GFLOP/s, and its ratio to a float32 matmul ceiling measured on the same machine
  (and, for bfloat16, to a bfloat16 matmul ceiling);
- the same with XLA off, in mixed bfloat16, and for a plain reference: the textbook step
  (Goodfellow et al. 2014, Algorithm 1 with one discriminator update and the non-saturating
  generator loss) written in the fewest lines, on the same networks, without XLA;
- how images/s grows with the batch size and the image size;
- with `--torch` (the default for `--model dcgan` without `--quick`) and torch installed, the
  DCGAN step against the same networks and step in PyTorch (train/torch_reference.py), at
  28x28x1 and 64x64x3, window by window with the matmul ceilings.
"""

import contextlib
import importlib.util
import math
import os
import statistics
import time

import keras
import tensorflow as tf
from absl import flags

import models
from models.errors import GanZooError
from models.gan import dtype_policy
from models.layers import keras_batch_norm, native_kernel_gradients
from train import data


def define_flags(flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("model", "dcgan", f"Zoo models, comma-separated ({', '.join(models.names())}), or 'all'.",
                        flag_values=fv)
    flags.DEFINE_integer("batch_size", 64, "Samples per generator step.", flag_values=fv)
    flags.DEFINE_integer("steps", 20, "Train steps per timed window.", flag_values=fv)
    flags.DEFINE_integer("repeats", 5, "Timed windows (rounds) per configuration.", flag_values=fv)
    flags.DEFINE_boolean("quick", False, "Only the main figures (no batch / image-size sweeps).", flag_values=fv)
    flags.DEFINE_boolean("pipeline", False, "Measure the input pipeline alone.", flag_values=fv)
    flags.DEFINE_string("dataset", "fashion_mnist", "Dataset for --pipeline.", flag_values=fv)
    flags.DEFINE_boolean("torch", None, "Compare the DCGAN step with PyTorch's (when torch is installed); by "
                         "default with --model dcgan without --quick.", flag_values=fv)


IMAGE_SHAPES = ((28, 28, 1), (32, 32, 3), (64, 64, 3))
BATCH_SIZES = (16, 32, 64, 128, 256)
WARMUP_STEPS = 5


def matmul_ceiling(dtype="float32", size=4096, repeats=5):
    """GFLOP/s of a (size x size) @ (size x size) matmul in `dtype`, the best of several runs."""
    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)

    @tf.function
    def matmul():
        return tf.reduce_sum(tf.cast(tf.matmul(a, b), "float32"))

    matmul().numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(3):
            matmul().numpy()
        best = max(best, 3 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


class MatmulRunner:
    """The matmul ceiling as a configuration of `interleaved_rates`: each window is `repeats`
    (size x size) matmuls in `dtype`, and reports GFLOP/s (not images/s), so that a step and
    the ceiling it is compared with are measured under the same load."""

    def __init__(self, dtype="float32", size=4096, repeats=3):
        self.dtype, self.size, self.repeats = dtype, size, repeats

    def warm_up(self, steps):
        self.a = tf.cast(tf.random.normal((self.size, self.size)), self.dtype)
        self.b = tf.cast(tf.random.normal((self.size, self.size)), self.dtype)
        self.matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(self.a, self.b), "float32")))
        self.matmul().numpy()

    def window(self, steps):
        start = time.perf_counter()
        for _ in range(self.repeats):
            self.matmul().numpy()
        return self.repeats * 2 * self.size**3 / (time.perf_counter() - start) / 1e9


class PlainStep(keras.Model):
    """The reference a speed-up is measured against: the textbook two-player step in its
    plainest form, on given networks. One discriminator update on real and fresh fake samples
    (binary cross-entropy on logits), then one generator update with the non-saturating loss;
    uniform [-1, 1] noise; no XLA, no hooks, nothing shared between the two updates."""

    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)

    def compile(self, d_optimizer, g_optimizer):
        super().compile(jit_compile=False)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def train_step(self, real):
        n = tf.shape(real)[0]
        fake = self.generator(tf.random.uniform((n, self.latent_dim), -1.0, 1.0), training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = self.bce(tf.ones_like(real_logits), real_logits) + self.bce(
                tf.zeros_like(fake_logits), fake_logits
            )
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply(tape.gradient(d_loss, weights), weights)

        noise = tf.random.uniform((n, self.latent_dim), -1.0, 1.0)
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(self.generator(noise, training=True), training=True)
            g_loss = self.bce(tf.ones_like(fake_logits), fake_logits)
        weights = self.generator.trainable_weights
        self.g_optimizer.apply(tape.gradient(g_loss, weights), weights)
        return {"d_loss": d_loss, "g_loss": g_loss}


def has_plain_reference(model):
    """The plain step is the model's own algorithm only for one-step, unconditional GANs
    with a logit discriminator and the non-saturating loss (mlp_gan, dcgan, baseline_dcgan)."""
    return (
        type(model).train_step is models.GAN.train_step
        and type(model).discriminator_objective is models.GAN.discriminator_objective
        and type(model).generator_objective is models.GAN.generator_objective
        and not model.conditional
        and model.d_steps == 1
        and model.generator_loss == "non_saturating"
        and model.update == "alternating"
    )


def build(name, image_shape, jit_compile, precision="float32", plain=False, keras_bn=False, native_grad=False):
    """The model to time: the family's own (compiled with its paper optimizers) or, with
    `plain`, its networks inside `PlainStep`. None when `plain` has no meaning for it.
    `keras_bn` builds the networks with Keras' batch-norm layer instead of the zoo's fused one,
    `native_grad` with TensorFlow's own kernel gradient in every convolution."""
    with (dtype_policy(precision), keras_batch_norm() if keras_bn else contextlib.nullcontext(),
          native_kernel_gradients() if native_grad else contextlib.nullcontext()):
        keras.utils.set_random_seed(0)
        model = models.get(name, image_shape=image_shape, seed=0)
        if plain:
            if not has_plain_reference(model):
                return None
            d_optimizer, g_optimizer = model.default_optimizers()
            model = PlainStep(model.generator, model.discriminator)
            model.compile(d_optimizer, g_optimizer)
        else:
            model.compile(jit_compile=jit_compile)
    return model


def random_batch(model, batch_size):
    """Random samples for one train step; (samples, labels) for a conditional model."""
    d_steps = getattr(model, "d_steps", 1)
    shape = (batch_size * d_steps, *model.generator.outputs[0].shape[1:])
    low, high = getattr(model, "output_range", None) or (-2.0, 2.0)
    samples = tf.random.uniform(shape, low, high, seed=1)
    if getattr(model, "conditional", False):
        return samples, tf.random.uniform(shape[:1], 0, model.num_classes, tf.int32, seed=2)
    return samples


def _count(batch):
    return int(tf.nest.flatten(batch)[0].shape[0])


def step_flops(model, batch):
    """FLOPs of one train step of `model` on `batch`, counted by TensorFlow's profiler."""
    graph = tf.function(model.train_step).get_concrete_function(batch).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    # The profiler is TensorFlow's v1 API and warns about its own internals: nothing for a user.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    finally:
        logger.setLevel(level)


def flops_per_image(name, image_shape, batch_size):
    """FLOPs of one train step divided by the real images it consumes."""
    model = build(name, image_shape, jit_compile=False)
    batch = random_batch(model, batch_size)
    return step_flops(model, batch) / _count(batch)


def _window(model, dataset, images_per_step, steps):
    """Images/s of `steps` consecutive train steps inside one `fit`, timed from the end of its
    first step (so `fit`'s own start-up is not in the figure)."""
    stamps = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: stamps.append(time.perf_counter())
    )
    model.fit(dataset, steps_per_epoch=steps + 1, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    return steps * images_per_step / (stamps[-1] - stamps[0])


class _KerasRunner:
    """Timed windows of a Keras model's `fit` on one in-memory batch."""

    def __init__(self, model, batch):
        self.model, self.count = model, _count(batch)
        self.dataset = tf.data.Dataset.from_tensors(batch).repeat()

    def warm_up(self, steps):
        self.model.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)

    def window(self, steps):
        return _window(self.model, self.dataset, self.count, steps)


def interleaved_rates(entries, steps, repeats, warmup=WARMUP_STEPS):
    """{label: images/s of each window} for `entries` of (label, model, batch), or of
    (label, runner, None) for a runner with `warm_up(steps)` and `window(steps)` -> images/s
    (the PyTorch reference).

    Every model first runs `warmup` untimed steps (compilation included); then the timed
    windows take turns, one window per configuration in each of `repeats` rounds, so that the
    slow drifts of a shared machine hit every configuration alike and their ratios hold.
    """
    prepared = []
    for label, model, batch in entries:
        runner = model if batch is None else _KerasRunner(model, batch)
        runner.warm_up(warmup)
        prepared.append((label, runner))
    rates = {label: [] for label, _ in prepared}
    for _ in range(repeats):
        for label, runner in prepared:
            rates[label].append(runner.window(steps))
    return rates


def _summary(rates):
    return statistics.median(rates), min(rates), max(rates)


def images_per_second(name, image_shape, batch_size, jit_compile, steps, repeats,
                      precision="float32", plain=False):
    """(median, min, max) real images per second of one configuration, or None where it does
    not apply (a plain reference for a family whose algorithm is not the textbook one)."""
    model = build(name, image_shape, jit_compile, precision, plain)
    if model is None:
        return None
    rates = interleaved_rates([("", model, random_batch(model, batch_size))], steps, repeats)
    return _summary(rates[""])


# (label, XLA, precision, plain reference)
CONFIGURATIONS = (
    ("plain step, XLA off", False, "float32", True),
    ("XLA off", False, "float32", False),
    ("XLA on ", True, "float32", False),
    ("bfloat16, XLA off", False, "mixed_bfloat16", False),
    ("bfloat16, XLA on ", True, "mixed_bfloat16", False),
)


def report(name, ceilings, fv):
    image_shape = (28, 28, 1)
    flops = flops_per_image(name, image_shape, fv.batch_size)
    lines = [f"{name}: {flops / 1e6:.1f} MFLOP per image (train step, 28x28x1, batch {fv.batch_size})"]
    entries = []
    for label, jit, precision, plain in CONFIGURATIONS:
        model = build(name, image_shape, jit, precision, plain)
        if model is not None:
            entries.append((label, model, random_batch(model, fv.batch_size)))
    rates = interleaved_rates(entries, fv.steps, fv.repeats)
    figures = {}
    for label, jit, precision, plain in CONFIGURATIONS:
        figures[label.strip()] = label in rates and _summary(rates[label])[0]
        if label not in rates:
            lines.append(f"  {label:<19}: n/a (the family's step is not the textbook one)")
            continue
        median, low, high = _summary(rates[label])
        gflops = median * flops / 1e9
        ceiling_note = f"{100 * gflops / ceilings['float32']:5.1f}% of the float32 matmul ceiling"
        if precision == "mixed_bfloat16":
            ceiling_note += f", {100 * gflops / ceilings['bfloat16']:5.1f}% of the bfloat16 one"
        lines.append(
            f"  {label:<19}: {median:8.0f} images/s ({low:.0f}..{high:.0f}), "
            f"{gflops:6.1f} GFLOP/s = {ceiling_note}"
        )
    best = max(value for label, value in figures.items() if value and not label.startswith("plain"))
    lines.append(f"  XLA speed-up (float32): {figures['XLA on'] / figures['XLA off']:.2f}x")
    if figures["plain step, XLA off"]:
        speed_up = best / figures['plain step, XLA off']
        lines.append(f"  the zoo's fastest configuration vs the plain step: {speed_up:.2f}x")
    if not fv.quick:
        jit = figures["XLA on"] >= figures["XLA off"]
        sweep = []
        for batch_size in BATCH_SIZES:
            rate = images_per_second(name, image_shape, batch_size, jit, max(4, fv.steps // 2), 3)[0]
            sweep.append(f"{batch_size}: {rate:.0f}")
        lines.append(f"  batch size (XLA {'on' if jit else 'off'}, 28x28x1) -> images/s: " + ", ".join(sweep))
        sweep = []
        for shape in IMAGE_SHAPES:
            try:
                rate = images_per_second(name, shape, fv.batch_size, jit, max(4, fv.steps // 2), 3)[0]
                sweep.append(f"{'x'.join(map(str, shape))}: {rate:.0f}")
            except GanZooError as e:
                sweep.append(f"{'x'.join(map(str, shape))}: n/a ({e})")
        lines.append(f"  image size (XLA {'on' if jit else 'off'}, batch {fv.batch_size}) -> images/s: "
                     + ", ".join(sweep))
    return "\n".join(lines), flops, figures


TORCH_SHAPES = ((28, 28, 1), (64, 64, 3))
# The zoo's step as it is, then without each of its levers: (label suffix, Keras' batch norm,
# TensorFlow's own kernel gradient, the name of the ratio it gives). The convolution form of the
# kernel gradient is taken only in 16-bit precision, so float32 has no such line.
_WITHOUT_FUSED_BN = (", Keras batch norm", True, False, "fused / Keras batch norm")
_WITHOUT_CONV_FORM = (", TensorFlow's kernel gradient", False, True,
                      "convolution-form / TensorFlow's kernel gradient")
ZOO_LEVERS = {
    "float32": (("", False, False, None), _WITHOUT_FUSED_BN),
    "mixed_bfloat16": (("", False, False, None), _WITHOUT_FUSED_BN, _WITHOUT_CONV_FORM),
}


def versus_torch(fv, shapes=TORCH_SHAPES, out=print):
    """DCGAN's zoo step against the same networks and step in PyTorch (train/torch_reference.py),
    window by window in one run, in float32 and bfloat16; each image size's lines go to `out` as
    they are measured. False when torch is not installed."""
    if importlib.util.find_spec("torch") is None:
        return False
    # Idle OpenMP threads sleep instead of spinning: on a machine shared with other work,
    # spinning threads that lose their core stall every parallel region (measured about 2x slower).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from train import torch_reference

    out(f"DCGAN vs PyTorch {torch.__version__} ({torch.get_num_threads()} threads), batch {fv.batch_size}")
    for shape in shapes:
        lines = []
        side = "x".join(map(str, shape))
        flops = flops_per_image("dcgan", shape, fv.batch_size)
        entries, precisions = [], {}
        for precision in ("float32", "mixed_bfloat16"):
            for lever, keras_bn, native_grad, _ in ZOO_LEVERS[precision]:
                label = f"zoo {precision}{lever}"
                model = build("dcgan", shape, False, precision, keras_bn=keras_bn, native_grad=native_grad)
                entries.append((label, model, random_batch(model, fv.batch_size)))
                precisions[label] = precision
        # The ceilings, measured window by window with the steps (the start-up figure may have
        # been taken under another load).
        entries += [(f"matmul ceiling {dtype}", MatmulRunner(dtype), None) for dtype in ("float32", "bfloat16")]
        counts = None
        for variant in torch_reference.available_variants():
            for bfloat16 in (False, True):
                label = f"torch {variant} {'bfloat16' if bfloat16 else 'float32'}"
                step = torch_reference.Step(shape, fv.batch_size, variant, bfloat16)
                counts = step.parameters
                entries.append((label, step, None))
                precisions[label] = "mixed_bfloat16" if bfloat16 else "float32"
        ours = {name: sum(math.prod(w.shape) for w in getattr(entries[0][1], name).trainable_weights)
                for name in ("generator", "discriminator")}
        lines.append(f"  {side}: {flops / 1e6:.1f} MFLOP per image; trainable parameters (zoo / torch): generator "
                     f"{ours['generator']} / {counts['generator']}, discriminator {ours['discriminator']} / "
                     f"{counts['discriminator']}")
        # Windows of about the same duration at every size (20 steps at 28x28).
        steps = max(3, round(fv.steps * 28 * 28 / (shape[0] * shape[1])))
        rates = interleaved_rates(entries, steps, fv.repeats, warmup=3)
        here = {dtype: _summary(rates.pop(f"matmul ceiling {dtype}"))[0] for dtype in ("float32", "bfloat16")}
        lines.append(f"    matmul ceilings in these windows: float32 {here['float32']:.1f} GFLOP/s, "
                     f"bfloat16 {here['bfloat16']:.1f} GFLOP/s")
        medians = {label: _summary(r)[0] for label, r in rates.items()}
        for label, r in rates.items():
            median, low, high = _summary(r)
            gflops = median * flops / 1e9
            note = f"{100 * gflops / here['float32']:5.1f}% of the float32 ceiling"
            if precisions[label] == "mixed_bfloat16":
                note += f", {100 * gflops / here['bfloat16']:5.1f}% of the bfloat16 one"
            lines.append(f"    {label:<38}: {median:7.0f} images/s ({low:.0f}..{high:.0f}), {note}")
        for precision in ("float32", "mixed_bfloat16"):
            torch_best = max((m, label) for label, m in medians.items()
                             if label.startswith("torch") and precisions[label] == precision)
            zoo = medians[f"zoo {precision}"]
            levers = "; ".join(f"{name} = {zoo / medians[f'zoo {precision}{lever}']:.2f}x"
                               for lever, _, _, name in ZOO_LEVERS[precision][1:])
            lines.append(f"    {precision}: zoo / best PyTorch ({torch_best[1]}) = {zoo / torch_best[0]:.2f}x; "
                         + levers)
        out("\n".join(lines))
    return True


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


def _cell(value):
    return f"{value:.0f}" if value else "-"


def main(argv, flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    print(f"GAN Zoo: benchmarking {'the input pipeline' if fv.pipeline else fv.model} on this machine", flush=True)
    if fv.pipeline:
        rate = pipeline_rate(fv.dataset, fv.batch_size)
        print(f"pipeline {fv.dataset}: {rate:.0f} images/s at batch {fv.batch_size}")
        return
    names = models.names() if fv.model == "all" else fv.model.split(",")
    for name in names:
        models.family(name)  # an unknown name fails here, before any timing
    # The benchmark builds and traces many models on purpose; TensorFlow's warning that a
    # function was traced again says nothing here.
    tf.get_logger().setLevel("ERROR")
    ceilings = {dtype: matmul_ceiling(dtype) for dtype in ("float32", "bfloat16")}
    print(f"matmul ceiling: float32 {ceilings['float32']:.1f} GFLOP/s, "
          f"bfloat16 {ceilings['bfloat16']:.1f} GFLOP/s ({os.cpu_count()} cores)")
    table = []
    for name in names:
        text, flops, figures = report(name, ceilings, fv)
        print(text, flush=True)
        table.append((name, flops, figures))
    if fv.torch or (fv.torch is None and "dcgan" in names and not fv.quick):
        if not versus_torch(fv, out=lambda text: print(text, flush=True)):
            print("DCGAN vs PyTorch: skipped, torch is not installed (pip install torch to compare)", flush=True)
    print("\n| model | MFLOP/image | plain step | XLA off | XLA on | bfloat16, XLA off | "
          "bfloat16, XLA on | XLA speed-up | default, % of float32 ceiling |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, flops, f in table:
        # The default on a CPU: XLA only for the families that set xla_on_cpu.
        default = f["XLA on"] if models.family(name).xla_on_cpu else f["XLA off"]
        print(f"| {name} | {flops / 1e6:.1f} | {_cell(f['plain step, XLA off'])} | {_cell(f['XLA off'])} | "
              f"{_cell(f['XLA on'])} | {_cell(f['bfloat16, XLA off'])} | {_cell(f['bfloat16, XLA on'])} | "
              f"{f['XLA on'] / f['XLA off']:.2f}x | {100 * default * flops / 1e9 / ceilings['float32']:.0f}% |")


def run():
    from train import cli

    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
