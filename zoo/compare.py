"""Are the zoo's GANs created equal? Every image family on Fashion-MNIST at one budget, over seeds.

    python -m zoo.compare                    # train and evaluate what is missing, then report
    python -m zoo.compare --report           # the table and the figure from the runs done so far
    python -m zoo.compare --spread           # FCD of one model over sample seeds and sample sizes

The comparison of Lucic et al. 2018 ("Are GANs Created Equal? A Large-Scale Study"), scaled to a
2-core CPU: each family trains with its paper's networks, batch size, discriminator steps and
optimizers, from `--seeds` seeds, until it has seen `--images` real images (all of them:
discriminator steps included; rounded to whole curve points) or until the end of the first evaluation interval past
`--time_limit` seconds, whichever comes first. Every `--every` images its FCD at N = 2,000 is
logged (the curve of the figure); at the end `train.evaluate` measures it at N = `--n` (FCD, KID,
precision, recall, density, coverage, each next to its real-data floor).

The table gives mean ± standard deviation over the seeds that finished, and says how many did;
a family that was not run says so. `--spread` measures how much FCD itself moves: the same
model sampled with 5 seeds at N = 2,000, 5,000 and 10,000, next to the real data's floor at the
same N, so that a reader can tell which differences in the table are larger than the metric's
own noise.

Work is resumable and can be stopped at any time: a run with a `compare.json` (written after its
evaluation) is done; an interrupted run resumes from its checkpoint (its training time then counts only the
last process, and the table marks it). Everything goes under `--out` (default runs/compare):
one folder per run, `results.json`, `table.md`, `spread.json` and `fcd_vs_images.png` (drawn
when matplotlib is installed).
"""

import io
import json
import os
import time

import numpy as np
from absl import flags

from models.errors import GanZooError

FAMILIES = ("mlp_gan", "dcgan", "baseline_dcgan", "lsgan", "fgan", "wgan", "wgan_gp", "ebgan",
            "infogan", "cgan", "unrolled_gan")
METRICS = (("fcd", "FCD", 2), ("kid", "KID x 1000", 1), ("precision", "precision", 3),
           ("recall", "recall", 3), ("density", "density", 3), ("coverage", "coverage", 3))
SPREAD_SAMPLES = (2000, 5000, 10000)
SPREAD_SEEDS = 5


def define_flags(flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_list("families", list(FAMILIES), "Model families to compare.", flag_values=fv)
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds of every family.", flag_values=fv)
    flags.DEFINE_integer("images", 60_000, "Real images each run sees (its budget).", flag_values=fv)
    flags.DEFINE_integer("every", 10_000, "Real images between two points of the FCD curve.", flag_values=fv)
    flags.DEFINE_integer("time_limit", 900, "Seconds of training after which a run stops at its next "
                         "curve point.", flag_values=fv)
    flags.DEFINE_integer("n", 10_000, "Samples of the final evaluation.", flag_values=fv)
    flags.DEFINE_string("out", os.path.join("runs", "compare"), "Folder of the runs and results.", flag_values=fv)
    flags.DEFINE_string("data_dir", None, "Folder of the Fashion-MNIST IDX files.", flag_values=fv)
    flags.DEFINE_boolean("report", False, "Only write the table and figure of the runs done.", flag_values=fv)
    flags.DEFINE_boolean("spread", False, "Measure the spread of FCD over sample seeds and N.", flag_values=fv)
    flags.DEFINE_string("spread_model", "dcgan", "The family whose first seed's run --spread samples.",
                        flag_values=fv)
    flags.DEFINE_list("spread_n", [str(n) for n in SPREAD_SAMPLES], "Sample sizes of --spread.", flag_values=fv)


# ------------------------------------------------------------------------------ the runs
def run_dir(out, family, seed):
    return os.path.join(out, f"{family}_seed{seed}")


def schedule(family, images, every):
    """(steps per curve point, points, real images per generator step) for a family's budget."""
    import models

    cls = models.family(family)
    per_step = cls.default_batch_size * cls.default_d_steps
    steps = max(1, round(every / per_step))
    return steps, max(1, round(images / (steps * per_step))), per_step


def train_and_evaluate(family, seed, options, say=print):
    """Trains (or resumes) one run and evaluates it; returns its result entry."""
    from train import evaluate
    from train.trainer import TrainConfig, train

    logdir = run_dir(options["out"], family, seed)
    steps, points, per_step = schedule(family, options["images"], options["every"])
    resumed = os.path.isfile(os.path.join(logdir, "run.json"))
    say(f"{family}, seed {seed}: {points} x {steps} generator steps ({per_step} real images each)"
        + (", resuming" if resumed else ""))
    started = time.monotonic()
    result = train(TrainConfig(model=family, dataset="fashion_mnist", seed=seed, epochs=points,
                               steps_per_epoch=steps, eval_every=1, time_limit=options["time_limit"],
                               logdir=logdir, data_dir=options["data_dir"], verbose=0))
    seconds = time.monotonic() - started
    iterations = int(result.model.g_optimizer.iterations.numpy())
    evaluate.evaluate(evaluate.EvalConfig(logdir=logdir, n=options["n"], seed=seed, parzen=False,
                                          figures=False, data_dir=options["data_dir"]))
    entry = {"family": family, "seed": seed, "train_seconds": round(seconds, 1), "resumed": resumed,
             "images_seen": iterations * per_step, "stopped_by_time": iterations < points * steps}
    _write_json(os.path.join(logdir, "compare.json"), entry)
    return entry


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def collect(out, families, seeds, every):
    """The result entry of every finished run under `out`: what `compare.json` and the run's
    `evaluation/metrics.json` and TensorBoard FCD curve hold."""
    results = []
    for family in families:
        for seed in seeds:
            logdir = run_dir(out, family, seed)
            try:
                entry = _read_json(os.path.join(logdir, "compare.json"))
                report = _read_json(os.path.join(logdir, "evaluation", "metrics.json"))
            except (OSError, ValueError):
                continue
            steps, _, per_step = schedule(family, 1, every)
            entry["metrics"] = {name: report["metrics"][name] for name, _, _ in METRICS
                                if name in report["metrics"]}
            entry["curve"] = [[epoch * steps * per_step, value] for epoch, value in fcd_curve(logdir)]
            results.append(entry)
    return results


def fcd_curve(logdir):
    """[(epoch, FCD at N = 2,000)] that the run logged to TensorBoard (run `eval`)."""
    import glob

    import tensorflow as tf

    points = {}
    for path in sorted(glob.glob(os.path.join(logdir, "eval", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "fcd":
                    points[event.step] = float(tf.make_ndarray(value.tensor))
    return sorted(points.items())


# ------------------------------------------------------------------------------ the report
def _spread(values, digits):
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def table(results, families, seeds):
    """The Markdown table: one row per family, mean ± std over its finished seeds."""
    header = ["family", "seeds"] + [label for _, label, _ in METRICS] + ["images seen", "training s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for family in families:
        runs = [r for r in results if r["family"] == family]
        if not runs:
            lines.append(f"| {family} | not run |" + " |" * (len(header) - 2))
            continue
        cells = [family, f"{len(runs)} of {len(seeds)}"]
        for name, _, digits in METRICS:
            values = [r["metrics"][name]["value"] * (1000 if name == "kid" else 1)
                      for r in runs if name in r["metrics"]]
            cells.append(_spread(values, digits) if values else "-")
        cells.append(_spread([r["images_seen"] for r in runs], 0))
        seconds = _spread([r["train_seconds"] for r in runs], 0)
        marks = ("*" if any(r["resumed"] for r in runs) else "") + ("†" if any(r["stopped_by_time"] for r in runs)
                                                                   else "")
        cells.append(seconds + marks)
        lines.append("| " + " | ".join(cells) + " |")
    # The floor is the same for every run (training against test images at the same N).
    floors = {name: entry.get("floor") for name, entry in results[0]["metrics"].items()} if results else {}
    if floors:
        lines.append("")
        lines.append("Real-data floor (training images against the test images at the same N): " + ", ".join(
            f"{label} {floors[name] * (1000 if name == 'kid' else 1):.{digits}f}"
            for name, label, digits in METRICS if floors.get(name) is not None) + ".")
    lines.append("* resumed: the time counts only the last process. † stopped by the time limit before the "
                 "image budget.")
    return "\n".join(lines)


def figure(results, families, path):
    """FCD (N = 2,000) against real images seen, one line per family (mean over its seeds, the
    band spanning min..max); False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    colors = plt.get_cmap("tab20")
    for i, family in enumerate(families):
        curves = [dict(r["curve"]) for r in results if r["family"] == family and r["curve"]]
        if not curves:
            continue
        xs = sorted(set.intersection(*(set(c) for c in curves)))
        values = np.array([[c[x] for x in xs] for c in curves])
        color = colors(i % 20)
        ax.plot(np.array(xs) / 1000, values.mean(axis=0), marker="o", ms=3, color=color,
                label=f"{family} ({len(curves)})")
        if len(curves) > 1:
            ax.fill_between(np.array(xs) / 1000, values.min(axis=0), values.max(axis=0), color=color, alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("real images seen (thousands)")
    ax.set_ylabel("FCD at N = 2,000 (log scale; lower is better)")
    ax.set_title("Fashion-MNIST, equal budget: mean over seeds (band: min..max)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    from models.saving import write_bytes_atomically

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes_atomically(path, buffer.getvalue())
    return True


# ------------------------------------------------------------------------------ FCD's own spread
def spread(logdir, sizes, data_dir=None, say=print):
    """FCD of the run at `logdir` for SPREAD_SEEDS sample seeds at each N of `sizes`, and the real
    data's floor (N training images against the test set) for as many subsets."""
    from train import classifier, evaluate, metrics

    model, record = evaluate.load_run(logdir)
    shape = tuple(model.generator.output_shape[1:])
    extractor = classifier.load(record["dataset"], None)
    test, _ = evaluate.real_images(record["dataset"], "test", shape, data_dir or record.get("data_dir"))
    train_images, _ = evaluate.real_images(record["dataset"], "train", shape, data_dir or record.get("data_dir"))
    test_features = extractor(test)[0]
    rows = []
    for n in sizes:
        model_fcd, floor_fcd = [], []
        for seed in range(SPREAD_SEEDS):
            fake = extractor(model.generate(n, seed=1000 + seed))[0]
            model_fcd.append(float(metrics.frechet_distance_features(fake, test_features)))
            subset = np.random.default_rng(seed).permutation(len(train_images))[:n]
            floor_fcd.append(float(metrics.frechet_distance_features(extractor(train_images[subset])[0],
                                                                     test_features)))
        rows.append({"n": n, "model": model_fcd, "floor": floor_fcd})
        say(f"N = {n}: FCD {np.mean(model_fcd):.3f} ± {np.std(model_fcd, ddof=1):.3f} "
            f"(range {min(model_fcd):.3f}..{max(model_fcd):.3f}); floor {np.mean(floor_fcd):.3f} ± "
            f"{np.std(floor_fcd, ddof=1):.3f}")
    return {"logdir": logdir, "seeds": SPREAD_SEEDS, "rows": rows}


def spread_table(result):
    lines = ["| N | FCD, mean ± std over 5 sample seeds | min..max | real-data floor |", "|---|---|---|---|"]
    for row in result["rows"]:
        model, floor = row["model"], row["floor"]
        lines.append(f"| {row['n']:,} | {np.mean(model):.3f} ± {np.std(model, ddof=1):.3f} | "
                     f"{min(model):.3f}..{max(model):.3f} | {np.mean(floor):.3f} ± {np.std(floor, ddof=1):.3f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ command line
def _write_json(path, value):
    from models.saving import write_json_atomically  # here: --help loads no TensorFlow

    write_json_atomically(path, value)


def _positive(name, value):
    if value < 1:
        raise GanZooError(f"--{name} must be at least 1, got {value}")
    return value


def options_from_flags(fv):
    from models import names

    unknown = [f for f in fv.families if f not in names()]
    if unknown:
        raise GanZooError(f"unknown family {unknown[0]!r} in --families: use some of {', '.join(FAMILIES)}")
    try:
        seeds = [int(s) for s in fv.seeds]
    except ValueError:
        raise GanZooError(f"--seeds takes integers, e.g. 0,1,2; got {','.join(fv.seeds)}") from None
    try:
        sizes = [int(n) for n in fv.spread_n]
    except ValueError:
        raise GanZooError(f"--spread_n takes sample sizes, e.g. 2000,5000; got {','.join(fv.spread_n)}") from None
    if not seeds or min(seeds) < 0:
        raise GanZooError("--seeds takes one or more seeds >= 0, e.g. 0,1,2")
    if any(n < 10 for n in sizes):
        raise GanZooError("--spread_n takes sample sizes of at least 10")
    for name in ("images", "every", "time_limit"):
        _positive(name, getattr(fv, name))
    if fv.n < 10:
        raise GanZooError(f"--n must be at least 10, got {fv.n}")
    return {"families": list(fv.families), "seeds": seeds, "images": fv.images, "every": fv.every,
            "time_limit": fv.time_limit, "n": fv.n, "out": fv.out, "data_dir": fv.data_dir,
            "spread_sizes": sizes, "spread_model": fv.spread_model}


def report(options, say=print):
    results = collect(options["out"], options["families"], options["seeds"], options["every"])
    os.makedirs(options["out"], exist_ok=True)
    _write_json(os.path.join(options["out"], "results.json"), {"budget": {
        key: options[key] for key in ("images", "every", "time_limit", "n")}, "runs": results})
    text = table(results, options["families"], options["seeds"])
    from models.saving import write_bytes_atomically

    write_bytes_atomically(os.path.join(options["out"], "table.md"), (text + "\n").encode())
    say(text)
    path = os.path.join(options["out"], "fcd_vs_images.png")
    say(f"figure: {path}" if figure(results, options["families"], path)
        else "no figure: it needs matplotlib (pip install matplotlib)")
    return results


def main(argv, flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    if len(argv) > 1:
        raise GanZooError(f"unexpected arguments {' '.join(argv[1:])}: zoo.compare takes flags only")
    options = options_from_flags(fv)
    print("GAN Zoo: comparing " + ", ".join(options["families"]) + f" over seeds {options['seeds']}", flush=True)
    if fv.spread:
        logdir = run_dir(options["out"], options["spread_model"], options["seeds"][0])
        if not os.path.isfile(os.path.join(logdir, "compare.json")):
            raise GanZooError(f"--spread samples a finished run and {logdir} is not one yet: run "
                              f"python -m zoo.compare --families {options['spread_model']} first")
        result = spread(logdir, options["spread_sizes"], options["data_dir"])
        _write_json(os.path.join(options["out"], "spread.json"), result)
        print(spread_table(result))
        return 0
    if not fv.report:
        for seed in options["seeds"]:  # a seed of every family before the next seed
            for family in options["families"]:
                if os.path.isfile(os.path.join(run_dir(options["out"], family, seed), "compare.json")):
                    continue
                train_and_evaluate(family, seed, options)
    report(options)
    return 0


def run():
    from train import cli

    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
