"""Command line: turn a finished training run into a zoo preset.

    python -m zoo.publish --logdir runs/dcgan_fashion_mnist --name dcgan_fashion_mnist \\
        --command "python -m train.main --model dcgan --epochs 10" --wall_time_s 731

writes, each file atomically:

    zoo/weights/<name>.weights.h5   both networks' weights in half precision (no optimizer state)
    zoo/presets/<name>.json         family, config, sha256, training record, metrics
    zoo/images/<name>.png           a 4 x 8 sample grid (seed 0) for the README's table

then measures the preset as users will load it: `zoo.evaluate` on N = 10,000 samples, seed 0,
whose figures (next to the real-data floor) go into the JSON. `--url` records where the weights
file will be published; `zoo.load` fetches it from there when the repository copy is absent.

    python -m zoo.publish --remeasure dcgan_fashion_mnist,wgan_fashion_mnist

measures published presets again and adds the metrics their records lack (the ones they hold
must reproduce first), e.g. after the zoo learnt a new metric.
"""

import datetime
import io
import os
import platform

from absl import flags

from models.errors import GanZooError
from train import cli


def define_flags(flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("logdir", None, "Folder of the finished training run.", flag_values=fv)
    flags.DEFINE_string("name", None, "Preset name, e.g. dcgan_fashion_mnist.", flag_values=fv)
    flags.DEFINE_string("command", None, "The exact training command (default: rebuilt from run.json).", flag_values=fv)
    flags.DEFINE_float("wall_time_s", None, "Wall time of the training command, in seconds.", flag_values=fv)
    flags.DEFINE_string("url", None, "Where the weights file is published, if anywhere.", flag_values=fv)
    flags.DEFINE_string("note", None, "A sentence for the model card.", flag_values=fv)
    flags.DEFINE_integer("n", 10_000, "Samples for the evaluation.", flag_values=fv)
    flags.DEFINE_list("remeasure", None, "Presets to measure again, adding the metrics their records lack "
                      "(the recorded ones must reproduce); instead of --logdir/--name.", flag_values=fv)

GRID = (4, 8)  # rows, columns of the README's sample grid
_PRECISION = "float16"


def hardware():
    """A short description of this machine: CPU model and core count."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, CPU only"


def command_of(record):
    """The `python -m train.main` command that reproduces a run, from its run.json (written
    from the one list of settings, `train.config.SETTINGS`)."""
    from train.config import command_of as from_settings

    return from_settings(record)


def write_half_precision(source, target):
    """Copies a GAN's Keras `.weights.h5` file without the optimizers' state and with every
    float32 array stored as float16 (gzip'd).

    Keras reads it back into the float32 variables of a model built from the same config;
    integer state (the noise generators' seeds) is copied as it is.
    """
    import h5py
    import numpy as np

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value

        def copy(name, item):
            if name.split("/")[0].endswith("optimizer"):  # d_optimizer, g_optimizer
                return
            if isinstance(item, h5py.Group):
                group = dst.require_group(name)
                for key, value in item.attrs.items():
                    group.attrs[key] = value
                return
            array = item[()]
            if getattr(array, "dtype", None) == np.float32:
                array = array.astype(np.float16)
            big = np.ndim(array) > 0 and np.size(array) > 64
            dataset = dst.create_dataset(name, data=array, compression="gzip" if big else None)
            for key, value in item.attrs.items():
                dataset.attrs[key] = value

        src.visititems(copy)


def _metric_summary(report):
    """The evaluation's figures the preset keeps: value, floor and spread of each metric."""
    kept = {}
    for name, entry in report["metrics"].items():
        if name == "mode_coverage":
            kept[name] = {k: {"value": entry[k]["value"], "floor": entry[k]["floor"]}
                          for k in ("modes_covered", "high_quality", "reverse_kl")}
            kept[name]["num_modes"] = entry["num_modes"]
            continue
        kept[name] = {k: entry[k] for k in ("value", "floor", "std", "floor_std", "better")
                      if k in entry}
    return kept


def publish(logdir, name, command=None, wall_time_s=None, url=None, note=None, n=10_000, progress=None):
    """Writes the preset `name` from the run in `logdir`; returns its record. `progress(line)`,
    if given, receives a line as each stage of the evaluation starts."""
    import keras

    import zoo
    from models import saving
    from models.saving import sha256_of, write_json_atomically
    from train import evaluate, images
    from zoo import evaluate as preset_evaluation
    from zoo.sample import sample_grid

    if not name or not name.replace("_", "").isalnum() or not name.islower():
        raise GanZooError(f"--name must be lower-case letters, digits and _, got {name!r}")
    model, record = evaluate.load_run(logdir)
    for folder in (zoo.PRESET_DIR, zoo.WEIGHTS_DIR, zoo.IMAGES_DIR):
        os.makedirs(folder, exist_ok=True)
    weights_name = f"{name}.weights.h5"
    weights_path = os.path.join(zoo.WEIGHTS_DIR, weights_name)

    half = io.BytesIO()  # built in memory, then written atomically (see models/saving.py)
    write_half_precision(io.BytesIO(saving.weights_bytes(model)), half)
    saving.write_bytes_atomically(weights_path, half.getvalue())
    entry = {
        "name": name,
        "model": record["model"],
        "dataset": record["dataset"],
        "image_shape": list(model.generator.output_shape[1:]),
        "paper": getattr(type(model), "paper", None),
        "note": note,
        "config": evaluate._json_safe(model.get_config()),
        "weights": {"file": weights_name, "sha256": sha256_of(weights_path),
                    "bytes": os.path.getsize(weights_path), "precision": _PRECISION, "url": url},
        "training": {
            "command": command or command_of(record),
            "epochs": record["epochs"],
            "seed": record["seed"],
            "batch_size": record.get("batch_size"),
            "wall_time_s": wall_time_s,
            "hardware": hardware(),
            "versions": {"tensorflow": _version("tensorflow"), "keras": keras.__version__},
            "date": datetime.date.today().isoformat(),
        },
        "metrics": None,
        "evaluation": None,
        "samples": f"zoo/images/{name}.png",
    }
    preset_path = os.path.join(zoo.PRESET_DIR, f"{name}.json")
    zoo.PRESETS[name] = entry  # evaluate and sample load it as users will, from the file
    loaded = zoo.load(name, compile=False)
    rows, columns = GRID
    images.write_png(os.path.join(zoo.IMAGES_DIR, f"{name}.png"),
                     sample_grid(loaded, rows * columns, seed=0, columns=columns))
    report = preset_evaluation.evaluate(evaluate.EvalConfig(
        preset=name, n=n, seed=0, figures=False,
        output_dir=os.path.join(logdir, "evaluation", "preset")), progress=progress)
    entry["metrics"] = _metric_summary(report)
    entry["evaluation"] = {"command": f"python -m zoo.evaluate --preset {name}", "n": report["n"],
                           "seed": report["seed"],
                           "feature_extractor": {k: v for k, v in (report["feature_extractor"] or {}).items()
                                                 if k != "path"} or None,
                           "wall_time_s": report["wall_time_s"]}
    write_json_atomically(preset_path, evaluate._json_safe(entry))
    return entry


def remeasure(name, progress=None, output_dir=None):
    """Measures the preset `name` again (N = 10,000, seed 0, as published) and adds the metrics
    its record lacks (e.g. ones the zoo learnt to measure after it was published); returns their
    names. Every metric the record already holds must reproduce (rtol 1e-3), or nothing is written
    and one GanZooError line names the first that moved."""
    import math

    import zoo
    from models.saving import write_json_atomically
    from train import evaluate
    from zoo import evaluate as preset_evaluation

    zoo.info(name)  # one line for an unknown preset
    path = os.path.join(zoo.PRESET_DIR, f"{name}.json")
    entry = zoo.PRESETS[name] = zoo.read_record(path)  # the file as it is now
    recorded = entry.get("metrics") or {}
    evaluation = entry.get("evaluation") or {}
    report = preset_evaluation.evaluate(evaluate.EvalConfig(
        preset=name, n=evaluation.get("n", 10_000), seed=evaluation.get("seed", 0), figures=False,
        parzen=False,  # minutes of work, and no metric added since needs it
        output_dir=output_dir or os.path.join("evaluation", name)), progress=progress)
    measured = _metric_summary(report)
    for metric, old in recorded.items():
        new = measured.get(metric)
        if new is None or "value" not in old:
            continue
        if not math.isclose(new["value"], old["value"], rel_tol=1e-3, abs_tol=1e-9):
            raise GanZooError(f"preset {name} no longer reproduces its {metric} ({new['value']:.6g} measured, "
                              f"{old['value']:.6g} recorded): find what changed before adding metrics")
    added = sorted(set(measured) - set(recorded))
    if added:
        entry = evaluate._json_safe({**entry, "metrics": {**recorded, **{m: measured[m] for m in added}}})
        write_json_atomically(path, entry)
        zoo.PRESETS[name] = entry
    return added


def _version(package):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def main(argv, flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    if fv.remeasure:
        for name in fv.remeasure:
            print(f"GAN Zoo: measuring preset {name} again", flush=True)
            added = remeasure(name, progress=lambda line: print(line, flush=True))
            print(f"{name}: recorded metrics reproduce; added {', '.join(added) or 'nothing'}", flush=True)
        return
    if not fv.logdir or not fv.name:
        raise GanZooError("pass --logdir (a finished training run) and --name (the preset's name)")
    print(f"GAN Zoo: publishing {fv.logdir} as preset {fv.name} (weights, sample grid, then an "
          f"evaluation on {fv.n} samples)", flush=True)
    entry = publish(fv.logdir, fv.name, fv.command, fv.wall_time_s, fv.url, fv.note, fv.n,
                    progress=lambda line: print(line, flush=True))
    fcd = (entry["metrics"] or {}).get("fcd")
    print(f"published {entry['name']}: zoo/presets/{entry['name']}.json, "
          f"{entry['weights']['bytes'] / 1e6:.1f} MB of weights"
          + (f", FCD {fcd['value']:.3f} (floor {fcd['floor']:.3f})" if fcd else ""))


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
