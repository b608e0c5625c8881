"""What every family takes and trains with, as plain data that loads without TensorFlow.

`python -m train.main --help` lists each family's `--model_option` keys, its default batch size,
`d_steps` and learning rates. Reading them from the families would import TensorFlow and every
family (seconds); `catalog.json` holds the same facts, written from the families' declarations
by `python -m models.catalog`, and a test fails when it differs from what the families declare.
"""

import json
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.json")


def read(path=PATH):
    """{family: {"paper", "batch_size", "d_steps", "learning_rates", "options"}} from the file
    (an empty dict when it is missing or unreadable: --help then lists less)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _learning_rate(optimizer):
    value = optimizer.get_config().get("learning_rate")
    if isinstance(value, dict):  # a schedule
        inner = value.get("config", {})
        return f"{value.get('class_name', 'schedule')} from {inner.get('initial_learning_rate', '?'):g}"
    return f"{float(value):g}"


def build():
    """The catalog of the families as they are declared now (imports TensorFlow)."""
    from models import options, registry

    catalog = {}
    for name in registry.names():
        family = registry.family(name)
        d_optimizer, g_optimizer = registry.get(name, image_shape=(28, 28, 1)).default_optimizers()
        catalog[name] = {
            "paper": getattr(family, "paper", None),
            "batch_size": family.default_batch_size,
            "d_steps": family.default_d_steps,
            "learning_rates": {"d": _learning_rate(d_optimizer), "g": _learning_rate(g_optimizer)},
            "options": [list(row) for row in options.describe(family)],
        }
    return catalog


def write(path=PATH):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(build(), f, indent=1)
        f.write("\n")


def model_help(catalog):
    """The --model flag's help: the names, one line each with batch, d_steps and rates."""
    if not catalog:
        return "Zoo model (see models/registry.py)."
    lines = ["Zoo model, with its paper defaults:"]
    for name, entry in catalog.items():
        rates = entry["learning_rates"]
        lines.append(f"  {name}: batch {entry['batch_size']}, d_steps {entry['d_steps']}, "
                     f"learning rates D {rates['d']} / G {rates['g']}")
    return "\n".join(lines)


def options_help(catalog):
    """The --model_option flag's help: every family's keys, kinds and defaults."""
    lines = ["A model family's argument as key=value, repeatable, e.g. --model_option width=32."]
    for name, entry in catalog.items():
        keys = ", ".join(f"{key} ({kind}, {default})" for key, kind, default, _ in entry["options"]
                         if key not in ("seed", "d_steps", "generator_loss"))
        lines.append(f"  {name}: {keys}")
    return "\n".join(lines)


if __name__ == "__main__":
    write()
    print(f"wrote {PATH}")
