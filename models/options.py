"""The arguments a model family takes, declared once with their types, ranges and help.

Each family lists its arguments as a class attribute, next to its networks:

    class DCGAN(GAN):
        options = replace(GAN.options, latent_dim=dict(default=100)) + (
            Option("width", INT, 64, "filters of D's first layer", minimum=1),
            Option("sync_batch_norm", BOOL, True, "batch statistics of the global batch"),
        )

`parse(family, raw)` turns user values into the declared types and refuses anything else with
one `GanZooError` line that names the option, the value and what is accepted. Values may be
strings from the command line ("abc", "2.5", "true", "[-1,1]", "none") or Python values
(keyword arguments, a stored run record). Only the options given are returned: a family
still chooses the defaults that depend on the data (e.g. WGAN's widths for 2-D points).

A default or a list of choices may be a function of the family class (e.g. `d_steps`
defaults to the family's `default_d_steps`); `Option.bind(family)` resolves them.

Checks that need more than one value (update=simultaneous with d_steps > 1, an InfoGAN without
codes) or the data's shape stay in the families' constructors.
"""

import dataclasses
import math
import numbers
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np

from models.errors import GanZooError

# Kinds of value an option takes.
INT = "int"
FLOAT = "float"
BOOL = "bool"
STR = "str"
RANGE = "range"  # a pair (low, high) of floats with low < high
INTS = "ints"  # a tuple of ints, e.g. one size per categorical code
KINDS = (INT, FLOAT, BOOL, STR, RANGE, INTS)

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
_NONE = ("none", "null")


class _Refused(Exception):
    """A value an option does not take (turned into one GanZooError line by `parse`)."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One argument of a family.

    Args:
        name: the keyword argument.
        kind: one of INT, FLOAT, BOOL, STR, RANGE, INTS.
        default: the value used when the option is omitted; None when the family chooses it
            (from the data's shape, say: `help` then says how). May be a function of the family.
        help: one line for `--help`.
        choices: the strings a STR option takes (a tuple, or a function of the family).
        minimum, maximum: bounds of an INT or FLOAT (of every entry of INTS), inclusive unless
            `exclusive_minimum` / `exclusive_maximum`.
        optional: None (written "none" on the command line) is a value of its own, e.g.
            `clip_value=none` turns clipping off. An option whose default is None also takes
            None, meaning the same as leaving it out (its default is then shown as "auto").
        noun: how messages name the option (e.g. "generator loss"); its name by default.
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: Union[None, Tuple[str, ...], Callable] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    optional: bool = False
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    noun: Optional[str] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")

    def bind(self, family):
        """This option with a default or choices that depend on the family resolved."""
        default = self.default(family) if callable(self.default) else self.default
        choices = self.choices(family) if callable(self.choices) else self.choices
        return dataclasses.replace(self, default=default, choices=None if choices is None else tuple(choices))

    @property
    def takes_none(self):
        """None is accepted: a value of its own, or the same as leaving the option out."""
        return self.optional or self.default is None

    @property
    def shows_none(self):
        """Descriptions list none among the values (a choice "none" already does)."""
        return self.optional and not (self.choices and "none" in self.choices)

    # ---------------------------------------------------------------------- descriptions
    def accepted(self):
        """What the option takes, as prose: "a positive integer", "true or false", ..."""
        if self.kind == BOOL:
            text = "true or false"
        elif self.kind == STR:
            text = f"one of {', '.join(self.choices)}" if self.choices else "a string"
        elif self.kind == RANGE:
            text = "a pair [low, high] of numbers with low < high"
        elif self.kind == INTS:
            text = f"a list of {_plural(self._number_text())}, e.g. [10]"
        else:
            text = self._number_text()
        return text + (" or none" if self.shows_none else "")

    def kind_text(self):
        """The kind in a few characters, for a table: "int >= 1", "float in (0, 1]", ..."""
        if self.kind == STR and self.choices:
            text = "|".join(self.choices)
        elif self.kind == RANGE:
            text = "[low, high]"
        elif self.kind == INTS:
            text = f"list of int{self._bounds_text()}"
        else:
            text = self.kind + self._bounds_text()
        return text + ("|none" if self.shows_none else "")

    def default_text(self):
        """The default as text; "auto" for one the family chooses (e.g. from the data's shape)."""
        if self.default is None and not self.optional:
            return "auto"
        return format_value(self.default)

    def _bounds_text(self):
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return (f" in {'(' if self.exclusive_minimum else '['}{_number(low)}, "
                    f"{_number(high)}{')' if self.exclusive_maximum else ']'}")
        if low is not None:
            return f" {'>' if self.exclusive_minimum else '>='} {_number(low)}"
        if high is not None:
            return f" {'<' if self.exclusive_maximum else '<='} {_number(high)}"
        return ""

    def _number_text(self):
        integer = self.kind in (INT, INTS)
        low, high = self.minimum, self.maximum
        if high is None and ((low == 0 and self.exclusive_minimum)
                             or (integer and low == 1 and not self.exclusive_minimum)):
            return f"a positive {'integer' if integer else 'number'}"
        if integer and low is not None and high is not None:
            return f"an integer from {_number(low)} to {_number(high)}"
        return ("an integer" if integer else "a number") + self._bounds_text()

    # --------------------------------------------------------------------------- parsing
    def convert(self, value):
        """`value` in the option's type, or `_Refused`."""
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE
                             and not (self.choices and value.strip() in self.choices)):
            if self.takes_none:
                return None
            raise _Refused
        if self.kind == INT:
            return self._check_range(_integer(value))
        if self.kind == FLOAT:
            return self._check_range(_real(value))
        if self.kind == BOOL:
            return _boolean(value)
        if self.kind == STR:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise _Refused
            return value
        if self.kind == RANGE:
            low, high = (_real(v) for v in _pair_or_list(value, 2))
            if not low < high:
                raise _Refused
            return (low, high)
        return tuple(self._check_range(_integer(v)) for v in _pair_or_list(value, None))

    def _check_range(self, number):
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.exclusive_minimum and number == low)):
            raise _Refused
        if high is not None and (number > high or (self.exclusive_maximum and number == high)):
            raise _Refused
        return number


def _plural(text):
    """'a positive integer' -> 'positive integers', 'an integer >= 2' -> 'integers >= 2'."""
    words = text.split(" ")
    if words[0] in ("a", "an"):
        words = words[1:]
    for i, word in enumerate(words):
        if word in ("integer", "number"):
            words[i] = word + "s"
            break
    return " ".join(words)


def _number(x):
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _integer(value):
    if isinstance(value, (bool, np.bool_)):
        raise _Refused
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            value = _real(text)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise _Refused


def _real(value):
    if isinstance(value, (bool, np.bool_)):
        raise _Refused
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _Refused from None
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise _Refused
    return float(value)


def _boolean(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _Refused


def _pair_or_list(value, length):
    """The entries of "[a, b]", "(a, b)", "a,b", a list, a tuple or an array (or a lone int for
    a list of ints); `length` entries exactly unless None."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[(" and text[-1:] in "])":
            text = text[1:-1]
        entries = [part.strip() for part in text.split(",")] if text.strip() else []
    elif isinstance(value, (list, tuple, np.ndarray)):
        entries = list(np.asarray(value, dtype=object).reshape(-1)) if np.ndim(value) <= 1 else None
    elif length is None and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        entries = [value]
    else:
        entries = None
    if entries is None or (length is not None and len(entries) != length) or "" in entries:
        raise _Refused
    return entries


def format_value(value):
    """A value as a user would write it: 64, 0.0002, true, none, [-1.0, 1.0], abc."""
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (tuple, list, np.ndarray)):
        return "[" + ", ".join(format_value(v) for v in list(value)) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _short(text):
    """`text` on one line, at most 60 characters, for a message."""
    text = text if "\n" not in text and "\r" not in text else repr(text)
    return text if len(text) <= 60 else text[:57] + "..."


def replace(options, **changes):
    """`options` with the named ones changed, e.g. `replace(GAN.options, latent_dim=dict(default=100))`
    (a family giving a shared option its own default or help). Unknown names are a bug."""
    names = {option.name for option in options}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"no option {', '.join(unknown)} to replace")
    return tuple(dataclasses.replace(o, **changes[o.name]) if o.name in changes else o for o in options)


def without(options, *names):
    """`options` without the named ones (a family that does not take a shared option)."""
    missing = sorted(set(names) - {option.name for option in options})
    if missing:
        raise ValueError(f"no option {', '.join(missing)} to remove")
    return tuple(option for option in options if option.name not in names)


def bound(family):
    """The family's options with family-dependent defaults and choices resolved."""
    return tuple(option.bind(family) for option in family.options)


def parse(family, raw, family_name=None, prefix="", unknown="refuse"):
    """`raw` ({key: value}) converted to the declared types of `family`'s options.

    Args:
        family: a model class with an `options` declaration.
        raw: the values given; strings as typed on a command line, or Python values.
        family_name: how messages name the family (its registry name).
        prefix: what comes before `key=value` in messages: "--model_option " for the command
            line, "" for keyword arguments. Messages read "<prefix>key=value: <what is wrong>";
            without a prefix, those about a key or a choice the family does not have start
            with what is wrong, as they quote the key and the value themselves
            ("dcgan does not take colour; it takes ...", "unknown schedule 'fast' for wgan:
            use one of constant, paper (default constant)").
        unknown: "refuse" keys that are not declared, or "keep" them as they are (a stored
            configuration also holds the layer's name and the networks).

    Every refusal is one GanZooError line naming the option, the value and what is accepted.
    """
    options = {option.name: option for option in bound(family)}
    family_name = family_name or getattr(family, "__name__", str(family))
    parsed = {}
    for key, value in raw.items():
        where = f"{prefix}{key}={_short(format_value(value))}"
        option = options.get(key)
        if option is None:
            if unknown == "keep":
                parsed[key] = value
                continue
            message = f"{family_name} does not take {key}; it takes {', '.join(sorted(options))}"
            raise GanZooError(f"{where}: {message}" if prefix else message)
        try:
            parsed[key] = option.convert(value)
        except _Refused:
            default = "" if option.default is None else f" (default {option.default_text()})"
            if option.kind == STR and option.choices:
                shown = _short(repr(value) if isinstance(value, str) else format_value(value))
                message = (f"unknown {option.noun or key} {shown} for {family_name}: use one of "
                           f"{', '.join(option.choices)}{' or none' if option.shows_none else ''}{default}")
                raise GanZooError(f"{where}: {message}" if prefix else message) from None
            raise GanZooError(f"{where}: {key} takes {option.accepted()}{default}") from None
    return parsed


def describe(family):
    """(key, kind, default, help) rows of the family's options, as text for `--help`."""
    return [(o.name, o.kind_text(), o.default_text(), o.help) for o in bound(family)]
