"""The state a run keeps on disk, and how it survives kills, full disks and tampering.

    logdir/
      .lock                      held (flock) by the process training in this logdir
      checkpoints/
        checkpoint-000007-step-00000120.weights.h5   self-describing checkpoints (below)
        checkpoint-000006-step-00000100.weights.h5   older ones, kept as fall-backs
        index.json                                   table of contents, checksummed

**One process per logdir.** `LogdirLock` takes an exclusive `flock` on `logdir/.lock` before
anything is written; the kernel releases it when the process ends in any way (kill -9
included), so a stale lock of a dead process is never in the way. A second process gets one
error line naming the holder's pid and touches nothing.

**Self-describing checkpoints.** A checkpoint is one `.weights.h5` file written by Keras'
`save_weights` (both networks, both optimizers with their step counters, the noise state) with
a JSON record in the file's root attributes: the position (epoch, step in the epoch, global
step), the optimizers' step counters, the trackers' running means, the learning-rate scale of
divergence roll-backs, the run's identity (model, data, batch, seed, precision, the model's
config) and a digest of every array in the file. The record carries its own sha256. The file is
written under a temporary name, flushed, then renamed: the rename is the commit, so a kill at
any moment leaves the previous checkpoints and at most a temporary file that the next run
removes.

**The index is only a table of contents.** `index.json` lists the checkpoints, newest first,
with their sha256, and is itself checksummed. The files are the truth: a missing, damaged or
contradicting index is rebuilt from them (with a warning), never trusted over them, and nothing
is ever deleted because an index says so.

**What is used and what is deleted.** `restore` takes the newest checkpoint that is intact
(record checksum and array digest agree), finite (no NaN/Inf anywhere) and consistent (the
optimizers' step counters in the weights are those its record names), and warns about every
newer one it skipped. A save first checks that every weight and optimizer value is finite (a
non-finite state raises `TrainingDiverged` and nothing is written), and after committing keeps
the newest `KEEP` intact checkpoints; a file it cannot read is never deleted.

This is written by hand rather than with `tf.train.CheckpointManager` or Keras'
`BackupAndRestore`: those keep an index that is neither checksummed nor rebuilt from the files,
record no position inside an epoch, and delete old checkpoints by that index. The data position
is exact without iterator checkpointing: the pipeline is deterministic, so a resumed run skips
the batches its global step consumed (see `train.trainer`) instead of storing shuffle buffers.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import fcntl
import functools
import glob
import hashlib
import io
import json
import logging
import os
import re
import signal
import threading

import keras
import numpy as np

from models import saving
from models.errors import GanZooError

FORMAT = "gan_zoo.checkpoint/2"
INDEX = "index.json"
LOCK = ".lock"
KEEP = 3  # intact checkpoints kept after each save: the newest and two fall-backs
_ATTRIBUTE = "gan_zoo.checkpoint"
_NAME = "checkpoint-{sequence:06d}-step-{step:08d}.weights.h5"
_NAME_PATTERN = re.compile(r"checkpoint-(\d{6,})-step-(\d{8,})\.weights\.h5$")
_LEGACY_INDEX = "training_metadata.json"

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ the lock
class LogdirLock:
    """An exclusive lock on a logdir for the life of a run (a context manager)."""

    def __init__(self, logdir):
        self.logdir = os.fspath(logdir)
        self.path = os.path.join(self.logdir, LOCK)
        self._fd = None

    def __enter__(self):
        try:
            os.makedirs(self.logdir, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise GanZooError(f"cannot write to logdir {self.logdir}: {e.strerror}; pass another "
                              "--logdir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise GanZooError(f"cannot lock logdir {self.logdir} ({e.strerror}): pass "
                                  "another --logdir") from None
            raise GanZooError(f"logdir {self.logdir} is in use by process {holder}: wait for it "
                              "to finish (or stop it), or pass another --logdir") from None
        self._fd = fd
        try:  # who holds it, for the message above; the lock itself is the flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk: the lock still holds, only the pid is not recorded
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        return False


# ----------------------------------------------------------------------- SIGTERM and Ctrl-C
class GracefulStop:
    """While active, SIGTERM and SIGINT (Ctrl-C) only record that a stop was asked for; the
    checkpoint callback then saves at the end of the current step and stops training, and the
    trainer stops before its next file. A second Ctrl-C stops at once (KeyboardInterrupt).

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


class TrainingDiverged(GanZooError):
    """A tracked value or the training state became NaN or Inf (`what`) at generator step `step`."""

    def __init__(self, message, what=None, step=None):
        super().__init__(message)
        self.what = what
        self.step = step


def interrupted(stop, where):
    return TrainingInterrupted(f"training stopped by {signal.Signals(stop.signum).name} "
                               f"{where}: run the same command to resume", stop.signum)


# ------------------------------------------------------------------------------ positions
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


# ------------------------------------------------------------------------ finite and digests
def _optimizers(model):
    return [o for o in (model.d_optimizer, model.g_optimizer) if o is not None]


def non_finite(model):
    """The name of the first weight or optimizer value of `model` holding NaN/Inf, else None."""
    variables = list(model.weights) + [v for o in _optimizers(model) for v in o.variables]
    for variable in variables:
        value = np.asarray(variable)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return variable.path if hasattr(variable, "path") else variable.name
    return None


def _array_digest(h5file):
    """sha256 over every dataset of an open HDF5 file (name, dtype, shape, bytes), and whether
    every floating-point value in it is finite."""
    import h5py

    digest, finite = hashlib.sha256(), [True]

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            value = np.asarray(item[()])
            digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                finite[0] = False

    h5file.visititems(visit)
    return digest.hexdigest(), finite[0]


def _record_checksum(record):
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- checkpoints
@dataclasses.dataclass
class Checkpoint:
    """A checkpoint file as found on disk: its record, or why it cannot be used."""

    path: str
    record: dict = None
    problem: str = None  # None: intact (record and arrays agree)
    finite: bool = True

    @property
    def name(self):
        return os.path.basename(self.path)

    @functools.cached_property
    def sha256(self):
        """The file's sha256, once per file version (checkpoints are cached by their stat)."""
        return saving.sha256_of(self.path)

    @property
    def sequence(self):
        return self.record["sequence"]

    @property
    def position(self):
        r = self.record
        return Position(r["epoch"], r["step_in_epoch"], r["global_step"])


def read_checkpoint(path):
    """The `Checkpoint` at `path`, checked: record checksum, array digest, finiteness."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get(_ATTRIBUTE)
            if raw is None:
                return Checkpoint(path, problem="has no checkpoint record")
            record = json.loads(raw)
            digest, finite = _array_digest(f)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Checkpoint(path, problem=f"is unreadable ({saving.short(e)})")
    if not isinstance(record, dict) or record.get("checksum") != _record_checksum(record):
        return Checkpoint(path, problem="has a damaged or edited record (its checksum differs)")
    if record.get("arrays_sha256") != digest:
        return Checkpoint(path, record, problem="has damaged weights (their digest differs)")
    return Checkpoint(path, record, finite=finite)


class CheckpointStore:
    """The checkpoints of one run in `directory` (see the module docstring)."""

    def __init__(self, directory, keep=KEEP):
        self.directory = os.fspath(directory)
        self.keep = keep
        self.index_path = os.path.join(self.directory, INDEX)
        self._checked = {}  # path -> (size, mtime, Checkpoint): files are not rewritten in place

    def _read(self, path):
        try:
            stat = os.stat(path)
        except OSError:
            return Checkpoint(path, problem="vanished")
        key = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        cached = self._checked.get(path)
        if cached is None or cached[0] != key:
            cached = self._checked[path] = (key, read_checkpoint(path))
        return cached[1]

    # --------------------------------------------------------------------------- reading
    def scan(self):
        """Every checkpoint file, checked; intact ones newest first, then the others."""
        found = [self._read(p) for p in glob.glob(os.path.join(self.directory, "*.weights.h5"))
                 if _NAME_PATTERN.search(os.path.basename(p))]
        intact = sorted((c for c in found if c.problem is None), key=lambda c: -c.sequence)
        damaged = sorted((c for c in found if c.problem is not None), key=lambda c: c.name, reverse=True)
        return intact + damaged

    def check_legacy(self):
        if os.path.exists(os.path.join(self.directory, _LEGACY_INDEX)) and not self.scan():
            raise GanZooError(f"{self.directory} holds checkpoints of an earlier GAN Zoo "
                              f"({_LEGACY_INDEX}); they cannot be resumed: move that folder "
                              "aside (it is left untouched) to start over")

    def check_index(self, checkpoints):
        """Compares index.json with the files; rewrites it (with a warning) where they differ."""
        if not any(c.problem is None for c in checkpoints):
            return  # nothing to list: the index stays as it is, for whoever inspects the folder
        expected = self._index_of(checkpoints)
        try:
            with open(self.index_path, encoding="utf-8") as f:
                index = json.load(f)
            problem = None if index == expected else (
                "is damaged or was edited" if index.get("checksum") != _record_checksum(index)
                else "disagrees with the checkpoint files")
        except FileNotFoundError:
            problem = "is missing" if checkpoints else None
        except (OSError, ValueError, AttributeError):
            problem = "is unreadable"
        if problem:
            log.warning("%s %s: rebuilt from the checkpoint files", self.index_path, problem)
            self.write_index(checkpoints)

    def _index_of(self, checkpoints):
        index = {"format": FORMAT, "checkpoints": [
            {"file": c.name, "sha256": c.sha256, "sequence": c.sequence,
             "global_step": c.record["global_step"], "epoch": c.record["epoch"],
             "step_in_epoch": c.record["step_in_epoch"]}
            for c in checkpoints if c.problem is None]}
        index["checksum"] = _record_checksum(index)
        return index

    def write_index(self, checkpoints):
        saving.write_json_atomically(self.index_path, self._index_of(checkpoints))

    # --------------------------------------------------------------------------- writing
    def write(self, model, record):
        """Commits a checkpoint of `model` described by `record`; returns its `Checkpoint`."""
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise saving.write_error(self.directory, e) from None
        existing = self.scan()
        sequence = 1 + max((c.sequence for c in existing if c.problem is None), default=0)
        sequence = max(sequence, 1 + max((_sequence_of_name(c.name) for c in existing), default=0))
        name = _NAME.format(sequence=sequence, step=record["global_step"])
        path = os.path.join(self.directory, name)

        import h5py

        buffer = io.BytesIO(saving.weights_bytes(model))  # HDF5 never writes to the disk
        with h5py.File(buffer, "a") as f:
            full = {"format": FORMAT, "sequence": sequence, **record,
                    "arrays_sha256": _array_digest(f)[0],
                    "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                        timespec="seconds")}
            full["checksum"] = _record_checksum(full)
            f.attrs[_ATTRIBUTE] = json.dumps(full, sort_keys=True)
        saving.write_bytes_atomically(path, buffer.getvalue())
        checkpoints = self.scan()
        self._remove_old(checkpoints)
        checkpoints = [c for c in checkpoints if os.path.exists(c.path)]
        self.write_index(checkpoints)
        return next(c for c in checkpoints if c.name == name)

    def _remove_old(self, checkpoints):
        """Keeps the newest `keep` intact, finite checkpoints; deletes older intact ones. Files
        it cannot read or that hold NaN/Inf are left alone."""
        usable = [c for c in checkpoints if c.problem is None and c.finite]
        for old in usable[self.keep:]:
            try:
                os.remove(old.path)
            except OSError:
                pass


def _sequence_of_name(name):
    match = _NAME_PATTERN.search(name)
    return int(match.group(1)) if match else 0


# ----------------------------------------------------------------------- the callback
class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state every `every` steps, at every epoch end, and on SIGTERM /
    Ctrl-C; `restore` loads the newest usable checkpoint back (see the module docstring).

    Args:
        directory: the checkpoint folder (nothing else writes there).
        identity: the run's identity (`train.config.identity`), written into every checkpoint
            and compared on restore: a checkpoint of another run is refused.
        steps_per_epoch: steps of a full epoch, or None for a stream of unknown length (then
            only epoch ends are checkpointed: a position inside such an epoch cannot be found
            again).
        every: save every `every` training steps (0 or None: only at epoch ends).
        stop: a `GracefulStop` whose signal makes the callback save and stop.

    It assumes one step per batch callback (Keras' default `steps_per_execution=1`).
    """

    def __init__(self, directory, identity, steps_per_epoch=None, every=None, stop=None):
        super().__init__()
        self.store = CheckpointStore(directory)
        self.directory = self.store.directory
        self.identity = identity
        self.steps_per_epoch = steps_per_epoch
        self.every = every if steps_per_epoch else None
        self.stop = stop
        self.position = Position()
        self.found = None  # the Checkpoint `restore` resumed from
        self.last_saved = Position()  # the position of the newest checkpoint on disk
        self.learning_rate_scale = 1.0  # product of the divergence roll-backs' factors
        self.rollbacks = 0
        self._metrics_at_position = None  # tracker states to put back in a resumed epoch

    # ------------------------------------------------------------------------------ saving
    def save(self, model=None):
        """Writes a checkpoint of the current state at `self.position`, unless the state holds
        NaN/Inf: then nothing is written and `TrainingDiverged` is raised."""
        model = model or self.model
        broken = non_finite(model)
        if broken is not None:
            step = int(model.g_optimizer.iterations.numpy())
            p = self.position
            epoch = p.epoch if p.step_in_epoch == 0 and p.epoch else p.epoch + 1  # that step's
            raise TrainingDiverged(
                f"training diverged: {broken} became NaN/Inf at generator step {step} "
                f"(epoch {epoch}); nothing non-finite was saved and the "
                f"checkpoints in {self.directory} are intact: lower --d_learning_rate / "
                "--g_learning_rate and run the same command to resume, or pass "
                "--on_divergence rollback", what=broken, step=step)
        record = {
            **dataclasses.asdict(self.position),
            "steps_per_epoch": self.steps_per_epoch,
            "g_iterations": int(model.g_optimizer.iterations.numpy()),
            "d_iterations": int(model.d_optimizer.iterations.numpy()),
            "metrics": {m.name: [float(np.asarray(v)) for v in m.variables] for m in model.metrics},
            "learning_rate_scale": self.learning_rate_scale,
            "rollbacks": self.rollbacks,
            "identity": self.identity,
        }
        self.store.write(model, record)
        self.last_saved = self.position

    # ----------------------------------------------------------------------------- restoring
    def newest_step(self):
        """The global step of the newest intact checkpoint, or None when there is none."""
        intact = [c for c in self.store.scan() if c.problem is None and c.finite]
        return intact[0].record["global_step"] if intact else None

    def restore(self, model, at_most=None):
        """Loads the newest usable checkpoint (of global step `at_most` or less, if given) into
        `model`; returns its `Position` (step 0 and nothing loaded when there is none)."""
        from train import config as settings  # the identity comparison's wording

        self.store.check_legacy()
        checkpoints = self.store.scan()
        for checkpoint in checkpoints:  # before anything is repaired or loaded
            if checkpoint.problem is None:
                settings.refuse_other_identity(self.identity, checkpoint.record.get("identity", {}),
                                               f"checkpoint {checkpoint.path}")
        self.store.check_index(checkpoints)
        skipped = [f"{c.name} {c.problem}" for c in checkpoints if c.problem is not None]
        for problem in skipped:
            log.warning("checkpoint %s: not used (the file is left as it is)", problem)
        for checkpoint in checkpoints:
            if checkpoint.problem is not None:
                continue
            if at_most is not None and checkpoint.record["global_step"] > at_most:
                continue
            problem = self._load(model, checkpoint)
            if problem is not None:
                log.warning("checkpoint %s: not used (the file is left as it is)", problem)
                skipped.append(problem)
                continue
            self._set_state(checkpoint.record)
            self.found = checkpoint
            self.last_saved = self.position
            return self.position
        if skipped:
            raise GanZooError(f"no usable checkpoint in {self.directory} ({skipped[0]}); nothing "
                              "was deleted: move that folder aside to start over")
        if at_most is not None and checkpoints:
            raise GanZooError(f"{self.directory} holds no checkpoint of step {at_most} or "
                              "earlier, which the other workers resume from: move every "
                              "worker's checkpoints aside to start over")
        self._set_state({})
        return self.position

    @staticmethod
    def _load(model, checkpoint):
        """Loads `checkpoint` into `model`; None, or why it cannot be used."""
        if not checkpoint.finite:
            return f"{checkpoint.name} holds NaN/Inf"
        try:
            model.load_weights(checkpoint.path)
        except GanZooError as e:
            return str(e)
        counters = (int(model.g_optimizer.iterations.numpy()), int(model.d_optimizer.iterations.numpy()))
        recorded = (checkpoint.record["g_iterations"], checkpoint.record["d_iterations"])
        if counters != recorded:
            return (f"{checkpoint.name} contradicts itself (its optimizers made {counters} steps, "
                    f"its record says {recorded})")
        return None

    def _set_state(self, record):
        self.position = Position(int(record.get("epoch", 0)), int(record.get("step_in_epoch", 0)),
                                 int(record.get("global_step", 0)))
        self.learning_rate_scale = float(record.get("learning_rate_scale", 1.0))
        self.rollbacks = int(record.get("rollbacks", 0))
        self._metrics_at_position = record.get("metrics")

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
        if batch + 1 == self.params.get("steps"):
            return  # the epoch's last step: on_epoch_end saves it
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
        raise interrupted(self.stop, f"at {self.position.describe(self.steps_per_epoch)}; "
                                     f"checkpoint saved in {self.directory}")


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training at the first non-finite tracked value, before anything is saved.

    It raises instead of setting `stop_training`: Keras would still end the epoch. The
    checkpoint's own check of the state (`non_finite`) catches what the logs do not show, e.g. a
    generator update that turned the weights into NaN after the step's losses were computed.
    """

    def __init__(self, checkpoint_dir):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            value = float(np.mean(value))
            if not np.isfinite(value):
                step = int(self.model.g_optimizer.iterations.numpy())
                raise TrainingDiverged(
                    f"training diverged: {name} became {value} at generator step {step} "
                    f"(epoch {self._epoch + 1}); the checkpoints in {self.checkpoint_dir} are "
                    "intact: lower --d_learning_rate / --g_learning_rate and run the same "
                    "command to resume, or pass --on_divergence rollback",
                    what=name, step=step)
