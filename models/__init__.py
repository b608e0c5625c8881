"""The networks of the zoo and the one two-player update they share (`models.gan.GAN`)."""

from models.errors import GanZooError
from models.gan import GAN
from models.registry import REGISTRY, family, get, names
from models.saving import load

__all__ = ["GAN", "GanZooError", "REGISTRY", "family", "get", "load", "names"]
