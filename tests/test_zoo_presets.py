"""The presets published in zoo/: each loads offline from its checked file, samples
deterministically, and reproduces the figures of its record with the real Fashion-MNIST test
split (installed by scripts/setup.sh)."""

import functools
import os

import numpy as np
import pytest

import zoo
from models.saving import sha256_of
from train import evaluate
from zoo import evaluate as preset_evaluation

PUBLISHED = zoo._read_presets()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_presets(name, tmp_path):
    """Every preset in zoo/ loads offline from its checked file and reproduces the FCD of its
    record (N = 10,000, seed 0: the same images and features) up to float rounding; a preset
    of 2-D points its mode coverage."""
    entry = PUBLISHED[name]
    path = os.path.join(os.path.dirname(zoo.__file__), "weights", entry["weights"]["file"])
    assert sha256_of(path) == entry["weights"]["sha256"]
    gan = zoo.load(name, compile=False)
    samples = gan.generate(8, seed=0)
    assert samples.shape == (8, *entry["image_shape"])
    assert np.array_equal(samples, gan.generate(8, seed=0))
    if "mode_coverage" in entry["metrics"]:
        report = preset_evaluation.evaluate(evaluate.EvalConfig(preset=name, output_dir=str(tmp_path),
                                                                figures=False))
        measured, recorded = report["metrics"]["mode_coverage"], entry["metrics"]["mode_coverage"]
        assert measured["modes_covered"]["value"] == recorded["modes_covered"]["value"]
        assert measured["high_quality"]["value"] == pytest.approx(recorded["high_quality"]["value"], abs=2e-3)
        return
    np.testing.assert_allclose(_fcd(gan, entry), entry["metrics"]["fcd"]["value"], rtol=1e-3)


@functools.lru_cache(maxsize=None)
def _test_features(dataset, image_shape):
    """(classifier, features of the whole test split), computed once for every preset."""
    from train import classifier

    test, _ = evaluate.real_images(dataset, "test", image_shape, None)
    extractor = classifier.load(dataset)
    return extractor, extractor(test)[0]


def _fcd(gan, entry):
    """FCD as train.evaluate computes it: N generated images against the whole test split
    (N = 10,000 = its size), features of the zoo classifier."""
    from train import metrics

    n, seed = entry["evaluation"]["n"], entry["evaluation"]["seed"]
    extractor, test_f = _test_features(entry["dataset"], tuple(entry["image_shape"]))
    assert n == len(test_f)
    fake_f, _ = extractor(gan.generate(n, seed=seed))
    return metrics.frechet_distance_features(fake_f, test_f)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_train_evaluate_reproduces_the_record(name, tmp_path):
    """`python -m zoo.evaluate --preset NAME`: every figure of the record, same seed."""
    entry = PUBLISHED[name]
    report = preset_evaluation.evaluate(evaluate.EvalConfig(preset=name, output_dir=str(tmp_path), figures=False))
    for metric, recorded in entry["metrics"].items():
        if "value" in recorded:
            np.testing.assert_allclose(report["metrics"][metric]["value"], recorded["value"], rtol=1e-3)


@pytest.mark.parametrize("name", sorted(PUBLISHED)[:1])
def test_generate_is_identical_across_processes(name):
    """zoo.load(name).generate(n, seed=s) gives the same bytes in a fresh process."""
    import hashlib
    import subprocess
    import sys

    script = ("import hashlib, zoo; "
              f"print(hashlib.sha256(zoo.load({name!r}).generate(16, seed=3).tobytes()).hexdigest())")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    other = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                           check=True).stdout.split()[-1]
    mine = hashlib.sha256(zoo.load(name).generate(16, seed=3).tobytes()).hexdigest()
    assert other == mine
