"""The pretrained zoo: publishing a run as a preset, loading it (from the repository or a URL),
sampling it from the command line, and refusing damaged files and impossible overrides.

Presets published here live in a temporary zoo (the module's folders are redirected), from
runs of a few steps on the small IDX fixture; `test_published_presets` checks the real ones.
"""

import json
import os
import pathlib

import h5py
import numpy as np
import pytest
from absl_cli import run_main
from zoo_helpers import redirected_zoo, store_preset

import models
import zoo
from models.errors import GanZooError
from train import evaluate
from train.trainer import TrainConfig, train
from zoo import publish, sample


@pytest.fixture(scope="module")
def temporary_zoo(tmp_path_factory):
    """The zoo's folders and catalogue redirected to an empty temporary zoo."""
    with redirected_zoo(tmp_path_factory.mktemp("zoo")) as root:
        yield root


@pytest.fixture(scope="module")
def published(small_fashion, temporary_zoo, tmp_path_factory):
    """A DCGAN run of 3 steps published as preset `tiny_dcgan` (evaluated on 100 samples)."""
    logdir = tmp_path_factory.mktemp("runs") / "dcgan"
    train(TrainConfig(model="dcgan", epochs=1, batch_size=16, steps_per_epoch=3,
                      logdir=str(logdir), jit_compile=False, samples=4, verbose=0))
    entry = publish.publish(str(logdir), "tiny_dcgan", command="the command", wall_time_s=12.5, n=100)
    return logdir, entry


def weights_path(name="tiny_dcgan"):
    return pathlib.Path(zoo.WEIGHTS_DIR) / zoo.info(name)["weights"]["file"]


def test_publish_writes_weights_record_and_grid(published):
    logdir, entry = published
    record = json.loads((pathlib.Path(zoo.PRESET_DIR) / "tiny_dcgan.json").read_text())
    assert record == entry and zoo.list() == ["tiny_dcgan"]
    assert record["model"] == "dcgan" and record["dataset"] == "fashion_mnist"
    assert record["training"]["command"] == "the command"
    assert record["training"]["wall_time_s"] == 12.5 and record["training"]["epochs"] == 1
    from models.saving import sha256_of

    assert sha256_of(weights_path()) == record["weights"]["sha256"]
    assert os.path.getsize(weights_path()) == record["weights"]["bytes"]
    # Half precision, and no optimizer state: about half of the run's float32 network weights.
    model, _ = evaluate.load_run(str(logdir))
    float32_bytes = 4 * sum(int(np.prod(v.shape)) for v in model.weights)
    assert record["weights"]["bytes"] < 0.6 * float32_bytes
    with h5py.File(weights_path()) as f:
        dtypes = set()
        f.visititems(lambda name, item: dtypes.add(str(item.dtype)) if isinstance(item, h5py.Dataset) else None)
    assert "float16" in dtypes and "float32" not in dtypes
    fcd = record["metrics"]["fcd"]
    assert fcd["value"] > fcd["floor"] > 0 and record["evaluation"]["n"] == 100
    grid = (pathlib.Path(zoo.IMAGES_DIR) / "tiny_dcgan.png").read_bytes()
    assert grid.startswith(b"\x89PNG")


def test_load_gives_the_run_generator_and_discriminator(published):
    logdir, _ = published
    run_model, _ = evaluate.load_run(str(logdir))
    gan = zoo.load("tiny_dcgan")
    assert isinstance(gan, models.family("dcgan"))
    for network in ("generator", "discriminator"):
        for a, b in zip(getattr(run_model, network).weights, getattr(gan, network).weights):
            # float16 storage: relative rounding of at most 2^-11
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=2 ** -10, atol=1e-7)
    mine = gan.generate(16, seed=3)
    np.testing.assert_allclose(mine, run_model.generate(16, seed=3), atol=0.02)
    again = zoo.load("tiny_dcgan", compile=False).generate(16, seed=3)
    assert np.array_equal(mine, again)


def test_loaded_preset_continues_training(published, small_fashion):
    from train import data

    gan = zoo.load("tiny_dcgan")
    d_before = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    g_before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    images = data.load("fashion_mnist", "train", 16, value_range=gan.output_range)
    history = gan.fit(images.take(2), epochs=1, verbose=0)
    assert all(np.isfinite(history.history[k][0]) for k in ("d_loss", "g_loss"))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d_before, gan.discriminator.trainable_weights))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, gan.generator.trainable_weights))


def test_unknown_preset_lists_the_published_ones(published):
    with pytest.raises(GanZooError, match=r"unknown preset 'nope'.*tiny_dcgan"):
        zoo.load("nope")


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_weights_are_refused_by_name(published, damage):
    path = weights_path()
    original = path.read_bytes()
    try:
        if damage == "flip":
            middle = len(original) // 2
            path.write_bytes(original[:middle] + bytes([original[middle] ^ 1]) + original[middle + 1:])
        else:
            path.write_bytes(original[: len(original) // 3])
        with pytest.raises(GanZooError, match=r"tiny_dcgan\.weights\.h5 of preset 'tiny_dcgan' is damaged"):
            zoo.load("tiny_dcgan")
    finally:
        path.write_bytes(original)
    zoo.load("tiny_dcgan", compile=False)  # intact again


@pytest.fixture
def url_preset(published, tmp_path, monkeypatch):
    """tiny_dcgan as a preset whose weights are only at a (file://) URL."""
    served = tmp_path / "served" / "tiny_url.weights.h5"
    served.parent.mkdir()
    served.write_bytes(weights_path().read_bytes())
    entry = json.loads(json.dumps(zoo.info("tiny_dcgan")))
    entry["name"] = "tiny_url"
    entry["weights"] = {**entry["weights"], "file": "tiny_url.weights.h5", "url": served.as_uri()}
    monkeypatch.setitem(zoo.PRESETS, "tiny_url", entry)
    return served, tmp_path / "cache"


def test_url_preset_is_fetched_once_into_the_cache(url_preset):
    served, cache = url_preset
    expected = zoo.load("tiny_dcgan", compile=False).generate(4, seed=0)
    first = zoo.load("tiny_url", cache_dir=str(cache), compile=False)
    cached = cache / zoo.CACHE_SUBDIR / "tiny_url.weights.h5"
    assert cached.read_bytes() == served.read_bytes()
    served.unlink()  # the second load must not need the URL
    second = zoo.load("tiny_url", cache_dir=str(cache), compile=False)
    assert np.array_equal(first.generate(4, seed=0), expected)
    assert np.array_equal(second.generate(4, seed=0), expected)


@pytest.mark.parametrize("damage", ["truncated", "other_file"])
def test_bad_download_fails_and_is_not_kept(url_preset, damage):
    served, cache = url_preset
    if damage == "truncated":
        served.write_bytes(served.read_bytes()[:1000])
    else:
        served.write_bytes(b"not the published weights")
    with pytest.raises(GanZooError, match=r"downloaded for preset 'tiny_url'.*sha256 mismatch"):
        zoo.load("tiny_url", cache_dir=str(cache))
    assert not (cache / zoo.CACHE_SUBDIR / "tiny_url.weights.h5").exists()


def test_unreachable_url_says_what_to_do(url_preset):
    served, cache = url_preset
    served.unlink()
    with pytest.raises(GanZooError, match=r"cannot fetch the weights of preset 'tiny_url'.*copy the file"):
        zoo.load("tiny_url", cache_dir=str(cache))


def test_missing_weights_without_url(published, monkeypatch):
    entry = {**zoo.info("tiny_dcgan"), "name": "gone"}
    entry["weights"] = {**entry["weights"], "file": "gone.weights.h5"}
    monkeypatch.setitem(zoo.PRESETS, "gone", entry)
    with pytest.raises(GanZooError, match=r"weights of preset 'gone' are missing.*git checkout"):
        zoo.load("gone")


# ------------------------------------------------------------------ InfoGAN preset, by hand
@pytest.fixture(scope="module")
def infogan_preset(temporary_zoo):
    """An (untrained) InfoGAN stored as preset `tiny_infogan` with 10 categories, 2 codes."""
    model = models.get("infogan", seed=0)
    store_preset("tiny_infogan", model, "infogan")
    return model


@pytest.mark.parametrize("override, message", [
    ({"categorical_dims": [12]}, r"trained with categorical_dims=\[10\], not categorical_dims=\[12\]"),
    ({"continuous_dims": 3}, r"trained with continuous_dims=2, not continuous_dims=3"),
    ({"noise_dim": 10}, r"trained with noise_dim=62, not noise_dim=10"),
])
def test_infogan_code_count_must_match_the_preset(infogan_preset, override, message):
    with pytest.raises(GanZooError, match=message):
        zoo.load("tiny_infogan", **override)


def test_overrides_that_keep_the_shapes_are_taken(infogan_preset):
    gan = zoo.load("tiny_infogan", lambda_cont=0.5, compile=False)
    assert gan.lambda_cont == 0.5
    # an argument the stored config predates is taken too
    del zoo.PRESETS["tiny_infogan"]["config"]["update"]
    assert zoo.load("tiny_infogan", update="simultaneous", compile=False).update == "simultaneous"
    with pytest.raises(GanZooError, match=r"has no setting colour"):
        zoo.load("tiny_infogan", colour=1)


def run_sample(*args):
    return run_main(sample, *args)


def png_shape(path):
    import tensorflow as tf

    return tuple(tf.io.decode_png(pathlib.Path(path).read_bytes()).shape)


def test_sample_cli_writes_the_same_grid_for_the_same_seed(published, tmp_path):
    a, b, c = (tmp_path / f"{x}.png" for x in "abc")
    assert run_sample("--preset", "tiny_dcgan", "--n", "12", "--columns", "4", "--out", str(a)) is None
    run_sample("--preset", "tiny_dcgan", "--n", "12", "--columns", "4", "--out", str(b))
    run_sample("--preset", "tiny_dcgan", "--n", "12", "--columns", "4", "--seed", "1", "--out", str(c))
    assert png_shape(a) == (3 * 29 + 1, 4 * 29 + 1, 1)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_sample_cli_draws_the_infogan_traversal(infogan_preset, tmp_path):
    out = tmp_path / "code1.png"
    assert run_sample("--preset", "tiny_infogan", "--traversal", "--code", "1", "--out", str(out)) is None
    assert png_shape(out) == (10 * 29 + 1, 10 * 29 + 1, 1)  # 10 categories x 10 code values
    assert "continuous codes" in run_sample("--preset", "tiny_infogan", "--traversal", "--code", "2",
                                            "--out", str(out))


@pytest.mark.parametrize("args, message", [
    ((), "name a preset with --preset"),
    (("--preset", "nope"), "unknown preset 'nope'"),
    (("--preset", "tiny_dcgan", "--traversal"), "--traversal is for InfoGAN presets"),
    (("--preset", "tiny_dcgan", "--out", "grid.jpg"), "must name a .png file"),
    (("--preset", "tiny_dcgan", "--out", "/no/such/folder/grid.png"), "does not exist: create it"),
    (("--preset", "tiny_dcgan", "--n", "0"), "--n must be at least 1"),
])
def test_sample_cli_bad_input(published, args, message):
    error = run_sample(*args)
    assert error.startswith("error: ") and message in error and "\n" not in error


def test_card_table_lists_presets_best_fcd_first_under_the_floor():
    from zoo import card

    def entry(fcd, floor, **extra):
        return {"samples": "zoo/images/x.png", "metrics": {"fcd": {"value": fcd, "floor": floor}, **extra},
                "training": {"epochs": 5, "wall_time_s": 600, "command": "python -m train.main "}}

    presets = {"worse": entry(9.0, 0.04), "better": entry(2.5, 0.04, code_accuracy={"value": 0.598})}
    lines = card.table(presets).splitlines()
    assert lines[2].startswith("| real data (floor) |  | 0.04 |")
    assert lines[3].startswith("| `better` |") and "code accuracy 59.8%" in lines[3]
    assert lines[4].startswith("| `worse` |") and "| 10 min |" in lines[4]
    assert lines[4].endswith("| `python -m train.main` |")


def test_the_rebuilt_command_carries_the_model_options():
    record = {"model": "fgan", "dataset": "fashion_mnist", "epochs": 5, "seed": 0,
              "model_options": {"divergence": "pearson", "unroll": [1, 2]}, "jit_compile": False}
    assert publish.command_of(record) == (
        "python -m train.main --model fgan --dataset fashion_mnist --epochs 5 --seed 0 "
        "--model_option divergence=pearson --model_option unroll=[1,2] --nojit_compile")


@pytest.mark.parametrize("extra, flags", [
    ({"jit_compile": None}, ""),  # the family's default
    ({"jit_compile": True}, " --jit_compile"),
    ({"jit_compile": None, "precision": "mixed_bfloat16"}, " --precision mixed_bfloat16"),
    ({"mixed_precision": True, "precision": "float32"}, " --mixed_precision"),
])
def test_the_rebuilt_command_carries_precision_and_xla(extra, flags):
    record = {"model": "dcgan", "dataset": "fashion_mnist", "epochs": 5, "seed": 0, **extra}
    assert publish.command_of(record) == (
        "python -m train.main --model dcgan --dataset fashion_mnist --epochs 5 --seed 0" + flags)


def test_presets_are_measured_by_zoo_evaluate(published, tmp_path):
    """The zoo measures its presets (python -m zoo.evaluate); train.evaluate, which does not
    know the zoo, says so for --preset in one line."""
    from zoo import evaluate as preset_evaluation

    report = preset_evaluation.evaluate(evaluate.EvalConfig(
        preset="tiny_dcgan", n=20, parzen=False, figures=False, kid_subsets=2, output_dir=str(tmp_path)))
    assert report["run"]["preset"] == "tiny_dcgan" and report["n"] == 20 and "fcd" in report["metrics"]
    assert run_main(preset_evaluation, "--preset", "nope").startswith("error: unknown preset 'nope'")
    assert run_main(preset_evaluation).startswith("error: name a preset with --preset NAME")
    message = run_main(evaluate, "--preset", "tiny_dcgan")
    assert message.startswith("error: zoo presets are measured by python -m zoo.evaluate --preset tiny_dcgan")
    assert "\n" not in message


def test_remeasure_adds_missing_metrics_only_when_the_recorded_ones_reproduce(published, tmp_path):
    path = pathlib.Path(zoo.PRESET_DIR) / "tiny_dcgan.json"
    original = json.loads(path.read_text())
    try:
        older = json.loads(path.read_text())  # a record from before precision and recall existed
        for metric in ("precision", "recall"):
            del older["metrics"][metric]
        path.write_text(json.dumps(older))
        assert publish.remeasure("tiny_dcgan", output_dir=str(tmp_path / "a")) == ["precision", "recall"]
        again = json.loads(path.read_text())
        assert again["metrics"] == original["metrics"]  # the same N and seed give the same figures
        assert {k: v for k, v in again.items() if k != "metrics"} == {
            k: v for k, v in original.items() if k != "metrics"}
        assert publish.remeasure("tiny_dcgan", output_dir=str(tmp_path / "b")) == []
        # A recorded figure that does not reproduce: one line, nothing written.
        tampered = json.loads(path.read_text())
        tampered["metrics"]["fcd"]["value"] *= 1.01
        del tampered["metrics"]["coverage"]
        path.write_text(json.dumps(tampered))
        before = path.read_bytes()
        with pytest.raises(GanZooError, match="preset tiny_dcgan no longer reproduces its fcd"):
            publish.remeasure("tiny_dcgan", output_dir=str(tmp_path / "c"))
        assert path.read_bytes() == before
    finally:
        path.write_text(json.dumps(original))
        zoo.PRESETS["tiny_dcgan"] = original
