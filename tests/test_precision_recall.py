"""Improved precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al.
2020) against balls counted by hand on small 1-D and 2-D point sets.

Notation of the comments: r_k(x) is the distance from x to its k-th nearest OTHER point of its
own set, and x's ball is the closed interval [x - r_k(x), x + r_k(x)] (a point exactly on the
radius is inside). Coordinates are small integers, so every distance is exact in float64.
"""

import tracemalloc

import numpy as np
import pytest
import scipy.spatial

from models.errors import GanZooError
from train import metrics


def column(*values):
    """1-D points as an (n, 1) feature matrix."""
    return np.array(values, np.float64)[:, None]


# Two real modes of four points. With k = 3 the balls are
#   0: others at 1, 2, 3, 10 -> r = 3 -> [-3, 3]      10: -> r = 3 -> [7, 13]
#   1: others at 1, 1, 2, 9  -> r = 2 -> [-1, 3]      11: -> r = 2 -> [9, 13]
#   2: others at 2, 1, 1, 8  -> r = 2 -> [0, 4]       12: -> r = 2 -> [10, 14]
#   3: others at 3, 2, 1, 7  -> r = 3 -> [0, 6]       13: -> r = 3 -> [10, 16]
# so the real manifold is [-3, 6] u [7, 16]. With k = 5:
#   0: 1, 2, 3, 10, 11 -> r = 11 -> [-11, 11]        10: 1, 2, 3, 7, 8   -> r = 8  -> [2, 18]
#   1: 1, 1, 2, 9, 10  -> r = 10 -> [-9, 11]         11: 1, 1, 2, 8, 9   -> r = 9  -> [2, 20]
#   2: 1, 1, 2, 8, 9   -> r = 9  -> [-7, 11]         12: 1, 1, 2, 9, 10  -> r = 10 -> [2, 22]
#   3: 1, 2, 3, 7, 8   -> r = 8  -> [-5, 11]         13: 1, 2, 3, 10, 11 -> r = 11 -> [2, 24]
TWO_MODES = column(0, 1, 2, 3, 10, 11, 12, 13)
# A generator that reproduces the first mode and invents a third one at 20..23.
ONE_MODE_AND_AN_INVENTED_ONE = column(0, 1, 2, 3, 20, 21, 22, 23)


def test_precision_and_recall_by_hand_on_two_modes():
    # Generated 0..3 lie in [-3, 6], 20..23 outside [-3, 6] u [7, 16]: precision 4/8.
    # The generated balls (same shapes, shifted): [-3, 6] u [17, 26]; real 0..3 inside,
    # 10..13 outside: recall 4/8.
    precision, recall = metrics.precision_recall(TWO_MODES, ONE_MODE_AND_AN_INVENTED_ONE)
    assert (precision, recall) == (0.5, 0.5)


def test_density_and_coverage_by_hand_on_two_modes():
    # Balls (k = 5, table above) holding each generated point:
    #   0, 1 -> the four of 0..3; 2, 3 -> all eight; 20 -> 11, 12, 13 (20 is on 11's radius);
    #   21 -> 12, 13; 22 -> 12, 13 (on 12's radius); 23 -> 13.
    # 4 + 4 + 8 + 8 + 3 + 2 + 2 + 1 = 32 -> density 32 / (5 * 8) = 0.8; every real ball holds
    # a generated point -> coverage 1.
    density, coverage = metrics.density_coverage(TWO_MODES, ONE_MODE_AND_AN_INVENTED_ONE)
    assert density == pytest.approx(32 / 40, abs=1e-15) and coverage == 1.0
    # k = 1: balls [-1, 1], [0, 2], [1, 3], [2, 4], [9, 11], [10, 12], [11, 13], [12, 14].
    # 0 -> 2 balls, 1 -> 3, 2 -> 3, 3 -> 2, 20..23 -> none: density 10 / 8; only the four balls
    # of the first mode hold a point: coverage 4 / 8.
    density, coverage = metrics.density_coverage(TWO_MODES, ONE_MODE_AND_AN_INVENTED_ONE, k=1)
    assert density == pytest.approx(10 / 8, abs=1e-15) and coverage == 0.5


def test_the_ball_is_closed_a_point_on_the_radius_is_inside():
    # Real 0, 1, 2, 4, 8 with k = 3: r = 4, 3, 2, 4, 7, so the manifold is [-4, 4] u ... u
    # [1, 15] = [-4, 15]. Generated -4 and 15 sit exactly on a radius, -4.5 and 15.5 just off.
    real = column(0, 1, 2, 4, 8)
    fake = column(-4, 15, 6, -4.5, 15.5, 30)
    precision, _ = metrics.precision_recall(real, fake)
    assert precision == 3 / 6  # -4, 15 and 6 (an open ball would give 1/6)
    # The same balls for density / coverage (k = 3): -4 lies in 0's ball [-4, 4] only, 15 in
    # 8's [1, 15] only, 6 in 4's [0, 8] and 8's: 4 pairs -> density 4 / (3 * 6); the balls of
    # 0, 4 and 8 hold a generated point -> coverage 3/5 (open balls: 2 / 18 and 2/5).
    density, coverage = metrics.density_coverage(real, fake, k=3)
    assert coverage == pytest.approx(3 / 5) and density == pytest.approx(4 / 18, abs=1e-15)


@pytest.mark.parametrize("n, dimensions", [(50, 2), (200, 40), (341, 44)])
@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_identical_sets_in_general_position(n, dimensions, batch_size):
    # Every point is its own twin at distance 0, so precision = recall = coverage = 1. In
    # general position (no two distances equal) X_i's ball holds itself and exactly its k
    # nearest neighbours, so sum_j sum_i 1[...] = N (k + 1) and density = (k + 1) / k = 6/5:
    # Y_j = X_j lies exactly on the radius of X_i when X_j is X_i's 5th neighbour, a tie that
    # must be decided the same way in the radius pass and in the generated-real pass.
    points = np.random.default_rng(n).normal(size=(n, dimensions))
    result = metrics.precision_recall_density_coverage(points, points.copy(), batch_size=batch_size)
    assert result == {"precision": 1.0, "recall": 1.0, "density": 6 / 5, "coverage": 1.0}


def test_identical_sets_with_tied_distances():
    # 0, 1, ..., 9 against itself, k = 5. Ties put more than k + 1 points in some balls:
    #   0: others 1..9 -> r = 5 -> [-5, 5] holds 0..5: 6      (9 the same by symmetry)
    #   1: 1, 1, 2, 3, 4 -> r = 4 -> [-3, 5] holds 0..5: 6     (8)
    #   2: 1, 1, 2, 2, 3 -> r = 3 -> [-1, 5] holds 0..5: 6     (7)
    #   3: 1, 1, 2, 2, 3 -> r = 3 -> [0, 6] holds 0..6: 7      (6)
    #   4: 1, 1, 2, 2, 3 -> r = 3 -> [1, 7] holds 1..7: 7      (5)
    # 6 * 6 + 4 * 7 = 64 pairs -> density 64 / (5 * 10) = 1.28.
    grid = column(*range(10))
    result = metrics.precision_recall_density_coverage(grid, grid)
    assert result == {"precision": 1.0, "recall": 1.0, "density": 64 / 50, "coverage": 1.0}


def test_disjoint_far_apart_sets_score_zero():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(30, 3)), 1000.0 + rng.normal(size=(40, 3))
    result = metrics.precision_recall_density_coverage(real, fake)
    assert result == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_collapsed_generator():
    # Every generated sample is the real point 0. k = 3: 0 lies in 0's ball [-3, 3] (and in
    # 1's, 2's, 3's): precision 1. Each generated sample's 3rd nearest other sample is a copy
    # at distance 0, so the generated manifold is the single point 0: recall 1/8.
    # k = 5: 0 lies in the balls of 0, 1, 2, 3 (not 10..13, which start at 2): density
    # 4 M / (5 M) = 0.8, coverage 4/8.
    collapsed = np.zeros((12, 1))
    result = metrics.precision_recall_density_coverage(TWO_MODES, collapsed)
    assert result == {"precision": 1.0, "recall": 1 / 8, "density": 0.8, "coverage": 0.5}


@pytest.mark.parametrize("offset", [1e8, -3e8])
def test_far_from_the_origin_the_counts_are_the_same(offset):
    # Coordinates near 1e8 square to ~1e16 > 2^53, so |a|^2 + |b|^2 - 2 a.b loses the units
    # digit; the integer differences do not. Distances, hence every count above, are unchanged.
    shift = lambda points: points + offset  # noqa: E731
    assert metrics.precision_recall(shift(TWO_MODES), shift(ONE_MODE_AND_AN_INVENTED_ONE)) == (0.5, 0.5)
    assert metrics.density_coverage(shift(TWO_MODES), shift(ONE_MODE_AND_AN_INVENTED_ONE)) == (32 / 40, 1.0)
    grid = shift(column(*range(10)))
    assert metrics.precision_recall_density_coverage(grid, grid) == {
        "precision": 1.0, "recall": 1.0, "density": 64 / 50, "coverage": 1.0}
    assert metrics.precision_recall_density_coverage(shift(TWO_MODES), np.full((12, 1), offset)) == {
        "precision": 1.0, "recall": 1 / 8, "density": 0.8, "coverage": 0.5}


def test_two_dimensional_square_by_hand():
    # Real: the unit square's corners and its centre c = (0.5, 0.5); k = 3.
    #   a corner: others at 1 (two neighbours), sqrt(0.5) (c), sqrt(2) -> r = 1
    #   c: all four corners at sqrt(0.5) -> r = sqrt(0.5)
    # Generated: (2, 0) is 1 from the corner (1, 0): inside (on the radius); (2, 2) is
    # sqrt(2) from (1, 1): outside; (0.5, -0.5) is sqrt(0.5) from (0, 0): inside; (-1, -1) is
    # sqrt(2) from (0, 0): outside. Precision 2/4.
    real = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]])
    fake = np.array([[2, 0], [2, 2], [0.5, -0.5], [-1, -1]])
    assert metrics.precision_recall(real, fake)[0] == 0.5
    # The generated set's radii (k = 3): (2, 0): others at 2, 1.58, 3.16 -> r = 3.16;
    # (2, 2): 2, 2.92, 4.24 -> 4.24; (0.5, -0.5): 1.58, 2.92, 1.58 -> 2.92; (-1, -1): 3.16,
    # 4.24, 1.58 -> 4.24. (-1, -1)'s ball of radius sqrt(18) reaches every real point: recall 1.
    assert metrics.precision_recall(real, fake)[1] == 1.0


def test_blocks_change_nothing_and_agree_with_a_direct_count():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(61, 5)), rng.normal(size=(47, 5)) + 0.4
    whole = metrics.precision_recall_density_coverage(real, fake)
    for batch_size in (1, 7, 100):
        assert metrics.precision_recall_density_coverage(real, fake, batch_size=batch_size) == whole
    # The definitions written out with a full distance matrix.
    rr, ff, fr = (scipy.spatial.distance.cdist(a, b) for a, b in ((real, real), (fake, fake), (fake, real)))
    np.fill_diagonal(rr, np.inf)
    np.fill_diagonal(ff, np.inf)
    r3, r5, f3 = np.sort(rr, axis=1)[:, 2], np.sort(rr, axis=1)[:, 4], np.sort(ff, axis=1)[:, 2]
    expected = {"precision": np.mean((fr <= r3[None]).any(axis=1)),
                "recall": np.mean((fr <= f3[:, None]).any(axis=0)),
                "density": np.sum(fr <= r5[None]) / (5 * len(fake)),
                "coverage": np.mean((fr <= r5[None]).any(axis=0))}
    assert whole == pytest.approx(expected, abs=1e-15)
    assert 0 < whole["precision"] < 1 and 0 < whole["recall"] < 1 and 0 < whole["coverage"] < 1
    assert metrics.precision_recall(real, fake) == (whole["precision"], whole["recall"])
    assert metrics.density_coverage(real, fake) == (whole["density"], whole["coverage"])


def test_memory_stays_far_below_one_full_distance_matrix():
    n = 6000  # one n x n float64 matrix would take 288 MB
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
    tracemalloc.start()
    try:
        result = metrics.precision_recall_density_coverage(real, fake)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < n * n * 8 / 2, f"peak {peak / 1e6:.0f} MB"
    assert min(result.values()) > 0.9  # two samples of one distribution


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.precision_recall(np.zeros((5, 3)), np.zeros((5, 4))),
     "precision / recall: real features have 3 dimensions, generated 4: pass features of the same extractor"),
    (lambda: metrics.precision_recall(np.arange(3.0)[:, None], np.arange(9.0)[:, None]),
     "precision / recall needs at least 4 real samples"),
    (lambda: metrics.precision_recall(np.arange(9.0)[:, None], np.arange(3.0)[:, None]),
     "precision / recall needs at least 4 generated samples"),
    (lambda: metrics.density_coverage(np.arange(5.0)[:, None], np.arange(9.0)[:, None]),
     "density / coverage needs at least 6 real samples"),
    (lambda: metrics.precision_recall_density_coverage(np.arange(5.0)[:, None], np.arange(9.0)[:, None]),
     "precision / recall / density / coverage needs at least 6 real samples"),
    (lambda: metrics.density_coverage(np.zeros((9, 2)), np.zeros((0, 2))),
     "density / coverage needs at least 1 generated sample, got 0"),
    (lambda: metrics.precision_recall(np.zeros((9, 2)), np.full((9, 2), np.nan)),
     "precision / recall: generated features contain NaN or Inf"),
    (lambda: metrics.precision_recall(np.zeros(9), np.zeros(9)),
     "precision / recall: real features must be a (samples, dimensions) array, got shape (9,)"),
    (lambda: metrics.density_coverage(np.zeros((9, 2)), np.zeros((9, 2)), k=0),
     "density / coverage: k must be an integer >= 1, got 0"),
])
def test_bad_input_is_one_line_that_says_what_to_pass(call, message):
    with pytest.raises(GanZooError) as error:
        call()
    text = str(error.value)
    assert text.startswith(message) and "\n" not in text, text
    assert "pass" in text or "produced" in text


def test_density_coverage_needs_only_one_generated_sample():
    # One generated point at 2: inside the k = 3 balls of 0, 1, 2, 4, 8 ([-4, 4], [-2, 4],
    # [0, 4], [0, 8], [1, 15]): density 5 / 3, coverage 1.
    density, coverage = metrics.density_coverage(column(0, 1, 2, 4, 8), column(2), k=3)
    assert density == pytest.approx(5 / 3, abs=1e-15) and coverage == 1.0
