"""Model names -> model families. Adding a family to the zoo is one line here.

Each family declares its arguments once (`options`, see models/options.py); this module checks
user values against them:

    parse_options("wgan", {"width": "8", "clip_value": "none"}, prefix="--model_option ")
        -> {"width": 8, "clip_value": None}
    describe_options("wgan") -> [("latent_dim", "int >= 1", "auto", "noise size (100 for ..."),
                                 ..., ("clip_value", "float > 0|none", "0.01", "c: critic ..."), ...]
"""

from models import options as declared
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


def parse_options(name, raw, prefix=""):
    """The arguments `raw` ({key: value}) of model `name` in their declared types.

    Values may be strings as typed on a command line ("abc", "2.5", "true", "[-1,1]", "none")
    or Python values (keyword arguments, a stored run record). Only the keys given are returned:
    the family picks the defaults of the others. A value of the wrong type, out of range, or a
    key the family does not take is one GanZooError line that names the option, the value and
    what is accepted; `prefix` is written before `key=value` in it, e.g. "--model_option " for
    the command line ("--model_option width=abc: width takes a positive integer (default 64)").
    """
    return declared.parse(family(name), dict(raw), name, prefix=prefix)


def describe_options(name):
    """(key, kind, default, help) text rows of the arguments of model `name`, for `--help`."""
    return declared.describe(family(name))


def get(name, image_shape=(28, 28, 1), **overrides):
    """Builds the model `name` for samples of `image_shape`, with keyword overrides checked
    against the family's declared options (see `parse_options`)."""
    return family(name)(image_shape=image_shape, **parse_options(name, overrides))


def accepted_arguments(cls):
    """The names of the arguments the model class `cls` takes (besides `image_shape`)."""
    return {option.name for option in cls.options}
