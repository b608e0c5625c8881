"""What a newcomer sees: the project's own first line, no TensorFlow start-up chatter, where to
look before the first step, resume said at the start, progress numbered by the run."""

import os
import re
import subprocess
import sys

import pytest

from train import runstate
from train.trainer import TrainConfig, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHATTER = ("I0000", "E0000", "W0000", "WARNING: All log messages", "cuInit", "oneDNN", "cpu_feature_guard")
SMALL = dict(model="dcgan", batch_size=8, samples=4, jit_compile=False, model_options={"width": 8})


def cli(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GAN_ZOO_TF_LOGS")}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_training_starts_with_our_words_and_says_where_to_look_first(fashion_dir, tmp_path):
    logdir = tmp_path / "run"
    done = cli("train.main", "--model", "dcgan", "--model_option", "width=8", "--batch_size", "8",
               "--epochs", "1", "--steps_per_epoch", "2", "--nojit_compile", "--logdir", str(logdir))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.replace("\r", "\n").splitlines()
    assert lines[0] == "GAN Zoo: setting up dcgan on fashion_mnist (TensorFlow, data, model)"
    assert lines[1] == "training dcgan on fashion_mnist: 1 epoch of 2 steps, 8 samples per generator step"
    hint = f"logdir: {logdir}   watch it: tensorboard --logdir {logdir}   then open http://localhost:6006"
    assert lines.index(hint) < lines.index("Epoch 1/1")
    assert lines[-1] == f"TensorBoard:   tensorboard --logdir {logdir}   then open http://localhost:6006"
    assert not [line for line in done.stderr.splitlines() if any(word in line for word in CHATTER)], done.stderr


def test_tensorflow_logs_come_back_on_request(tmp_path):
    script = "import train, tensorflow as tf; print(tf.__version__)"
    quiet = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    loud = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GAN_ZOO_TF_LOGS": "1", "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert quiet.returncode == loud.returncode == 0
    assert not any(word in quiet.stderr for word in CHATTER), quiet.stderr
    assert any(word in loud.stderr for word in CHATTER), loud.stderr


def test_resume_is_said_first_and_the_bar_counts_on(fashion_dir, tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "run"
    original = runstate.TrainingCheckpoint.on_train_batch_end

    def dies_after_step_3(self, batch, logs=None):
        original(self, batch, logs)
        if self.position.global_step == 3:
            raise KeyboardInterrupt  # a kill: the checkpoint of step 2 is the newest

    monkeypatch.setattr(runstate.TrainingCheckpoint, "on_train_batch_end", dies_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=4, checkpoint_every=2, logdir=str(logdir)))
    monkeypatch.undo()
    capsys.readouterr()
    said = []
    train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=4, checkpoint_every=2, logdir=str(logdir),
                      verbose=1), announce=said.append)
    assert said[0] == ("resuming from the checkpoint at generator step 2 (epoch 1, step 2 of 4); "
                       "2 epochs of 4 steps in all")
    out = capsys.readouterr().out.replace("\r", "\n")
    assert out.index("Epoch 1/2 (resumed at step 2)") < out.index("3/4") < out.index("4/4") < out.index("Epoch 2/2")
    assert not re.search(r"(?<![0-9])[12]/4(?![0-9])", out.split("Epoch 2/2")[0])  # counts on from 3

    said.clear()
    train(TrainConfig(**SMALL, epochs=2, steps_per_epoch=4, logdir=str(logdir), verbose=0), announce=said.append)
    assert said[0] == (f"nothing to train: {logdir} already holds 2 epochs; raise --epochs to train on "
                       "(the final files are written again)")


def test_sampling_a_preset_starts_with_our_words(tmp_path):
    out = tmp_path / "grid.png"
    done = cli("zoo.sample", "--preset", "dcgan_fashion_mnist", "--n", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"GAN Zoo: drawing 4 samples (seed 0) of preset dcgan_fashion_mnist into {out}"
    assert lines[-1] == f"wrote {out}: open it with any image viewer" and out.is_file()
    assert not any(word in done.stderr for word in CHATTER), done.stderr


def test_evaluation_says_each_stage_as_it_starts(fashion_dir, tmp_path):
    from train import evaluate

    logdir = tmp_path / "run"
    train(TrainConfig(**SMALL, epochs=1, steps_per_epoch=1, logdir=str(logdir), verbose=0))
    lines = []
    report = evaluate.evaluate(evaluate.EvalConfig(logdir=str(logdir), n=20, parzen=False, kid_subsets=2,
                                                   output_dir=str(tmp_path / "eval")), progress=lines.append)
    stages = [line.split("]")[0] + "]" for line in lines]
    assert stages == [f"[{k}/6]" for k in range(1, 7)]
    assert lines[1].startswith("[2/6] generating 20 samples (") and "s left)" in lines[1]
    assert lines[-1].startswith(f"[6/6] writing metrics.json and the figures to {tmp_path / 'eval'}")
    assert os.path.isfile(report["json"])
