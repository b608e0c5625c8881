"""Pretrained presets of the zoo: name -> model family, configuration, weights and metrics.

No preset is published yet; `list()` shows what exists and `load(name)` refuses unknown names.
"""

from models.errors import GanZooError

PRESETS = {}


def list():  # noqa: A001 - the public name of the catalogue
    """The names of the published presets."""
    return sorted(PRESETS)


def load(name):
    """The GAN of preset `name`, ready to generate or to continue training."""
    available = ", ".join(sorted(PRESETS)) or "none yet"
    raise GanZooError(f"unknown preset {name!r}: published presets: {available}")
