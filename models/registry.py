"""Model names -> model families. Adding a family to the zoo is one line here."""

import inspect

from models.baseline_dcgan import BaselineDCGAN
from models.cgan import CGAN
from models.dcgan import DCGAN
from models.ebgan import EBGAN
from models.errors import GanZooError
from models.fgan import FGAN
from models.infogan import InfoGAN
from models.lsgan import LSGAN
from models.mlp_gan import MLPGAN
from models.unrolled_gan import UnrolledGAN
from models.wgan import WGAN, WGANGP

REGISTRY = {
    "mlp_gan": MLPGAN,
    "dcgan": DCGAN,
    "wgan": WGAN,
    "wgan_gp": WGANGP,
    "infogan": InfoGAN,
    "ebgan": EBGAN,
    "lsgan": LSGAN,
    "fgan": FGAN,
    "cgan": CGAN,
    "unrolled_gan": UnrolledGAN,
    "baseline_dcgan": BaselineDCGAN,
}


def names():
    return tuple(REGISTRY)


def family(name):
    """The model class registered as `name`; an unknown name lists the registry."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise GanZooError(f"unknown model {name!r}: use one of {', '.join(REGISTRY)}") from None


def get(name, image_shape=(28, 28, 1), **overrides):
    """Builds the model `name` for samples of `image_shape`, with keyword overrides."""
    cls = family(name)
    accepted = accepted_arguments(cls)
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise GanZooError(
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(accepted))}"
        )
    return cls(image_shape=image_shape, **overrides)


def accepted_arguments(cls):
    accepted = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("keras"):
            break
        params = inspect.signature(klass.__init__).parameters
        accepted |= {p for p in params if p not in ("self", "args", "kwargs")}
    return accepted - {"generator", "discriminator", "image_shape"}
