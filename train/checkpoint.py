"""Checkpoints that survive a kill at any moment, and the exact resume from them.

    logdir/checkpoints/
      training_metadata.json      the commit point: which weights file is current and where
                                  training stood (epoch, step in the epoch, global step, ...)
      step-00000120.weights.h5    model.save_weights(): both networks, both optimizers (with
                                  their step counters), the noise SeedGenerator state
      step-00000100.weights.h5    the previous checkpoint, kept as a fallback

`TrainingCheckpoint` is a Keras callback. It saves every `every` training steps, at the end of
every epoch, and at the next step after SIGTERM or Ctrl-C (`GracefulStop`). A save writes a new
weights file under a temporary name, renames it, then replaces the metadata file the same way:
that last rename is the one moment a checkpoint becomes current, so a kill at any instant leaves
either the old or the new checkpoint, never a mixture or a truncated file. The metadata holds the
weights file's sha256, so a damaged file is detected on load (the previous checkpoint is then
used, with a warning).

`restore(model)` loads the newest intact checkpoint and returns its `Position`; the trainer then
skips the batches the checkpointed steps consumed and finishes the partial epoch with a `fit`
of the remaining steps before fitting the following epochs (see `train.trainer`). The running
means of the tracked values are part of the checkpoint too, so the epoch that was cut shows the
same d_loss/g_loss in TensorBoard as in an uninterrupted run.
"""

import dataclasses
import errno
import glob
import json
import logging
import os
import signal
import threading

import keras

from models import saving
from models.errors import GanZooError

METADATA = "training_metadata.json"
FORMAT = "gan_zoo.checkpoint/1"
_WEIGHTS_PATTERN = "step-{:08d}.weights.h5"
_TEMPORARY_PREFIX = "tmp-"

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------- atomic file writes
def _fsync(path):
    """Flushes `path` (a file or a folder) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_error(path, error):
    """The GanZooError for an OSError raised while writing `path`."""
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return GanZooError(
            f"the disk is full: could not write {path}; the previous files are intact: free "
            "some space and run the same command to resume"
        )
    reason = getattr(error, "strerror", None) or saving.short(error)
    return GanZooError(f"could not write {path} ({reason}); the previous files are intact: fix "
                       "this and run the same command to resume")


def save_atomically(save, path):
    """Calls `save(temporary_path)`, flushes it to disk, then renames it to `path`.

    Readers see the old file or the whole new one, never a half-written one; the temporary name
    keeps the extension (Keras wants `.weights.h5` / `.keras`). An OSError (a full disk, a
    read-only folder) becomes a GanZooError naming `path`, and the temporary file is removed.
    """
    path = os.fspath(path)
    directory, base = os.path.split(path)
    temporary = os.path.join(directory, f"{_TEMPORARY_PREFIX}{os.getpid()}-{base}")
    try:
        save(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(directory or ".")
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomically(path, text):
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)

    save_atomically(write, path)


def write_json_atomically(path, obj):
    write_text_atomically(path, json.dumps(obj, indent=2) + "\n")


# ------------------------------------------------------------------------------- positions
@dataclasses.dataclass(frozen=True)
class Position:
    """Where training stands. One training step = one generator update = one batch consumed."""

    epoch: int = 0  # epochs finished
    step_in_epoch: int = 0  # steps of the next epoch already taken
    global_step: int = 0  # steps since the run began (the batches the data stream has given)

    def describe(self, steps_per_epoch=None):
        of = f" of {steps_per_epoch}" if steps_per_epoch else ""
        return (f"generator step {self.global_step} (epoch {self.epoch + 1}, step "
                f"{self.step_in_epoch}{of})")


# ----------------------------------------------------------------------- SIGTERM and Ctrl-C
class GracefulStop:
    """While active, SIGTERM and SIGINT (Ctrl-C) only record that a stop was asked for; the
    checkpoint callback then saves at the end of the current step and stops training. A second
    Ctrl-C stops at once (KeyboardInterrupt), as usual.

    Handlers can only be installed from the main thread; elsewhere this does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = None
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False


class TrainingInterrupted(GanZooError):
    """Training stopped on SIGTERM / Ctrl-C after saving a checkpoint."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


# ----------------------------------------------------------------------- the checkpoint itself
class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state every `every` steps, at every epoch end, and on SIGTERM /
    Ctrl-C; `restore` loads it back (see the module docstring).

    Args:
        directory: the checkpoint folder (nothing else should write there).
        model_name: recorded, and checked on restore (a checkpoint of another model is refused).
        steps_per_epoch: steps of a full epoch, or None for a stream of unknown length (then
            only epoch ends are checkpointed: a position inside such an epoch cannot be found
            again).
        every: save every `every` training steps (0 or None: only at epoch ends).
        stop: a `GracefulStop` whose signal makes the callback save and stop.

    It assumes one step per batch callback (Keras' default `steps_per_execution=1`) and must
    come after `StopOnDivergence` in the callback list, so that non-finite state is never saved.
    """

    def __init__(self, directory, model_name, steps_per_epoch=None, every=None, stop=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.model_name = model_name
        self.steps_per_epoch = steps_per_epoch
        self.every = every if steps_per_epoch else None
        self.stop = stop
        self.position = Position()
        self.found = False  # whether `restore` found a checkpoint
        self.last_saved = Position()  # the position of the newest checkpoint on disk
        self.learning_rate_scale = 1.0  # product of the divergence roll-backs' factors
        self.rollbacks = 0
        self._metrics_at_position = None  # tracker states to put back in a resumed epoch
        self._metadata = None  # the current metadata (what the previous save wrote or restored)

    @property
    def metadata_path(self):
        return os.path.join(self.directory, METADATA)

    # ------------------------------------------------------------------------------ saving
    def save(self, model=None):
        """Writes a checkpoint of the current state at `self.position` (see module docstring)."""
        model = model or self.model
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise write_error(self.directory, e) from None
        name = _WEIGHTS_PATTERN.format(self.position.global_step)
        current = self._metadata and self._metadata.get("weights")
        if name == current:  # the same step again (after a roll-back): never overwrite the
            # file the committed metadata names, or a kill before the commit would break both
            name = name.replace(".weights.h5", f"-{os.urandom(3).hex()}.weights.h5")
        path = os.path.join(self.directory, name)
        save_atomically(model.save_weights, path)
        entry = {
            "weights": name,
            "sha256": saving.sha256_of(path),
            **dataclasses.asdict(self.position),
            "steps_per_epoch": self.steps_per_epoch,
            "metrics": {m.name: [float(v.numpy()) for v in m.variables] for m in model.metrics},
            "learning_rate_scale": self.learning_rate_scale,
            "rollbacks": self.rollbacks,
        }
        metadata = {"format": FORMAT, "model": self.model_name, **entry,
                    "previous": _entry_of(self._metadata)}
        write_json_atomically(self.metadata_path, metadata)  # the commit point
        self._metadata = metadata
        self.last_saved = self.position
        self._remove_unreferenced()

    def _remove_unreferenced(self):
        """Deletes weights files the metadata no longer names, and temporary leftovers."""
        keep = {self._metadata.get("weights")}
        if self._metadata.get("previous"):
            keep.add(self._metadata["previous"].get("weights"))
        for path in glob.glob(os.path.join(self.directory, "step-*.weights.h5")):
            if os.path.basename(path) not in keep:
                _remove_quietly(path)

    # ----------------------------------------------------------------------------- restoring
    def latest_step(self):
        """The global step of the newest checkpoint, or None when there is none."""
        metadata = self._read_metadata()
        return None if metadata is None else int(metadata.get("global_step", -1))

    def restore(self, model, at_most=None):
        """Loads the newest intact checkpoint into `model` (of global step `at_most` or less,
        if given); returns its `Position` (step 0 and nothing loaded when the folder holds no
        checkpoint)."""
        for leftover in glob.glob(os.path.join(self.directory, _TEMPORARY_PREFIX + "*")):
            _remove_quietly(leftover)  # a save that a kill interrupted
        metadata = self.check_model()
        if metadata is None:
            self._set_state(None)
            return self.position
        failures = []
        for entry in (metadata, metadata.get("previous")):
            if not entry or (at_most is not None and entry.get("global_step", 0) > at_most):
                continue
            path = os.path.join(self.directory, entry["weights"])
            try:
                if entry.get("sha256"):  # refuse a damaged file before Keras reads it
                    saving.check_file(path, "checkpoint", expected_sha256=entry["sha256"])
                model.load_weights(path)
            except GanZooError as e:
                failures.append(str(e))
                continue
            if failures:
                log.warning("%s; resuming from the previous checkpoint %s instead",
                            failures[0], entry["weights"])
            self._set_state(entry)
            self.found = True
            self.last_saved = self.position
            self._metadata = metadata if entry is metadata else {
                "format": FORMAT, "model": self.model_name, **entry, "previous": None}
            return self.position
        if not failures:
            raise GanZooError(f"{self.directory} holds no checkpoint of step {at_most} or "
                              "earlier, which the other workers resume from: delete every "
                              "worker's checkpoints to start over")
        raise GanZooError(f"{failures[0]} (no intact checkpoint left in {self.directory}: "
                          "delete that folder to start over)")

    def check_model(self):
        """The checkpoint's metadata (None if there is none), refusing another model's."""
        metadata = self._read_metadata()
        if metadata is not None and metadata.get("model", self.model_name) != self.model_name:
            raise GanZooError(
                f"{self.metadata_path} is a checkpoint of {metadata['model']!r}, not "
                f"{self.model_name!r}: pass another --logdir or delete that folder"
            )
        return metadata

    def _read_metadata(self):
        path = self.metadata_path
        try:
            with open(path, encoding="utf-8") as f:
                metadata = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raise GanZooError(f"{path} is unreadable; delete the checkpoints folder to start "
                              "over") from None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("epoch"), int):
            raise GanZooError(f"{path} is not a GAN Zoo checkpoint; delete the checkpoints "
                              "folder to start over")
        if "weights" not in metadata:  # written by keras.callbacks.BackupAndRestore
            metadata = {"weights": "latest.weights.h5", "sha256": None, "epoch": metadata["epoch"]}
        return metadata

    def _set_state(self, entry):
        entry = entry or {}
        epoch = int(entry.get("epoch", 0))
        self.position = Position(epoch, int(entry.get("step_in_epoch", 0)),
                                 int(entry.get("global_step", epoch * (self.steps_per_epoch or 0))))
        self.learning_rate_scale = float(entry.get("learning_rate_scale", 1.0))
        self.rollbacks = int(entry.get("rollbacks", 0))
        self._metrics_at_position = entry.get("metrics")

    # ------------------------------------------------------------------------- callbacks
    def on_epoch_begin(self, epoch, logs=None):
        if self.position.epoch != epoch:  # fit() was not started from self.position
            self.position = Position(epoch, 0, self.position.global_step)
        if self.position.step_in_epoch and self._metrics_at_position:
            # Keras reset the trackers for this epoch; put back the running means of its first
            # steps, taken before the interruption.
            for metric in self.model.metrics:
                for variable, value in zip(metric.variables,
                                           self._metrics_at_position.get(metric.name, ())):
                    variable.assign(value)
        self._metrics_at_position = None

    def on_train_batch_end(self, batch, logs=None):
        p = self.position
        self.position = Position(p.epoch, p.step_in_epoch + 1, p.global_step + 1)
        last_of_epoch = batch + 1 == self.params.get("steps")  # on_epoch_end saves that one
        if last_of_epoch:
            return
        if self.stop is not None and self.stop.requested:
            self._save_and_stop()
        if self.every and self.position.global_step % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.position = Position(epoch + 1, 0, self.position.global_step)
        self.save()
        if self.stop is not None and self.stop.requested:
            self._save_and_stop(saved=True)

    def _save_and_stop(self, saved=False):
        if not saved:
            self.save()
        name = signal.Signals(self.stop.signum).name
        raise TrainingInterrupted(
            f"training stopped by {name} at {self.position.describe(self.steps_per_epoch)}; "
            f"checkpoint saved in {self.directory}: run the same command to resume",
            self.stop.signum,
        )


def _entry_of(metadata):
    """The part of a metadata record that describes its own checkpoint (no `previous`)."""
    if not metadata:
        return None
    return {k: v for k, v in metadata.items() if k not in ("previous", "format", "model")}


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
