"""train.metrics against closed forms and constructed cases, and the committed classifier.

Everything is seeded and offline. The tests on real Fashion-MNIST read Debian's IDX files and
skip (with the reason) when they are not installed.
"""

import math
import os

import numpy as np
import pytest
import scipy.linalg

from models.errors import GanZooError
from train import data, metrics

REAL_DIR = data.FASHION_MNIST_DIR
needs_real = pytest.mark.skipif(
    not os.path.isfile(os.path.join(REAL_DIR, "t10k-images-idx3-ubyte.gz")),
    reason=f"real Fashion-MNIST not installed in {REAL_DIR} (apt-get install dataset-fashion-mnist)",
)


# ----------------------------------------------------------------------------- Frechet distance
def test_frechet_distance_of_a_set_against_itself_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16)) @ np.random.default_rng(1).normal(size=(16, 16))
    assert metrics.frechet_distance_features(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert metrics.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)
    # full, non-commuting covariances: the textbook formula with scipy's general sqrtm
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = x @ x.T + 0.1 * np.eye(5), y @ y.T + 0.1 * np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    textbook = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert metrics.frechet_distance(m1, s1, m2, s2) == pytest.approx(textbook, rel=1e-9)


def test_frechet_distance_rejects_mismatched_statistics():
    with pytest.raises(GanZooError, match="matching statistics"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# ------------------------------------------------------------------------------------------ KID
def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 32)), rng.normal(size=(2000, 32))
    same, same_std = metrics.kernel_distance(x, y, subsets=20, subset_size=500, seed=0)
    shifted, _ = metrics.kernel_distance(x, y + 0.3, subsets=20, subset_size=500, seed=0)
    assert abs(same) < 3 * same_std / math.sqrt(20) + 1e-3  # ~0 (may be slightly negative)
    assert shifted > 20 * abs(same) and shifted > 0.01
    # unbiased: on identical-distribution samples the single-subset estimates straddle zero
    values = [metrics.mmd2_unbiased(rng.normal(size=(100, 8)), rng.normal(size=(100, 8))) for _ in range(40)]
    assert min(values) < 0 < max(values)


def test_kid_by_hand_on_three_points_each():
    """k(a, b) = (a.b / d + 1)^3 with d = 2, and the unbiased MMD^2: the mean of k over the
    m(m - 1) pairs i != j of x, the same for y, minus twice the mean over all m n pairs of k(x, y)."""
    x = [(1.0, 0.0), (0.0, 2.0), (1.0, 1.0)]
    y = [(0.0, 0.0), (2.0, 0.0), (1.0, -1.0)]
    # x.x over pairs i != j: 0, 1, 2 (each twice); y.y: 0, 0, 2; x.y: row by row
    # (0, 2, 1), (0, 0, -2), (0, 2, 0).
    k_xx = 2 * ((0 / 2 + 1) ** 3 + (1 / 2 + 1) ** 3 + (2 / 2 + 1) ** 3) / 6
    k_yy = 2 * ((0 / 2 + 1) ** 3 + (0 / 2 + 1) ** 3 + (2 / 2 + 1) ** 3) / 6
    k_xy = sum((dot / 2 + 1) ** 3 for dot in (0, 2, 1, 0, 0, -2, 0, 2, 0)) / 9
    expected = k_xx + k_yy - 2 * k_xy
    assert expected == pytest.approx(33 / 8 + 10 / 3 - 2 * 65 / 24)  # = 49 / 24
    assert metrics.mmd2_unbiased(np.array(x), np.array(y)) == pytest.approx(expected, rel=1e-12)
    # The biased estimate (diagonals included) would be 7.82 here; the kernel of degree 2,
    # without the 1/d or without the +1 gives 1.03, 7.00 and 0.46.
    # KID over subsets of all three points: every subset is the whole set, so no spread.
    mean, spread = metrics.kernel_distance(x, y, subsets=4, subset_size=3, seed=0)
    assert mean == pytest.approx(expected, rel=1e-12) and spread == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------ classifier score
def test_classifier_score_bounds():
    k = 10
    constant = np.tile(np.full(k, 1.0 / k), (100, 1))
    assert metrics.classifier_score(constant, splits=1)[0] == pytest.approx(1.0)
    same_class = np.tile(np.eye(k)[3], (100, 1))
    assert metrics.classifier_score(same_class, splits=1)[0] == pytest.approx(1.0)
    confident_uniform = np.eye(k)[np.arange(100) % k]
    assert metrics.classifier_score(confident_uniform, splits=1)[0] == pytest.approx(k)
    # ten splits of ten, each covering every class once: K in every split, no spread
    score, spread = metrics.classifier_score(confident_uniform, splits=10)
    assert score == pytest.approx(k) and spread == pytest.approx(0.0)


# ----------------------------------------------------------------------------------------- Parzen
def test_parzen_estimate_matches_the_analytic_log_likelihood():
    rng = np.random.default_rng(0)
    d, sigma = 2, 0.2  # enough centers per window that the log of the sum is nearly unbiased
    centers = rng.normal(size=(20_000, d))  # samples of N(0, I)
    test = rng.normal(size=(1000, d))
    estimate = metrics.parzen_log_likelihoods(test, centers, [sigma], batch_size=4096)[0]
    # with many centers the window estimates N(0, I) convolved with the kernel: N(0, (1 + s^2) I)
    variance = 1.0 + sigma**2
    analytic = -0.5 * d * np.log(2 * np.pi * variance) - 0.5 * (test**2).sum(axis=1) / variance
    assert estimate.mean() == pytest.approx(analytic.mean(), abs=0.02)


def test_parzen_batching_changes_nothing():
    rng = np.random.default_rng(1)
    test, centers = rng.normal(size=(37, 5)), rng.normal(size=(53, 5))
    whole = metrics.parzen_log_likelihoods(test, centers, [0.3, 1.0], batch_size=1000)
    blocks = metrics.parzen_log_likelihoods(test, centers, [0.3, 1.0], batch_size=7)
    np.testing.assert_allclose(blocks, whole, rtol=1e-10)
    # by hand for one point and sigma
    x, s = test[0], 0.3
    by_hand = np.log(np.mean(np.exp(-((centers - x) ** 2).sum(1) / (2 * s * s)))) - 2.5 * np.log(2 * np.pi * s * s)
    assert whole[0, 0] == pytest.approx(by_hand, rel=1e-6)  # float32 products


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_parzen_sigma_selection_picks_the_right_order_of_magnitude(scale):
    rng = np.random.default_rng(2)
    centers, validation = scale * rng.normal(size=(2000, 2)), scale * rng.normal(size=(1000, 2))
    sigmas = np.logspace(-3, 3, 13)  # 0.001 ... 1000
    # Silverman's rule gives n^(-1/6) * scale = 0.28 * scale for 2-D unit Gaussians
    best, scores = metrics.select_parzen_sigma(validation, centers, sigmas)
    assert 0.1 * scale <= best <= 1.0 * scale
    assert len(scores) == 13


def test_parzen_protocol_reports_mean_and_standard_error():
    rng = np.random.default_rng(3)
    centers, validation, test = (rng.uniform(size=(n, 4)) for n in (500, 200, 300))
    result = metrics.parzen_log_likelihood(test, validation, centers)
    assert result["sigma"] in metrics.PARZEN_SIGMAS and len(result["validation"]) == 10
    values = metrics.parzen_log_likelihoods(test, centers, [result["sigma"]])[0]
    assert result["mean"] == pytest.approx(values.mean())
    assert result["stderr"] == pytest.approx(values.std(ddof=1) / math.sqrt(300))


# --------------------------------------------------------------------------------- mode coverage
RING = data.mixture("ring8")


def test_mode_coverage_all_modes():
    points = data.sample_mixture("ring8", 2500, seed=0)
    result = metrics.mode_coverage(points, RING.means, RING.std)
    assert result["modes_covered"] == 8 and result["num_modes"] == 8
    assert result["high_quality"] > 0.98  # 3 std in 2-D holds 98.9% of a Gaussian
    assert result["reverse_kl"] < 0.01


def test_mode_coverage_exact_counts_on_constructed_points():
    on_modes = np.repeat(RING.means, 10, axis=0)  # 10 points exactly on each mode
    result = metrics.mode_coverage(on_modes, RING.means, RING.std)
    assert result == {"modes_covered": 8, "num_modes": 8, "high_quality": 1.0, "reverse_kl": 0.0,
                      "counts": [10] * 8}

    one_mode = np.repeat(RING.means[3:4], 2500, axis=0) + 0.01  # within 3 std of mode 3 only
    result = metrics.mode_coverage(one_mode, RING.means, RING.std)
    assert result["modes_covered"] == 1 and result["high_quality"] == 1.0
    assert result["counts"] == [0, 0, 0, 2500, 0, 0, 0, 0]
    assert result["reverse_kl"] == pytest.approx(math.log(8))

    off_mode = np.zeros((2500, 2))  # the ring's centre, 2 away from every mode
    result = metrics.mode_coverage(off_mode, RING.means, RING.std)
    assert result["modes_covered"] == 0 and result["high_quality"] == 0.0
    assert result["reverse_kl"] == math.inf

    # half on modes 0 and 1, half just outside 3 std of mode 0 (0.061 > 0.06)
    mixed = np.concatenate([np.repeat(RING.means[:2], 50, axis=0),
                            np.repeat(RING.means[:1] + [0.061, 0.0], 100, axis=0)])
    result = metrics.mode_coverage(mixed, RING.means, RING.std)
    assert result["modes_covered"] == 2 and result["high_quality"] == 0.5
    assert result["counts"] == [50, 50, 0, 0, 0, 0, 0, 0]
    assert result["reverse_kl"] == pytest.approx(math.log(4))  # q = (1/2, 1/2) against 1/8


def test_mode_coverage_min_count_and_grid25():
    grid = data.mixture("grid25")
    points = np.concatenate([np.repeat(grid.means[:5], 20, axis=0), grid.means[5:6]])
    assert metrics.mode_coverage(points, grid.means, grid.std)["modes_covered"] == 6
    assert metrics.mode_coverage(points, grid.means, grid.std, min_count=20)["modes_covered"] == 5


# ------------------------------------------------------------------------------ code accuracy
def test_code_accuracy_is_perfect_on_a_permuted_labelling():
    labels = np.random.default_rng(0).integers(0, 10, 1000)
    permutation = np.random.default_rng(1).permutation(10)
    accuracy, mapping = metrics.code_accuracy(permutation[labels], labels)
    assert accuracy == 1.0
    assert all(mapping[int(permutation[label])] == label for label in range(10))


def test_code_accuracy_by_hand():
    codes = [0, 0, 0, 1, 1, 2, 2, 2]
    labels = [5, 5, 6, 6, 6, 5, 7, 7]  # best: 0->5, 1->6, 2->7: 2 + 2 + 2 = 6 of 8
    accuracy, mapping = metrics.code_accuracy(codes, labels)
    assert accuracy == pytest.approx(6 / 8) and mapping == {0: 5, 1: 6, 2: 7}


# -------------------------------------------------------------------------------- DCGAN checks
def test_nearest_neighbours_and_interpolation():
    rng = np.random.default_rng(0)
    reference = rng.uniform(size=(50, 4, 4, 1))
    queries = reference[[7, 3]] + 1e-3
    index, distance = metrics.nearest_neighbours(queries, reference, k=2, batch_size=1)
    assert index[:, 0].tolist() == [7, 3] and np.allclose(distance[:, 0], 4e-3, atol=1e-4)
    assert np.all(distance[:, 1] > distance[:, 0])

    path = metrics.interpolate(np.zeros(3), np.ones(3), 5)
    assert path.shape == (5, 3) and np.allclose(path[:, 0], [0, 0.25, 0.5, 0.75, 1])
    even = np.stack([np.linspace(0, 1, 10)[:, None] * np.ones((10, 6))])
    jump = np.stack([np.repeat([0.0, 1.0], 5)[:, None] * np.ones((10, 6))])
    assert metrics.step_evenness(even) == pytest.approx(1.0)
    assert metrics.step_evenness(jump) == pytest.approx(9.0)
    groups = [np.full((3, 2), v) for v in (5.0, 2.0, 1.0)]
    assert np.allclose(metrics.latent_arithmetic(*groups), [4.0, 4.0])


# ---------------------------------------------------------------- the committed classifier, real data
@pytest.fixture(scope="module")
def real_sample():
    """500 training and 500 test images of real Fashion-MNIST in [0, 1], with labels."""
    from train.evaluate import real_images

    train, _ = real_images("fashion_mnist", "train", None, REAL_DIR)
    test, test_labels = real_images("fashion_mnist", "test", None, REAL_DIR)
    rng = np.random.default_rng(0)
    return train[rng.permutation(len(train))[:500]], test[:500], test_labels[:500]


@pytest.fixture(scope="module")
def extractor():
    from train import classifier

    return classifier.load("fashion_mnist")


@needs_real
def test_committed_classifier_loads_offline_and_classifies_real_images(extractor, real_sample):
    _, test, labels = real_sample
    assert extractor.record["test_accuracy"] >= 0.93
    assert os.path.getsize(extractor.path) < 1_000_000
    predicted = extractor.classify(test[:200])
    assert np.mean(predicted == labels[:200]) >= 0.9
    assert predicted[:5].tolist() == labels[:5].tolist()


@needs_real
def test_fcd_real_vs_real_is_far_below_noise_and_blur(extractor, real_sample):
    import tensorflow as tf

    train, test, _ = real_sample
    test_f = extractor(test)[0]
    fcd = lambda images: metrics.frechet_distance_features(extractor(images)[0], test_f)  # noqa: E731
    real = fcd(train)
    noise = fcd(np.random.default_rng(0).uniform(size=train.shape).astype(np.float32))
    blurred = fcd(tf.nn.avg_pool2d(train, 5, 1, "SAME").numpy())
    assert fcd(test) == pytest.approx(0.0, abs=1e-6)
    assert real * 5 < blurred < noise, (real, blurred, noise)
