"""The networks of the zoo and the one two-player update they share (`models.gan.GAN`).

    import models
    gan = models.get("dcgan")                       # the registry: models.names(), models.family
    gan = models.load("runs/dcgan/model.keras")     # a saved model, safe mode on

Importing the package is cheap: `from models.errors import GanZooError` loads neither
TensorFlow nor any family. The first use of `GAN`, `REGISTRY`, `family`, `get`, `names` or
`load` imports the registry, and with it every family, which registers their classes with Keras
so that `.keras` files can be read.
"""

import importlib
import importlib.util

from models import tf_logs  # noqa: F401 -- TensorFlow's start-up messages (see there)
from models.errors import GanZooError

_LAZY = {
    "GAN": "models.gan",
    "REGISTRY": "models.registry",
    "family": "models.registry",
    "get": "models.registry",
    "names": "models.registry",
    "load": "models.saving",
}

__all__ = ["GAN", "GanZooError", "REGISTRY", "family", "get", "load", "names"]


def _load_families():
    """Imports the registry (every family, registered with Keras) and binds the public names."""
    importlib.import_module("models.registry")
    for name, module in _LAZY.items():
        globals()[name] = getattr(importlib.import_module(module), name)


def __getattr__(name):  # PEP 562: called only for names not bound yet
    if name in _LAZY:
        _load_families()
        return globals()[name]
    if name.isidentifier() and not name.startswith("_") and importlib.util.find_spec(f"models.{name}"):
        return importlib.import_module(f"models.{name}")  # `models.<module>`, not yet imported
    raise AttributeError(f"module 'models' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
