"""`train(config)`: everything `python -m train.main` does, importable and testable.

    config -> train.data.load -> models.get -> GAN.compile -> GAN.fit(callbacks) -> logdir/

The logdir receives:

    run.json                 the run's configuration (a second run with another model refuses it)
    checkpoints/             the last epoch's full state (weights, both optimizers, noise state,
                             epoch counter); the same command resumes from it
    train/ images/           TensorBoard scalars (d_loss, g_loss, D(x), D(G(z)), learning rate)
                             and the sample grid of every epoch
    samples/epoch_NNNN.png   the sample grid of every epoch
    samples.png              the final sample grid
    final.weights.h5         the final weights (`model.load_weights`)
    model.keras              the final model (`keras.saving.load_model`)
"""

import dataclasses
import json
import os
import tempfile
from typing import Optional

import keras
import tensorflow as tf

import models
from models.errors import GanZooError
from train import data, distribute
from train.callbacks import SampleGrid, StopOnDivergence
from train.images import write_png

CHECKPOINTS = "checkpoints"


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
    d_learning_rate: Optional[float] = None
    g_learning_rate: Optional[float] = None
    logdir: Optional[str] = None
    data_dir: Optional[str] = None
    image_size: Optional[int] = None
    jit_compile: bool = True
    strategy: str = "default"
    devices: Optional[tuple] = None
    virtual_devices: Optional[int] = None
    mixed_precision: bool = False
    samples: int = 64
    verbose: object = "auto"

    def resolved_logdir(self):
        return self.logdir or os.path.join("runs", f"{self.model}_{_dataset_tag(self.dataset)}")


@dataclasses.dataclass
class TrainResult:
    model: models.GAN
    history: dict
    logdir: str
    epochs_run: int
    files: dict


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


def _image_shape(config):
    """--image_size resizes to a square and keeps the dataset's channels."""
    if config.image_size is None:
        return None
    return (config.image_size, config.image_size, None)


def _with_learning_rate(optimizer, learning_rate):
    if learning_rate is None:
        return optimizer
    return optimizer.__class__.from_config({**optimizer.get_config(), "learning_rate": learning_rate})


def _set_learning_rates(model, config):
    for optimizer, value in ((model.d_optimizer, config.d_learning_rate),
                             (model.g_optimizer, config.g_learning_rate)):
        if value is not None:
            optimizer.learning_rate = value


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
    _write_json(path, record)


def _completed_epochs(logdir):
    """Epochs finished by an earlier run in `logdir` (what BackupAndRestore will restore)."""
    path = os.path.join(logdir, CHECKPOINTS, "training_metadata.json")
    try:
        with open(path, encoding="utf-8") as f:
            return int(json.load(f)["epoch"])
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError):
        raise GanZooError(f"{path} is unreadable; delete the checkpoints folder to start over") from None


def _write_json(path, obj):
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
    os.replace(temporary, path)


def _save_atomically(save, path):
    """Calls `save(temporary_path)` then renames, so `path` is never left half-written."""
    directory, base = os.path.split(path)
    temporary = os.path.join(directory, f"tmp-{os.getpid()}-{base}")
    try:
        save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def build(config, image_shape, jit_compile=True):
    """The compiled model of `config` for samples of `image_shape`."""
    overrides = {"seed": config.seed}
    if config.d_steps is not None:
        overrides["d_steps"] = config.d_steps
    if config.generator_loss is not None:
        overrides["generator_loss"] = config.generator_loss
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
    dataset = data.load(
        config.dataset,
        "train",
        batch_size * d_steps,  # every discriminator step takes its own slice of the batch
        value_range=family.output_range,
        image_shape=_image_shape(config),
        seed=config.seed,
        data_dir=config.data_dir,
    )
    image_shape = tuple(dataset.element_spec.shape[1:])

    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with strategy.scope():
            model = build(config, image_shape, jit_compile=config.jit_compile and replicas == 1)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    _claim_logdir(
        logdir,
        {
            **dataclasses.asdict(config),
            "logdir": logdir,
            "image_shape": list(image_shape),
            "batch_size": batch_size,
            "replicas": replicas,
            "model_config": model.get_config(),
        },
    )

    # One endless stream of batches, reshuffled every pass. A resumed run skips the batches the
    # finished epochs consumed, so it sees the data an uninterrupted run would have seen.
    steps_per_epoch = config.steps_per_epoch or int(dataset.cardinality())
    if steps_per_epoch > 0:
        dataset = dataset.repeat().skip(_completed_epochs(logdir) * steps_per_epoch)
    else:  # a stream of unknown length: one pass per epoch
        steps_per_epoch = None
    reference = None
    if len(image_shape) == 1:
        reference = data.sample_mixture(config.dataset, 1000, seed=config.seed)
    sample_grid = SampleGrid(logdir, n=config.samples, seed=config.seed, reference=reference)
    checkpoint_dir = os.path.join(logdir, CHECKPOINTS)
    callbacks = [
        StopOnDivergence(checkpoint_dir),
        # Keeps the previous checkpoint as a backup while writing the new one, and falls back
        # to it when the newest cannot be read.
        keras.callbacks.BackupAndRestore(
            checkpoint_dir, delete_checkpoint=False, double_checkpoint=True
        ),
        # Per-epoch scalars: with an integer update_freq, Keras records its epoch summaries
        # only when the step count happens to be a multiple of it.
        keras.callbacks.TensorBoard(logdir, write_graph=False, update_freq="epoch"),
        # After the restore: learning rates given now win over the checkpoint's.
        keras.callbacks.LambdaCallback(on_train_begin=lambda logs: _set_learning_rates(model, config)),
        sample_grid,
        *model.training_callbacks(logdir),
    ]
    history = model.fit(
        dataset,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # train.data shuffles
        verbose=config.verbose,
    )

    files = {
        "weights": os.path.join(logdir, "final.weights.h5"),
        "model": os.path.join(logdir, "model.keras"),
        "samples": os.path.join(logdir, "samples.png"),
    }
    _save_atomically(model.save_weights, files["weights"])
    _save_atomically(model.save, files["model"])
    write_png(files["samples"], sample_grid.picture())
    epochs_run = len(history.epoch)
    return TrainResult(model, history.history, logdir, epochs_run, files)
