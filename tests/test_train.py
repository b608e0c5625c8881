"""The trainer and the CLI end to end, on a small Fashion-MNIST folder the test writes."""

import errno
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import models
from models import saving
from models.errors import GanZooError
from train import main as cli
from train.cli import guarded
from train.config import parse_option_pairs
from train.runstate import CheckpointStore
from train.trainer import TrainConfig, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if "model" not in flags.FLAGS:
    cli.define_flags()


def tiny(logdir, **overrides):
    settings = dict(model="dcgan", epochs=1, batch_size=16, steps_per_epoch=3, logdir=str(logdir),
                    jit_compile=False, samples=9, verbose=0)
    settings.update(overrides)
    return TrainConfig(**settings)


def newest_checkpoint(logdir):
    return CheckpointStore(logdir / "checkpoints").scan()[0]


def read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_train_writes_every_artifact(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    result = train(tiny(logdir))
    assert result.epochs_run == 1
    assert all(np.isfinite(v[0]) for v in result.history.values())
    for name in ("run.json", "final.weights.h5", "model.keras", "samples.png",
                 "final.weights.h5.sha256", "model.keras.sha256",
                 "samples/epoch_0001.png", "checkpoints/checkpoint-000002-step-00000003.weights.h5",
                 "checkpoints/index.json"):
        assert (logdir / name).is_file(), name
    found = CheckpointStore(logdir / "checkpoints").scan()
    assert [c.name for c in found] == ["checkpoint-000002-step-00000003.weights.h5",
                                       "checkpoint-000001-step-00000000.weights.h5"]  # and step 0
    assert found[0].record["epoch"] == 1 and found[0].problem is None and found[0].finite
    assert not [f for f in os.listdir(logdir) + os.listdir(logdir / "checkpoints") if "tmp" in f]
    assert os.listdir(logdir / "train")[0].startswith("events.out.tfevents")
    assert os.listdir(logdir / "images")[0].startswith("events.out.tfevents")
    # a 3x3 grid of 28x28 grey images with 1-pixel borders
    assert read_png(logdir / "samples.png").shape == (3 * 29 + 1, 3 * 29 + 1, 1)
    record = json.loads((logdir / "run.json").read_text())
    assert record["model"] == "dcgan" and record["image_shape"] == [28, 28, 1]

    loaded = keras.saving.load_model(str(logdir / "model.keras"))
    np.testing.assert_array_equal(loaded.generate(4, seed=2), result.model.generate(4, seed=2))
    rebuilt = models.get("dcgan", image_shape=(28, 28, 1))
    rebuilt.compile()
    rebuilt.load_weights(str(logdir / "final.weights.h5"))
    np.testing.assert_array_equal(rebuilt.generate(4, seed=2), result.model.generate(4, seed=2))


def test_same_command_resumes_from_the_checkpoint(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    first = train(tiny(logdir, epochs=1))
    assert int(first.model.g_optimizer.iterations) == 3
    second = train(tiny(logdir, epochs=2))
    assert second.epochs_run == 1  # epoch 2 only
    assert int(second.model.g_optimizer.iterations) == 6
    assert (logdir / "samples/epoch_0002.png").is_file()
    assert newest_checkpoint(logdir).record["epoch"] == 2
    third = train(tiny(logdir, epochs=2))
    assert third.epochs_run == 0
    assert int(third.model.g_optimizer.iterations) == 6


def test_resumed_run_equals_an_uninterrupted_one(fashion_dir, tmp_path):
    straight = train(tiny(tmp_path / "a", epochs=2))
    train(tiny(tmp_path / "b", epochs=1))
    resumed = train(tiny(tmp_path / "b", epochs=2))
    np.testing.assert_allclose(resumed.model.generate(4, seed=0), straight.model.generate(4, seed=0), atol=1e-5)


def test_logdir_of_another_model_is_refused(fashion_dir, tmp_path):
    train(tiny(tmp_path / "run"))
    with pytest.raises(GanZooError, match="holds a run with model=dcgan, not mlp_gan"):
        train(tiny(tmp_path / "run", model="mlp_gan"))


def test_mlp_gan_on_ring8_draws_scatter_plots(tmp_path):
    result = train(tiny(tmp_path / "ring", model="mlp_gan", dataset="ring8", batch_size=64))
    picture = read_png(tmp_path / "ring/samples.png")
    assert picture.shape == (256, 256, 3)
    assert result.model.generate(5).shape == (5, 2)


def test_d_steps_take_their_own_slices(fashion_dir, tmp_path):
    result = train(tiny(tmp_path / "run", d_steps=2))
    assert int(result.model.d_optimizer.iterations) == 2 * int(result.model.g_optimizer.iterations) == 6


def test_learning_rate_flags_reach_the_optimizers(fashion_dir, tmp_path):
    result = train(tiny(tmp_path / "run", d_learning_rate=1e-3, g_learning_rate=5e-4))
    assert float(result.model.d_optimizer.learning_rate) == pytest.approx(1e-3)
    assert float(result.model.g_optimizer.learning_rate) == pytest.approx(5e-4)
    assert float(result.model.g_optimizer.beta_1) == pytest.approx(0.5)  # the rest stays the paper's


def test_model_options_reach_the_model_and_the_record(fashion_dir, tmp_path):
    options = parse_option_pairs(["width=8", "latent_dim=12", "sync_batch_norm=false"])
    assert options == {"width": "8", "latent_dim": "12", "sync_batch_norm": "false"}  # as typed
    result = train(tiny(tmp_path / "run", model_options=options))
    assert result.model.latent_dim == 12 and result.model.width == 8
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    # the record holds the values the family's declarations parsed
    assert record["model_options"] == {"width": 8, "latent_dim": 12, "sync_batch_norm": False}
    assert record["model_config"]["width"] == 8


def test_image_size_resizes_for_the_model(fashion_dir, tmp_path):
    result = train(tiny(tmp_path / "run", image_size=32))
    assert result.model.generator.output_shape == (None, 32, 32, 1)


def run_cli(*args):
    """Runs the CLI's main in this process; returns the exit message (None on success)."""
    flags.FLAGS.unparse_flags()
    argv = flags.FLAGS(["train.main", *args])
    try:
        guarded(cli.main)(argv)
    except SystemExit as e:
        return str(e.code)
    return None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "stylegan"], "error: unknown model 'stylegan': use one of mlp_gan, dcgan"),
        (["--dataset", "imagenet_v9"], "error: unknown dataset 'imagenet_v9'"),
        (["--dataset", "/no/such/folder"], "error: folder '/no/such/folder' does not exist"),
        (["--batch_size", "0"], "error: --batch_size must be an integer from 1 to 65536, got 0"),
        (["--batch_size", "300"], "error: batch_size 300 is larger than the 256 examples"),
        (["--epochs", "0"], "error: --epochs must be an integer from 1 to 1000000, got 0"),
        (["--d_steps", "0"], "error: --d_steps must be an integer from 1 to 1000, got 0"),
        (["--generator_loss", "hinge"], "error: --generator_loss 'hinge' is not one of dcgan's: use one of non_saturating, minimax, least_squares"),
        (["--g_learning_rate", "-1"], "error: --g_learning_rate must be a number > 0, finite in float32, got -1.0"),
        (["--g_learning_rate", "1e39"], "error: --g_learning_rate must be a number > 0, finite in float32, got 1e+39"),
        (["--d_learning_rate", "nan"], "error: --d_learning_rate must be a number > 0, finite in float32, got nan"),
        (["--seed", "-1"], "error: --seed must be an integer from 0 to 4294967295, got -1"),
        (["--seed", "4294967296"], "error: --seed must be an integer from 0 to 4294967295, got 4294967296"),
        (["--image_size", "4096"], "error: --image_size must be an integer from 4 to 1024, got 4096"),
        (["--samples", "0"], "error: --samples must be an integer from 1 to 1024, got 0"),
        (["--eval_every", "0"], "error: --eval_every must be an integer >= 1, got 0"),
        (["--image_size", "30"], "error: dcgan takes images of side"),
        (["--model", "dcgan", "--dataset", "ring8"], "error: dcgan takes square images"),
        (["extra"], "error: unexpected arguments extra"),
        (["--checkpoint_every", "-1"], "error: --checkpoint_every must be an integer >= 0, got -1"),
        (["--on_divergence", "ignore"], "error: unknown --on_divergence 'ignore': use one of stop, rollback"),
        (["--precision", "float64"], "error: unknown --precision 'float64': use one of float32, mixed_float16, mixed_bfloat16"),
        (["--mixed_precision", "--precision", "mixed_bfloat16"], "error: --mixed_precision means --precision mixed_float16, which contradicts --precision mixed_bfloat16: give only one of them"),
        (["--dataset", "{tmp}/empty"], "error: folder '{tmp}/empty' has no .png/.jpg/.jpeg/.bmp/.gif images"),
        (["--dataset", "{tmp}/mixed"], "error: images differ in size: '{tmp}/mixed/a.png' is (28, 28, 1) but '{tmp}/mixed/b.png' is (32, 32, 1) (h, w, c): pass --image_size"),
        (["--dataset", "{tmp}/mixed", "--image_size", "30", "--batch_size", "2"], "error: dcgan takes images of side"),
        (["--dataset", "{tmp}/mixed", "--image_size", "28", "--batch_size", "3"], "error: batch_size 3 is larger than the 2 examples of '{tmp}/mixed'"),
        (["--strategy", "horovod"], "error: unknown --strategy 'horovod': use one of default, mirrored, multiworker, tpu"),
        (["--logdir", "{tmp}/blocker/run"], "error: cannot write to logdir {tmp}/blocker/run"),
        (["--model_option", "width"], "error: --model_option takes key=value, got 'width'"),
        (["--model_option", "colour=red"], "error: --model_option colour=red: dcgan does not take colour"),
        (["--model_option", "d_steps=2"], "error: --model_option d_steps=... repeats a flag of its own: pass --d_steps"),
        (["--generator_loss", "least_squares", "--model", "wgan", "--batch_size", "16"], "error: --generator_loss 'least_squares' is not one of wgan's: use one of wasserstein"),
    ],
)
def test_cli_bad_input_gives_one_clear_line(fashion_dir, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "mixed").mkdir()
    (tmp_path / "blocker").write_text("a file, not a folder")
    for name, side in (("a.png", 28), ("b.png", 32)):
        (tmp_path / "mixed" / name).write_bytes(tf.io.encode_png(np.zeros((side, side, 1), np.uint8)).numpy())
    args = [arg.format(tmp=tmp_path) for arg in args]
    exit_message = run_cli("--logdir", str(tmp_path / "run"), "--steps_per_epoch", "1", *args)
    message = message.format(tmp=tmp_path)
    assert exit_message is not None and exit_message.startswith(message), exit_message
    assert "\n" not in exit_message


def test_cli_logdir_of_another_model(fashion_dir, tmp_path):
    assert run_cli("--logdir", str(tmp_path / "run"), "--steps_per_epoch", "1", "--epochs", "1",
                   "--batch_size", "8", "--nojit_compile", "--samples", "1") is None
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    wgan = ("--logdir", str(tmp_path / "run"), "--model", "wgan", "--batch_size", "8", "--steps_per_epoch", "1")
    exit_message = run_cli(*wgan)
    newest = newest_checkpoint(tmp_path / "run").path
    assert exit_message == (f"error: checkpoint {newest} holds a run with model=dcgan, not wgan: "
                            "pass --model dcgan to go on with it, or another --logdir")
    # the same without run.json: the checkpoint knows its run
    os.remove(tmp_path / "run" / "run.json")
    assert run_cli(*wgan) == exit_message
    del before[tmp_path / "run" / "run.json"]
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_cli_disk_full_while_saving_keeps_the_last_checkpoint(fashion_dir, tmp_path, monkeypatch):
    logdir = tmp_path / "run"
    small = ("--logdir", str(logdir), "--steps_per_epoch", "2", "--batch_size", "8", "--nojit_compile",
             "--samples", "1")
    assert run_cli(*small, "--epochs", "1") is None
    checkpoints = {name: (logdir / "checkpoints" / name).read_bytes() for name in os.listdir(logdir / "checkpoints")}

    write_file = saving._write_file

    def disk_full(path, data):
        if not path.endswith(".weights.h5"):  # room for small files, not for a checkpoint
            return write_file(path, data)
        with open(path, "wb") as f:
            f.write(data[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(saving, "_write_file", disk_full)
    exit_message = run_cli(*small, "--epochs", "2")
    assert exit_message == (f"error: the disk is full: could not write {logdir}/checkpoints/"
                            "checkpoint-000003-step-00000004.weights.h5; the previous files are intact: free "
                            "some space and run the same command to resume")
    assert {name: (logdir / "checkpoints" / name).read_bytes() for name in os.listdir(logdir / "checkpoints")} == checkpoints
    monkeypatch.undo()
    assert run_cli(*small, "--epochs", "2") is None  # space freed: the same command resumes
    assert newest_checkpoint(logdir).record["global_step"] == 4


def test_cli_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_ZOO_DATA_DIR", str(tmp_path / "empty"))
    exit_message = run_cli("--logdir", str(tmp_path / "run"))
    assert "apt-get install dataset-fashion-mnist" in exit_message


def test_cli_unwritable_logdir(fashion_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    exit_message = run_cli("--logdir", str(blocker / "run"), "--steps_per_epoch", "1")
    assert exit_message.startswith("error: cannot write to logdir")


def cli_process(*args, env=None):
    return subprocess.run([sys.executable, "-m", "train.main", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def test_cli_process_trains_with_xla_and_prints_where_things_are(fashion_dir, tmp_path):
    logdir = tmp_path / "cli"
    done = cli_process("--model", "dcgan", "--epochs", "1", "--steps_per_epoch", "2", "--batch_size", "8",
                       "--jit_compile", "--logdir", str(logdir))
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"tensorboard --logdir {logdir}" in done.stdout
    assert (logdir / "final.weights.h5").is_file() and (logdir / "samples.png").is_file()
    record = json.loads((logdir / "run.json").read_text())
    assert record["jit_compile"] is True and record["xla"] is True


@pytest.mark.parametrize("model, xla", [("dcgan", False), ("mlp_gan", True)])
def test_run_records_the_familys_xla_choice_on_a_cpu(fashion_dir, tmp_path, model, xla):
    result = train(TrainConfig(model=model, epochs=1, steps_per_epoch=1, batch_size=8, samples=4,
                               logdir=str(tmp_path / model), verbose=0))
    record = json.loads((tmp_path / model / "run.json").read_text())
    assert record["jit_compile"] is None and record["xla"] is xla
    assert result.model.jit_compile is xla


def test_cli_process_user_error_has_no_traceback(tmp_path):
    done = cli_process("--model", "nope", "--logdir", str(tmp_path / "x"))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: unknown model 'nope'")


def test_cli_help_lists_models_and_datasets():
    done = cli_process("--helpshort")  # absl exits 1 after printing help
    for word in (*models.names(), "fashion_mnist", "ring8", "grid25", "cifar10"):
        assert word in done.stdout, word


def test_divergence_stops_before_the_checkpoint_is_touched(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    train(tiny(logdir, epochs=1))
    checkpoint = newest_checkpoint(logdir)
    good = {p: p.read_bytes() for p in (logdir / "checkpoints").glob("*.weights.h5")}
    with pytest.raises(GanZooError, match=r"training diverged: \S+ became (nan|inf|NaN/Inf) at generator step \d+ \(epoch 2\)"):
        train(tiny(logdir, epochs=2, d_learning_rate=1e30, g_learning_rate=1e30))
    assert {p: p.read_bytes() for p in (logdir / "checkpoints").glob("*.weights.h5")} == good
    assert newest_checkpoint(logdir).name == checkpoint.name
    # the advice works: lower learning rates resume from the good checkpoint
    resumed = train(tiny(logdir, epochs=2, d_learning_rate=1e-4, g_learning_rate=1e-4))
    assert resumed.epochs_run == 1 and int(resumed.model.g_optimizer.iterations) == 6
    assert float(resumed.model.d_optimizer.learning_rate) == pytest.approx(1e-4)
    assert all(np.isfinite(v[0]) for v in resumed.history.values())


def test_a_time_limit_ends_the_run_at_an_epoch_end_and_writes_its_files(fashion_dir, tmp_path):
    lines = []
    # The first epoch (tracing included) takes more than a second: the limit ends the run there.
    result = train(tiny(tmp_path, epochs=4, steps_per_epoch=2, time_limit=1), announce=lines.append)
    assert result.epochs_run == 1 and int(result.model.g_optimizer.iterations) == 2
    assert any(line.startswith("time limit: stopped after epoch 1 (") for line in lines), lines
    for name in ("final.weights.h5", "model.keras", "samples.png"):
        assert (tmp_path / name).is_file(), name
    assert newest_checkpoint(tmp_path).record["epoch"] == 1
    # Without the limit the same command trains on from there.
    again = train(tiny(tmp_path, epochs=2, steps_per_epoch=2))
    assert again.epochs_run == 1 and int(again.model.g_optimizer.iterations) == 4
