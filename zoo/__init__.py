"""Pretrained presets of the zoo: name -> model family, configuration, weights and metrics.

    import zoo
    zoo.list()                                   # the preset names
    gan = zoo.load("dcgan_fashion_mnist")        # compiled, ready to generate or to fit on
    images = gan.generate(64, seed=0)            # values in [0, 1]
    zoo.info("dcgan_fashion_mnist")["metrics"]   # FCD, KID, ... next to the real-data floor

A preset is plain data, `zoo/presets/<name>.json`, written by `python -m zoo.publish` from a
finished training run:

    model, dataset, image_shape   the registry family, its data and sample shape
    config                        the model's get_config(): `models.family(model).from_config`
    weights                       file (in zoo/weights/), sha256, size, optional url
    training                      the exact command, epochs, seed, wall time, hardware
    metrics                       train.evaluate's figures (N = 10,000) next to the floor
    samples                       a small sample grid (zoo/images/<name>.png)

The weights file holds both networks (and any extra head such as InfoGAN's Q) stored in half
precision to keep the zoo small; they are computed in float32 once loaded. Every file is checked
against its sha256 before Keras reads it. When the file is not in the repository and the preset
names a `url`, it is fetched once into Keras' cache (`~/.keras/gan_zoo/`, see `cache_dir`) with
`keras.utils.get_file`; a download whose sha256 differs is deleted and refused.

A record is data, never a path: the files it names (weights file, sample grid) are bare names
in the zoo's own folders (`BARE_NAME`), checked when the catalogue is read and again before a
file is touched. A record that is not valid JSON, lacks a field or names a path is skipped with
a warning, so the rest of the catalogue still loads; asking for it by name (its file name
without `.json`) raises the one-line reason (`REFUSED`). A download goes to a new temporary
name in the cache folder, is checked, then renamed into place: a failure removes only that file.

Importing `zoo` reads the catalogue without loading TensorFlow; `load` loads it.
"""

import json
import os
import re
import tempfile
import warnings

from models.errors import GanZooError

ROOT = os.path.dirname(os.path.abspath(__file__))
PRESET_DIR = os.path.join(ROOT, "presets")
WEIGHTS_DIR = os.path.join(ROOT, "weights")
IMAGES_DIR = os.path.join(ROOT, "images")
CACHE_SUBDIR = "gan_zoo"


BARE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a file name, never a path
_SAMPLES = re.compile(r"zoo/images/[A-Za-z0-9][A-Za-z0-9._-]*\.png")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BARE = "a bare file name (letters, digits, '.', '_', '-'; no folder)"


def _shown(value):
    text = repr(value)  # one line whatever the value holds
    return text if len(text) <= 80 else text[:77] + "..."


def _record_problem(entry, stem=None):
    """(field, what is wrong) of the first bad field of a preset record, or None."""
    if not isinstance(entry, dict):
        return "the record", f"must be a JSON object, got {type(entry).__name__}"
    weights = entry.get("weights")
    checks = [
        ("name", lambda v: isinstance(v, str) and BARE_NAME.fullmatch(v), _BARE),
        ("model", lambda v: isinstance(v, str) and v != "", "a registry model name"),
        ("config", lambda v: isinstance(v, dict), "an object (the model's get_config())"),
        ("weights", lambda v: isinstance(v, dict), "an object with file and sha256"),
    ]
    if isinstance(weights, dict):
        checks += [
            ("weights.file", lambda v: isinstance(v, str) and BARE_NAME.fullmatch(v), _BARE),
            ("weights.sha256", lambda v: isinstance(v, str) and _SHA256.fullmatch(v),
             "64 lower-case hex digits"),
            ("weights.url", lambda v: v is None or isinstance(v, str), "a URL or null"),
        ]
    checks.append(("samples", lambda v: v is None or isinstance(v, str) and _SAMPLES.fullmatch(v),
                   "zoo/images/<bare file name>.png or null"))
    optional = {"weights.url", "samples"}
    for field, good, requirement in checks:
        holder, key = (weights, field.split(".")[1]) if "." in field else (entry, field)
        if key not in holder:
            if field in optional:
                continue
            return field, "is missing"
        if not good(holder[key]):
            return field, f"must be {requirement}, got {_shown(holder[key])}"
    if stem is not None and entry["name"] != stem:
        return "name", f"must be the file's own name {stem!r}, got {_shown(entry['name'])}"
    return None


def _check_record(entry, source, stem=None):
    problem = _record_problem(entry, stem)
    if problem:
        field, wrong = problem
        raise GanZooError(f"{source}: {field} {wrong}: correct the record or remove it")


def read_record(path):
    """The checked preset record in the file `path` (named <preset>.json), or one GanZooError."""
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise GanZooError(f"preset file {path}: the record is not readable JSON ({reason}): "
                          "correct the record or remove it") from None
    _check_record(entry, f"preset file {path}", os.path.basename(path)[: -len(".json")])
    return entry


def _read_presets(folder=PRESET_DIR, refused=None):
    """{name: record} of the valid records in `folder`; every other .json file is skipped with a
    warning, its one-line reason stored in `refused` under its name."""
    presets = {}
    if not os.path.isdir(folder):
        return presets
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".json"):
            continue
        path = os.path.join(folder, file)
        stem = file[: -len(".json")]
        try:
            entry = read_record(path)
        except GanZooError as e:
            if refused is not None:
                refused[stem] = str(e)
            warnings.warn(f"zoo: skipped {e}", UserWarning, stacklevel=2)
            continue
        presets[stem] = entry
    return presets


REFUSED = {}  # name -> why its record in zoo/presets/ was skipped
PRESETS = _read_presets(PRESET_DIR, REFUSED)


def list():  # noqa: A001 - the public name of the catalogue
    """The names of the published presets."""
    return sorted(PRESETS)


def info(name):
    """The preset's record (family, config, weights, training, metrics) as a dict."""
    try:
        entry = PRESETS[name]
    except KeyError:
        if name in REFUSED:
            raise GanZooError(REFUSED[name]) from None
        available = ", ".join(sorted(PRESETS)) or "none yet"
        raise GanZooError(f"unknown preset {name!r}: published presets: {available} "
                          "(python -c 'import zoo; print(zoo.list())')") from None
    _check_record(entry, f"preset {name!r}")  # records added in memory are checked here
    return entry


def weights_file(name, cache_dir=None):
    """The checked local path of the preset's weights: the repository's copy, else the cached
    download of its `url` (fetched on first use)."""
    entry = info(name)
    weights = entry["weights"]
    local = os.path.join(WEIGHTS_DIR, weights["file"])
    if os.path.isfile(local):
        _check_sha256(local, weights["sha256"], name, fix="restore it with `git checkout -- "
                      f"zoo/weights/{weights['file']}`")
        return local
    if not weights.get("url"):
        raise GanZooError(f"the weights of preset {name!r} are missing (zoo/weights/{weights['file']}) "
                          "and it names no url: restore them with `git checkout -- zoo/weights`")
    return _fetch(name, weights, cache_dir)


def _fetch(name, weights, cache_dir):
    """The cached download of the preset's weights: a new temporary file in the zoo's cache
    folder, checked against the record's sha256, then renamed to the record's (bare) file name.
    A failure removes that temporary file and nothing else."""
    import keras

    from models.saving import sha256_of

    if not BARE_NAME.fullmatch(weights["file"]):  # info() refuses such records; never a path here
        raise GanZooError(f"preset {name!r}: weights.file must be {_BARE}, got {_shown(weights['file'])}")
    folder = os.path.join(_cache_root(cache_dir), CACHE_SUBDIR)
    cached = os.path.join(folder, weights["file"])
    if os.path.isfile(cached) and sha256_of(cached) == weights["sha256"]:
        return cached  # fetched before
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{weights['file']}.", suffix=".download", dir=folder)
        os.close(handle)
    except OSError as e:
        raise GanZooError(f"cannot write to the download cache {folder} ({e.strerror or e}): pass "
                          "another cache_dir") from None
    try:
        try:
            # No file_hash: the hash is checked below, so any error here is a failed fetch. An
            # absolute cache_subdir keeps Keras in this folder (it would otherwise fall back to
            # /tmp/.keras for a cache it cannot write).
            keras.utils.get_file(os.path.basename(temporary), origin=weights["url"], cache_dir=folder,
                                 cache_subdir=folder, force_download=True)
        except Exception as e:  # noqa: BLE001 -- urllib raises many kinds for an unreachable url
            raise GanZooError(f"cannot fetch the weights of preset {name!r} from {weights['url']} "
                              f"({_first_line(e)}): check the network, or copy the file to "
                              f"zoo/weights/{weights['file']}") from None
        if not os.path.isfile(temporary) or sha256_of(temporary) != weights["sha256"]:
            raise GanZooError(f"the weights downloaded for preset {name!r} from {weights['url']} are "
                              "truncated or not the published file (sha256 mismatch); the download "
                              "was deleted: try again later or check the url")
        os.replace(temporary, cached)
    finally:
        if os.path.lexists(temporary):
            os.remove(temporary)
    return cached


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:120]


def _cache_root(cache_dir):
    if cache_dir:
        return cache_dir
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def _check_sha256(path, expected, name, fix):
    from models.saving import sha256_of

    if sha256_of(path) != expected:
        raise GanZooError(f"the weights file {path} of preset {name!r} is damaged or was modified "
                          f"(its sha256 is not the published one): {fix}")


def build(name, **overrides):
    """The preset's model, untrained, from its configuration with `overrides` applied.

    Overrides may change how the model trains (seed, d_steps, generator_loss, ...), never the
    shapes of its weights: those are refused with the preset's own values.
    """
    import models
    from models.registry import accepted_arguments

    entry = info(name)
    config = dict(entry["config"])
    family = models.family(entry["model"])
    accepted = accepted_arguments(family) | set(config)
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise GanZooError(f"preset {name!r} ({entry['model']}) has no setting "
                          f"{', '.join(unknown)}; its settings: {', '.join(sorted(accepted))}")
    reference = family.from_config(dict(config)) if overrides else None
    model = family.from_config({**config, **overrides})
    if reference is not None and _weight_shapes(reference) != _weight_shapes(model):
        changed = {k: v for k, v in overrides.items() if k in config and _normal(v) != _normal(config[k])}
        asked = ", ".join(f"{k}={_normal(v)}" for k, v in changed.items())
        trained = ", ".join(f"{k}={_normal(config[k])}" for k in changed)
        raise GanZooError(f"preset {name!r} was trained with {trained}, not {asked}: its weights "
                          "only fit its own values; leave those out, or train a new model with "
                          f"python -m train.main --model {entry['model']}")
    return model


def _normal(value):
    return [_normal(v) for v in value] if isinstance(value, (tuple, type([]))) else value


def _weight_shapes(model):
    return [tuple(v.shape) for v in model.weights]


def load(name, *, compile=True, cache_dir=None, **overrides):
    """The GAN of preset `name` with its trained weights (both networks).

    Compiled with the family's paper optimizers (fresh state) unless `compile=False`, so
    `fit()` continues training at once; `generate(n, seed=s)` gives the same images in every
    process. `overrides` as in `build`.
    """
    path = weights_file(name, cache_dir)
    model = build(name, **overrides)
    model.load_weights(path)
    if compile:
        model.compile()
    return model
