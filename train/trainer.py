"""`train(config)`: everything `python -m train.main` does, importable and testable.

    config -> train.data.load -> models.get -> GAN.compile -> GAN.fit(callbacks) -> logdir/

The logdir receives:

    run.json                 the run's configuration (a second run with another model refuses it)
    checkpoints/             the full training state (weights, both optimizers, noise state,
                             position in the data) every --checkpoint_every steps, at every
                             epoch end and on SIGTERM / Ctrl-C; the same command resumes from
                             it exactly (see train/checkpoint.py)
    train/ images/           TensorBoard scalars (d_loss, g_loss, D(x), D(G(z)), learning rate)
                             and the sample grid of every epoch
    samples/epoch_NNNN.png   the sample grid of every epoch
    samples.png              the final sample grid
    final.weights.h5         the final weights (`model.load_weights`)
    model.keras              the final model (`models.load`, i.e. `keras.saving.load_model`)
    *.sha256                 checksums of the two (`sha256sum -c`), checked when they are loaded

Every file is written under a temporary name and then renamed, so a kill at any moment leaves
the previous version or the new one, never a truncated file.
"""

import dataclasses
import glob
import json
import logging
import os
import tempfile
from typing import Optional

import keras
import tensorflow as tf

import models
from models.errors import GanZooError
from models.gan import dtype_policy
from models import saving
from train import data, distribute
from train.callbacks import (EvaluateEvery, SampleGrid, StopOnDivergence, TensorBoard,
                             TrainingDiverged)
from train.checkpoint import (GracefulStop, Position, TrainingCheckpoint, save_atomically,
                              write_json_atomically, write_text_atomically)
from train.images import write_png

CHECKPOINTS = "checkpoints"
ON_DIVERGENCE = ("stop", "rollback")
# Keras dtype policies: mixed_float16 for GPUs (with loss scaling), mixed_bfloat16 for CPUs and
# TPUs with bfloat16 units (no loss scaling needed: bfloat16 has float32's exponent range).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
MAX_ROLLBACKS = 3  # --on_divergence rollback halves the learning rates at most this often

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig:
    """One training run. `None` means the model family's paper default."""

    model: str = "dcgan"
    dataset: str = "fashion_mnist"
    epochs: int = 5
    batch_size: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    seed: int = 0
    d_steps: Optional[int] = None
    generator_loss: Optional[str] = None
    model_options: Optional[dict] = None  # family arguments, e.g. {"divergence": "kl"}
    d_learning_rate: Optional[float] = None
    g_learning_rate: Optional[float] = None
    logdir: Optional[str] = None
    data_dir: Optional[str] = None
    image_size: Optional[int] = None
    jit_compile: Optional[bool] = None  # None: the family's choice (models.GAN.xla_by_default)
    strategy: str = "default"
    devices: Optional[tuple] = None
    virtual_devices: Optional[int] = None
    precision: str = "float32"  # a Keras dtype policy: float32, mixed_float16 or mixed_bfloat16
    mixed_precision: bool = False  # shorthand for precision="mixed_float16"
    samples: int = 64
    verbose: object = "auto"
    checkpoint_every: int = 500  # training steps between checkpoints (0: only at epoch ends)
    on_divergence: str = "stop"  # or "rollback": back to the last checkpoint, halved learning rates
    eval_every: Optional[int] = None  # FCD / mode coverage to TensorBoard every N epochs

    def resolved_logdir(self):
        return self.logdir or os.path.join("runs", f"{self.model}_{_dataset_tag(self.dataset)}")


@dataclasses.dataclass
class TrainResult:
    model: models.GAN
    history: dict
    logdir: str
    epochs_run: int
    files: dict
    resumed_from: Optional[Position] = None  # the checkpoint this run started from, if any
    rollbacks: int = 0  # divergence roll-backs so far in this logdir


def _dataset_tag(name):
    return os.path.basename(os.path.normpath(name)) or "data"


def _check(config):
    if config.epochs < 1:
        raise GanZooError(f"--epochs must be at least 1, got {config.epochs}")
    if config.batch_size is not None and config.batch_size < 1:
        raise GanZooError(f"--batch_size must be a positive number, got {config.batch_size}")
    if config.steps_per_epoch is not None and config.steps_per_epoch < 1:
        raise GanZooError(f"--steps_per_epoch must be at least 1, got {config.steps_per_epoch}")
    if config.d_steps is not None and config.d_steps < 1:
        raise GanZooError(f"--d_steps must be at least 1, got {config.d_steps}")
    if config.samples < 1:
        raise GanZooError(f"--samples must be at least 1, got {config.samples}")
    for flag in ("d_learning_rate", "g_learning_rate"):
        value = getattr(config, flag)
        if value is not None and not value > 0:
            raise GanZooError(f"--{flag} must be positive, got {value}")
    if config.image_size is not None and config.image_size < 1:
        raise GanZooError(f"--image_size must be positive, got {config.image_size}")
    if config.checkpoint_every is None or config.checkpoint_every < 0:
        raise GanZooError(f"--checkpoint_every must be 0 (epoch ends only) or a number of steps, "
                          f"got {config.checkpoint_every}")
    _precision(config)
    if config.on_divergence not in ON_DIVERGENCE:
        raise GanZooError(f"unknown --on_divergence {config.on_divergence!r}: use one of "
                          f"{', '.join(ON_DIVERGENCE)}")


def _precision(config):
    """The Keras dtype policy of `config`: --precision, or mixed_float16 for --mixed_precision."""
    if config.precision not in PRECISIONS:
        raise GanZooError(f"unknown --precision {config.precision!r}: use one of {', '.join(PRECISIONS)}")
    if config.mixed_precision and config.precision not in ("float32", "mixed_float16"):
        raise GanZooError(f"--mixed_precision means --precision mixed_float16, which contradicts "
                          f"--precision {config.precision}: give only one of them")
    return _recorded_precision(vars(config))


def _recorded_precision(record):
    """The dtype policy a run.json records (runs without the field trained in float32)."""
    return "mixed_float16" if record.get("mixed_precision") else record.get("precision", "float32")


def _image_shape(config):
    """--image_size resizes to a square and keeps the dataset's channels."""
    if config.image_size is None:
        return None
    return (config.image_size, config.image_size, None)


def _with_learning_rate(optimizer, learning_rate):
    if learning_rate is None:
        return optimizer
    return optimizer.__class__.from_config({**optimizer.get_config(), "learning_rate": learning_rate})


class _LearningRates:
    """The learning rates of a run: the flags' (else the paper's) times the product of the
    divergence roll-backs' halvings (`scale`, kept in the checkpoint).

    A checkpoint holds a constant learning rate (an optimizer variable) but not a schedule, so
    after a restore: a flag wins over the checkpoint's value; a schedule is the original one
    scaled; a constant without a flag is the checkpoint's, rescaled only by a roll-back.
    """

    def __init__(self, model, config):
        self.model = model
        self.optimizers = [(model.d_optimizer, config.d_learning_rate), (model.g_optimizer, config.g_learning_rate)]
        self.schedules = [_learning_rate_schedule(optimizer) for optimizer, _ in self.optimizers]
        self.schedule_scale = 1.0

    def apply(self, scale, restored_scale):
        """Sets both learning rates for `scale`, the restored state having `restored_scale`."""
        for (optimizer, flag), schedule in zip(self.optimizers, self.schedules):
            if flag is not None:
                optimizer.learning_rate = flag * scale
            elif schedule is not None:
                if scale != self.schedule_scale:
                    optimizer.learning_rate = _scaled_schedule(schedule, scale)
                    self.model.train_function = None  # the traced step holds the old constants
            elif scale != restored_scale:
                optimizer.learning_rate = float(optimizer.learning_rate) * scale / restored_scale
        self.schedule_scale = scale


def _learning_rate_schedule(optimizer):
    """The optimizer's LearningRateSchedule, or None for a constant learning rate."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's optimizer
    schedule = inner._learning_rate  # Keras keeps either a variable or the schedule here
    return schedule if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) else None


def _scaled_schedule(schedule, factor):
    config = schedule.get_config()
    if "initial_learning_rate" not in config:
        raise GanZooError(f"cannot lower the learning rate of a {type(schedule).__name__} "
                          "schedule: pass --d_learning_rate and --g_learning_rate")
    config["initial_learning_rate"] *= factor
    return type(schedule).from_config(config)


def _claim_logdir(logdir, record):
    """Writes run.json, or refuses a logdir that holds a run of another model or dataset."""
    path = os.path.join(logdir, "run.json")
    try:
        os.makedirs(logdir, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=logdir, prefix=".write-test-")
        probe.close()
    except OSError as e:
        raise GanZooError(f"cannot write to logdir {logdir}: {e.strerror}; pass another --logdir") from None
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                previous = json.load(f)
        except (OSError, ValueError):
            raise GanZooError(f"{path} is unreadable; delete it or pass another --logdir") from None
        for key in ("model", "dataset", "image_shape"):
            if previous.get(key) != record[key]:
                raise GanZooError(
                    f"logdir {logdir} holds a run with {key}={previous.get(key)!r}, not "
                    f"{record[key]!r}; pass another --logdir or delete that one"
                )
        # A checkpoint of one dtype policy does not resume under another (mixed_float16's
        # optimizers carry a loss scale the others lack, and the arithmetic would change).
        before, now = _recorded_precision(previous), _recorded_precision(record)
        if before != now:
            raise GanZooError(f"logdir {logdir} holds a run trained with --precision {before}, not {now}: "
                              f"pass --precision {before} to go on with it, or another --logdir")
    # Checkpoints without their run.json: refuse those of another model before claiming.
    checkpoint = TrainingCheckpoint(os.path.join(logdir, CHECKPOINTS), record["model"])
    checkpoint.check_model()
    for leftover in glob.glob(os.path.join(logdir, "tmp-*")):  # what a killed run was writing
        os.remove(leftover)
    _write_json(path, record)


def _write_json(path, obj):
    write_json_atomically(path, obj)


def _save_atomically(save, path):
    """Calls `save(temporary_path)` then renames, so `path` is never left half-written (a
    failure, e.g. a full disk, is a GanZooError naming `path`; the old file stays)."""
    save_atomically(save, path)


def _save_with_checksum(save, path):
    """Writes `path` atomically, then its `path.sha256` companion (see models/saving.py).

    The old checksum goes first, so that a kill in between leaves a file without a checksum,
    never a file with a wrong one."""
    companion = saving.checksum_path(path)
    if os.path.exists(companion):
        os.remove(companion)
    save_atomically(save, path)
    write_text_atomically(companion, saving.write_checksum_line(path))


def _load_training_data(config, family, batch_size):
    """The training split in the family's output range; (images, labels) batches for a
    conditional family, which a dataset without labels cannot train."""
    try:
        return data.load(
            config.dataset,
            "train",
            batch_size,
            value_range=family.output_range,
            image_shape=_image_shape(config),
            seed=config.seed,
            data_dir=config.data_dir,
            with_labels=family.conditional,
        )
    except data.UnlabelledDataset:
        raise GanZooError(
            f"{config.model} is class-conditional and dataset '{config.dataset}' has no labels: "
            "train it on a labelled dataset such as fashion_mnist, or pick an unconditional "
            "model such as dcgan"
        ) from None


def build(config, image_shape, jit_compile="auto"):
    """The compiled model of `config` for samples of `image_shape`."""
    overrides = {"seed": config.seed}
    if config.d_steps is not None:
        overrides["d_steps"] = config.d_steps
    if config.generator_loss is not None:
        overrides["generator_loss"] = config.generator_loss
    for key, value in (config.model_options or {}).items():
        if key in ("seed", "d_steps", "generator_loss", "image_shape"):
            raise GanZooError(f"--model_option {key}=... repeats a flag of its own: pass --{key}"
                              if key != "image_shape" else "--model_option image_shape is set by "
                              "the dataset: pass --image_size to resize")
        overrides[key] = value
    model = models.get(config.model, image_shape=image_shape, **overrides)
    d_optimizer, g_optimizer = model.default_optimizers()
    model.compile(
        d_optimizer=_with_learning_rate(d_optimizer, config.d_learning_rate),
        g_optimizer=_with_learning_rate(g_optimizer, config.g_learning_rate),
        jit_compile=jit_compile,
    )
    return model


def train(config: TrainConfig) -> TrainResult:
    """Trains `config.model` on `config.dataset` and writes everything to the logdir."""
    _check(config)
    # The strategy first: virtual devices and multi-worker setup must precede any TF work.
    strategy = distribute.make_strategy(config.strategy, config.devices, config.virtual_devices)
    family = models.family(config.model)
    logdir = distribute.worker_logdir(strategy, config.resolved_logdir())
    keras.utils.set_random_seed(config.seed)

    batch_size = family.default_batch_size if config.batch_size is None else config.batch_size
    d_steps = family.default_d_steps if config.d_steps is None else config.d_steps
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise GanZooError(
            f"batch size {batch_size} does not split over {replicas} replicas: "
            f"use a multiple of {replicas}"
        )
    # Every discriminator step takes its own slice of the batch.
    dataset = _load_training_data(config, family, batch_size * d_steps)
    image_shape = tuple(tf.nest.flatten(dataset.element_spec)[0].shape[1:])

    with dtype_policy(_precision(config)), strategy.scope():
        jit_compile = "auto" if config.jit_compile is None else config.jit_compile and replicas == 1
        model = build(config, image_shape, jit_compile=jit_compile)
    _claim_logdir(
        logdir,
        {
            **dataclasses.asdict(config),
            "logdir": logdir,
            "image_shape": list(image_shape),
            "batch_size": batch_size,
            "replicas": replicas,
            "xla": bool(model.jit_compile),  # what jit_compile (None: the family's choice) gave
            "model_config": model.get_config(),
        },
    )

    # One endless stream of batches, reshuffled every pass. A resumed run skips the batches the
    # checkpointed steps consumed, so it sees the data an uninterrupted run would have seen.
    steps_per_epoch = config.steps_per_epoch or int(dataset.cardinality())
    if steps_per_epoch <= 0:  # a stream of unknown length: one pass per epoch
        steps_per_epoch = None
    fresh = [dataset]

    def stream(skip):
        # A new pipeline for every fit: a reshuffling dataset object draws another order each
        # time it is iterated again, a fresh one always the same order.
        source = fresh.pop() if fresh else _load_training_data(config, family, batch_size * d_steps)
        return source.repeat().skip(skip) if steps_per_epoch else source

    reference = None
    if len(image_shape) == 1:
        reference = data.sample_mixture(config.dataset, 1000, seed=config.seed)
    sample_grid = SampleGrid(logdir, n=config.samples, seed=config.seed, reference=reference)
    checkpoint_dir = os.path.join(logdir, CHECKPOINTS)
    checkpoint = TrainingCheckpoint(checkpoint_dir, config.model, steps_per_epoch,
                                    every=config.checkpoint_every)
    callbacks = [
        # First: a non-finite step raises before any other callback (the checkpoint) sees it.
        StopOnDivergence(checkpoint_dir),
        # Per-epoch scalars: with an integer update_freq, Keras records its epoch summaries
        # only when the step count happens to be a multiple of it.
        TensorBoard(logdir, write_graph=False, update_freq="epoch"),
        sample_grid,
        *model.training_callbacks(logdir),
        *EvaluateEvery.for_run(config.eval_every, logdir, config.dataset, config.data_dir, config.seed),
        # Last: an epoch counts as done in the checkpoint once its grids and scalars are written.
        checkpoint,
    ]

    history = {}
    # SIGTERM / Ctrl-C while training: the checkpoint callback saves at the end of the step and
    # raises TrainingInterrupted.
    with GracefulStop() as stop:
        checkpoint.stop = stop
        # In a multi-worker run all workers resume from the same step.
        at_most = distribute.newest_common_step(strategy, checkpoint.latest_step())
        position = checkpoint.restore(model, at_most=at_most)
        resumed_from = position if checkpoint.found else None
        if resumed_from is not None:
            log.info("resuming from the checkpoint at %s", position.describe(steps_per_epoch))
        learning_rates = _LearningRates(model, config)
        learning_rates.apply(checkpoint.learning_rate_scale, checkpoint.learning_rate_scale)
        if resumed_from is None:
            checkpoint.save(model)  # step 0: something to roll back to, and proof the disk works
        while True:
            try:
                _fit_from(model, checkpoint, stream, config, steps_per_epoch, callbacks, history)
                break
            except TrainingDiverged as diverged:
                if config.on_divergence != "rollback":
                    raise
                _roll_back(model, checkpoint, learning_rates, diverged)
            except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                    tf.errors.AbortedError, tf.errors.CancelledError) as error:
                if not distribute.is_multi_worker(strategy):
                    raise
                raise distribute.lost_worker_error(error, checkpoint.last_saved.describe(
                    steps_per_epoch), checkpoint_dir) from None

    files = {
        "weights": os.path.join(logdir, "final.weights.h5"),
        "model": os.path.join(logdir, "model.keras"),
        "samples": os.path.join(logdir, "samples.png"),
    }
    _save_with_checksum(model.save_weights, files["weights"])
    _save_with_checksum(model.save, files["model"])
    write_png(files["samples"], sample_grid.picture())
    epochs_run = len(next(iter(history.values()), []))
    return TrainResult(model, history, logdir, epochs_run, files, resumed_from, checkpoint.rollbacks)


def _fit_from(model, checkpoint, stream, config, steps_per_epoch, callbacks, history):
    """Trains from `checkpoint.position` to the end of epoch `config.epochs`.

    A position inside an epoch (a checkpoint taken every N steps or on SIGTERM) takes two `fit`
    calls: one for the rest of that epoch, then one for the following epochs. Each skips the
    batches the steps before it consumed. The histories of the calls are appended to `history`.
    """
    position = checkpoint.position
    if position.step_in_epoch and not steps_per_epoch:
        # A stream of unknown length cannot be entered in the middle: redo that epoch's pass
        # (from the checkpoint's weights).
        position = checkpoint.position = Position(position.epoch, 0, position.global_step)
    while True:
        partial = bool(position.step_in_epoch) and position.epoch < config.epochs
        if partial and position.step_in_epoch >= steps_per_epoch:
            # --steps_per_epoch was lowered since the checkpoint: that epoch is over.
            position = checkpoint.position = Position(position.epoch + 1, 0, position.global_step)
            partial = False
        # With no epoch left, fit only runs the callbacks' begin and end (the sample grid).
        fit = model.fit(
            stream(position.global_step),
            initial_epoch=min(position.epoch, config.epochs),
            epochs=position.epoch + 1 if partial else config.epochs,
            steps_per_epoch=steps_per_epoch - position.step_in_epoch if partial else steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # train.data shuffles
            verbose=config.verbose,
        )
        for name, values in fit.history.items():
            history.setdefault(name, []).extend(values)
        done = checkpoint.position.epoch >= config.epochs
        if done or model.stop_training or checkpoint.position == position:
            return  # finished, stopped by a callback, or nothing was left to do
        position = checkpoint.position


def _roll_back(model, checkpoint, learning_rates, diverged):
    """--on_divergence rollback: back to the last checkpoint with both learning rates halved,
    at most MAX_ROLLBACKS times per logdir. The halving is saved with the checkpoint at once."""
    if checkpoint.rollbacks >= MAX_ROLLBACKS:
        raise GanZooError(f"{diverged} (after {checkpoint.rollbacks} roll-backs with halved "
                          "learning rates)") from None
    position = checkpoint.restore(model)
    restored_scale = checkpoint.learning_rate_scale
    checkpoint.learning_rate_scale = restored_scale * 0.5
    learning_rates.apply(checkpoint.learning_rate_scale, restored_scale)
    checkpoint.rollbacks += 1
    checkpoint.save(model)
    log.warning(
        "%s: rolled back to %s with halved learning rates (discriminator %.3g, generator %.3g); "
        "roll-back %d of at most %d", str(diverged).split(";")[0],
        position.describe(checkpoint.steps_per_epoch), float(model.d_optimizer.learning_rate),
        float(model.g_optimizer.learning_rate), checkpoint.rollbacks, MAX_ROLLBACKS,
    )
