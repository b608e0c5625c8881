"""Command line: print the zoo's model-card table (Markdown) from the preset records.

    python -m zoo.card            # the table of the README's "Pretrained zoo" section

One row per preset: its sample grid, the metrics of `train.evaluate` (N = 10,000, seed 0) with
the real-data floor in the header, the training epochs and wall time, and the command that
trained it. Nothing is measured here: every number comes from zoo/presets/*.json.
"""

import sys

COLUMNS = ("preset", "samples (seed 0)", "FCD", "KID x 1000", "classifier score",
           "Parzen (nats)", "precision / recall", "density / coverage", "other", "epochs",
           "wall time", "command")


def _value(metrics, name, scale=1.0, digits=2):
    entry = (metrics or {}).get(name)
    if not entry or entry.get("value") is None:
        return "-"
    return f"{entry['value'] * scale:.{digits}f}"


def _pair(metrics, first, second):
    """"0.71 / 0.55" of two metrics, "-" when either is missing (presets measured before)."""
    values = [_value(metrics, name) for name in (first, second)]
    return "-" if "-" in values else " / ".join(values)


def _other(metrics):
    parts = []
    for name, label in (("code_accuracy", "code accuracy"), ("label_accuracy", "label accuracy")):
        entry = (metrics or {}).get(name)
        if entry and entry.get("value") is not None:
            parts.append(f"{label} {entry['value']:.1%}")
    coverage = (metrics or {}).get("mode_coverage")
    if coverage:
        parts.append(f"modes {coverage['modes_covered']['value']}/{coverage['num_modes']}, "
                     f"high quality {coverage['high_quality']['value']:.1%}")
    return "; ".join(parts) or "-"


def floor_row(presets):
    """The real-data floor of the first image preset, as a table row."""
    for entry in presets.values():
        metrics = entry.get("metrics") or {}
        if "fcd" in metrics:
            floor = {k: {"value": v.get("floor")} for k, v in metrics.items() if isinstance(v, dict)}
            return ("real data (floor)", "", _value(floor, "fcd"), _value(floor, "kid", 1000, 1),
                    _value(floor, "classifier_score"), _value(floor, "parzen_log_likelihood", digits=0),
                    _pair(floor, "precision", "recall"), _pair(floor, "density", "coverage"),
                    "", "", "", "train vs test images, same N")
    return None


def rows(presets):
    for name in sorted(presets, key=lambda n: ((presets[n].get("metrics") or {}).get("fcd") or {}).get("value") or 1e9):
        entry = presets[name]
        metrics = entry.get("metrics")
        training = entry.get("training", {})
        wall = training.get("wall_time_s")
        yield (f"`{name}`", f"![{name}]({entry.get('samples', '')})", _value(metrics, "fcd"),
               _value(metrics, "kid", 1000, 1), _value(metrics, "classifier_score"),
               _value(metrics, "parzen_log_likelihood", digits=0),
               _pair(metrics, "precision", "recall"), _pair(metrics, "density", "coverage"), _other(metrics),
               str(training.get("epochs", "-")), f"{wall / 60:.0f} min" if wall else "-",
               f"`{training.get('command', '-').strip()}`")


def table(presets):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    floor = floor_row(presets)
    for row in ([floor] if floor else []) + list(rows(presets)):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    import zoo

    if not zoo.PRESETS:
        sys.exit("error: no preset is published yet: python -m zoo.publish --logdir runs/X --name NAME")
    print(table(zoo.PRESETS))


if __name__ == "__main__":
    main()
