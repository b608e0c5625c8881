"""Every training setting, written once.

`SETTINGS` is the one list: the command-line flags of `python -m train.main`, the fields of
`TrainConfig`, their validation, the run record (`run.json`), the checks on resume and the
command `zoo.publish` records are all derived from it.

Each setting says what happens when a logdir is resumed with another value:

    fixed      the run's identity (model, data, batch, seed, objective, precision): another
               value is refused, because the checkpoint would go on with other arithmetic
    may change how long, how fast, how often (epochs, learning rates, cadences, devices): the
               new value is used and `run.json` records the change in its `history`
    local      where things are on this machine (logdir, data_dir) and how much is printed:
               neither compared nor recorded as a change
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Callable, Optional

from models.errors import GanZooError

FIXED, MAY_CHANGE, LOCAL = "fixed", "may change", "local"
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
ON_DIVERGENCE = ("stop", "rollback")
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
MAX_ROLLBACKS = 3  # --on_divergence rollback halves the learning rates at most this often
MAX_SEED = 2**32 - 1  # numpy's and Keras' seeds are 32-bit
FLOAT32_MAX = 3.4028234663852886e38


@dataclasses.dataclass(frozen=True)
class Setting:
    """One training setting: its flag, its type, its default, its range and its resume rule.

    `kind` is int, float, str, bool, "list" (comma-separated) or "options" (repeated
    key=value). `minimum` / `maximum` bound numbers; `choices` lists the accepted strings.
    A default of None means "the model family's paper value", resolved by the trainer.
    """

    name: str
    kind: Any
    default: Any
    help: str
    on_resume: str = FIXED
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[tuple] = None
    in_command: bool = True  # part of the command that reproduces a run (zoo.publish)

    def check(self, value):
        """`value` if it is acceptable, else a GanZooError naming the flag and the range."""
        if value is None:
            if self.default is None or self.kind in ("list", "options"):
                return value
            raise GanZooError(f"--{self.name} needs a value: {self.accepted()}")
        if self.kind is bool:
            if not isinstance(value, bool):
                raise GanZooError(f"--{self.name} must be true or false, got {value!r}")
            return value
        if self.kind in (int, float):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or (self.kind is int and not float(value).is_integer()) or \
                    not math.isfinite(value) or abs(value) > FLOAT32_MAX:
                raise GanZooError(f"--{self.name} must be {self.accepted()}, got {value!r}")
            value = self.kind(value)
            too_low = self.minimum is not None and (value <= 0 if self.minimum == "positive"
                                                    else value < self.minimum)
            if too_low or (self.maximum is not None and value > self.maximum):
                raise GanZooError(f"--{self.name} must be {self.accepted()}, got {value}")
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise GanZooError(f"--{self.name} must be a string, got {value!r}")
            if self.choices and value not in self.choices:
                raise GanZooError(f"unknown --{self.name} {value!r}: use one of {', '.join(self.choices)}")
        return value

    def accepted(self):
        """What the setting takes, in words, for error messages and --help."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is int:
            if self.maximum is not None:
                return f"an integer from {self.minimum} to {self.maximum}"
            return f"an integer >= {self.minimum}" if self.minimum is not None else "an integer"
        if self.kind is float:
            return "a number > 0, finite in float32" if self.minimum == "positive" else "a number"
        return "a string"


def _setting(name, kind, default, help, **kwargs):
    return Setting(name, kind, default, help, **kwargs)


SETTINGS = (
    _setting("model", str, "dcgan", "Zoo model (python -m train.main --help lists them)."),
    _setting("dataset", str, "fashion_mnist", "Dataset: fashion_mnist (offline IDX files), ring8 or "
             "grid25 (2-D Gaussian mixtures), a folder of .png/.jpg/.jpeg/.bmp/.gif images, or a "
             "tensorflow-datasets image dataset such as mnist, cifar10, celeb_a (downloads on first "
             "use)."),
    _setting("epochs", int, 5, "Epochs to train in total (a resumed run stops there too).",
             on_resume=MAY_CHANGE, minimum=1, maximum=1_000_000),
    _setting("batch_size", int, None, "Samples per generator step (default: the paper's).",
             minimum=1, maximum=65_536),
    _setting("steps_per_epoch", int, None, "Generator steps per epoch (default: one pass over the "
             "data).", on_resume=MAY_CHANGE, minimum=1, maximum=100_000_000),
    _setting("seed", int, 0, "Seed for weights, noise and shuffling.", minimum=0, maximum=MAX_SEED),
    _setting("d_steps", int, None, "Discriminator steps per generator step (default: the "
             "paper's).", minimum=1, maximum=1_000),
    _setting("generator_loss", str, None, "The objective: non_saturating (default), minimax or "
             "least_squares (LSGAN) for the logit families."),
    _setting("ema_decay", float, None, "Keep a moving average of the generator's weights with "
             "this decay (e.g. 0.999) and draw samples, grids and evaluations with it (default: "
             "none)."),
    _setting("model_option", "options", None, "A model family's argument as key=value, "
             "repeatable, e.g. --model_option divergence=kl (--help lists each family's)."),
    _setting("d_learning_rate", float, None, "Discriminator learning rate (default: the paper's).",
             on_resume=MAY_CHANGE, minimum="positive"),
    _setting("g_learning_rate", float, None, "Generator learning rate (default: the paper's).",
             on_resume=MAY_CHANGE, minimum="positive"),
    _setting("logdir", str, None, "Output folder (default: runs/<model>_<dataset>).",
             on_resume=LOCAL, in_command=False),
    _setting("data_dir", str, None, "Folder of the Fashion-MNIST IDX files (or "
             "$GAN_ZOO_DATA_DIR), or the tfds data_dir.", on_resume=LOCAL, in_command=False),
    _setting("image_size", int, None, "Resize images to this side (e.g. 32 or 64).",
             minimum=4, maximum=1024),
    _setting("jit_compile", bool, None, "Compile the train step with XLA (default: where it is "
             "faster: on GPUs and TPUs, and on CPUs for the families measured faster with it).",
             on_resume=MAY_CHANGE),
    _setting("samples", int, 64, "Samples in the grid written every epoch.", on_resume=MAY_CHANGE,
             minimum=1, maximum=1024, in_command=False),
    _setting("strategy", str, "default", "Distribution strategy: " + ", ".join(STRATEGIES) + ".",
             on_resume=MAY_CHANGE, choices=STRATEGIES, in_command=False),
    _setting("devices", "list", None, "With --strategy mirrored: devices to mirror over, e.g. "
             "/gpu:0,/gpu:1.", on_resume=MAY_CHANGE, in_command=False),
    _setting("virtual_devices", int, None, "With --strategy mirrored: split the CPU into N virtual "
             "devices.", on_resume=MAY_CHANGE, minimum=1, maximum=64, in_command=False),
    _setting("precision", str, "float32", "Dtype policy: " + ", ".join(PRECISIONS) + " (bfloat16 "
             "on CPUs with bfloat16 units, e.g. AVX512_BF16).", choices=PRECISIONS),
    _setting("mixed_precision", bool, False, "Shorthand for --precision mixed_float16 (float16 "
             "with loss scaling, for GPUs)."),
    _setting("checkpoint_every", int, 500, "Save a checkpoint every N training steps, besides "
             "every epoch end and on SIGTERM / Ctrl-C (0: epoch ends only).",
             on_resume=MAY_CHANGE, minimum=0, in_command=False),
    _setting("on_divergence", str, "stop", "When the losses or the weights become NaN/Inf: stop, "
             f"or rollback to the newest finite checkpoint with halved learning rates (at most "
             f"{MAX_ROLLBACKS} times).", on_resume=MAY_CHANGE, choices=ON_DIVERGENCE,
             in_command=False),
    _setting("log_every_steps", int, 20, "Log the mean of the losses and each tracked value over "
             "every N generator steps to TensorBoard (tags steps/...), besides the epoch means "
             "(0: epoch means only).", on_resume=MAY_CHANGE, minimum=0, maximum=100_000_000,
             in_command=False),
    _setting("time_limit", int, None, "Stop at the end of the first epoch that ends after this "
             "many seconds of training in this process, and write the final files (default: no "
             "limit).", on_resume=MAY_CHANGE, minimum=1, maximum=100_000_000, in_command=False),
    _setting("eval_every", int, None, "Log FCD (mode coverage for 2-D data) to TensorBoard every N "
             "epochs.", on_resume=MAY_CHANGE, minimum=1, in_command=False),
)
BY_NAME = {s.name: s for s in SETTINGS}
# The Python name of the repeatable --model_option flag.
_FIELD = {"model_option": "model_options"}


def field_name(setting):
    return _FIELD.get(setting.name, setting.name)


def _make_config_class():
    fields = [(field_name(s), Any, dataclasses.field(default=s.default)) for s in SETTINGS]
    fields.append(("verbose", Any, dataclasses.field(default="auto")))  # Keras' progress bar
    namespace = {
        "__doc__": "One training run: a value per setting of `train.config.SETTINGS` (None "
                   "means the model family's paper default); `verbose` is Keras' `fit` verbosity.",
        "resolved_logdir": lambda self: self.logdir or os.path.join(
            "runs", f"{self.model}_{dataset_tag(self.dataset)}"),
        "dtype_policy": lambda self: "mixed_float16" if self.mixed_precision else self.precision,
    }
    return dataclasses.make_dataclass("TrainConfig", fields, namespace=namespace)


TrainConfig = _make_config_class()
TrainConfig.__module__ = __name__


def dataset_tag(name):
    return os.path.basename(os.path.normpath(name)) or "data"


# --------------------------------------------------------------------------- validation
def validate(config, parse_model_options: Optional[Callable] = None):
    """Checks every setting of `config` (one GanZooError line for the first bad one) and
    returns a copy with model options parsed by the family's declarations."""
    values = {}
    for setting in SETTINGS:
        name = field_name(setting)
        values[name] = setting.check(getattr(config, name))
    if values["devices"] is not None:
        values["devices"] = tuple(values["devices"])
    if config.mixed_precision and config.precision not in ("float32", "mixed_float16"):
        raise GanZooError(f"--mixed_precision means --precision mixed_float16, which contradicts "
                          f"--precision {config.precision}: give only one of them")
    if values["model_options"] is not None and parse_model_options is not None:
        values["model_options"] = parse_model_options(values["model"], values["model_options"])
    return dataclasses.replace(config, **values)


def parse_option_pairs(pairs):
    """{key: text} of `key=value` strings (the repeatable --model_option flag)."""
    options = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise GanZooError(f"--model_option takes key=value, got {pair!r}")
        options[key.strip()] = text
    return options or None


# ------------------------------------------------------------------------------ resume
_NOT_IDENTITY = ("name", "trainable", "seed", "precision", "generator", "discriminator")


def identity(record):
    """What makes a run what it is, from a resolved run record (see `train.trainer`): the fixed
    settings with the family's defaults filled in, and every argument of the model's config
    (so `--model_option width=32` and a family default of 32 are the same run)."""
    fixed = {field_name(s) for s in SETTINGS if s.on_resume == FIXED}
    fixed -= {"model_options", "image_size", "mixed_precision", "d_steps", "generator_loss", "ema_decay"}
    out = {key: _jsonable(record.get(key)) for key in sorted(fixed)}
    out["precision"] = "mixed_float16" if record.get("mixed_precision") else record.get("precision", "float32")
    out["image_shape"] = _jsonable(record.get("image_shape"))
    for key, value in (record.get("model_config") or {}).items():
        if key not in _NOT_IDENTITY:
            out[key] = _jsonable(value)
    return out


def refuse_other_identity(mine, theirs, where):
    """A GanZooError when the identity `mine` of this command differs from `theirs`, the one
    a checkpoint or run record of the logdir holds."""
    first = ("model", "dataset", "image_shape", "precision", "batch_size", "seed")
    for key in [*first, *sorted(set(mine) | set(theirs))]:
        if key in mine and key in theirs and mine[key] != theirs[key]:
            if key == "image_shape":
                fix = "pass the --image_size it was trained with"
            elif key in BY_NAME:
                fix = f"pass --{key} {_text(theirs[key])}"
            else:
                fix = f"pass --model_option {key}={_text(theirs[key])}"
            raise GanZooError(f"{where} holds a run with {key}={_text(theirs[key])}, not "
                              f"{_text(mine[key])}: {fix} to go on with it, or another --logdir")


def changes(before, after):
    """{setting: [old, new]} of the settings that may change on resume and did."""
    out = {}
    for s in SETTINGS:
        if s.on_resume != MAY_CHANGE:
            continue
        key = field_name(s)
        old, new = _jsonable(before.get(key)), _jsonable(after.get(key))
        if old != new:
            out[key] = [old, new]
    return out


def _jsonable(value):
    return json.loads(json.dumps(value)) if value is not None else None


def _text(value):
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


# ------------------------------------------------------------------------------ command
def command_of(record):
    """The `python -m train.main` command that reproduces a run, from its record."""
    parts = ["python -m train.main"]
    for s in SETTINGS:
        key = field_name(s)
        value = record.get(key)
        if not s.in_command or value is None:
            continue
        if key == "model_options":
            parts += [f"--model_option {k}={_text(v)}" for k, v in value.items()]
        elif s.kind is bool:
            if value != s.default:
                parts.append(f"--{s.name}" if value else f"--no{s.name}")
        elif s.name in ("model", "dataset", "epochs", "seed") or value != s.default:
            parts.append(f"--{s.name} {_text(value)}")
    return " ".join(parts)


# -------------------------------------------------------------------------------- flags
def define_flags(flag_values=None, extra_help=None):
    """The absl flags of every setting, defaults and help from `SETTINGS` (`extra_help` replaces
    the help of the settings it names)."""
    from absl import flags

    fv = flags.FLAGS if flag_values is None else flag_values
    for s in SETTINGS:
        text = (extra_help or {}).get(s.name, s.help)
        if s.kind is int and s.minimum is not None:
            text += f" (from {s.minimum} to {s.maximum})" if s.maximum is not None else f" (>= {s.minimum})"
        if s.kind is int:
            flags.DEFINE_integer(s.name, s.default, text, flag_values=fv)
        elif s.kind is float:
            flags.DEFINE_float(s.name, s.default, text, flag_values=fv)
        elif s.kind is bool:
            flags.DEFINE_boolean(s.name, s.default, text, flag_values=fv)
        elif s.kind == "list":
            flags.DEFINE_list(s.name, s.default, text, flag_values=fv)
        elif s.kind == "options":
            flags.DEFINE_multi_string(s.name, [], text, flag_values=fv)
        else:
            flags.DEFINE_string(s.name, s.default, text, flag_values=fv)
    return fv


def config_from_flags(flag_values):
    """The TrainConfig of parsed flags (model options as raw key=value texts)."""
    values = {}
    for s in SETTINGS:
        value = flag_values[s.name].value
        if s.kind == "options":
            value = parse_option_pairs(value)
        elif s.kind == "list" and value:
            value = tuple(value)
        values[field_name(s)] = value
    return TrainConfig(**values)
