"""Command line: export a generator for serving, as a SavedModel, an ONNX file or a LiteRT file.

    python -m zoo.export --preset dcgan_fashion_mnist --format savedmodel --out export/dcgan
    python -m zoo.export --preset cgan_fashion_mnist --format onnx --out export/cgan_onnx
    python -m zoo.export --logdir runs/infogan --format litert --out export/infogan_litert

The exported network is the model's `sampler` (the generator samples are drawn with: its moving
average when the model keeps one) followed by `to_unit_range`: it takes the generator's inputs
and returns float32 images in [0, 1] of shape (batch, height, width, channels), for any batch
size. Nothing of this library is needed to run it. `--out` is a folder, written whole or not at
all (built in a temporary sibling folder, then renamed; removed on any failure):

    savedmodel   OUT/saved_model.pb, OUT/variables/   tf.saved_model.load(OUT).serving_default(...)
    onnx         OUT/generator.onnx                   onnxruntime.InferenceSession(...)
    litert       OUT/generator.tflite                 the LiteRT (TFLite) interpreter
    all three    OUT/signature.json                   how to draw every input, and the model card

`signature.json` names every input with its shape, dtype and distribution (the latent noise:
uniform on [-1, 1] or standard normal; a class label: int32 ids, uniform over the classes;
InfoGAN's latent vector: the layout of its noise, one-hot categorical codes and continuous
codes), the output's name, shape and range, and, for a preset, its model card (name, family,
dataset, paper, training, recorded metrics). The conversion itself is Keras' `Model.export`;
ONNX needs `tf2onnx` and `onnx` (`pip install 'gan-zoo[export]'`), LiteRT only TensorFlow.
"""

import contextlib
import errno
import logging
import os
import re
import shutil
import warnings

from absl import flags

from models.errors import GanZooError
from train import cli

SIGNATURE_FILE = "signature.json"
TEMPORARY_PREFIX = "tmp-"  # tmp-<pid>-<name of --out>: the folder an export is built in
INSTALL_HINT = "pip install 'gan-zoo[export]' (or pip install tf2onnx onnx)"

# --format -> (Keras' format name, the artifact's file in --out or None for the folder itself,
#              the modules its converter needs, how to load it).
FORMATS = {
    "savedmodel": ("tf_saved_model", None, (),
                   "tf.saved_model.load(folder).signatures['serving_default'](**inputs)['{output}']"),
    "onnx": ("onnx", "generator.onnx", ("tf2onnx", "onnx"),
             "onnxruntime.InferenceSession(path).run(['{output}'], inputs)[0]"),
    "litert": ("litert", "generator.tflite", (),
               "tf.lite.Interpreter(model_path=path) (or ai_edge_litert.interpreter.Interpreter)"
               ".get_signature_runner('serving_default')(**inputs)['{output}']"),
}
ALIASES = {"tf_saved_model": "savedmodel", "saved_model": "savedmodel", "tflite": "litert"}
SIGNATURE_ENDPOINT = "serving_default"


def define_flags(flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("preset", None, "Preset to export (python -c 'import zoo; print(zoo.list())').",
                        flag_values=fv)
    flags.DEFINE_string("logdir", None, "A finished training run to export instead of a preset.", flag_values=fv)
    flags.DEFINE_string("format", "savedmodel", f"One of {', '.join(FORMATS)}.", flag_values=fv)
    flags.DEFINE_string("out", None, "Folder to write (new, or empty).", flag_values=fv)


# ------------------------------------------------------------------------------ the network
def format_of(name):
    """The canonical --format for `name` (Keras' spellings accepted too)."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in FORMATS:
        raise GanZooError(f"unknown --format {name!r}: pass one of {', '.join(FORMATS)}")
    return key


def check_converter(fmt):
    """Refuses a format whose converter is not installed, saying what to install."""
    import importlib

    missing = []
    for module in FORMATS[fmt][2]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise GanZooError(f"--format {fmt} needs {' and '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL_HINT}, "
                          "or pass --format savedmodel")


def _distribution(kind):
    if kind == "uniform":
        return {"kind": "uniform", "low": -1.0, "high": 1.0}
    if kind == "normal":
        return {"kind": "normal", "mean": 0.0, "std": 1.0}
    raise GanZooError(f"latent distribution {kind!r} cannot be described: use uniform or normal")


def _numpy_draw(distribution, size):
    if distribution["kind"] == "uniform":
        return f"rng.uniform({distribution['low']:g}, {distribution['high']:g}, size=({size}))"
    return f"rng.standard_normal(size=({size}))"


def _latent_layout(model):
    """The segments of an InfoGAN latent vector, in order: noise, each categorical code
    (one-hot), the continuous codes; each with its offset, size and distribution."""
    segments, start = [], 0

    def add(name, size, distribution):
        nonlocal start
        segments.append({"name": name, "start": start, "size": size, "distribution": distribution})
        start += size

    add("noise", model.noise_dim, _distribution(model.latent_distribution))
    for i, k in enumerate(model.categorical_dims):
        add(f"categorical_{i}", k, {"kind": "one_hot", "num_classes": k, "probabilities": "uniform"})
    if model.continuous_dims:
        add("continuous", model.continuous_dims, _distribution("uniform"))  # the codes' prior
    return segments


def input_specs(model, sampler):
    """[(name, shape without the batch, dtype)] of the inputs of the exported network, in the
    order the sampler takes them."""
    shapes = [(tuple(int(d) for d in t.shape[1:]), str(t.dtype)) for t in sampler.inputs]
    if getattr(model, "conditional", False):
        if len(shapes) != 2:
            raise GanZooError(f"{model.name}'s generator takes {len(shapes)} inputs, not (noise, label): "
                              "it cannot be described for export")
        return [("noise", *shapes[0]), ("label", *shapes[1])]
    if len(shapes) != 1:
        raise GanZooError(f"{model.name}'s generator takes {len(shapes)} inputs, not one latent vector: "
                          "it cannot be described for export")
    return [("latent", *shapes[0])]


def describe_inputs(model, sampler):
    """The `inputs` list of signature.json: how to draw each input of the exported network."""
    described = []
    for name, shape, dtype in input_specs(model, sampler):
        entry = {"name": name, "shape": [None, *shape], "dtype": dtype}
        size = ", ".join(["n", *map(str, shape)])
        if name == "label":
            classes = int(model.num_classes)
            if dtype.startswith("int") and shape == ():
                entry["distribution"] = {"kind": "categorical", "num_classes": classes,
                                         "probabilities": "uniform", "encoding": "class id"}
                entry["values"] = f"integers in [0, {classes - 1}], one class id per sample (not one-hot)"
                entry["numpy"] = f"rng.integers(0, {classes}, size=(n,)).astype('{dtype}')"
            elif shape == (classes,):
                entry["distribution"] = {"kind": "categorical", "num_classes": classes,
                                         "probabilities": "uniform", "encoding": "one-hot"}
                entry["values"] = f"one-hot rows of {classes} classes"
                entry["numpy"] = f"np.eye({classes}, dtype='{dtype}')[rng.integers(0, {classes}, size=n)]"
            else:
                raise GanZooError(f"{model.name}'s label input of shape {shape} and dtype {dtype} cannot "
                                  "be described for export")
        elif hasattr(model, "split_latent") and hasattr(model, "categorical_dims"):
            layout = _latent_layout(model)
            if sum(s["size"] for s in layout) != shape[-1]:
                raise GanZooError(f"{model.name}'s latent layout does not add up to its size {shape[-1]}")
            entry["distribution"] = {"kind": "concatenation", "layout": layout}
            parts = []
            for s in layout:
                if s["distribution"]["kind"] == "one_hot":
                    k = s["size"]
                    parts.append(f"np.eye({k})[rng.integers(0, {k}, size=n)]")
                else:
                    parts.append(_numpy_draw(s["distribution"], f"n, {s['size']}"))
            entry["values"] = ("[noise | one-hot of each categorical code | continuous codes], "
                               "each part drawn as its layout entry says")
            entry["numpy"] = f"np.concatenate([{', '.join(parts)}], axis=1).astype('{dtype}')"
        else:
            entry["distribution"] = _distribution(model.latent_distribution)
            entry["numpy"] = f"{_numpy_draw(entry['distribution'], size)}.astype('{dtype}')"
        described.append(entry)
    return described


def serving_model(model, float32=False):
    """One Keras functional model: the named inputs of `input_specs` -> `model.sampler` ->
    `model.to_unit_range`, float32 samples in [0, 1] (2-D points stay as they are), with a
    dynamic batch dimension. `float32=True` runs a float32 copy of a mixed-precision sampler."""
    import keras

    sampler = model.sampler  # its moving average when the model keeps one
    if float32:
        sampler = float32_copy(sampler)
    inputs = [keras.Input(shape, dtype=dtype, name=name) for name, shape, dtype in input_specs(model, sampler)]
    samples = sampler(inputs if len(inputs) > 1 else inputs[0], training=False)
    samples = keras.layers.Lambda(model.to_unit_range, name="to_unit_range")(samples)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], samples, name=f"{model.name}_sampler")


def float32_copy(network):
    """`network` itself when it computes in float32, else a copy of it that does, with the same
    weights (a mixed-precision network keeps its weights in float32 already)."""
    import keras

    if network.dtype_policy.name == "float32":
        return network

    def in_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(network, clone_function=in_float32)
    copy.set_weights(network.get_weights())
    return copy


def _converter_options(fmt):
    """Keras' options of the conversion to `fmt`."""
    if fmt != "litert":
        return {}
    import tensorflow as tf

    # LiteRT's built-in operators only: Keras' converter would otherwise fall back on TensorFlow
    # ops, which the plain LiteRT runtime cannot run (the conversion fails instead).
    return {"target_spec": {"supported_ops": {tf.lite.OpsSet.TFLITE_BUILTINS}}}


@contextlib.contextmanager
def _quiet_converters():
    """TensorFlow's and tf2onnx's progress notes (INFO log lines) left out; warnings stay.

    TensorFlow's SavedModel writer logs through absl, whose logger's level is reset while it
    writes, so those lines are filtered at absl's handler instead."""
    from absl import logging as absl_logging

    loggers = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    handler = absl_logging.get_absl_handler()

    def warnings_and_worse(record):
        return record.levelno >= logging.WARNING

    handler.addFilter(warnings_and_worse)
    try:
        yield
    finally:
        handler.removeFilter(warnings_and_worse)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _input_signature(network):
    """Keras' `input_signature` of the serving network: its named inputs, batch dimension None
    (one spec, or a list of them as the network's one argument)."""
    import tensorflow as tf

    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in network.inputs]
    return [specs] if len(specs) > 1 else specs


# ------------------------------------------------------------------------- the signature
def _card(entry):
    """The model-card fields of a preset record."""
    training = entry.get("training") or {}
    return {
        "name": entry.get("name"),
        "family": entry.get("model"),
        "dataset": entry.get("dataset"),
        "paper": entry.get("paper"),
        "note": entry.get("note"),
        "image_shape": entry.get("image_shape"),
        "training": {k: training.get(k) for k in ("command", "epochs", "seed", "batch_size", "wall_time_s",
                                                  "hardware", "versions", "date")},
        "weights_sha256": (entry.get("weights") or {}).get("sha256"),
        "metrics": entry.get("metrics"),
        "evaluation": entry.get("evaluation"),
    }


def signature(model, fmt, output_name, card=None, source=None):
    """The content of signature.json for `model` exported as `fmt`."""
    import keras

    sampler = model.sampler
    shape = [None, *(int(d) for d in sampler.output_shape[1:])]
    precision = sampler.dtype_policy.name  # mixed precision: ONNX and LiteRT get a float32 copy
    artifact = FORMATS[fmt][1]
    return {
        "format": fmt,
        "file": artifact or ".",
        "load": FORMATS[fmt][3].format(output=output_name),
        "endpoint": SIGNATURE_ENDPOINT if fmt != "onnx" else None,
        "inputs": describe_inputs(model, sampler),
        "output": {
            "name": output_name,
            "shape": shape,
            "dtype": "float32",
            "range": [0.0, 1.0] if model.output_range is not None else None,
            "meaning": ("images (batch, height, width, channels), values in [0, 1]"
                        if model.output_range is not None and len(shape) == 4 else
                        "samples in [0, 1]" if model.output_range is not None else
                        "points, unbounded (the data's own coordinates)"),
        },
        "batch": "any size n >= 1: every input's first dimension",
        "draw": ("with rng = np.random.default_rng(seed) and n the batch size, each input's `numpy` "
                 "expression draws it as its `distribution` says"),
        "model": {"name": model.name, "class": type(model).__name__,
                  "paper": getattr(type(model), "paper", None),
                  "latent_distribution": model.latent_distribution,
                  "moving_average": getattr(model, "ema_decay", None),
                  "precision": precision,
                  "exported_precision": "float32" if fmt != "savedmodel" else precision},
        "source": source,
        "card": card,
        "versions": {"keras": keras.__version__, "tensorflow": _version("tensorflow"),
                     "gan_zoo": _version("gan-zoo")},
    }


def _version(package):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _output_name(fmt, path, input_names):
    """Reads the written artifact back: the name of its output, after checking that its inputs
    carry the names of signature.json."""
    if fmt == "onnx":
        import onnx

        graph = onnx.load(path).graph
        found, outputs = [i.name for i in graph.input], [o.name for o in graph.output]
    elif fmt == "litert":
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter's notice that LiteRT replaces it
            warnings.simplefilter("ignore")
            listed = tf.lite.Interpreter(model_path=path).get_signature_list()[SIGNATURE_ENDPOINT]
        found, outputs = listed["inputs"], listed["outputs"]
    else:
        import tensorflow as tf

        function = tf.saved_model.load(path).signatures[SIGNATURE_ENDPOINT]
        found, outputs = list(function.structured_input_signature[1]), list(function.structured_outputs)
    if sorted(found) != sorted(input_names) or len(outputs) != 1:
        raise GanZooError(f"the {fmt} file has inputs {sorted(found)} and outputs {outputs}, not "
                          f"{sorted(input_names)} and one output: this Keras version exports differently")
    return outputs[0]


# ----------------------------------------------------------------------------- the files
def check_out(out):
    """Refuses an --out that cannot take the export: an existing file, a folder that is not
    empty, a missing or unwritable parent folder. Returns its absolute path."""
    if not out:
        raise GanZooError("name the folder to write with --out PATH (a new or empty folder)")
    path = os.path.abspath(out)
    if os.path.lexists(path):
        if not os.path.isdir(path) or os.path.islink(path):
            raise GanZooError(f"--out {out} exists and is not a folder: pass a new folder name")
        if os.listdir(path):
            raise GanZooError(f"--out {out} exists and is not empty: pass a new folder, or remove it first")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise GanZooError(f"the folder of --out ({parent}) does not exist: create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GanZooError(f"cannot write in {parent} (permission denied or read-only): pass an --out in a "
                          "folder you can write")
    return path


def _temporary_folder(path):
    parent, base = os.path.split(path)
    return os.path.join(parent, f"{TEMPORARY_PREFIX}{os.getpid()}-{base}")


def _remove_stale(path):
    """Removes the temporary folders that killed exports to `path` left (their process is gone)."""
    parent, base = os.path.split(path)
    pattern = re.compile(re.escape(TEMPORARY_PREFIX) + r"(\d+)-" + re.escape(base) + "$")
    for name in os.listdir(parent):
        match = pattern.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _fsync_tree(folder):
    from models.saving import fsync

    for root, _, files in os.walk(folder):
        for name in files:
            fsync(os.path.join(root, name))
        fsync(root)


def _write_error(out, error):
    from models.saving import disk_full

    number = getattr(error, "errno", None)
    if disk_full(error):
        return GanZooError(f"the disk is full: could not write the export to {out}; nothing was written: "
                           "free some space and run the same command again")
    if number in (errno.EROFS, errno.EACCES, errno.EPERM):
        return GanZooError(f"cannot write the export to {out} ({os.strerror(number)}); nothing was "
                           "written: pass an --out in a folder you can write")
    from models.saving import short

    return GanZooError(f"could not export to {out} ({short(error)}); nothing was written: run the same "
                       "command again, or try another --format")


def export(model, out, fmt="savedmodel", card=None, source=None):
    """Writes `model`'s sampler as `fmt` into the new folder `out` with its signature.json;
    returns (the artifact's path, the signature). All or nothing: the folder is built under a
    temporary sibling name and renamed at the end; any failure removes it."""
    from models.saving import fsync, write_json_atomically

    fmt = format_of(fmt)
    check_converter(fmt)
    path = check_out(out)
    _remove_stale(path)
    temporary = _temporary_folder(path)
    keras_format, artifact, _, _ = FORMATS[fmt]
    try:
        # ONNX and LiteRT files of a mixed-precision network fail in their runtimes (bfloat16
        # MatMuls, TensorFlow-only casts): they get a float32 copy; a SavedModel runs as it is.
        network = serving_model(model, float32=fmt != "savedmodel")
        os.mkdir(temporary)
        target = temporary if artifact is None else os.path.join(temporary, artifact)
        with warnings.catch_warnings(), _quiet_converters():
            # Keras' tf2onnx patch tests for numpy's removed `np.object`, which warns.
            warnings.filterwarnings("ignore", message=r".*np\.object.*", category=FutureWarning)
            network.export(target, format=keras_format, verbose=False, input_signature=_input_signature(network),
                           **_converter_options(fmt))
        names = [entry["name"] for entry in describe_inputs(model, model.sampler)]
        described = signature(model, fmt, _output_name(fmt, target, names), card, source)
        write_json_atomically(os.path.join(temporary, SIGNATURE_FILE), described)
        _fsync_tree(temporary)
        os.rename(temporary, path)  # replaces an empty folder; one filled meanwhile fails here
        fsync(os.path.dirname(path))
    except GanZooError:
        raise
    except Exception as e:  # noqa: BLE001 -- converters raise many kinds; each becomes one line
        raise _write_error(out, e) from None
    finally:
        if os.path.lexists(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
    return (path if artifact is None else os.path.join(path, artifact)), described


def load_source(preset=None, logdir=None):
    """(model, card, source) of exactly one of a preset or a finished run's logdir."""
    if bool(preset) == bool(logdir):
        raise GanZooError("pass exactly one of --preset NAME (python -c 'import zoo; print(zoo.list())') "
                          "and --logdir RUN (a finished training run)")
    if preset:
        import zoo

        entry = zoo.info(preset)
        return zoo.load(preset, compile=False), _card(entry), {"preset": preset}
    from train import evaluate

    model, record = evaluate.load_run(logdir)
    source = {"logdir": os.path.abspath(logdir), "family": record.get("model"), "dataset": record.get("dataset"),
              "epochs": record.get("epochs"), "seed": record.get("seed")}
    return model, None, source


def main(argv, flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    fmt = format_of(fv.format)
    if bool(fv.preset) == bool(fv.logdir):
        load_source(fv.preset, fv.logdir)  # raises the message
    check_converter(fmt)
    check_out(fv.out)
    what = f"preset {fv.preset}" if fv.preset else f"the run in {fv.logdir}"
    print(f"GAN Zoo: exporting the generator of {what} as {fmt} into {fv.out}", flush=True)
    model, card, source = load_source(fv.preset, fv.logdir)
    artifact, _ = export(model, fv.out, fmt, card, source)
    print(f"wrote {artifact} and {os.path.join(fv.out, SIGNATURE_FILE)} (how to draw its inputs)")


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
