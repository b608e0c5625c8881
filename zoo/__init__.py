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
"""

import json
import os

from models.errors import GanZooError

ROOT = os.path.dirname(os.path.abspath(__file__))
PRESET_DIR = os.path.join(ROOT, "presets")
WEIGHTS_DIR = os.path.join(ROOT, "weights")
IMAGES_DIR = os.path.join(ROOT, "images")
CACHE_SUBDIR = "gan_zoo"


def _read_presets(folder=PRESET_DIR):
    presets = {}
    if not os.path.isdir(folder):
        return presets
    for file in sorted(os.listdir(folder)):
        if file.endswith(".json"):
            with open(os.path.join(folder, file), encoding="utf-8") as f:
                entry = json.load(f)
            presets[entry["name"]] = entry
    return presets


PRESETS = _read_presets()


def list():  # noqa: A001 - the public name of the catalogue
    """The names of the published presets."""
    return sorted(PRESETS)


def info(name):
    """The preset's record (family, config, weights, training, metrics) as a dict."""
    try:
        return PRESETS[name]
    except KeyError:
        available = ", ".join(sorted(PRESETS)) or "none yet"
        raise GanZooError(f"unknown preset {name!r}: published presets: {available} "
                          "(python -c 'import zoo; print(zoo.list())')") from None


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
    import keras

    root = _cache_root(cache_dir)
    cached = os.path.join(root, CACHE_SUBDIR, weights["file"])
    try:
        # Keras falls back to /tmp/.keras when the cache folder does not exist yet.
        os.makedirs(os.path.dirname(cached), exist_ok=True)
    except OSError as e:
        raise GanZooError(f"cannot create the download cache {os.path.dirname(cached)} "
                          f"({e.strerror}): pass another cache_dir") from None
    try:
        path = keras.utils.get_file(
            weights["file"], origin=weights["url"], file_hash=weights["sha256"],
            hash_algorithm="sha256", cache_dir=root, cache_subdir=CACHE_SUBDIR)
    except ValueError:
        # Keras leaves a download whose hash differs in its cache: it must never be used.
        if os.path.exists(cached):
            os.remove(cached)
        raise GanZooError(f"the weights downloaded for preset {name!r} from {weights['url']} are "
                          "truncated or not the published file (sha256 mismatch); the download "
                          "was deleted: try again later or check the url") from None
    except Exception as e:  # noqa: BLE001 -- urllib raises many kinds for an unreachable url
        raise GanZooError(f"cannot fetch the weights of preset {name!r} from {weights['url']} "
                          f"({str(e).splitlines()[0][:120]}): check the network, or copy the file "
                          f"to zoo/weights/{weights['file']}") from None
    _check_sha256(path, weights["sha256"], name, fix="delete it to fetch it again")
    return path


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
