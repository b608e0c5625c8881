"""Evaluate a trained run: every metric that applies, next to the real-data floor.

    python -m train.evaluate --logdir runs/dcgan_fashion_mnist          # N = 10,000
    python -m train.evaluate --logdir runs/X --n 2000 --seed 1
    python -m zoo.evaluate --preset <name>                              # a zoo preset (same flags)
    python -m train.evaluate --logdir runs/X --inception                # Inception-v3 FID / IS

prints a table and writes `<output_dir>/metrics.json` (default `<logdir>/evaluation/`) plus the
figures of DCGAN's checks. For image datasets (see `train.metrics` for the papers):

    fcd, kid, classifier_score   the zoo classifier's features / softmax (FID, KID, IS with
                                 --inception): N generated images against N test images
    precision, recall            the same features: k-NN balls (k = 3) around the test images'
                                 features / the samples'; the share of samples inside the real
                                 balls / of test images inside the samples' (Kynkaanniemi et al.)
    density, coverage            k = 5 balls around the test images' features: balls holding a
                                 sample per sample / k, and the share of balls holding any
                                 sample (Naeem et al.; density ~1 for real data, so near floor)
    parzen_log_likelihood        the GAN paper's protocol on pixels in [0, 1]: kernels on the N
                                 samples, sigma picked on held-out training images, test images
    nearest_train_distance       median pixel distance of samples to their nearest training image
                                 (memorisation check; figure nearest_neighbours.png)
    interpolation_step_evenness  largest / mean image change along latent walks (interpolation.png)
    code_accuracy                InfoGAN: its categorical code read by Q on the test images, as a
                                 classifier after the best code -> label matching
    code_class_agreement         InfoGAN: the classifier's label of G(z, c) against c, matched
    label_accuracy               conditional models (cgan): the classifier's label of samples
                                 generated for requested labels against those labels; floor:
                                 the classifier's accuracy on the test images

and for the 2-D mixtures (ring8, grid25) `mode_coverage` on 2,500 samples. Every number that has
one comes with the real-data floor computed the same way at the same N: training images instead
of generated ones (train vs test), or points drawn from the true mixture. The JSON also records
N, the seed, and the feature extractor's name, file and sha256.

`evaluate(EvalConfig(...))` does the work and returns the report; this module's `main` only
parses flags and prints. The train layer does not know the zoo: `zoo.evaluate` loads a preset
and hands the model to `evaluate(config, model, record)`.
"""

import dataclasses
import json
import math
import os
import time
from typing import Optional

import keras
import numpy as np

import models.registry  # noqa: F401 -- registers the zoo's classes for keras.saving.load_model
from models import saving
from models.errors import GanZooError
from train import data, images, metrics

MODE_SAMPLES = 2_500  # mode coverage is measured on this many samples (Metz et al., VEEGAN)
NEIGHBOUR_SAMPLES = 2_000  # samples whose nearest training image is searched
PARZEN_VALIDATION = 10_000  # at most this many held-out training images pick sigma
FIGURE_ROWS = 8


@dataclasses.dataclass
class EvalConfig:
    """One evaluation. `logdir` or `preset` names the model."""

    logdir: Optional[str] = None
    preset: Optional[str] = None
    n: int = 10_000
    seed: int = 0
    output_dir: Optional[str] = None  # default <logdir>/evaluation or evaluation/<preset>
    data_dir: Optional[str] = None  # default: the run's
    classifier: Optional[str] = None  # weights file; default zoo/weights/classifier_<dataset>
    inception: bool = False  # Inception-v3 FID / IS instead of the zoo classifier
    inception_weights: Optional[str] = None
    parzen: bool = True
    figures: bool = True
    kid_subsets: int = 100
    arithmetic_classes: tuple = (0, 1, 2)
    raw_weights: bool = False  # a model with a moving average: measure its trained weights instead


# --------------------------------------------------------------------------------------------
# Loading the model and the data
# --------------------------------------------------------------------------------------------


def load_run(logdir):
    """(model, run record) of a training run's folder: model.keras, else final.weights.h5."""
    logdir = os.fspath(logdir)
    if not os.path.isdir(logdir):
        raise GanZooError(f"logdir {logdir} does not exist: pass the folder a training run wrote "
                          "(it holds run.json and model.keras)")
    record_file = os.path.join(logdir, "run.json")
    try:
        with open(record_file, encoding="utf-8") as f:
            record = json.load(f)
        record["model"], record["dataset"]
    except FileNotFoundError:
        raise GanZooError(f"{logdir} holds no run.json, so it is not a training run: pass the "
                          "--logdir of python -m train.main") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise GanZooError(f"{record_file} is unreadable: pass the logdir of an intact run") from None
    model_file = os.path.join(logdir, "model.keras")
    weights_file = os.path.join(logdir, "final.weights.h5")
    if os.path.isfile(model_file):
        try:  # keras.saving.load_model in safe mode, checking the trainer's .sha256 companion
            return saving.load(model_file), record
        except Exception as e:  # noqa: BLE001 -- keras raises many types for a bad archive
            if not os.path.isfile(weights_file):
                raise GanZooError(f"cannot load {model_file} ({str(e).splitlines()[0][:120]}): "
                                  "re-run the training command to write it again") from None
    if not os.path.isfile(weights_file):
        raise GanZooError(f"{logdir} holds no model.keras or final.weights.h5 (training has not "
                          "finished): finish the run with the same python -m train.main command")
    config = record.get("model_config")
    if not config:
        raise GanZooError(f"{record_file} has no model_config to rebuild {record['model']} from: "
                          "re-run the training command to write model.keras")
    model = models.family(record["model"]).from_config(dict(config))
    model.compile(jit_compile=False)  # the weights file holds both optimizers' state too
    model.load_weights(weights_file)
    return model, record


def real_images(dataset, split, image_shape, data_dir, value_range=(0.0, 1.0)):
    """(images float32 in value_range, int32 labels or None) of a whole split, in file order.

    Goes through `train.data.load`, the one place that scales pixels.
    """
    kind_has_labels = True
    try:
        ds = data.load(dataset, split, batch_size=10_000, value_range=value_range,
                       image_shape=image_shape, shuffle=False, data_dir=data_dir,
                       drop_remainder=False, with_labels=True)
    except data.UnlabelledDataset:
        kind_has_labels = False
        ds = data.load(dataset, split, batch_size=10_000, value_range=value_range,
                       image_shape=image_shape, shuffle=False, data_dir=data_dir,
                       drop_remainder=False)
    if kind_has_labels:
        parts = list(ds.as_numpy_iterator())
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return np.concatenate(list(ds.as_numpy_iterator())), None


def feature_extractor(config, dataset):
    """The extractor the user asked for; never a silent substitute for another."""
    if config.inception:
        from train.inception import InceptionExtractor

        return InceptionExtractor(config.inception_weights)
    from train import classifier

    return classifier.load(dataset, config.classifier)


def generated_images(model, latent):
    """The generator's images in [0, 1] for a batch of latent vectors."""
    return np.asarray(model.to_unit_range(model.sampler(latent, training=False)))


# --------------------------------------------------------------------------------------------
# The metrics
# --------------------------------------------------------------------------------------------


def _metric(value, floor=None, better="lower", **extra):
    entry = {"value": value, "better": better}
    if floor is not None:
        entry["floor"] = floor
    entry.update(extra)
    return entry


def feature_metrics(extractor, fake, test, train_ref, kid_subsets, seed):
    """FCD/FID, KID, the classifier/Inception score, and precision / recall / density /
    coverage on the same features, with the train-vs-test floor."""
    fake_f, fake_p = extractor(fake)
    test_f, _ = extractor(test)
    train_f, train_p = extractor(train_ref)
    inception = extractor.name == "inception_v3"
    kid = metrics.kernel_distance(fake_f, test_f, subsets=kid_subsets, seed=seed)
    kid_floor = metrics.kernel_distance(train_f, test_f, subsets=kid_subsets, seed=seed)
    splits = 10 if min(len(fake_p), len(train_p)) >= 10 else 1
    score = metrics.classifier_score(fake_p, splits)
    score_floor = metrics.classifier_score(train_p, splits)
    # The test images are the real set; the floor puts the training images in the samples' place.
    manifold = metrics.precision_recall_density_coverage(test_f, fake_f)
    manifold_floor = metrics.precision_recall_density_coverage(test_f, train_f)
    return {
        "fid" if inception else "fcd": _metric(
            metrics.frechet_distance_features(fake_f, test_f),
            metrics.frechet_distance_features(train_f, test_f)),
        "kid": _metric(kid[0], kid_floor[0], std=kid[1], floor_std=kid_floor[1]),
        "inception_score" if inception else "classifier_score": _metric(
            score[0], score_floor[0], better="higher", std=score[1], floor_std=score_floor[1]),
        **{name: _metric(manifold[name], manifold_floor[name], better=better, k=k)
           for name, better, k in (("precision", "higher", metrics.PRECISION_RECALL_K),
                                   ("recall", "higher", metrics.PRECISION_RECALL_K),
                                   ("density", "near floor", metrics.DENSITY_COVERAGE_K),
                                   ("coverage", "higher", metrics.DENSITY_COVERAGE_K))},
    }


def parzen_metric(fake, test, validation, train_ref):
    """The GAN paper's Parzen-window log-likelihood of the test images (nats), and the floor
    with the same number of training images as kernel centers."""
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    model = metrics.parzen_log_likelihood(flat(test), flat(validation), flat(fake))
    floor = metrics.parzen_log_likelihood(flat(test), flat(validation), flat(train_ref))
    return _metric(model["mean"], floor["mean"], better="higher", stderr=model["stderr"],
                   floor_stderr=floor["stderr"], sigma=model["sigma"], floor_sigma=floor["sigma"])


def categorical_code_metrics(model, extractor, config, dataset, image_shape, data_dir):
    """InfoGAN's categorical code as a classifier (Q on test images) and as a class control
    (the classifier's labels of G(z, c) against c); {} for models without such a code."""
    sizes = getattr(model, "categorical_dims", ())
    if not sizes:
        return {}
    out = {}
    test, labels = real_images(dataset, "test", image_shape, data_dir, model.output_range)
    if labels is not None:
        accuracy, mapping = metrics.code_accuracy(model.read_code(test), labels)
        out["code_accuracy"] = _metric(accuracy, better="higher", n=len(test), mapping=mapping,
                                       description="Q's categorical code on test images vs labels")
    if extractor is not None and extractor.name != "inception_v3":
        codes = np.arange(config.n) % sizes[0]
        fake = model.generate(config.n, seed=config.seed + 4, categorical=codes[:, None])
        accuracy, mapping = metrics.code_accuracy(codes, extractor.classify(fake))
        out["code_class_agreement"] = _metric(
            accuracy, better="higher", n=config.n, mapping=mapping,
            description="classifier label of G(z, c) vs the code c")
    return out


def label_metrics(model, extractor, config, dataset, image_shape, data_dir):
    """A conditional model's samples for requested labels, classified: the share the classifier
    gives the requested label, next to its accuracy on the test images; {} otherwise."""
    if not model.conditional or extractor is None or extractor.name == "inception_v3":
        return {}
    test, test_labels = real_images(dataset, "test", image_shape, data_dir)
    if test_labels is None:
        return {}
    labels = np.arange(config.n) % model.num_classes
    fake = model.generate(config.n, seed=config.seed + 5, labels=labels)
    accuracy = float(np.mean(extractor.classify(fake) == labels))
    floor = float(np.mean(extractor.classify(test) == test_labels))
    return {"label_accuracy": _metric(
        accuracy, floor, better="higher", n=config.n,
        description="classifier label of G(z, y) vs the requested y; floor: test images")}


def neighbour_metric(fake, test, train):
    """Median distance of samples to their nearest training image, floor: test images'."""
    k = min(NEIGHBOUR_SAMPLES, len(fake), len(test))
    _, model = metrics.nearest_neighbours(fake[:k], train)
    _, floor = metrics.nearest_neighbours(test[:k], train)
    return _metric(float(np.median(model)), float(np.median(floor)), better="near floor", n=k,
                   description="median L2 (pixels in [0, 1]) to the nearest training image; far "
                               "below the floor suggests memorised training images")


# --------------------------------------------------------------------------------------------
# DCGAN's figures
# --------------------------------------------------------------------------------------------


def neighbour_figure(fake, train, k=5):
    """Rows: a generated sample, then its k nearest training images."""
    index, _ = metrics.nearest_neighbours(fake[:FIGURE_ROWS], train, k=k)
    rows = [np.concatenate([fake[i : i + 1], train[index[i]]]) for i in range(len(index))]
    return images.image_grid(np.concatenate(rows), columns=k + 1)


def interpolation(model, seed, walks=64, steps=10):
    """(figure of the first walks, step evenness over all walks): linear walks between random z
    (for a conditional model, walks of the noise within the start's class)."""
    start = model.sample_latent(walks, seed=keras.random.SeedGenerator(seed + 1))
    stop = model.sample_latent(walks, seed=keras.random.SeedGenerator(seed + 2))
    labels = None
    if model.conditional:
        (start, labels), (stop, _) = start, stop
    start, stop = np.asarray(start), np.asarray(stop)
    latents = np.stack([metrics.interpolate(a, b, steps) for a, b in zip(start, stop)])
    latents = latents.reshape(walks * steps, -1).astype(np.float32)
    if labels is not None:
        latents = (latents, np.repeat(np.asarray(labels), steps))
    pictures = generated_images(model, latents)
    paths = pictures.reshape(walks, steps, *pictures.shape[1:])
    figure = images.image_grid(pictures[: FIGURE_ROWS * steps], columns=steps)
    return figure, metrics.step_evenness(paths)


def arithmetic_figure(model, extractor, seed, classes, pool=2000, per_group=3):
    """DCGAN's vector arithmetic with groups picked by the classifier: mean z of class a -
    mean z of class b + mean z of class c. Rows: the 3 samples of a group and G(its mean z);
    last row: G(result) and G(result + U(-0.25, 0.25) noise). None when a class is missing."""
    latent = np.asarray(model.sample_latent(pool, seed=keras.random.SeedGenerator(seed + 3)))
    probabilities = extractor(generated_images(model, latent))[1]
    predicted = probabilities.argmax(axis=1)
    groups = []
    for label in classes:
        members = np.flatnonzero(predicted == label)
        if len(members) < per_group:
            return None
        best = members[np.argsort(-probabilities[members, label])[:per_group]]
        groups.append(latent[best])
    result = metrics.latent_arithmetic(*groups)
    noise = np.random.default_rng(seed).uniform(-0.25, 0.25, (per_group, result.shape[-1]))
    rows = [np.concatenate([g, g.mean(axis=0, keepdims=True)]) for g in groups]
    rows.append(np.concatenate([result[None], result[None] + noise]))
    pictures = generated_images(model, np.concatenate(rows).astype(np.float32))
    return images.image_grid(pictures, columns=per_group + 1)


# --------------------------------------------------------------------------------------------
# The evaluation
# --------------------------------------------------------------------------------------------


def _check_writable(folder):
    """Creates `folder` and proves a file can be written there, or one GanZooError line."""
    try:
        os.makedirs(folder, exist_ok=True)
        saving.write_bytes_atomically(os.path.join(folder, ".write-test"), b"")
        os.remove(os.path.join(folder, ".write-test"))
    except (OSError, GanZooError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise GanZooError(f"cannot write to --output_dir {folder} ({reason}): pass another "
                          "--output_dir") from None


def _check(config):
    if bool(config.logdir) == bool(config.preset):
        raise GanZooError("name what to evaluate: pass --logdir runs/X (a training run) or "
                          "--preset NAME (a zoo preset), not both")
    if config.n < 10:
        raise GanZooError(f"--n must be at least 10, got {config.n}")
    if config.kid_subsets < 1:
        raise GanZooError(f"--kid_subsets must be at least 1, got {config.kid_subsets}")


def _output_dir(config):
    if config.output_dir:
        return config.output_dir
    if config.logdir:
        return os.path.join(config.logdir, "evaluation")
    return os.path.join("evaluation", config.preset)


class _Stages:
    """One line per stage of an evaluation: "[3/8] what (41 s so far, about 60 s left)"."""

    def __init__(self, total, say):
        self.total, self.say, self.done = total, say, 0
        self.started = time.time()

    def __call__(self, what):
        if self.say is None:
            return
        elapsed = time.time() - self.started
        left = f", about {elapsed / self.done * (self.total - self.done):.0f} s left" if self.done else ""
        self.done += 1
        self.say(f"[{self.done}/{self.total}] {what} ({elapsed:.0f} s so far{left})")


def evaluate(config: EvalConfig, model=None, record=None, progress=None):
    """Computes every applicable metric of the run or preset; writes the JSON and figures.

    Returns the report (the JSON's content) with an extra key `json` naming the file. The model
    is `config.logdir`'s, or `model` with its `record` ({"model", "dataset", "data_dir", ...}):
    how `zoo.evaluate` measures the preset `config.preset`. `progress(line)`, if given, receives
    a line as each stage starts.
    """
    _check(config)
    started = time.time()
    if model is None:
        if config.preset:
            raise GanZooError(f"zoo presets are measured by python -m zoo.evaluate --preset {config.preset} "
                              "(the same flags); python -m train.evaluate takes a run's --logdir")
        model, record = load_run(config.logdir)
    # A model with a moving average draws with it unless --raw_weights; the caller's model is
    # left drawing as it did.
    previous, model.sample_with_ema = model.sample_with_ema, not config.raw_weights
    try:
        return _measure(config, model, record, progress, started)
    finally:
        model.sample_with_ema = previous


def _measure(config, model, record, progress, started):
    """`evaluate`'s work on a loaded model."""
    dataset = record["dataset"]
    data_dir = config.data_dir or record.get("data_dir")
    out_dir = _output_dir(config)
    _check_writable(out_dir)  # before minutes of computing, not after
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    sample_shape = tuple(model.generator.output_shape[1:])
    report = {
        "run": {"logdir": config.logdir, "preset": config.preset, "model": record["model"],
                "dataset": dataset, "epochs": record.get("epochs")},
        "n": config.n,
        "seed": config.seed,
        "feature_extractor": None,
        "metrics": {},
        "figures": {},
        "notes": [],
    }
    if model.ema_decay is not None:
        report["weights"] = "raw" if config.raw_weights else "ema"
        report["notes"].append(
            f"samples drawn with the generator's trained weights, not their moving average (decay "
            f"{model.ema_decay})" if config.raw_weights else
            f"samples drawn with the moving average of the generator's weights (decay {model.ema_decay}); "
            "--raw_weights measures the trained weights")
    figures = {}
    stage = _Stages(2 if len(sample_shape) == 1 else 7 if config.parzen else 6, progress)

    if len(sample_shape) == 1:  # 2-D points: mode coverage against the true mixture
        stage(f"mode coverage of {MODE_SAMPLES} samples")
        mixture = data.mixture(dataset)  # GanZooError for a 2-D run on another dataset
        fake = model.generate(MODE_SAMPLES, seed=config.seed)
        real = data.sample_mixture(dataset, MODE_SAMPLES, seed=config.seed)
        model_cov = metrics.mode_coverage(fake, mixture.means, mixture.std)
        floor_cov = metrics.mode_coverage(real, mixture.means, mixture.std)
        report["metrics"]["mode_coverage"] = {
            "n": MODE_SAMPLES,
            **{key: _metric(model_cov[key], floor_cov[key], better=better)
               for key, better in (("modes_covered", "higher"), ("high_quality", "higher"),
                                   ("reverse_kl", "lower"))},
            "counts": model_cov["counts"],
            "num_modes": model_cov["num_modes"],
        }
        figures["modes"] = images.scatter_image(fake, real)
        report["notes"].append(f"mode coverage uses {MODE_SAMPLES} samples (the protocol's), whatever --n")
    else:
        stage("loading the feature extractor and the real images")
        extractor = feature_extractor(config, dataset)
        report["feature_extractor"] = {"name": extractor.name, "path": extractor.path,
                                       "sha256": extractor.sha256}
        if hasattr(extractor, "record"):
            report["feature_extractor"]["test_accuracy"] = extractor.record.get("test_accuracy")
        train, _ = real_images(dataset, "train", sample_shape, data_dir)
        test, _ = real_images(dataset, "test", sample_shape, data_dir)
        # Disjoint random parts of the training split: the floor's "generated" images and the
        # Parzen validation set that picks sigma.
        order = rng.permutation(len(train))
        n_validation = min(PARZEN_VALIDATION, config.n, len(train) // 2)
        n_train = min(config.n, len(train) - n_validation)
        train_ref, validation = train[order[:n_train]], train[order[-n_validation:]]
        test_ref = test if config.n >= len(test) else test[rng.permutation(len(test))[: config.n]]
        report["n_real"] = {"train": int(n_train), "test": int(len(test_ref)),
                            "parzen_validation": int(n_validation)}
        if n_train < config.n or len(test_ref) < config.n:
            report["notes"].append(
                f"the dataset has fewer real images than N={config.n}: the floor uses "
                f"{n_train} training and {len(test_ref)} test images")

        stage(f"generating {config.n} samples")
        fake = model.generate(config.n, seed=config.seed)
        stage(f"features of {config.n} samples and {len(test_ref) + n_train} real images: FCD, KID, "
              "precision, recall, density, coverage")
        report["metrics"].update(
            feature_metrics(extractor, fake, test_ref, train_ref, config.kid_subsets, config.seed))
        if config.parzen:
            stage("Parzen-window log-likelihood")
            report["metrics"]["parzen_log_likelihood"] = parzen_metric(fake, test_ref, validation, train_ref)
        stage("nearest training images")
        report["metrics"]["nearest_train_distance"] = neighbour_metric(fake, test_ref, train)
        stage("latent interpolations and the model's own metrics")
        figure, evenness = interpolation(model, config.seed)
        report["metrics"]["interpolation_step_evenness"] = _metric(
            evenness, better="lower",
            description="largest / mean image change per step along linear latent walks (1 = even)")
        report["metrics"].update(
            categorical_code_metrics(model, extractor, config, dataset, sample_shape, data_dir))
        report["metrics"].update(
            label_metrics(model, extractor, config, dataset, sample_shape, data_dir))
        figures["interpolation"] = figure
        figures["nearest_neighbours"] = neighbour_figure(fake, train)
        if model.conditional:
            report["notes"].append("no arithmetic figure: a conditional model's class is its label")
        elif extractor.name != "inception_v3":
            arithmetic = arithmetic_figure(model, extractor, config.seed, config.arithmetic_classes)
            if arithmetic is None:
                report["notes"].append(
                    f"no arithmetic figure: fewer than 3 samples of classes {config.arithmetic_classes}")
            else:
                figures["arithmetic"] = arithmetic

    stage(f"writing metrics.json{' and the figures' if config.figures else ''} to {out_dir}")
    if config.figures:
        for name, picture in figures.items():
            path = os.path.join(out_dir, f"{name}.png")
            images.write_png(path, picture)
            report["figures"][name] = path
    report["wall_time_s"] = round(time.time() - started, 1)
    path = os.path.join(out_dir, "metrics.json")
    saving.write_json_atomically(path, _json_safe(report))
    report["json"] = path
    return report


def _json_safe(value):
    """Non-finite floats become None (JSON has no inf / nan)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _number(value, spread=None):
    if value is None:
        return "-"
    if isinstance(value, int):
        text = str(value)
    elif not math.isfinite(value):
        text = "inf"
    else:
        text = f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    if spread is not None:
        text += f" +/- {spread:.2g}"
    return text


def _rows(report):
    for name, entry in report["metrics"].items():
        if name == "mode_coverage":
            for key in ("modes_covered", "high_quality", "reverse_kl"):
                sub = entry[key]
                yield f"{key} (of {entry['num_modes']})" if key == "modes_covered" else key, sub
            continue
        if name == "kid":  # quoted x 1000, as is customary
            entry = {**entry, **{k: entry[k] * 1000 for k in ("value", "floor", "std", "floor_std") if k in entry}}
            name = "kid x 1000"
        yield name, entry


def format_table(report):
    """The report as a plain-text table: metric, model, real-data floor, which way is better."""
    run = report["run"]
    extractor = report["feature_extractor"]
    lines = [
        f"{run['model']} on {run['dataset']} ({run['logdir'] or 'preset ' + str(run['preset'])}), "
        f"N={report['n']}, seed {report['seed']}"
        + (f", features {extractor['name']} (sha256 {extractor['sha256'][:12]})" if extractor else ""),
        f"{'metric':<30} {'model':<24} {'real-data floor':<24} better",
    ]
    for name, entry in _rows(report):
        spread = entry.get("std", entry.get("stderr"))
        floor_spread = entry.get("floor_std", entry.get("floor_stderr"))
        lines.append(f"{name:<30} {_number(entry['value'], spread):<24} "
                     f"{_number(entry.get('floor'), floor_spread):<24} {entry['better']}")
    lines.extend(f"note: {note}" for note in report["notes"])
    lines.append(f"json: {report['json']}  ({report['wall_time_s']:.0f} s)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line. Flags are defined by `define_flags`, called when run as a program, so that
# train.main's --logdir and --seed do not collide with these in one process (tests).
# --------------------------------------------------------------------------------------------


def define_flags(flag_values=None):
    from absl import flags

    fv = flags.FLAGS if flag_values is None else flag_values
    defaults = EvalConfig()
    flags.DEFINE_string("logdir", None, "A training run's folder (holds run.json and model.keras).", flag_values=fv)
    flags.DEFINE_string("preset", None, "A zoo preset name, instead of --logdir (python -m zoo.evaluate).",
                        flag_values=fv)
    flags.DEFINE_integer("n", defaults.n, "Generated images (and real images for the floor).", flag_values=fv)
    flags.DEFINE_integer("seed", defaults.seed, "Seed of the samples and of the real subsets.", flag_values=fv)
    flags.DEFINE_string("output_dir", None, "Where metrics.json and the figures go (default <logdir>/evaluation).",
                        flag_values=fv)
    flags.DEFINE_string("data_dir", None, "Dataset folder (default: the run's).", flag_values=fv)
    flags.DEFINE_string("classifier", None, "Classifier weights (default zoo/weights/classifier_<dataset>.weights.h5).",
                        flag_values=fv)
    flags.DEFINE_boolean("inception", False, "Inception-v3 FID / IS from locally available ImageNet weights.",
                         flag_values=fv)
    flags.DEFINE_string("inception_weights", None, "Path of inception_v3_weights_tf_dim_ordering_tf_kernels.h5.",
                        flag_values=fv)
    flags.DEFINE_boolean("parzen", defaults.parzen, "Compute the Parzen-window log-likelihood.", flag_values=fv)
    flags.DEFINE_boolean("figures", defaults.figures,
                         "Write the nearest-neighbour, interpolation and arithmetic figures.", flag_values=fv)
    flags.DEFINE_boolean("raw_weights", defaults.raw_weights, "For a model trained with --ema_decay: "
                         "measure its trained weights, not their moving average.", flag_values=fv)
    flags.DEFINE_integer("kid_subsets", defaults.kid_subsets, "Random subsets KID averages over.", flag_values=fv)
    flags.DEFINE_list("arithmetic_classes", ["0", "1", "2"], "Classes a,b,c of the arithmetic figure (a - b + c).",
                      flag_values=fv)


def config_from_flags(fv):
    try:
        classes = tuple(int(c) for c in fv.arithmetic_classes)
    except ValueError:
        raise GanZooError(f"--arithmetic_classes takes three class numbers, e.g. 0,1,2; got "
                          f"{','.join(fv.arithmetic_classes)}") from None
    if len(classes) != 3:
        raise GanZooError(f"--arithmetic_classes takes three class numbers a,b,c, got {len(classes)}")
    return EvalConfig(logdir=fv.logdir, preset=fv.preset, n=fv.n, seed=fv.seed, output_dir=fv.output_dir,
                      data_dir=fv.data_dir, classifier=fv.classifier, inception=fv.inception,
                      inception_weights=fv.inception_weights, parzen=fv.parzen, figures=fv.figures,
                      kid_subsets=fv.kid_subsets, arithmetic_classes=classes,
                      raw_weights=fv.raw_weights)


def main(argv, flag_values=None):
    from absl import flags

    fv = flags.FLAGS if flag_values is None else flag_values
    print(f"GAN Zoo: evaluating the run in {fv.logdir} on {fv.n} samples (seed {fv.seed})", flush=True)
    report = evaluate(config_from_flags(fv), progress=lambda line: print(line, flush=True))
    print(format_table(report))
    print(f"wrote {report['json']}" + (f" and {len(report['figures'])} figures beside it" if report["figures"] else ""))


def run():
    from train import cli

    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
