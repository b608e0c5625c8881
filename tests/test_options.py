"""Every family's arguments are declared once (`options`, models/options.py): values typed on a
command line or given from Python are converted and checked against the declarations, and every
mistake is one GanZooError line naming the option, the value and what is accepted.

Parametrized over the registry, so a new family gets these tests."""

import inspect
import json
import os

import numpy as np
import pytest

import models
from models import options as declared
from models.errors import GanZooError
from models.registry import describe_options, parse_options

NAMES = models.names()
SHAPE = (16, 16, 1)  # every family takes it; small, so that building is quick
KERAS_KEYS = {"name", "trainable", "precision", "image_shape"}  # configured, but not options


def options_of(name):
    return {option.name: option for option in declared.bound(models.family(name))}


def comparable(value):
    return [comparable(v) for v in value] if isinstance(value, (tuple, list)) else value


def refused(name, raw, prefix=""):
    """The one-line message refusing `raw`, from parse_options and from models.get alike."""
    with pytest.raises(GanZooError) as error:
        parse_options(name, raw, prefix=prefix)
    message = str(error.value)
    assert "\n" not in message
    if not prefix:
        with pytest.raises(GanZooError) as through_get:
            models.get(name, image_shape=SHAPE, **raw)
        assert str(through_get.value) == message
    return message


# ------------------------------------------------------------------------ declarations
@pytest.mark.parametrize("name", NAMES)
def test_every_configured_argument_is_declared_once(name):
    family = models.family(name)
    keys = [option.name for option in family.options]
    assert len(keys) == len(set(keys))
    config = models.get(name, image_shape=SHAPE).get_config()
    assert set(keys) == set(config) - KERAS_KEYS
    # and every argument of the constructors is one of them
    arguments = set()
    for klass in family.__mro__:
        if klass is models.GAN:
            break
        arguments |= set(inspect.signature(klass.__init__).parameters)
    assert arguments - {"self", "kwargs", "image_shape"} <= set(keys)


@pytest.mark.parametrize("name", NAMES)
def test_declared_defaults_are_the_defaults(name):
    """Passing every declared default builds the model one gets without arguments."""
    options = options_of(name)
    defaults = {key: option.default for key, option in options.items()}
    plain = models.get(name, image_shape=SHAPE, seed=0)
    explicit = models.get(name, image_shape=SHAPE, **{**defaults, "seed": 0})
    assert explicit.get_config() == plain.get_config()
    assert [w.shape for w in explicit.weights] == [w.shape for w in plain.weights]
    config = plain.get_config()
    for key, option in options.items():
        if option.default is not None:  # None: the family chooses (from the shape, say)
            assert comparable(config[key]) == comparable(option.default), key


@pytest.mark.parametrize("name", NAMES)
def test_describe_options_has_a_row_per_option(name):
    rows = describe_options(name)
    assert [row[0] for row in rows] == [option.name for option in models.family(name).options]
    for key, kind, default, text in rows:
        assert all(isinstance(part, str) and part for part in (kind, default, text)), key
    assert dict((row[0], row[2]) for row in rows)["d_steps"] == str(models.family(name).default_d_steps)


def test_describe_options_of_dcgan_and_wgan():
    rows = {row[0]: row[1:3] for row in describe_options("dcgan")}
    assert rows["width"] == ("int >= 1", "64")
    assert rows["sync_batch_norm"] == ("bool", "true")
    assert rows["output_range"] == ("[low, high]|none", "[-1.0, 1.0]")
    assert rows["generator_loss"] == ("non_saturating|minimax|least_squares", "non_saturating")
    rows = {row[0]: row[1:3] for row in describe_options("wgan")}
    assert rows["d_steps"] == ("int >= 1", "5")
    assert rows["width"] == ("int >= 1", "auto")  # 64 for images, 512 for points
    assert rows["clip_value"] == ("float > 0|none", "0.01")
    assert rows["normalization"] == ("batch|layer|none", "auto")
    assert {row[0]: row[1] for row in describe_options("unrolled_gan")}["unroll_steps"] == "int in [0, 10]"


# -------------------------------------------------------------------------- mistakes
def wrong_type(option):
    """A value of the wrong kind for `option`."""
    return {declared.INT: "abc", declared.FLOAT: "abc", declared.BOOL: "maybe", declared.STR: "no_such",
            declared.RANGE: "junk", declared.INTS: "abc"}[option.kind]


def out_of_range(option):
    """Values outside the option's range ([] when it has none)."""
    values = []
    if option.minimum is not None:
        values.append(option.minimum if option.exclusive_minimum else option.minimum - 1)
    if option.maximum is not None:
        values.append(option.maximum if option.exclusive_maximum else option.maximum + 1)
    if option.kind == declared.INTS:
        values = [[v] for v in values]
    return values


@pytest.mark.parametrize("name", NAMES)
def test_wrong_types_are_one_line_errors(name):
    for key, option in options_of(name).items():
        value = wrong_type(option)
        message = refused(name, {key: value})
        if option.choices:
            assert message.startswith(f"unknown {option.noun or key} '{value}' for {name}: use one of "
                                      f"{', '.join(option.choices)}"), message
        else:
            assert message.startswith(f"{key}={value}: {key} takes {option.accepted()}"), message
        assert refused(name, {key: value}, prefix="--model_option ").startswith(
            f"--model_option {key}={value}: "), key


@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_values_are_one_line_errors(name):
    checked = 0
    for key, option in options_of(name).items():
        for value in out_of_range(option):
            text = declared.format_value(value)
            assert refused(name, {key: value}).startswith(f"{key}={text}: {key} takes {option.accepted()}")
            assert refused(name, {key: text}, prefix="--model_option ").startswith(
                f"--model_option {key}={text}: {key} takes ")
            checked += 1
    assert checked >= 2  # latent_dim or noise_dim, d_steps


@pytest.mark.parametrize("name", NAMES)
def test_unknown_keys_list_the_accepted_ones(name):
    accepted = ", ".join(sorted(options_of(name)))
    assert refused(name, {"colour": "red"}) == f"{name} does not take colour; it takes {accepted}"
    assert (refused(name, {"colour": "red"}, prefix="--model_option ")
            == f"--model_option colour=red: {name} does not take colour; it takes {accepted}")


CASES = [  # (key, value typed on the command line); each refused by every family taking `key`
    ("width", "abc"), ("width", "-1"), ("width", "0"), ("latent_dim", "2.5"), ("latent_dim", "0"),
    ("output_range", "junk"), ("unroll_steps", "abc"), ("sync_batch_norm", "maybe"),
]


@pytest.mark.parametrize("key, text", CASES)
def test_known_mistakes_are_refused(key, text):
    takers = [name for name in NAMES if key in options_of(name)]
    assert takers
    typed = [json.loads(text)] if text[-1].isdigit() else []  # as a Python value too
    for name in takers:
        for value in [text, *typed]:
            message = refused(name, {key: value}, prefix="--model_option ")
            assert message.startswith(f"--model_option {key}={text}: {key} takes "), message


def test_messages_say_what_is_accepted():
    assert (refused("dcgan", {"width": "abc"}, prefix="--model_option ")
            == "--model_option width=abc: width takes a positive integer (default 64)")
    assert refused("dcgan", {"width": "abc"}) == "width=abc: width takes a positive integer (default 64)"
    assert refused("dcgan", {"latent_dim": 2.5}) == "latent_dim=2.5: latent_dim takes a positive integer (default 100)"
    assert refused("dcgan", {"sync_batch_norm": "maybe"}) == (
        "sync_batch_norm=maybe: sync_batch_norm takes true or false (default true)")
    assert refused("dcgan", {"output_range": "junk"}) == (
        "output_range=junk: output_range takes a pair [low, high] of numbers with low < high or none "
        "(default [-1.0, 1.0])")
    assert refused("dcgan", {"output_range": [1, -1]}).startswith("output_range=[1, -1]: ")
    assert refused("unrolled_gan", {"unroll_steps": "abc"}) == (
        "unroll_steps=abc: unroll_steps takes an integer from 0 to 10 (default 5)")
    assert refused("mlp_gan", {"input_dropout": 1}) == "input_dropout=1: input_dropout takes a number in [0, 1)"
    assert refused("wgan", {"clip_value": "0"}) == "clip_value=0: clip_value takes a positive number or none (default 0.01)"
    assert refused("wgan", {"schedule": "fast"}) == (
        "unknown schedule 'fast' for wgan: use one of constant, paper (default constant)")
    assert refused("wgan_gp", {"normalization": "batch"}) == "unknown normalization 'batch' for wgan_gp: use one of layer, none"
    assert refused("dcgan", {"generator_loss": "hinge"}) == (
        "unknown generator loss 'hinge' for dcgan: use one of non_saturating, minimax, least_squares "
        "(default non_saturating)")
    assert refused("infogan", {"categorical_dims": "[10, 1]"}).startswith(
        "categorical_dims=[10, 1]: categorical_dims takes a list of integers >= 2")
    assert refused("dcgan", {"d_steps": True}) == "d_steps=true: d_steps takes a positive integer (default 1)"


@pytest.mark.parametrize("text", ["maybe", "2", "-1", "truthy", "", "[true]"])
def test_a_bool_takes_true_false_yes_no_1_0_only(text):
    assert refused("cgan", {"sync_batch_norm": text}).startswith(f"sync_batch_norm={text}: sync_batch_norm takes true or false")


@pytest.mark.parametrize("text, value", [("true", True), ("False", False), ("1", True), ("0", False),
                                         ("yes", True), ("NO", False), (True, True), (0, False), (1, True)])
def test_a_bool_reads_its_spellings(text, value):
    assert parse_options("cgan", {"sync_batch_norm": text}) == {"sync_batch_norm": value}


@pytest.mark.parametrize("name, raw, expected", [
    ("dcgan", {"width": "8", "latent_dim": 12.0, "d_steps": " 3 "}, {"width": 8, "latent_dim": 12, "d_steps": 3}),
    ("dcgan", {"output_range": "[-1,1]"}, {"output_range": (-1.0, 1.0)}),
    ("dcgan", {"output_range": "(0, 1)", "seed": "none"}, {"output_range": (0.0, 1.0), "seed": None}),
    ("dcgan", {"output_range": "none"}, {"output_range": None}),
    ("dcgan", {"output_range": [0, 1], "seed": 7}, {"output_range": (0.0, 1.0), "seed": 7}),
    ("wgan", {"clip_value": "none", "normalization": "none"}, {"clip_value": None, "normalization": "none"}),
    ("wgan", {"width": "none", "clip_value": "1e-2"}, {"width": None, "clip_value": 0.01}),
    ("infogan", {"categorical_dims": "[10,4]", "continuous_dims": "0"}, {"categorical_dims": (10, 4), "continuous_dims": 0}),
    ("infogan", {"categorical_dims": "[]", "learn_std": "yes"}, {"categorical_dims": (), "learn_std": True}),
    ("infogan", {"categorical_dims": 10, "lambda_cat": 1}, {"categorical_dims": (10,), "lambda_cat": 1.0}),
    ("infogan", {"categorical_dims": np.array([3, 5])}, {"categorical_dims": (3, 5)}),
    ("fgan", {"architecture": "none", "divergence": "kl"}, {"architecture": None, "divergence": "kl"}),
    ("unrolled_gan", {"unroll_steps": "0", "learning_rate": "none"}, {"unroll_steps": 0, "learning_rate": None}),
    ("mlp_gan", {"input_dropout": "0", "momentum": "1"}, {"input_dropout": 0.0, "momentum": 1.0}),
])
def test_values_are_converted_to_their_declared_types(name, raw, expected):
    parsed = parse_options(name, raw)
    assert parsed == expected
    assert [type(v) for v in parsed.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize("raw", [{"latent_dim": 2.5}, {"latent_dim": "2.5"}, {"latent_dim": "abc"},
                                 {"latent_dim": float("nan")}, {"margin": "inf"}, {"margin": True},
                                 {"width": None}, {"latent_dim": "none"}, {"output_range": [0, 1, 2]},
                                 {"output_range": [[0, 1]]}, {"output_range": "0,"},
                                 {"width": "8\n9"}, {"width": "x" * 200}])
def test_values_of_the_wrong_type_are_refused(raw):
    assert refused("ebgan", raw)


# --------------------------------------------------------------- stored configurations
@pytest.mark.parametrize("name", NAMES)
def test_config_round_trips_through_json(name):
    model = models.get(name, image_shape=SHAPE, seed=3)
    config = model.get_config()
    family = models.family(name)
    assert family.from_config(config).get_config() == config
    assert family.from_config(json.loads(json.dumps(config))).get_config() == config


@pytest.mark.parametrize("name", NAMES)
def test_a_stored_config_with_a_bad_value_is_one_line(name):
    config = {**models.get(name, image_shape=SHAPE).get_config(), "d_steps": "two"}
    with pytest.raises(GanZooError, match=r"^d_steps=two: d_steps takes a positive integer") as error:
        models.family(name).from_config(config)
    assert "\n" not in str(error.value)


def test_checks_that_need_two_values_stay_with_the_family():
    with pytest.raises(GanZooError, match="update=simultaneous takes one step for both players, not d_steps=3"):
        models.get("dcgan", image_shape=SHAPE, update="simultaneous", d_steps="3")
    with pytest.raises(GanZooError, match="infogan needs at least one code"):
        models.get("infogan", image_shape=SHAPE, categorical_dims="[]", continuous_dims="0")
    with pytest.raises(GanZooError, match="unrolled_gan on 2-D points takes architecture=mlp"):
        models.get("unrolled_gan", image_shape=(2,), architecture="dcgan")


def test_the_catalog_for_help_matches_the_families():
    """models/catalog.json (what --help lists without loading TensorFlow) is what the families
    declare now: python -m models.catalog rewrites it after a family changes."""
    from models import catalog

    assert catalog.read() == catalog.build()


def test_help_lists_every_familys_options_quickly_and_without_tensorflow():
    import subprocess
    import sys

    script = ("import sys; from absl import flags; from train import main; main.define_flags(); "
              "print(flags.FLAGS['model_option'].help); print(flags.FLAGS['model'].help); "
              "assert 'tensorflow' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr[-1500:]
    assert "wgan_gp: latent_dim (int >= 1, auto)" in done.stdout and "penalty_weight (float >= 0, 10.0)" in done.stdout
    assert "infogan: batch 128, d_steps 1, learning rates D 0.0002 / G 0.001" in done.stdout
