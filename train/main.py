"""Command line: train a zoo model.

    python -m train.main --model dcgan --dataset fashion_mnist --epochs 5 --logdir runs/dcgan

This module only parses flags; `train.trainer.train` does the work. Running the same command
again resumes from the run's last checkpoint.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

import models  # noqa: E402
from models.errors import GanZooError  # noqa: E402
from train import data, distribute  # noqa: E402
from train.checkpoint import TrainingInterrupted  # noqa: E402
from train.trainer import MAX_ROLLBACKS, ON_DIVERGENCE, PRECISIONS, TrainConfig, train  # noqa: E402

_DEFAULTS = TrainConfig()
FLAGS = flags.FLAGS

flags.DEFINE_string("model", _DEFAULTS.model, f"Zoo model: {', '.join(models.names())}.")
flags.DEFINE_string("dataset", _DEFAULTS.dataset, f"Dataset: {data.describe()}")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Epochs to train in total (a resumed run stops there too).")
flags.DEFINE_integer("batch_size", None, "Samples per generator step (default: the paper's).")
flags.DEFINE_integer("steps_per_epoch", None, "Generator steps per epoch (default: one pass over the data).")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed for weights, noise and shuffling.")
flags.DEFINE_integer("d_steps", None, "Discriminator steps per generator step (default: the paper's).")
flags.DEFINE_string("generator_loss", None, "The objective: non_saturating (default), minimax or least_squares (LSGAN) for the logit families.")
flags.DEFINE_multi_string("model_option", [], "A model family's argument as key=value, repeatable, e.g. --model_option divergence=kl.")
flags.DEFINE_float("d_learning_rate", None, "Discriminator learning rate (default: the paper's).")
flags.DEFINE_float("g_learning_rate", None, "Generator learning rate (default: the paper's).")
flags.DEFINE_string("logdir", None, "Output folder (default: runs/<model>_<dataset>).")
flags.DEFINE_string("data_dir", None, f"Folder of the Fashion-MNIST IDX files (or ${data.DATA_DIR_ENV}), or the tfds data_dir.")
flags.DEFINE_integer("image_size", None, "Resize images to this side (e.g. 32 or 64).")
flags.DEFINE_boolean("jit_compile", None, "Compile the train step with XLA (default: where it is faster: on GPUs and TPUs, and on CPUs for the families measured faster with it).")
flags.DEFINE_integer("samples", _DEFAULTS.samples, "Samples in the grid written every epoch.")
flags.DEFINE_string("strategy", _DEFAULTS.strategy, f"Distribution strategy: {', '.join(distribute.STRATEGIES)}.")
flags.DEFINE_list("devices", None, "With --strategy mirrored: devices to mirror over, e.g. /gpu:0,/gpu:1.")
flags.DEFINE_integer("virtual_devices", None, "With --strategy mirrored: split the CPU into N virtual devices.")
flags.DEFINE_string("precision", _DEFAULTS.precision, f"Dtype policy: {', '.join(PRECISIONS)} (bfloat16 on CPUs with bfloat16 units, e.g. AVX512_BF16).")
flags.DEFINE_boolean("mixed_precision", _DEFAULTS.mixed_precision, "Shorthand for --precision mixed_float16 (float16 with loss scaling, for GPUs).")
flags.DEFINE_integer("checkpoint_every", _DEFAULTS.checkpoint_every, "Save a checkpoint every N training steps, besides every epoch end and on SIGTERM / Ctrl-C (0: epoch ends only).")
flags.DEFINE_string("on_divergence", _DEFAULTS.on_divergence, f"When a loss becomes NaN/Inf: {' or '.join(ON_DIVERGENCE)} (roll back to the last checkpoint with halved learning rates, at most {MAX_ROLLBACKS} times).")
flags.DEFINE_integer("eval_every", None, "Log FCD (mode coverage for 2-D data) to TensorBoard every N epochs.")


def parse_model_options(pairs):
    """{key: value} of `key=value` strings; values are read as JSON (numbers, true, [10]) when
    they parse as such, else kept as strings."""
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise GanZooError(f"--model_option takes key=value, got {pair!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        options[key.strip()] = value
    return options or None


def config_from_flags():
    return TrainConfig(
        model=FLAGS.model,
        dataset=FLAGS.dataset,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        steps_per_epoch=FLAGS.steps_per_epoch,
        seed=FLAGS.seed,
        d_steps=FLAGS.d_steps,
        generator_loss=FLAGS.generator_loss,
        model_options=parse_model_options(FLAGS.model_option),
        d_learning_rate=FLAGS.d_learning_rate,
        g_learning_rate=FLAGS.g_learning_rate,
        logdir=FLAGS.logdir,
        data_dir=FLAGS.data_dir,
        image_size=FLAGS.image_size,
        jit_compile=FLAGS.jit_compile,
        samples=FLAGS.samples,
        strategy=FLAGS.strategy,
        devices=tuple(FLAGS.devices) if FLAGS.devices else None,
        virtual_devices=FLAGS.virtual_devices,
        precision=FLAGS.precision,
        mixed_precision=FLAGS.mixed_precision,
        checkpoint_every=FLAGS.checkpoint_every,
        on_divergence=FLAGS.on_divergence,
        eval_every=FLAGS.eval_every,
    )


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])}; flags look like --model dcgan")
    try:
        result = train(config_from_flags())
    except TrainingInterrupted as e:
        # SIGTERM / Ctrl-C: the checkpoint is saved; exit as the signal's default action would.
        print(f"stopped: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)
    except GanZooError as e:
        sys.exit(f"error: {e}")
    if result.resumed_from is not None:
        print(f"resumed from the checkpoint at {result.resumed_from.describe()}")
    if result.epochs_run == 0:
        print(f"{result.logdir} already holds {FLAGS.epochs} epochs; raise --epochs to train on.")
    print(f"final weights: {result.files['weights']}")
    print(f"model:         {result.files['model']}")
    print(f"samples:       {result.files['samples']} (one grid per epoch in {os.path.join(result.logdir, 'samples')})")
    print(f"checkpoints:   {os.path.join(result.logdir, 'checkpoints')} (run the same command to resume)")
    print(f"TensorBoard:   tensorboard --logdir {result.logdir}   then open http://localhost:6006")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
