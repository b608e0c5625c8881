"""train.evaluate and the training-time evaluation callback, end to end on tiny runs.

The runs train for 2 steps on the small IDX fixture (or ring8); the numbers are meaningless,
the plumbing is what is checked: JSON keys, the table, the floor, errors as one line.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl_cli import run_main

from models.errors import GanZooError
from train import evaluate
from train.trainer import TrainConfig, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_run(logdir, **overrides):
    settings = dict(model="dcgan", epochs=1, batch_size=16, steps_per_epoch=2, logdir=str(logdir),
                    jit_compile=False, samples=4, verbose=0, eval_every=1)
    settings.update(overrides)
    return train(TrainConfig(**settings))


@pytest.fixture(scope="module")
def dcgan_run(small_fashion, tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("runs") / "dcgan")


def scalars(event_dir):
    """{tag: [values]} of the TensorBoard events in a folder."""
    values = {}
    for name in os.listdir(event_dir):
        for record in tf.data.TFRecordDataset(os.path.join(event_dir, name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values


def run_cli(*args):
    """Runs train.evaluate's main in this process with its own flags; returns the exit message."""
    return run_main(evaluate, *args)


def test_evaluate_cli_writes_json_and_prints_a_table(dcgan_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert run_cli("--logdir", dcgan_run.logdir, "--n", "200", "--output_dir", str(out), "--kid_subsets", "5") is None
    table = capsys.readouterr().out
    report = json.loads((out / "metrics.json").read_text())
    assert report["n"] == 200 and report["seed"] == 0
    assert report["run"]["model"] == "dcgan" and report["run"]["dataset"] == "fashion_mnist"
    extractor = report["feature_extractor"]
    assert extractor["name"] == "classifier_fashion_mnist" and len(extractor["sha256"]) == 64
    expected = {"fcd", "kid", "classifier_score", "parzen_log_likelihood", "nearest_train_distance",
                "interpolation_step_evenness"}
    assert expected <= set(report["metrics"])
    for name in expected - {"interpolation_step_evenness"}:
        entry = report["metrics"][name]
        assert np.isfinite(entry["value"]) and np.isfinite(entry["floor"]), name
    # the floor is train vs test: far closer than an untrained generator
    assert report["metrics"]["fcd"]["floor"] < report["metrics"]["fcd"]["value"]
    assert report["metrics"]["parzen_log_likelihood"]["sigma"] in evaluate.metrics.PARZEN_SIGMAS
    assert report["n_real"] == {"train": 128, "test": 64, "parzen_validation": 128}  # fixture: 256 + 64
    for figure in ("interpolation", "nearest_neighbours"):
        assert (out / f"{figure}.png").is_file()
    for word in ("metric", "real-data floor", "fcd", "kid x 1000", "classifier_score", "parzen_log_likelihood",
                 "N=200", "classifier_fashion_mnist"):
        assert word in table, word


def test_eval_every_logs_fcd_during_training(dcgan_run):
    logged = scalars(os.path.join(dcgan_run.logdir, "eval"))
    assert set(logged) == {"fcd", "fcd_floor"}
    assert len(logged["fcd"]) == 1 and logged["fcd_floor"][0] < logged["fcd"][0]


def test_ring8_run_reports_mode_coverage(tmp_path):
    run = tiny_run(tmp_path / "ring", model="mlp_gan", dataset="ring8", batch_size=64)
    logged = scalars(os.path.join(run.logdir, "eval"))
    assert set(logged) == {"modes_covered", "high_quality", "reverse_kl"}
    report = evaluate.evaluate(evaluate.EvalConfig(logdir=run.logdir))
    coverage = report["metrics"]["mode_coverage"]
    assert coverage["n"] == 2500 and coverage["num_modes"] == 8
    assert coverage["modes_covered"]["floor"] == 8 and coverage["high_quality"]["floor"] > 0.98
    assert 0 <= coverage["modes_covered"]["value"] <= 8
    assert os.path.isfile(report["figures"]["modes"])
    assert "modes_covered (of 8)" in evaluate.format_table(report)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--logdir", "/no/such/run"], "error: logdir /no/such/run does not exist"),
        (["--preset", "no_such_preset"], "error: zoo presets are measured by python -m zoo.evaluate --preset no_such_preset"),
        ([], "error: name what to evaluate: pass --logdir"),
        (["--logdir", "x", "--n", "3"], "error: --n must be at least 10"),
    ],
)
def test_bad_input_gives_one_clear_line(args, message):
    exit_message = run_cli(*args)
    assert exit_message.startswith(message) and "\n" not in exit_message, exit_message


def test_logdir_without_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    assert run_cli("--logdir", str(tmp_path / "empty")).startswith(
        f"error: {tmp_path / 'empty'} holds no run.json")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps({"model": "dcgan", "dataset": "fashion_mnist"}))
    message = run_cli("--logdir", str(unfinished))
    assert "holds no model.keras or final.weights.h5" in message and "\n" not in message


def test_missing_inception_weights_say_so_without_downloading(dcgan_run, tmp_path, monkeypatch):
    import keras

    from train import inception

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    if any(os.path.isfile(p) for p in inception.candidate_paths()):
        pytest.skip("Inception-v3 weights are installed in /tmp/.keras/models")

    def no_download(*args, **kwargs):
        raise AssertionError("tried to build (and download) Inception-v3")

    monkeypatch.setattr(keras.applications, "InceptionV3", no_download)
    message = run_cli("--logdir", dcgan_run.logdir, "--n", "20", "--inception", "--output_dir", str(tmp_path / "o"))
    assert message.startswith("error: Inception-v3 ImageNet weights are not available locally "
                              f"(looked for {tmp_path / 'keras_home/models'}")
    assert "--inception_weights" in message and "\n" not in message
    message = run_cli("--logdir", dcgan_run.logdir, "--inception", "--inception_weights", str(tmp_path / "nope.h5"))
    assert message.startswith(f"error: Inception-v3 weights file {tmp_path / 'nope.h5'} does not exist")


def test_missing_classifier_names_the_training_command(dcgan_run, tmp_path):
    message = run_cli("--logdir", dcgan_run.logdir, "--classifier", str(tmp_path / "c.weights.h5"))
    assert "train one with python -m train.classifier --dataset fashion_mnist" in message


def test_classifier_script_trains_for_a_labelled_dataset(small_fashion, tmp_path):
    from train import classifier

    path = str(tmp_path / "tiny.weights.h5")
    record = classifier.train_classifier(classifier.ClassifierConfig(
        epochs=1, batch_size=64, widths=(4, 8, 8), feature_units=8, output=path, jit_compile=False, verbose=0))
    assert record["image_shape"] == [28, 28, 1] and 0 <= record["test_accuracy"] <= 1
    extractor = classifier.load("fashion_mnist", path)
    features, probabilities = extractor(np.zeros((3, 28, 28, 1), np.float32))
    assert features.shape == (3, 8) and np.allclose(probabilities.sum(axis=1), 1)
    with open(path, "ab") as f:  # a tampered file is refused
        f.write(b"x")
    with pytest.raises(GanZooError, match="sha256"):
        classifier.load("fashion_mnist", path)


def test_cli_process_error_has_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "train.evaluate", "--logdir", str(tmp_path / "nope")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: logdir {tmp_path / 'nope'} does not exist")


def test_infogan_reports_its_code_accuracy(small_fashion, tmp_path):
    run = tiny_run(tmp_path / "info", model="infogan", eval_every=None)
    report = evaluate.evaluate(evaluate.EvalConfig(logdir=run.logdir, n=100, parzen=False, figures=False,
                                                   kid_subsets=2))
    for name in ("code_accuracy", "code_class_agreement"):
        entry = report["metrics"][name]
        assert 0.0 <= entry["value"] <= 1.0 and len(entry["mapping"]) <= 10, name
    assert report["metrics"]["code_accuracy"]["n"] == 64  # the fixture's test split
    assert report["figures"] == {}


def test_eval_every_must_be_positive(small_fashion, tmp_path):
    with pytest.raises(GanZooError, match="--eval_every must be an integer >= 1, got 0"):
        tiny_run(tmp_path / "run", eval_every=0)


def test_inception_features_from_a_local_weights_file(tmp_path):
    """The FID / IS path with stand-in (random) weights: shapes and softmax only."""
    import keras

    from train.inception import InceptionExtractor

    path = str(tmp_path / "inception.weights.h5")
    keras.applications.InceptionV3(weights=None).save_weights(path)
    extractor = InceptionExtractor(path)
    features, probabilities = extractor(np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32))
    assert extractor.name == "inception_v3" and len(extractor.sha256) == 64
    assert features.shape == (2, 2048) and probabilities.shape == (2, 1000)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


class _PointFeatures:
    """A stand-in extractor: the 'images' are points and their features are the points."""

    name = "points"

    def __call__(self, images):
        points = np.asarray(images, np.float64).reshape(len(images), -1)
        return points, np.full((len(points), 2), 0.5)


def test_precision_recall_density_coverage_sit_next_to_fcd_with_the_train_vs_test_floor():
    # Test (real) points 0, 1, 2, 3, 10, 11, 12, 13 have k = 3 balls [-3, 3], [-1, 3], [0, 4],
    # [0, 6], [7, 13], [9, 13], [10, 14], [10, 16] and k = 5 balls [-11, 11], [-9, 11],
    # [-7, 11], [-5, 11], [2, 18], [2, 20], [2, 22], [2, 24]. Twelve samples all at 0: inside
    # a real ball (precision 1); their own balls have radius 0 and hold only the real 0 (recall
    # 1/8); each lies in the k = 5 balls of 0..3 (density 4 * 12 / (5 * 12), coverage 4/8).
    # Floor: training points equal to the test points. Each is its own twin (precision,
    # recall, coverage 1); the k = 5 balls hold 0, 1 -> 4 each, 2, 3, 10, 11 -> 8, 12, 13 -> 4:
    # 48 pairs -> density 48 / (5 * 8).
    test = np.array([0, 1, 2, 3, 10, 11, 12, 13], np.float64)[:, None]
    result = evaluate.feature_metrics(_PointFeatures(), np.zeros((12, 1)), test, test.copy(),
                                      kid_subsets=2, seed=0)
    expected = {"precision": (1.0, 1.0, "higher", 3), "recall": (1 / 8, 1.0, "higher", 3),
                "density": (0.8, 48 / 40, "near floor", 5), "coverage": (0.5, 1.0, "higher", 5)}
    for name, (value, floor, better, k) in expected.items():
        assert result[name] == {"value": value, "floor": floor, "better": better, "k": k}, name
    assert list(result)[:4] == ["fcd", "kid", "classifier_score", "precision"]


def test_evaluation_reports_precision_recall_density_coverage(dcgan_run, tmp_path):
    report = evaluate.evaluate(evaluate.EvalConfig(logdir=dcgan_run.logdir, n=50, parzen=False, figures=False,
                                                   kid_subsets=2, output_dir=str(tmp_path)))
    written = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    table = evaluate.format_table(report)
    for name in ("precision", "recall", "density", "coverage"):
        entry = written[name]
        assert set(entry) == {"value", "floor", "better", "k"}, name
        assert 0.0 <= entry["value"] and 0.0 <= entry["floor"], name
        if name != "density":
            assert entry["value"] <= 1.0 and entry["floor"] <= 1.0, name
        assert any(line.startswith(f"{name} ") for line in table.splitlines()), name
    # real training images against real test images cover the test images far better than the
    # samples of a generator trained for 2 steps
    assert written["coverage"]["floor"] > written["coverage"]["value"]
