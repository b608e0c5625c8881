"""Reliability: a killed or stopped run resumes exactly, files are never half-written, damaged
files are refused by name, divergence can roll back, and the same seed gives the same run.

The one-line messages for bad command-line input are checked in test_train.py.
"""

import glob
import json
import logging
import os
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from loopback import free_ports

import models
from models import saving
from models.errors import GanZooError
from train import runstate
from train.runstate import CheckpointStore, Position, TrainingCheckpoint, read_checkpoint
from train.trainer import TrainConfig, _save_with_checksum, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CLI flags of the small runs below, and the same run as a TrainConfig.
COMMON = ("--model", "dcgan", "--batch_size", "8", "--samples", "4", "--nojit_compile")
SMALL = dict(model="dcgan", batch_size=8, samples=4, jit_compile=False, verbose=0)


def command(*args):
    return [sys.executable, "-m", "train.main", *args]


def metadata(logdir):
    """The newest checkpoint's record and file name (`weights`), or None while there is none
    (the index is replaced atomically after each checkpoint)."""
    try:
        index = json.loads((logdir / "checkpoints" / "index.json").read_text())
    except FileNotFoundError:
        return None
    newest = index["checkpoints"][0]["file"]
    return {**read_checkpoint(str(logdir / "checkpoints" / newest)).record, "weights": newest}


def identity_of(logdir):
    return metadata(logdir)["identity"]


def h5_arrays(path):
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def assert_same_arrays(a, b):
    assert a.keys() == b.keys() and len(a) > 10
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def loaded(path):
    """A DCGAN with the weights file at `path` (networks, optimizers, noise state)."""
    model = models.get("dcgan", image_shape=(28, 28, 1))
    model.compile(jit_compile=False)
    model.load_weights(str(path))
    return model


def epoch_scalars(logdir, tag="epoch_d_loss"):
    """(step, value) of a TensorBoard scalar over every event file of the run `train`."""
    points = []
    for path in sorted(glob.glob(str(logdir / "train" / "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    points.append((event.step, float(tf.make_ndarray(value.tensor))))
    return points


# --------------------------------------------------------------------------------- interruption
def test_sigkill_mid_epoch_resumes_exactly_where_it_stopped(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    args = command(*COMMON, "--epochs", "3", "--steps_per_epoch", "8", "--checkpoint_every", "3",
                   "--logdir", str(logdir))
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_at = None
    try:
        # Wait for a checkpoint inside epoch 2 or 3, freeze the process, make sure its newest
        # checkpoint is still inside an epoch, and kill it.
        while process.poll() is None and killed_at is None:
            meta = metadata(logdir)
            if meta and meta["epoch"] >= 1 and meta["step_in_epoch"]:
                process.send_signal(signal.SIGSTOP)
                meta = metadata(logdir)
                if meta["step_in_epoch"]:
                    process.kill()
                    killed_at = meta
                else:
                    process.send_signal(signal.SIGCONT)
            time.sleep(0.005)
    finally:
        process.kill()
        stderr = process.communicate()[1].decode()
    assert killed_at is not None, f"the run ended before a mid-epoch checkpoint was seen: {stderr[-2000:]}"
    step = killed_at["global_step"]
    assert killed_at["step_in_epoch"] == step % 8 and killed_at["epoch"] == step // 8

    # The checkpoint holds the step counters of both optimizers and the noise state at `step`.
    saved = loaded(logdir / "checkpoints" / killed_at["weights"])
    assert int(saved.g_optimizer.iterations) == int(saved.d_optimizer.iterations) == step
    noise_at_kill = saved.seed_generator.state.numpy()

    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not glob.glob(str(logdir / "**" / "tmp-*"), recursive=True)  # what the kill left is gone
    assert (f"resumed from the checkpoint at generator step {step} (epoch {step // 8 + 1}, "
            f"step {step % 8})") in done.stdout

    reference = train(TrainConfig(**SMALL, epochs=3, steps_per_epoch=8, logdir=str(tmp_path / "ref")))
    resumed = loaded(logdir / "final.weights.h5")
    assert int(resumed.g_optimizer.iterations) == int(resumed.d_optimizer.iterations) == 24
    assert not np.array_equal(resumed.seed_generator.state.numpy(), noise_at_kill)
    np.testing.assert_array_equal(resumed.seed_generator.state, reference.model.seed_generator.state)
    # Bit for bit: weights, both optimizers' slots and counters, noise state.
    assert_same_arrays(h5_arrays(logdir / "final.weights.h5"), h5_arrays(tmp_path / "ref/final.weights.h5"))

    # One TensorBoard run: each epoch's scalars once, across the two processes' event files,
    # equal to the uninterrupted run's (the cut epoch's running means were checkpointed too).
    files = glob.glob(str(logdir / "train" / "events.out.tfevents.*"))
    assert len({name.split(".")[-3] for name in files}) == 2  # written by both processes (pids)
    points = epoch_scalars(logdir)
    assert [s for s, _ in points] == [1, 2, 3]  # step N: after epoch N
    assert [v for _, v in points] == [float(np.float32(v)) for v in reference.history["d_loss"]]
    assert epoch_scalars(logdir) == epoch_scalars(tmp_path / "ref")


def test_sigterm_saves_a_checkpoint_then_exits(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    args = command(*COMMON, "--epochs", "1", "--steps_per_epoch", "40", "--checkpoint_every", "0",
                   "--logdir", str(logdir))
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while metadata(logdir) is None and process.poll() is None:  # the step-0 checkpoint
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=120)[1]
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    meta = metadata(logdir)
    step = meta["global_step"]
    assert 1 <= step < 40 and meta["step_in_epoch"] == step and meta["epoch"] == 0
    last = stderr.strip().splitlines()[-1]
    assert last == (f"stopped: training stopped by SIGTERM at generator step {step} (epoch 1, step "
                    f"{step} of 40); checkpoint saved in {logdir / 'checkpoints'}: run the same "
                    "command to resume"), last
    assert "Traceback" not in stderr

    resumed = train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=40, checkpoint_every=0, logdir=str(logdir)))
    assert resumed.resumed_from == Position(0, step, step)
    assert int(resumed.model.g_optimizer.iterations) == 40
    assert metadata(logdir)["epoch"] == 1


def test_sigint_handler_is_restored_after_training(fashion_dir, tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=1, logdir=str(tmp_path / "run")))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ------------------------------------------------------------------------- files and damage
def test_a_save_killed_halfway_leaves_the_previous_checkpoint(fashion_dir, tmp_path, monkeypatch):
    logdir = tmp_path / "run"
    train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=3, logdir=str(logdir)))
    before = {p: open(p, "rb").read() for p in glob.glob(str(logdir / "checkpoints" / "*"))}

    def dies_while_writing(path, data):
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        raise KeyboardInterrupt  # stands for the process dying in the middle of the write

    monkeypatch.setattr(saving, "_write_file", dies_while_writing)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=3, logdir=str(logdir)))
    after = {p: open(p, "rb").read() for p in glob.glob(str(logdir / "checkpoints" / "*"))}
    assert after == before  # no new name appeared, no byte changed
    monkeypatch.undo()
    resumed = train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=3, logdir=str(logdir)))
    assert resumed.resumed_from == Position(1, 0, 3) and int(resumed.model.g_optimizer.iterations) == 6


def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(fashion_dir, tmp_path, caplog):
    logdir = tmp_path / "run"
    train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=3, logdir=str(logdir)))
    found = CheckpointStore(logdir / "checkpoints").scan()
    assert [c.record["global_step"] for c in found] == [6, 3, 0]
    # (multi-worker runs resume from the newest step every worker holds: maybe the previous)
    model = models.get("dcgan", image_shape=(28, 28, 1))
    model.compile(jit_compile=False)
    restored = TrainingCheckpoint(logdir / "checkpoints", identity_of(logdir), 3).restore(model, at_most=5)
    assert restored == Position(1, 0, 3) and int(model.g_optimizer.iterations) == 3
    newest = logdir / "checkpoints" / found[0].name
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    with caplog.at_level(logging.WARNING):
        resumed = train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=3, logdir=str(logdir)))
    assert f"{newest.name} is unreadable" in caplog.text
    assert resumed.resumed_from == Position(1, 0, 3) and resumed.epochs_run == 1
    assert int(resumed.model.g_optimizer.iterations) == 6
    assert newest.exists()  # a file that cannot be read is never deleted


def test_damaged_checkpoints_are_refused_by_name(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=3, logdir=str(logdir)))
    found = CheckpointStore(logdir / "checkpoints").scan()
    before = {}
    for checkpoint in found:
        path = logdir / "checkpoints" / checkpoint.name
        with h5py.File(path, "r+") as f:  # one changed weight: the file stays valid HDF5
            name = next(n for n in _datasets(f) if f[n].dtype.kind == "f" and f[n].size > 1)
            values = f[name][()]
            values.flat[0] += 1.0
            f[name][...] = values
        before[path] = path.read_bytes()
    with pytest.raises(GanZooError, match=rf"no usable checkpoint in {logdir / 'checkpoints'} "
                                          rf"\({found[0].name} has damaged weights .*nothing was deleted"):
        train(TrainConfig(**SMALL, epochs=3, steps_per_epoch=3, logdir=str(logdir)))
    assert {p: p.read_bytes() for p in before} == before


def _datasets(h5file):
    names = []
    h5file.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


@pytest.fixture
def saved_model(tmp_path):
    """A DCGAN's final.weights.h5 and model.keras as the trainer writes them (with .sha256)."""
    model = models.get("dcgan", image_shape=(28, 28, 1), seed=1)
    model.compile(jit_compile=False)
    paths = tmp_path / "final.weights.h5", tmp_path / "model.keras"
    _save_with_checksum(saving.weights_bytes(model), str(paths[0]))
    _save_with_checksum(saving.model_bytes(model), str(paths[1]))
    return model, paths


def test_final_files_have_checksums_and_load(saved_model):
    model, (weights, keras_file) = saved_model
    for path in (weights, keras_file):
        digest, name = open(f"{path}.sha256").read().split()
        assert name == path.name and len(digest) == 64
    np.testing.assert_array_equal(models.load(keras_file).generate(3, seed=5), model.generate(3, seed=5))
    np.testing.assert_array_equal(loaded(weights).generate(3, seed=5), model.generate(3, seed=5))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("checksum", [True, False])
def test_damaged_weights_and_model_files_are_refused_by_name(saved_model, damage, checksum):
    model, (weights, keras_file) = saved_model
    for path in (weights, keras_file):
        data = bytearray(path.read_bytes())
        if damage == "truncate":
            data = data[: len(data) // 2]
        else:  # the flip of one bit, in the middle of the file
            data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        if not checksum:
            os.remove(f"{path}.sha256")
    if checksum:
        expected = "is damaged or was modified: its sha256 does not match"
        with pytest.raises(GanZooError, match=f"weights file '{weights}' {expected}"):
            loaded(weights)
        with pytest.raises(GanZooError, match=f"model file '{keras_file}' {expected}"):
            models.load(keras_file)
        return
    if damage == "truncate":
        with pytest.raises(GanZooError, match=f"weights file '{weights}' is truncated or corrupt"):
            loaded(weights)
    # Without a checksum, one flipped bit inside an HDF5 array goes unnoticed: that is what
    # the .sha256 files are for. A .keras file is a zip whose CRC-32s catch it.
    with pytest.raises(GanZooError, match=f"model file '{keras_file}' (is truncated or corrupt|cannot be loaded)"):
        models.load(keras_file)


def test_keras_files_load_in_safe_mode(tmp_path):
    lambda_model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    path = tmp_path / "code.keras"
    lambda_model.save(path)
    with pytest.raises(GanZooError, match=f"model file '{path}' holds code .* safe mode refuses"):
        models.load(path)
    with pytest.raises(GanZooError, match="does not exist"):
        models.load(tmp_path / "missing.keras")


# -------------------------------------------------------------------------------- divergence
def test_rollback_halves_the_learning_rates_and_goes_on(fashion_dir, tmp_path, monkeypatch, caplog):
    """A loss becomes NaN whenever the generator's learning rate is above 1.5e-4 (the paper's is
    2e-4): one roll-back to the last checkpoint, with halved rates, and training finishes."""
    original = runstate.StopOnDivergence.on_train_batch_end

    def diverges_above(self, batch, logs=None):
        if float(self.model.g_optimizer.learning_rate) > 1.5e-4:
            logs = {**logs, "g_loss": float("nan")}
        original(self, batch, logs)

    monkeypatch.setattr(runstate.StopOnDivergence, "on_train_batch_end", diverges_above)
    logdir = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        result = train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=3, logdir=str(logdir),
                                   on_divergence="rollback"))
    assert "training diverged: g_loss became nan at generator step 1 (epoch 1): rolled back to " \
           "generator step 0 (epoch 1, step 0 of 3) with halved learning rates" in caplog.text
    assert result.rollbacks == 1 and result.epochs_run == 1
    assert int(result.model.g_optimizer.iterations) == 3
    assert float(result.model.d_optimizer.learning_rate) == pytest.approx(1e-4)
    assert float(result.model.g_optimizer.learning_rate) == pytest.approx(1e-4)
    meta = metadata(logdir)
    assert meta["rollbacks"] == 1 and meta["learning_rate_scale"] == 0.5
    # The halving is part of the run: a resumed run keeps it, also for learning-rate flags.
    resumed = train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=3, logdir=str(logdir),
                                g_learning_rate=1e-4, on_divergence="rollback"))
    assert resumed.rollbacks == 1
    assert float(resumed.model.g_optimizer.learning_rate) == pytest.approx(5e-5)
    assert float(resumed.model.d_optimizer.learning_rate) == pytest.approx(1e-4)


def test_rollback_gives_up_after_three_halvings(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=3, logdir=str(logdir)))
    good = metadata(logdir)
    with pytest.raises(GanZooError, match=r"training diverged: .* at generator step \d+ \(epoch 2\).*"
                                          r"\(after 3 roll-backs with halved learning rates\)"):
        train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=3, logdir=str(logdir),
                          d_learning_rate=1e30, g_learning_rate=1e30, on_divergence="rollback"))
    meta = metadata(logdir)
    assert meta["global_step"] == good["global_step"] == 3 and meta["rollbacks"] == 3
    assert meta["learning_rate_scale"] == 0.125


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_same_run_bit_for_bit(fashion_dir, tmp_path):
    runs = [train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=4, logdir=str(tmp_path / name)))
            for name in ("a", "b")]
    assert runs[0].history == runs[1].history  # the first epoch's losses
    assert (tmp_path / "a/samples.png").read_bytes() == (tmp_path / "b/samples.png").read_bytes()
    assert_same_arrays(h5_arrays(tmp_path / "a/final.weights.h5"), h5_arrays(tmp_path / "b/final.weights.h5"))
    other = train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=4, seed=1, logdir=str(tmp_path / "c")))
    assert other.history != runs[0].history


def test_generate_after_loading_is_the_same_in_every_process(saved_model, tmp_path):
    model, (_, keras_file) = saved_model
    script = ("import sys, numpy as np, models; "
              "np.save(sys.argv[2], models.load(sys.argv[1]).generate(5, seed=3))")
    for name in ("a.npy", "b.npy"):
        done = subprocess.run([sys.executable, "-c", script, str(keras_file), str(tmp_path / name)],
                              cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        assert done.returncode == 0, done.stderr[-2000:]
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, model.generate(5, seed=3))


# ------------------------------------------------------------------------------ multi-worker
@pytest.mark.slow
def test_a_dead_worker_stops_the_others_and_all_resume(fashion_dir, tmp_path):
    """Two workers on loopback; worker 1 is killed mid-epoch: worker 0 stops with one clear line
    (TensorFlow's coordination service aborts its collectives), and the same two commands resume
    both from the same checkpoint."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    logdir = tmp_path / "mw"

    def start(index):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        return subprocess.Popen(
            command(*COMMON, "--strategy", "multiworker", "--epochs", "1", "--steps_per_epoch", "30",
                    "--checkpoint_every", "5", "--logdir", str(logdir)),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TF_CONFIG": json.dumps(tf_config)})

    processes = [start(0), start(1)]
    try:
        while processes[0].poll() is None:
            meta = metadata(logdir)
            if meta and meta["global_step"] >= 5:
                break
            time.sleep(0.01)
        processes[1].kill()
        _, stderr = processes[0].communicate(timeout=180)
    finally:
        for process in processes:
            process.kill()
            process.communicate()
    assert processes[0].returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(
        "error: worker /job:worker/replica:0/task:1 of the multi-worker run stopped responding "
        "(UnavailableError); restart every worker with the same command to resume from the "
        "checkpoint at generator step "), stderr[-2000:]

    processes = [start(0), start(1)]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    resumed = [next(line for line in out.splitlines() if line.startswith("resumed from")) for out, _ in outputs]
    assert resumed[0] == resumed[1]  # both workers from the same step
    chief, other = logdir / "final.weights.h5", logdir / "workers" / "worker-1" / "final.weights.h5"
    assert_same_arrays(h5_arrays(chief), h5_arrays(other))
    assert int(loaded(chief).g_optimizer.iterations) == 30
