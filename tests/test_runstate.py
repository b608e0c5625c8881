"""The run's state under faults: non-finite updates, two processes on one logdir, a damaged or
missing index, tampered checkpoint records, full disks, resumes with other settings and signals
during the final writes. Each test reproduces a fault that once lost or corrupted work."""

import contextlib
import glob
import json
import logging
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from disks import tmpfs
from test_train import run_cli

import models
from models import saving
from models.errors import GanZooError
from train import runstate
from train.callbacks import SampleGrid
from train.runstate import CheckpointStore, LogdirLock, Position, read_checkpoint
from train.trainer import TrainConfig, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(model="dcgan", batch_size=8, samples=4, jit_compile=False, verbose=0,
             model_options={"width": 8})
CLI = ("--model", "dcgan", "--batch_size", "8", "--samples", "4", "--nojit_compile",
       "--model_option", "width=8")


def run(logdir, **settings):
    return train(TrainConfig(**{**SMALL, "logdir": str(logdir), **settings}))


def snapshot(folder):
    return {p: open(p, "rb").read() for p in glob.glob(f"{folder}/**", recursive=True, include_hidden=True)
            if os.path.isfile(p) and not p.endswith(".lock")}


def checkpoints(logdir):
    return CheckpointStore(logdir / "checkpoints").scan()


def leftovers(folder):
    return [p for p in glob.glob(f"{folder}/**/tmp-*", recursive=True)]


# ------------------------------------------------------------------- 1. non-finite state
def corrupt_generator_after_step(monkeypatch, at_step, times=1):
    """After step `at_step`'s logs were checked (finite), the generator's first kernel becomes
    NaN: what an Inf learning rate does to the weights one update after the losses."""
    original = runstate.StopOnDivergence.on_train_batch_end
    done = []

    def corrupting(self, batch, logs=None):
        original(self, batch, logs)
        if int(self.model.g_optimizer.iterations.numpy()) == at_step and len(done) < times:
            kernel = self.model.generator.trainable_variables[0]
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))
            done.append(at_step)

    monkeypatch.setattr(runstate.StopOnDivergence, "on_train_batch_end", corrupting)


def test_a_non_finite_state_with_finite_losses_is_never_saved(fashion_dir, tmp_path, monkeypatch):
    logdir = tmp_path / "run"
    run(logdir, epochs=1, steps_per_epoch=3)
    before = snapshot(logdir / "checkpoints")
    corrupt_generator_after_step(monkeypatch, at_step=6)
    with pytest.raises(GanZooError, match=r"training diverged: .*kernel became NaN/Inf at generator step 6 "
                                          r"\(epoch 2\); nothing non-finite was saved"):
        run(logdir, epochs=2, steps_per_epoch=3)
    assert snapshot(logdir / "checkpoints") == before
    assert all(c.problem is None and c.finite for c in checkpoints(logdir))


def test_rollback_after_a_non_finite_state_resumes_from_a_finite_checkpoint(fashion_dir, tmp_path, monkeypatch):
    logdir = tmp_path / "run"
    corrupt_generator_after_step(monkeypatch, at_step=3)
    result = run(logdir, epochs=1, steps_per_epoch=3, on_divergence="rollback")
    assert result.rollbacks == 1 and int(result.model.g_optimizer.iterations) == 3
    assert runstate.non_finite(result.model) is None
    assert all(c.finite for c in checkpoints(logdir))


def forge_checkpoint(logdir, step, nan=False, **record_changes):
    """Writes a checkpoint the way an older, careless version could have: through the store,
    without the trainer's finiteness check."""
    newest = checkpoints(logdir)[0]
    model = models.get("dcgan", image_shape=(28, 28, 1), width=8)
    model.compile(jit_compile=False)
    model.load_weights(newest.path)
    if nan:
        kernel = model.generator.trainable_variables[0]
        kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    record = {k: v for k, v in newest.record.items()
              if k not in ("format", "sequence", "arrays_sha256", "written_at", "checksum")}
    record.update(global_step=step, **record_changes)
    return CheckpointStore(logdir / "checkpoints").write(model, record)


def test_resume_walks_back_past_a_non_finite_checkpoint(fashion_dir, tmp_path, caplog):
    logdir = tmp_path / "run"
    run(logdir, epochs=1, steps_per_epoch=3)
    broken = forge_checkpoint(logdir, step=3, nan=True)
    assert not broken.finite
    with caplog.at_level(logging.WARNING):
        resumed = run(logdir, epochs=2, steps_per_epoch=3)
    assert f"checkpoint {broken.name} holds NaN/Inf: not used" in caplog.text
    assert resumed.resumed_from == Position(1, 0, 3) and int(resumed.model.g_optimizer.iterations) == 6
    assert os.path.exists(broken.path)  # never deleted: it is not a checkpoint the run wrote


# ------------------------------------------------------------------ 2. one process per logdir
def cli_process(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "train.main", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_a_second_process_on_a_held_logdir_gets_one_line_and_touches_nothing(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    run(logdir, epochs=1, steps_per_epoch=2)
    before = snapshot(logdir)
    with LogdirLock(logdir):
        process = cli_process(*CLI, "--epochs", "2", "--steps_per_epoch", "2", "--logdir", str(logdir))
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    assert stderr.strip().splitlines()[-1] == (
        f"error: logdir {logdir} is in use by process {os.getpid()}: wait for it to finish (or stop "
        "it), or pass another --logdir")
    assert snapshot(logdir) == before


def test_two_processes_started_together_leave_one_consistent_run(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    common = (*CLI, "--epochs", "1", "--steps_per_epoch", "3", "--logdir", str(logdir))
    processes = [cli_process(*common, "--seed", str(seed)) for seed in (0, 1)]
    results = [p.communicate(timeout=600) for p in processes]
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, 1], [err[-1500:] for _, err in results]
    loser = next(i for i, p in enumerate(processes) if p.returncode == 1)
    winner_seed = 1 - loser
    assert "is in use by process" in results[loser][1].strip().splitlines()[-1]
    assert "Traceback" not in results[loser][1]
    record = json.loads((logdir / "run.json").read_text())
    assert record["seed"] == winner_seed and record["history"] == []
    assert {c.record["identity"]["seed"] for c in checkpoints(logdir)} == {winner_seed}
    # final.weights.h5 is the winner's: the same arrays as its newest checkpoint
    with h5py.File(logdir / "final.weights.h5") as final, h5py.File(checkpoints(logdir)[0].path) as newest:
        np.testing.assert_array_equal(final["vars/0"][()], newest["vars/0"][()])


def test_a_stale_lock_and_a_failed_run_leave_the_logdir_free(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    logdir.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (logdir / ".lock").write_text(f"{dead.pid}\n")  # a lock file whose process is gone
    run(logdir, epochs=1, steps_per_epoch=1)
    with pytest.raises(GanZooError, match="holds a run with seed=0, not 3"):
        run(logdir, epochs=1, steps_per_epoch=1, seed=3)
    with LogdirLock(logdir):  # released by the failed run
        pass


# -------------------------------------------------------------- 3. the index is not the truth
@pytest.fixture
def two_epochs(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    run(logdir, epochs=2, steps_per_epoch=3)
    return logdir


@pytest.mark.parametrize("damage, warning", [
    ("delete", "index.json is missing"),
    ("digit", "index.json is damaged or was edited"),
    ("truncate", "index.json is unreadable"),
])
def test_a_missing_or_damaged_index_is_rebuilt_from_the_files(two_epochs, damage, warning, caplog):
    logdir = two_epochs
    index = logdir / "checkpoints" / "index.json"
    original = index.read_text()
    weights = {p: b for p, b in snapshot(logdir / "checkpoints").items() if p.endswith(".h5")}
    if damage == "delete":
        index.unlink()
    elif damage == "digit":
        index.write_text(original.replace('"global_step": 6', '"global_step": 1', 1))
    else:
        index.write_text(original[: len(original) // 2])
    with caplog.at_level(logging.WARNING):
        resumed = run(logdir, epochs=2, steps_per_epoch=3)
    assert f"{warning}: rebuilt from the checkpoint files" in caplog.text
    assert resumed.resumed_from == Position(2, 0, 6) and resumed.epochs_run == 0
    assert index.read_text() == original
    assert {p: b for p, b in snapshot(logdir / "checkpoints").items() if p.endswith(".h5")} == weights


def edit_record(path, **changes):
    with h5py.File(path, "r+") as f:
        record = json.loads(f.attrs["gan_zoo.checkpoint"])
        record.update(changes)
        f.attrs["gan_zoo.checkpoint"] = json.dumps(record, sort_keys=True)
    return record


def test_an_edited_record_is_not_used_and_not_deleted(two_epochs, caplog):
    logdir = two_epochs
    newest = checkpoints(logdir)[0]
    edit_record(newest.path, global_step=1)  # one digit, without its checksum
    with caplog.at_level(logging.WARNING):
        resumed = run(logdir, epochs=3, steps_per_epoch=3)
    assert f"{newest.name} has a damaged or edited record" in caplog.text
    assert resumed.resumed_from == Position(1, 0, 3) and int(resumed.model.g_optimizer.iterations) == 9
    assert os.path.exists(newest.path)


def test_a_record_that_contradicts_its_weights_is_not_used(two_epochs, caplog):
    logdir = two_epochs
    newest = checkpoints(logdir)[0]
    record = edit_record(newest.path, global_step=9, g_iterations=9, epoch=3)  # a careful forger
    record["checksum"] = runstate._record_checksum(record)
    edit_record(newest.path, checksum=record["checksum"])
    assert read_checkpoint(newest.path).problem is None
    with caplog.at_level(logging.WARNING):
        resumed = run(logdir, epochs=3, steps_per_epoch=3)
    assert f"{newest.name} contradicts itself (its optimizers made (6, 6) steps, its record says (9, 6))" in caplog.text
    assert resumed.resumed_from == Position(1, 0, 3)


def test_nothing_is_deleted_when_every_checkpoint_is_damaged(two_epochs):
    logdir = two_epochs
    for checkpoint in checkpoints(logdir):
        edit_record(checkpoint.path, epoch=7)
    before = snapshot(logdir)
    with pytest.raises(GanZooError, match=r"no usable checkpoint in .*has a damaged or edited record.*"
                                          r"nothing was deleted: move that folder aside"):
        run(logdir, epochs=3, steps_per_epoch=3)
    after = snapshot(logdir)
    assert {p: b for p, b in after.items() if "checkpoints" in p} == \
        {p: b for p, b in before.items() if "checkpoints" in p}


# ------------------------------------------------------------------------- 4. full disks
def resize(folder, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def test_a_full_disk_during_a_checkpoint_is_one_line_and_exit_1(fashion_dir, tmp_path):
    probe = tmp_path / "probe"
    run(probe, epochs=1, steps_per_epoch=1)
    size = os.path.getsize(checkpoints(probe)[0].path)
    with tmpfs(tmp_path / "disk", f"size={int(2.5 * size) + 200_000}") as disk:
        logdir = disk / "run"
        args = (*CLI, "--epochs", "4", "--steps_per_epoch", "2", "--logdir", str(logdir))
        process = cli_process(*args, stdin=subprocess.DEVNULL)
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 1, (process.returncode, stderr[-2000:])  # not 139 (SIGSEGV)
        last = stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: the disk is full: could not write {logdir}/"), last
        assert last.endswith("the previous files are intact: free some space and run the same command to resume")
        assert "Traceback" not in stderr
        intact = [c for c in checkpoints(logdir) if c.problem is None]
        assert intact and all(c.finite for c in intact)
        resize(disk, 40 * size)
        process = cli_process(*args, stdin=subprocess.DEVNULL)
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-2000:]
        assert "resumed from the checkpoint" in stdout
        assert not leftovers(logdir)


def test_a_full_disk_while_writing_a_sample_grid(fashion_dir, tmp_path, monkeypatch):
    original = SampleGrid.on_epoch_end

    def fill_then_draw(self, epoch, logs=None):
        filler = os.path.join(self.logdir, "filler")
        with open(filler, "wb") as f:  # takes every free byte
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
        original(self, epoch, logs)

    with tmpfs(tmp_path / "disk", "size=30000000") as disk:
        logdir = disk / "run"
        monkeypatch.setattr(SampleGrid, "on_epoch_end", fill_then_draw)
        with pytest.raises(GanZooError, match=rf"the disk is full: could not write {logdir}/\S+"):
            run(logdir, epochs=1, steps_per_epoch=2)
        assert not leftovers(logdir)
        monkeypatch.undo()
        os.remove(logdir / "filler")
        result = run(logdir, epochs=1, steps_per_epoch=2)
        assert (logdir / "samples.png").is_file() and result.resumed_from == Position(0, 0, 0)
        assert not leftovers(logdir)


# ------------------------------------------------------------- 5. resuming with other settings
@pytest.mark.parametrize("change, message", [
    ({"seed": 1}, "holds a run with seed=0, not 1: pass --seed 0 to go on with it"),
    ({"batch_size": 4}, "holds a run with batch_size=8, not 4: pass --batch_size 8"),
    ({"model_options": {"width": 16}}, "holds a run with width=8, not 16: pass --model_option width=8"),
    ({"precision": "mixed_bfloat16"}, "holds a run with precision=float32, not mixed_bfloat16"),
])
@pytest.mark.parametrize("record", ["kept", "deleted"])
def test_resuming_with_other_fixed_settings_is_refused(fashion_dir, tmp_path, change, message, record):
    logdir = tmp_path / "run"
    run(logdir, epochs=1, steps_per_epoch=2)
    if record == "deleted":
        (logdir / "run.json").unlink()
    before = snapshot(logdir)
    with pytest.raises(GanZooError, match=message):
        run(logdir, epochs=2, steps_per_epoch=2, **change)
    assert snapshot(logdir) == before


def test_resuming_on_another_dataset_without_the_record_is_refused(fashion_dir, tmp_path):
    import tensorflow as tf

    logdir = tmp_path / "run"
    run(logdir, epochs=1, steps_per_epoch=2)
    (logdir / "run.json").unlink()
    other = tmp_path / "other"
    other.mkdir()
    for i in range(16):
        (other / f"{i}.png").write_bytes(tf.io.encode_png(np.full((28, 28, 1), i, np.uint8)).numpy())
    with pytest.raises(GanZooError, match=f"holds a run with dataset=fashion_mnist, not {other}"):
        run(logdir, epochs=2, steps_per_epoch=2, dataset=str(other))


def test_settings_that_may_change_are_recorded_in_the_history(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    run(logdir, epochs=1, steps_per_epoch=2)
    run(logdir, epochs=2, steps_per_epoch=2, g_learning_rate=1e-4, checkpoint_every=1)
    run(logdir, epochs=2, steps_per_epoch=2, g_learning_rate=1e-4, checkpoint_every=1)  # no change
    record = json.loads((logdir / "run.json").read_text())
    assert record["seed"] == 0 and record["epochs"] == 2 and record["g_learning_rate"] == 1e-4
    [entry] = record["history"]
    assert entry["step"] == 2 and entry["changed"] == {
        "epochs": [1, 2], "g_learning_rate": [None, 1e-4], "checkpoint_every": [500, 1]}
    (logdir / "run.json").unlink()
    run(logdir, epochs=3, steps_per_epoch=2, g_learning_rate=1e-4, checkpoint_every=1)
    record = json.loads((logdir / "run.json").read_text())
    assert record["epochs"] == 3 and record["history"][0]["note"] == "run.json was missing and was written anew"


# ------------------------------------------------------------------ 7. signals, devices, flags
def test_sigterm_while_the_final_model_is_written(fashion_dir, tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "run"
    model_bytes = saving.model_bytes

    def interrupted(model):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the archive is being written
        time.sleep(0.05)
        return model_bytes(model)

    monkeypatch.setattr(saving, "model_bytes", interrupted)
    message = run_cli(*CLI, "--epochs", "1", "--steps_per_epoch", "2", "--logdir", str(logdir))
    assert message == str(128 + signal.SIGTERM)
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "stopped: training stopped by SIGTERM after training, before all final files were written; "
        "the checkpoint holds the finished run: run the same command to resume")
    assert (logdir / "model.keras").is_file() and not (logdir / "samples.png").exists()
    assert not leftovers(logdir)
    monkeypatch.undo()
    assert run_cli(*CLI, "--epochs", "1", "--steps_per_epoch", "2", "--logdir", str(logdir)) is None
    assert (logdir / "samples.png").is_file() and models.load(logdir / "model.keras") is not None


def test_a_device_the_machine_lacks_is_refused(fashion_dir, tmp_path):
    message = run_cli(*CLI, "--strategy", "mirrored", "--devices", "/gpu:7", "--logdir", str(tmp_path / "run"))
    assert message.startswith("error: --devices names /gpu:7, which this machine does not have (it has /cpu:0")
    assert not (tmp_path / "run").exists()


def test_an_unwritable_evaluation_folder_is_refused_before_any_metric(fashion_dir, tmp_path, monkeypatch):
    from train import classifier, evaluate

    logdir = tmp_path / "run"
    run(logdir, epochs=1, steps_per_epoch=1)

    def no_metric_before_the_check(*args, **kwargs):
        raise AssertionError("a metric was computed before the output folder was checked")

    monkeypatch.setattr(classifier, "load", no_metric_before_the_check)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for folder in ("/proc/x", str(blocker / "out")):
        with pytest.raises(GanZooError, match=rf"cannot write to --output_dir {folder} \(.*\): pass another --output_dir"):
            evaluate.evaluate(evaluate.EvalConfig(logdir=str(logdir), n=20, output_dir=folder))
