"""zoo.export: a generator exported as a SavedModel, an ONNX file or a LiteRT file runs in its own
runtime and gives Keras' samples on inputs drawn from signature.json alone; the JSON describes
the model; bad inputs are one `error:` line; a failed export leaves nothing behind.

The models are small (width 8) with spread-out random weights, so that the images use the whole
[0, 1] range rather than the near-constant grey of a fresh generator.
"""

import errno
import json
import os
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from absl_cli import run_main
from disks import tmpfs

import models
import zoo
from zoo import export

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAMILIES = {
    "dcgan": dict(width=8, latent_dim=16),
    "cgan": dict(width=8, latent_dim=16, num_classes=5),
    # two categorical codes and normal noise: the layout has every kind of segment, and the noise
    # is drawn unlike the continuous codes (always uniform)
    "infogan": dict(width=8, fc_units=32, q_units=8, noise_dim=8, categorical_dims=[10, 3],
                    continuous_dims=2, latent_distribution="normal"),
}
FORMATS = ("savedmodel", "onnx", "litert")
# The largest |exported - Keras| allowed per format. Measured (2-core AMD EPYC, TensorFlow 2.21,
# ONNX Runtime 1.32, batches of 1 to 256): SavedModel 0 (the same kernels); ONNX Runtime 2.4e-7 to
# 4.2e-7 on these models, up to 2.9e-6 on the published presets; LiteRT 2.4e-7 to 6.6e-7 here,
# up to 2.2e-6 on the presets.
TOLERANCE = {"savedmodel": 1e-6, "onnx": 1e-5, "litert": 1e-5}
BATCHES = (1, 9)  # the batch dimension is dynamic


def spread_weights(model, seed, network=None):
    """Seeded random weights of a useful scale for the generator, or `network` (its batch-norm
    statistics too)."""
    rng = np.random.default_rng(seed)
    for variable in (network or model.generator).weights:
        shape, name = tuple(variable.shape), variable.path
        if "moving_variance" in name:
            value = rng.uniform(0.5, 2.0, shape)
        elif "gamma" in name:
            value = rng.normal(1.0, 0.2, shape)
        elif len(shape) >= 2:
            value = rng.normal(0.0, 1.5 / np.sqrt(np.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0.0, 0.3, shape)
        variable.assign(value.astype(np.float32))


def small_model(family):
    model = models.get(family, image_shape=(28, 28, 1), seed=0, **FAMILIES[family])
    spread_weights(model, seed=len(family))
    return model


@pytest.fixture(scope="module")
def small_models():
    return {family: small_model(family) for family in FAMILIES}


@pytest.fixture(scope="module")
def exported(small_models, tmp_path_factory):
    """(family, format) -> (folder, signature.json as read back) of every small model."""
    root = tmp_path_factory.mktemp("exports")
    done = {}
    for family, model in small_models.items():
        for fmt in FORMATS:
            folder = root / f"{family}_{fmt}"
            export.export(model, str(folder), fmt)
            done[family, fmt] = folder, json.loads((folder / export.SIGNATURE_FILE).read_text())
    return done


# ------------------------------------------------------------ a user's code: JSON and runtimes
def draw(distribution, n, shape, rng):
    kind = distribution["kind"]
    if kind == "uniform":
        return rng.uniform(distribution["low"], distribution["high"], size=(n, *shape))
    if kind == "normal":
        return rng.normal(distribution["mean"], distribution["std"], size=(n, *shape))
    if kind in ("categorical", "one_hot"):
        ids = rng.integers(0, distribution["num_classes"], size=n)
        one_hot = kind == "one_hot" or distribution["encoding"] == "one-hot"
        return np.eye(distribution["num_classes"])[ids] if one_hot else ids
    if kind == "concatenation":
        return np.concatenate([draw(s["distribution"], n, (s["size"],), rng) for s in distribution["layout"]],
                              axis=1)
    raise AssertionError(f"signature.json names an unknown distribution {kind!r}")


def draw_inputs(signature, n, seed):
    """The inputs of a batch of n, drawn from signature.json alone (no library code)."""
    rng = np.random.default_rng(seed)
    return {entry["name"]: draw(entry["distribution"], n, entry["shape"][1:], rng).astype(entry["dtype"])
            for entry in signature["inputs"]}


def litert_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():  # tf.lite.Interpreter's notice that LiteRT replaces it
        warnings.simplefilter("ignore")
        return Interpreter(model_path=path)


def run_artifact(fmt, folder, signature, feeds):
    """The exported network run by its own runtime on `feeds`, as signature.json says."""
    output = signature["output"]["name"]
    if fmt == "savedmodel":
        import tensorflow as tf

        function = tf.saved_model.load(str(folder)).signatures[signature["endpoint"]]
        return function(**{k: tf.constant(v) for k, v in feeds.items()})[output].numpy()
    path = str(folder / signature["file"])
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run([output], feeds)[0]
    return litert_interpreter(path).get_signature_runner(signature["endpoint"])(**feeds)[output]


def keras_samples(model, feeds):
    """What the library draws for the same inputs: to_unit_range(sampler(inputs))."""
    names = [name for name, _, _ in export.input_specs(model, model.sampler)]
    inputs = [feeds[name] for name in names]
    return np.asarray(model.to_unit_range(model.sampler(inputs if len(inputs) > 1 else inputs[0],
                                                        training=False)))


# ---------------------------------------------------------------------------- the artifacts
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("family", FAMILIES)
def test_exported_generator_gives_keras_samples(family, fmt, small_models, exported):
    model = small_models[family]
    folder, signature = exported[family, fmt]
    for n in BATCHES:
        feeds = draw_inputs(signature, n, seed=n)
        expected = keras_samples(model, feeds)
        got = run_artifact(fmt, folder, signature, feeds)
        assert got.dtype == np.float32 and got.shape == (n, 28, 28, 1) == expected.shape
        assert np.max(np.abs(got - expected)) <= TOLERANCE[fmt], (family, fmt, n)
    assert 0.0 <= got.min() and got.max() <= 1.0
    assert expected.std() > 0.1 and expected.min() < 0.05 and expected.max() > 0.95  # not a grey blur


def test_the_folder_holds_the_artifact_and_its_signature(exported):
    assert sorted(os.listdir(exported["dcgan", "onnx"][0])) == ["generator.onnx", "signature.json"]
    assert sorted(os.listdir(exported["dcgan", "litert"][0])) == ["generator.tflite", "signature.json"]
    assert sorted(os.listdir(exported["dcgan", "savedmodel"][0])) == [
        "assets", "fingerprint.pb", "saved_model.pb", "signature.json", "variables"]


# ------------------------------------------------------------------------ signature.json
def test_signature_of_dcgan(small_models, exported):
    model = small_models["dcgan"]
    signature = exported["dcgan", "onnx"][1]
    assert signature["inputs"] == [{
        "name": "latent", "shape": [None, 16], "dtype": "float32",
        "distribution": {"kind": "uniform", "low": -1.0, "high": 1.0},
        "numpy": "rng.uniform(-1, 1, size=(n, 16)).astype('float32')"}]
    assert model.latent_distribution == "uniform"
    assert signature["output"]["shape"] == [None, 28, 28, 1] and signature["output"]["range"] == [0.0, 1.0]
    assert signature["output"]["dtype"] == "float32" and signature["format"] == "onnx"
    assert signature["file"] == "generator.onnx" and signature["card"] is None


def test_signature_follows_the_latent_distribution(tmp_path):
    model = models.get("dcgan", image_shape=(28, 28, 1), seed=0, width=8, latent_dim=4,
                       latent_distribution="normal")
    _, signature = export.export(model, str(tmp_path / "normal"), "savedmodel")
    assert signature["inputs"][0]["distribution"] == {"kind": "normal", "mean": 0.0, "std": 1.0}


def test_signature_of_cgan(small_models, exported):
    model = small_models["cgan"]
    noise, label = exported["cgan", "litert"][1]["inputs"]
    assert noise["name"] == "noise" and noise["shape"] == [None, model.latent_dim]
    assert noise["distribution"] == {"kind": "uniform", "low": -1.0, "high": 1.0}
    assert label["name"] == "label" and label["shape"] == [None] and label["dtype"] == "int32"
    assert label["distribution"] == {"kind": "categorical", "num_classes": 5, "probabilities": "uniform",
                                     "encoding": "class id"}
    assert str(model.sampler.inputs[1].dtype) == "int32" and model.num_classes == 5
    _, labels = model.sample_latent(500, seed=0)  # what the model itself draws
    assert sorted(set(np.asarray(labels).tolist())) == list(range(5))


def test_signature_of_infogan_lays_out_the_latent_as_the_model(small_models, exported):
    model = small_models["infogan"]
    (latent,) = exported["infogan", "savedmodel"][1]["inputs"]
    assert latent["shape"] == [None, model.latent_dim] == [None, 8 + 10 + 3 + 2]
    layout = latent["distribution"]["layout"]
    assert [(s["name"], s["start"], s["size"]) for s in layout] == [
        ("noise", 0, 8), ("categorical_0", 8, 10), ("categorical_1", 18, 3), ("continuous", 21, 2)]
    assert [s["distribution"]["kind"] for s in layout] == ["normal", "one_hot", "one_hot", "uniform"]
    # the model's own latents, cut where the JSON says, are the model's parts
    drawn = np.asarray(model.sample_latent(2000, seed=0))
    noise, onehots, continuous = model.split_latent(drawn)
    noise, onehots, continuous = np.asarray(noise), [np.asarray(o) for o in onehots], np.asarray(continuous)
    parts = [drawn[:, s["start"]:s["start"] + s["size"]] for s in layout]
    np.testing.assert_array_equal(parts[0], noise)
    for part, onehot in zip(parts[1:3], onehots):
        np.testing.assert_array_equal(part, onehot)
        assert (part.sum(axis=1) == 1).all() and set(np.unique(part)) == {0.0, 1.0}
    np.testing.assert_array_equal(parts[3], continuous)
    assert -1 <= parts[3].min() and parts[3].max() <= 1 and np.abs(parts[0]).max() > 2  # uniform codes, normal noise


@pytest.mark.parametrize("family", FAMILIES)
def test_numpy_recipes_draw_the_described_inputs(family, exported):
    signature = exported[family, "onnx"][1]
    rng, n = np.random.default_rng(0), 6
    for entry in signature["inputs"]:
        value = eval(entry["numpy"], {"np": np, "rng": rng, "n": n})  # noqa: S307 -- our own JSON
        assert value.dtype == entry["dtype"] and list(value.shape) == [n, *entry["shape"][1:]]


def test_the_sampler_is_exported_not_the_generator_being_trained(tmp_path, monkeypatch):
    import keras

    model = small_model("dcgan")
    average = keras.models.clone_model(model.generator)  # stands for a moving average of its weights
    spread_weights(model, 99, network=average)
    monkeypatch.setattr(type(model), "sampler", property(lambda self: average))
    _, signature = export.export(model, str(tmp_path / "out"), "onnx")
    feeds = draw_inputs(signature, 4, seed=0)
    got = run_artifact("onnx", tmp_path / "out", signature, feeds)
    expected = np.asarray(model.to_unit_range(average(feeds["latent"], training=False)))
    trained = np.asarray(model.to_unit_range(model.generator(feeds["latent"], training=False)))
    assert np.max(np.abs(got - expected)) <= TOLERANCE["onnx"] < np.max(np.abs(got - trained))


def test_a_moving_average_of_the_generator_is_what_is_exported(tmp_path):
    model = models.get("cgan", image_shape=(28, 28, 1), seed=0, width=8, latent_dim=16, ema_decay=0.9)
    spread_weights(model, 3)  # the generator moves; its average still holds the initial weights
    _, signature = export.export(model, str(tmp_path / "out"), "onnx")
    assert signature["model"]["moving_average"] == 0.9
    feeds = draw_inputs(signature, 4, seed=0)
    got = run_artifact("onnx", tmp_path / "out", signature, feeds)
    trained = np.asarray(model.to_unit_range(model.generator([feeds["noise"], feeds["label"]], training=False)))
    assert np.max(np.abs(got - keras_samples(model, feeds))) <= TOLERANCE["onnx"] < np.max(np.abs(got - trained))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_mixed_precision_generator_is_exported_in_float32_where_runtimes_need_it(fmt, tmp_path):
    from models.gan import dtype_policy

    with dtype_policy("mixed_bfloat16"):
        model = small_model("dcgan")
    reference = small_model("dcgan")  # float32, the same seeded weights
    _, signature = export.export(model, str(tmp_path / "out"), fmt)
    exported_precision = "mixed_bfloat16" if fmt == "savedmodel" else "float32"
    assert signature["model"]["precision"] == "mixed_bfloat16"
    assert signature["model"]["exported_precision"] == exported_precision
    feeds = draw_inputs(signature, 4, seed=0)
    got = run_artifact(fmt, tmp_path / "out", signature, feeds)
    like = model if fmt == "savedmodel" else reference
    assert np.max(np.abs(got - keras_samples(like, feeds))) <= TOLERANCE[fmt]
    assert 1e-3 < np.max(np.abs(keras_samples(model, feeds) - keras_samples(reference, feeds))) < 0.05  # bfloat16


# ------------------------------------------------------------------------- a real preset
def test_preset_exported_from_the_command_line(tmp_path):
    out = tmp_path / "cgan"
    assert run_main(export, "--preset", "cgan_fashion_mnist", "--format", "onnx", "--out", str(out)) is None
    signature = json.loads((out / "signature.json").read_text())
    record = zoo.info("cgan_fashion_mnist")
    card = signature["card"]
    assert (card["name"], card["family"], card["dataset"], card["paper"]) == (
        "cgan_fashion_mnist", "cgan", "fashion_mnist", "https://arxiv.org/abs/1411.1784")
    assert card["metrics"] == record["metrics"] and card["weights_sha256"] == record["weights"]["sha256"]
    assert card["training"]["command"] == record["training"]["command"]
    assert signature["source"] == {"preset": "cgan_fashion_mnist"}
    assert signature["inputs"][1]["distribution"]["num_classes"] == 10
    model = zoo.load("cgan_fashion_mnist", compile=False)
    feeds = draw_inputs(signature, 16, seed=0)
    got = run_artifact("onnx", out, signature, feeds)
    assert np.max(np.abs(got - keras_samples(model, feeds))) <= TOLERANCE["onnx"]


def test_a_finished_run_is_exported_from_its_logdir(small_fashion, tmp_path):
    from train.trainer import TrainConfig, train

    logdir = tmp_path / "run"
    result = train(TrainConfig(model="dcgan", epochs=1, batch_size=8, steps_per_epoch=2, logdir=str(logdir),
                               jit_compile=False, samples=4, verbose=0,
                               model_options={"width": 8, "latent_dim": 12}))
    out = tmp_path / "export"
    assert run_main(export, "--logdir", str(logdir), "--format", "litert", "--out", str(out)) is None
    signature = json.loads((out / "signature.json").read_text())
    assert signature["source"]["logdir"] == str(logdir) and signature["source"]["family"] == "dcgan"
    assert signature["card"] is None and signature["inputs"][0]["shape"] == [None, 12]
    feeds = draw_inputs(signature, 5, seed=1)
    got = run_artifact("litert", out, signature, feeds)
    assert np.max(np.abs(got - keras_samples(result.model, feeds))) <= TOLERANCE["litert"]


# ------------------------------------------------------------------------ bad inputs
def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*"))


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "run.json").write_text(json.dumps({"model": "dcgan", "dataset": "fashion_mnist"}))
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (("--out", "{tmp}/x"), "pass exactly one of --preset NAME"),
    (("--preset", "dcgan_fashion_mnist", "--logdir", "{tmp}/unfinished", "--out", "{tmp}/x"),
     "pass exactly one of --preset NAME"),
    (("--preset", "nope", "--out", "{tmp}/x"), "unknown preset 'nope': published presets: "),
    (("--logdir", "{tmp}/missing", "--out", "{tmp}/x"), "does not exist: pass the folder a training run wrote"),
    (("--logdir", "{tmp}/full", "--out", "{tmp}/x"), "holds no run.json, so it is not a training run"),
    (("--logdir", "{tmp}/unfinished", "--out", "{tmp}/x"), "(training has not finished): finish the run"),
    (("--preset", "dcgan_fashion_mnist", "--format", "pytorch", "--out", "{tmp}/x"),
     "unknown --format 'pytorch': pass one of savedmodel, onnx, litert"),
    (("--preset", "dcgan_fashion_mnist"), "name the folder to write with --out PATH"),
    (("--preset", "dcgan_fashion_mnist", "--out", "{tmp}/full"), "--out {tmp}/full exists and is not empty"),
    (("--preset", "dcgan_fashion_mnist", "--out", "{tmp}/a_file"), "--out {tmp}/a_file exists and is not a folder"),
    (("--preset", "dcgan_fashion_mnist", "--out", "{tmp}/no/such/x"),
     "the folder of --out ({tmp}/no/such) does not exist: create it first"),
])
def test_bad_input_is_one_error_line_and_writes_nothing(workspace, args, message):
    before = listing(workspace)
    error = run_main(export, *(a.format(tmp=workspace) for a in args))
    assert error is not None and error.startswith("error: ") and "\n" not in error, error
    assert message.format(tmp=workspace) in error
    assert listing(workspace) == before


def test_a_missing_converter_says_what_to_install(workspace, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` now fails as if absent
    error = run_main(export, "--preset", "dcgan_fashion_mnist", "--format", "onnx", "--out", f"{workspace}/x")
    assert error == ("error: --format onnx needs tf2onnx, which is not installed: pip install "
                     "'gan-zoo[export]' (or pip install tf2onnx onnx), or pass --format savedmodel")
    assert not (workspace / "x").exists()


def test_the_command_line_ends_with_one_line_and_status_1(tmp_path):
    done = subprocess.run([sys.executable, "-m", "zoo.export", "--preset", "dcgan_fashion_mnist", "--format",
                           "tflite2", "--out", str(tmp_path / "x")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == ("error: unknown --format 'tflite2': pass one of savedmodel, "
                                                    "onnx, litert")
    assert os.listdir(tmp_path) == []


def test_the_command_line_says_what_it_wrote_and_nothing_else(tmp_path):
    out = tmp_path / "dcgan"
    done = subprocess.run([sys.executable, "-m", "zoo.export", "--preset", "dcgan_fashion_mnist", "--format",
                           "savedmodel", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        f"GAN Zoo: exporting the generator of preset dcgan_fashion_mnist as savedmodel into {out}",
        f"wrote {out} and {out}/signature.json (how to draw its inputs)"]
    assert not re.search(r"^I\d{4} ", done.stderr, re.MULTILINE), done.stderr  # converters' progress notes


# -------------------------------------------------------------------- nothing half-written
def test_an_empty_out_folder_is_filled(small_models, tmp_path):
    (tmp_path / "out").mkdir()
    path, _ = export.export(small_models["dcgan"], str(tmp_path / "out"), "litert")
    assert path == str(tmp_path / "out" / "generator.tflite") and os.path.isfile(path)
    assert listing(tmp_path) == ["out", "out/generator.tflite", "out/signature.json"]


def failing_export(error, seen):
    """A Keras export that writes part of the artifact, then fails with `error`; `seen` gets
    the path it was given."""
    def fail(self, filepath, format="tf_saved_model", **kwargs):
        seen.append(filepath)
        os.makedirs(os.path.join(filepath, "variables") if format == "tf_saved_model"
                    else os.path.dirname(filepath), exist_ok=True)
        with open(filepath + ("/saved_model.pb" if format == "tf_saved_model" else ""), "wb") as f:
            f.write(b"half")
        raise error
    return fail


@pytest.mark.parametrize("fmt, error, message", [
    ("savedmodel", OSError(errno.ENOSPC, "No space left on device"), "error: the disk is full: could not write "
     "the export to {out}; nothing was written: free some space and run the same command again"),
    ("onnx", RuntimeError("converter failed on op X"), "error: could not export to {out} (converter failed on op "
     "X); nothing was written: run the same command again, or try another --format"),
])
def test_a_failed_conversion_leaves_nothing(small_models, tmp_path, monkeypatch, fmt, error, message):
    import keras

    seen = []
    monkeypatch.setattr(keras.Model, "export", failing_export(error, seen))
    monkeypatch.setattr(zoo, "load", lambda name, compile=True: small_models["dcgan"])
    out = tmp_path / "out"
    got = run_main(export, "--preset", "dcgan_fashion_mnist", "--format", fmt, "--out", str(out))
    assert got == message.format(out=out)
    assert listing(tmp_path) == []
    # the conversion wrote into a temporary sibling, never into --out itself
    (written,) = seen
    assert pathlib.Path(written).parent.name.startswith(export.TEMPORARY_PREFIX) or \
        pathlib.Path(written).name.startswith(export.TEMPORARY_PREFIX)
    assert not str(written).startswith(str(out))


def test_a_failure_after_the_artifact_leaves_nothing(small_models, tmp_path, monkeypatch):
    def unreadable(*args):
        raise ValueError("cannot read the artifact back")

    monkeypatch.setattr(export, "_output_name", unreadable)
    with pytest.raises(models.errors.GanZooError, match=r"could not export to .*cannot read the artifact back"):
        export.export(small_models["dcgan"], str(tmp_path / "out"), "savedmodel")
    assert listing(tmp_path) == []


def test_what_a_killed_export_left_is_removed(small_models, tmp_path):
    stale = tmp_path / f"{export.TEMPORARY_PREFIX}{2 ** 22 + 11}-out"  # no process has this pid
    (stale / "variables").mkdir(parents=True)
    other = tmp_path / f"{export.TEMPORARY_PREFIX}{2 ** 22 + 11}-another"  # another export's: kept
    other.mkdir()
    export.export(small_models["dcgan"], str(tmp_path / "out"), "onnx")
    assert sorted(os.listdir(tmp_path)) == ["out", other.name]


def test_a_full_disk_leaves_nothing(small_models, tmp_path):
    with tmpfs(tmp_path / "disk", "size=40k") as disk:  # the SavedModel needs about 190 kB
        with pytest.raises(models.errors.GanZooError) as caught:
            export.export(small_models["dcgan"], str(disk / "out"), "savedmodel")
        assert str(caught.value) == (f"the disk is full: could not write the export to {disk / 'out'}; nothing "
                                     "was written: free some space and run the same command again")
        assert os.listdir(disk) == []


def test_a_read_only_folder_is_refused_before_anything_is_done(tmp_path):
    with tmpfs(tmp_path / "ro", "size=1m,ro") as disk:
        error = run_main(export, "--preset", "dcgan_fashion_mnist", "--out", str(disk / "out"))
        assert error == f"error: cannot write in {disk} (permission denied or read-only): pass an --out in a " \
                        "folder you can write"
        assert os.listdir(disk) == []
