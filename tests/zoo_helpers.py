"""A temporary zoo for tests: the module's folders and catalogue redirected, and presets stored
by hand from a model (untrained is fine) without a training run."""

import contextlib
import pathlib

import pytest

import zoo


@contextlib.contextmanager
def redirected_zoo(root):
    """The zoo's folders and catalogue redirected to an empty zoo under `root`, until exit."""
    root = pathlib.Path(root)
    with pytest.MonkeyPatch.context() as patch:
        for attribute, sub in (("PRESET_DIR", "presets"), ("WEIGHTS_DIR", "weights"),
                               ("IMAGES_DIR", "images")):
            patch.setattr(zoo, attribute, str(root / sub))
        patch.setattr(zoo, "PRESETS", {})
        yield root


def store_preset(name, model, family, dataset="fashion_mnist"):
    """Stores `model` (of registry family `family`) as preset `name` of the current zoo: its
    half-precision weights in the zoo's weights folder and its record in the catalogue."""
    from models.saving import sha256_of
    from train import evaluate
    from zoo import publish

    target = pathlib.Path(zoo.WEIGHTS_DIR) / f"{name}.weights.h5"
    target.parent.mkdir(parents=True, exist_ok=True)
    full = target.parent / f"{name}.full.weights.h5"
    model.save_weights(str(full))
    publish.write_half_precision(str(full), str(target))
    zoo.PRESETS[name] = {
        "name": name, "model": family, "dataset": dataset,
        "config": evaluate._json_safe(model.get_config()),
        "weights": {"file": target.name, "sha256": sha256_of(target), "url": None},
    }
    return zoo.PRESETS[name]
