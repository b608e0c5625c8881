"""`train(config)`: everything `python -m train.main` does, importable and testable.

    config -> validate -> lock logdir -> data.load -> models.get -> GAN.compile
           -> restore checkpoint -> run.json -> GAN.fit(callbacks) -> logdir/

The logdir receives:

    .lock                    held by the process training there (one process per logdir)
    run.json                 the run's settings and `history`: when a resumed command changed a
                             setting that may change (epochs, learning rates, cadences)
    checkpoints/             the full training state every --checkpoint_every steps, at every
                             epoch end and on SIGTERM / Ctrl-C (see train/runstate.py); the same
                             command resumes from it exactly
    train/ images/           TensorBoard scalars and the sample grid of every epoch
    samples/epoch_NNNN.png   the sample grid of every epoch
    samples.png              the final sample grid
    final.weights.h5         the final weights (`model.load_weights`)
    model.keras              the final model (`models.load`, i.e. `keras.saving.load_model`)
    *.sha256                 checksums of the two (`sha256sum -c`), checked when they are loaded

Every setting is checked before anything is written; every file is written under a temporary
name and renamed, so a kill at any moment leaves the previous version or the new one.
"""

import dataclasses
import datetime
import json
import logging
import os
from typing import Optional

import keras
import tensorflow as tf

import models
from models import saving
from models.errors import GanZooError
from models.gan import dtype_policy
from train import config as settings
from train import data, distribute
from train.callbacks import EvaluateEvery, RunProgress, SampleGrid, StepScalars, TensorBoard, TimeLimit
from train.config import MAX_ROLLBACKS, TrainConfig  # noqa: F401 -- the public names
from train.images import write_png
from train.runstate import (
    GracefulStop,
    LogdirLock,
    Position,
    StopOnDivergence,
    TrainingCheckpoint,
    TrainingDiverged,
    interrupted,
)

CHECKPOINTS = "checkpoints"
RUN_RECORD = "run.json"

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    model: models.GAN
    history: dict
    logdir: str
    epochs_run: int
    files: dict
    resumed_from: Optional[Position] = None  # the checkpoint this run started from, if any
    rollbacks: int = 0  # divergence roll-backs so far in this logdir


# ------------------------------------------------------------------------------ settings
def _parse_model_options(model, options, prefix="--model_option "):
    from models import registry

    return registry.parse_options(model, options, prefix=prefix)


def checked(config):
    """`config` with every setting validated and the family's options parsed (one GanZooError
    line for the first problem), before anything is written."""
    for key in ("seed", "d_steps", "generator_loss", "ema_decay", "image_shape"):
        if key in (config.model_options or {}):
            raise GanZooError("--model_option image_shape is set by the dataset: pass --image_size "
                              "to resize" if key == "image_shape" else
                              f"--model_option {key}=... repeats a flag of its own: pass --{key}")
    config = settings.validate(config, _parse_model_options)
    if config.ema_decay is not None:  # its range is the model's declaration (0 <= decay < 1)
        _parse_model_options(config.model, {"ema_decay": config.ema_decay}, prefix="--")
    family = models.family(config.model)
    if config.generator_loss is not None and config.generator_loss not in family.generator_losses:
        raise GanZooError(f"--generator_loss {config.generator_loss!r} is not one of {config.model}'s: "
                          f"use one of {', '.join(family.generator_losses)}")
    return config


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


def _with_learning_rate(optimizer, learning_rate):
    if learning_rate is None:
        return optimizer
    return optimizer.__class__.from_config({**optimizer.get_config(), "learning_rate": learning_rate})


# ----------------------------------------------------------------------------- the record
def _update_record(logdir, record, position):
    """Writes run.json: this command's settings, with the record's history of changes.

    Called once the checkpoint has been checked against this command (a run of another
    identity is refused before anything is written). The settings that may change on resume
    and did are appended to `history` with the step they took effect at.
    """
    path = os.path.join(logdir, RUN_RECORD)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    history = []
    try:
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if not isinstance(previous, dict):
            raise ValueError(path)
    except FileNotFoundError:
        previous = None
    except (OSError, ValueError):
        log.warning("%s is unreadable: written anew from this command and the checkpoint", path)
        previous = None
        history.append({"at": now, "step": position.global_step, "note": "run.json was unreadable "
                        "and was written anew"})
    if previous is not None:
        settings.refuse_other_identity(settings.identity(record), settings.identity(previous),
                                       f"logdir {logdir} (run.json)")
        history = list(previous.get("history", [])) + history
        changed = settings.changes(previous, record)
        if changed:
            history.append({"at": now, "step": position.global_step, "changed": changed})
    elif position.global_step and not history:
        history.append({"at": now, "step": position.global_step,
                        "note": "run.json was missing and was written anew"})
    saving.write_json_atomically(path, {**record, "history": history})


def _record(config, logdir, image_shape, batch_size, replicas, model):
    return {
        **{key: value for key, value in dataclasses.asdict(config).items() if key != "verbose"},
        "logdir": logdir,
        "image_shape": list(image_shape),
        "batch_size": batch_size,
        "d_steps": model.d_steps,
        "generator_loss": model.generator_loss,
        "ema_decay": model.ema_decay,
        "replicas": replicas,
        "xla": bool(model.jit_compile),  # what jit_compile (None: the family's choice) gave
        "model_config": model.get_config(),
    }


# ------------------------------------------------------------------------------- wiring
def _image_shape(config):
    """--image_size resizes to a square and keeps the dataset's channels."""
    return None if config.image_size is None else (config.image_size, config.image_size, None)


def _load_training_data(config, family, batch_size):
    """The training split in the family's output range; (images, labels) batches for a
    conditional family, which a dataset without labels cannot train."""
    try:
        return data.load(config.dataset, "train", batch_size, value_range=family.output_range,
                         image_shape=_image_shape(config), seed=config.seed,
                         data_dir=config.data_dir, with_labels=family.conditional)
    except data.UnlabelledDataset:
        raise GanZooError(
            f"{config.model} is class-conditional and dataset '{config.dataset}' has no labels: "
            "train it on a labelled dataset such as fashion_mnist, or pick an unconditional "
            "model such as dcgan") from None


def build(config, image_shape, jit_compile=None):
    """The compiled model of `config` for samples of `image_shape`."""
    overrides = {"seed": config.seed, **(config.model_options or {})}
    for key in ("d_steps", "generator_loss", "ema_decay"):
        if getattr(config, key) is not None:
            overrides[key] = getattr(config, key)
    model = models.get(config.model, image_shape=image_shape, **overrides)
    d_optimizer, g_optimizer = model.default_optimizers()
    model.compile(
        d_optimizer=_with_learning_rate(d_optimizer, config.d_learning_rate),
        g_optimizer=_with_learning_rate(g_optimizer, config.g_learning_rate),
        jit_compile=jit_compile,
    )
    return model


def _save_with_checksum(data, path):
    """Writes the bytes `data` to `path` atomically, then its `path.sha256` companion (see
    models/saving.py).

    The old checksum goes first, so that a kill in between leaves a file without a checksum,
    never a file with a wrong one."""
    companion = saving.checksum_path(path)
    if os.path.exists(companion):
        os.remove(companion)
    saving.write_bytes_atomically(path, data)
    saving.write_text_atomically(companion, saving.write_checksum_line(path))


def train(config: TrainConfig, announce=None) -> TrainResult:
    """Trains `config.model` on `config.dataset` and writes everything to the logdir.

    `announce(line)`, if given, receives what is about to happen once the run is set up (new,
    resumed from where, or nothing left to train; where the logdir is), before the first step.
    """
    config = checked(config)
    # The strategy first: virtual devices and multi-worker setup must precede any TF work.
    strategy = distribute.make_strategy(config.strategy, config.devices, config.virtual_devices)
    logdir = distribute.worker_logdir(strategy, config.resolved_logdir())
    with GracefulStop() as stop, LogdirLock(logdir):
        return _train(config, strategy, logdir, stop, announce or (lambda line: None))


def _train(config, strategy, logdir, stop, announce):
    family = models.family(config.model)
    keras.utils.set_random_seed(config.seed)
    batch_size = family.default_batch_size if config.batch_size is None else config.batch_size
    d_steps = family.default_d_steps if config.d_steps is None else config.d_steps
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise GanZooError(f"batch size {batch_size} does not split over {replicas} replicas: "
                          f"use a multiple of {replicas}")
    # Every discriminator step takes its own slice of the batch.
    dataset = _load_training_data(config, family, batch_size * d_steps)
    image_shape = tuple(tf.nest.flatten(dataset.element_spec)[0].shape[1:])
    with dtype_policy(config.dtype_policy()), strategy.scope():
        # None: the family's measured choice (see GAN.xla_by_default); never XLA across replicas
        model = build(config, image_shape, jit_compile=False if replicas > 1 else config.jit_compile)
    record = _record(config, logdir, image_shape, batch_size, replicas, model)

    steps_per_epoch = config.steps_per_epoch or int(dataset.cardinality())
    if steps_per_epoch <= 0:  # a stream of unknown length: one pass per epoch
        steps_per_epoch = None
    checkpoint_dir = os.path.join(logdir, CHECKPOINTS)
    checkpoint = TrainingCheckpoint(checkpoint_dir, settings.identity(record), steps_per_epoch,
                                    every=config.checkpoint_every, stop=stop)
    # In a multi-worker run all workers resume from the same step.
    at_most = distribute.newest_common_step(strategy, checkpoint.newest_step())
    position = checkpoint.restore(model, at_most=at_most)  # refuses a checkpoint of another run
    resumed_from = position if checkpoint.found else None
    _update_record(logdir, record, position)
    saving.remove_leftovers(logdir)  # what killed runs were writing: this process holds the lock
    steps = f"{steps_per_epoch} steps" if steps_per_epoch else "one pass over the data"
    if position.epoch >= config.epochs:
        announce(f"nothing to train: {logdir} already holds {position.epoch} epochs; raise --epochs "
                 "to train on (the final files are written again)")
    elif resumed_from is not None:
        announce(f"resuming from the checkpoint at {position.describe(steps_per_epoch)}; "
                 f"{config.epochs} epochs of {steps} in all")
    else:
        epochs = f"{config.epochs} epoch{'s' if config.epochs > 1 else ''}"
        announce(f"training {config.model} on {config.dataset}: {epochs} of {steps}, "
                 f"{batch_size} samples per generator step")
    announce(f"logdir: {logdir}   watch it: tensorboard --logdir {logdir}   then open "
             "http://localhost:6006")
    learning_rates = _LearningRates(model, config)
    learning_rates.apply(checkpoint.learning_rate_scale, checkpoint.learning_rate_scale)
    if resumed_from is None:
        checkpoint.save(model)  # step 0: something to roll back to, and proof the disk works

    # One endless stream of batches, reshuffled every pass. A resumed run skips the batches the
    # checkpointed steps consumed, so it sees the data an uninterrupted run would have seen.
    fresh = [dataset]

    def stream(skip):
        # A new pipeline for every fit: a reshuffling dataset object draws another order each
        # time it is iterated again, a fresh one always the same order.
        source = fresh.pop() if fresh else _load_training_data(config, family, batch_size * d_steps)
        return source.repeat().skip(skip) if steps_per_epoch else source

    reference = data.sample_mixture(config.dataset, 1000, seed=config.seed) if len(image_shape) == 1 else None
    sample_grid = SampleGrid(logdir, n=config.samples, seed=config.seed, reference=reference)
    progress = RunProgress(config.epochs)
    callbacks = [
        progress,
        # First: a non-finite loss raises before any other callback sees the step.
        StopOnDivergence(checkpoint_dir),
        # Per-epoch scalars: with an integer update_freq, Keras records its epoch summaries
        # only when the step count happens to be a multiple of it.
        TensorBoard(logdir, write_graph=False, update_freq="epoch"),
        *([StepScalars(logdir, config.log_every_steps)] if config.log_every_steps else []),
        sample_grid,
        *model.training_callbacks(logdir),
        *EvaluateEvery.for_run(config.eval_every, logdir, config.dataset, config.data_dir, config.seed),
        # Last: an epoch counts as done in the checkpoint once its grids and scalars are written.
        checkpoint,
        *([TimeLimit(config.time_limit, announce)] if config.time_limit else []),
    ]
    if stop.requested:
        raise interrupted(stop, "before training started; nothing was trained")
    history = {}
    while True:
        try:
            _fit_from(model, checkpoint, stream, config, steps_per_epoch, callbacks, history, progress)
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
    writes = [lambda: _save_with_checksum(saving.weights_bytes(model), files["weights"]),
              lambda: _save_with_checksum(saving.model_bytes(model), files["model"]),
              lambda: write_png(files["samples"], sample_grid.picture())]
    for write in writes:
        if stop.requested:  # the training is checkpointed; the same command writes the rest
            raise interrupted(stop, "after training, before all final files were written; the "
                                    "checkpoint holds the finished run")
        write()
    epochs_run = len(next(iter(history.values()), []))
    return TrainResult(model, history, logdir, epochs_run, files, resumed_from, checkpoint.rollbacks)


def _fit_from(model, checkpoint, stream, config, steps_per_epoch, callbacks, history, progress):
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
        progress.offset = position.step_in_epoch if partial else 0
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
    """--on_divergence rollback: back to the newest finite checkpoint with both learning rates
    halved, at most MAX_ROLLBACKS times per logdir. The halving is saved with a new checkpoint
    at once."""
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
