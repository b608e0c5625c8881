"""Sample-quality metrics and the seed papers' analyses, as pure functions of numpy arrays.

Nothing here loads data, models or weights: callers pass features, probabilities, points or
images (`train.evaluate` wires them to a run). Everything is float64 numpy unless noted, and
every function that could need O(n^2) memory works in chunks.

Distances between feature distributions
  * `frechet_distance` -- the Frechet (2-Wasserstein) distance between two Gaussians fitted to
    features, ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2): FID of Heusel et al. 2017, "GANs
    Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"
    (https://arxiv.org/abs/1706.08500). On a classifier's penultimate features it is called FCD
    (Frechet classifier distance), as in TF-GAN.
  * `kernel_distance` -- KID of Binkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD
    GANs" (https://arxiv.org/abs/1801.01401): the unbiased estimate of the squared MMD with the
    cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets. Unbiased, so
    it is ~0 (and may be slightly negative) for two samples of one distribution.

Fidelity and diversity of samples, from k-nearest-neighbour balls around feature vectors
  * `precision_recall` -- Kynkaanniemi, Karras, Laine, Lehtinen & Aila 2019, "Improved Precision
    and Recall Metric for Assessing Generative Models" (https://arxiv.org/abs/1904.06991), k = 3:
    the share of samples inside the real manifold, and of real images inside the generated one.
  * `density_coverage` -- Naeem, Oh, Uh, Choi & Yoo 2020, "Reliable Fidelity and Diversity
    Metrics for Generative Models" (https://arxiv.org/abs/2002.09797), k = 5: how many real
    balls a sample lies in (/ k), and the share of real balls holding any sample.
  * `precision_recall_density_coverage` -- all four from one pass over the distances.

Scores of one sample set
  * `classifier_score` -- the Inception-score formula of Salimans et al. 2016, "Improved
    Techniques for Training GANs" (https://arxiv.org/abs/1606.03498), exp(E_x KL(p(y|x) || p(y))),
    on any classifier's softmax. Between 1 (every prediction the same) and K (confident and
    uniform over K classes).
  * `parzen_log_likelihood` / `select_parzen_sigma` -- the Gaussian Parzen-window estimate used by
    Goodfellow et al. 2014, "Generative Adversarial Nets" (https://arxiv.org/abs/1406.2661),
    following Breuleux, Bengio & Vincent 2011, "Quickly Generating Representative Samples from an
    RBM-Derived Process": fit isotropic Gaussian kernels on generator samples, pick the width on
    a validation set, report the mean log-likelihood of the test set (+/- standard error).
  * `mode_coverage` -- for 2-D Gaussian mixtures (ring8, grid25), as in the mode-collapse
    studies of Metz et al. 2016 (Unrolled GANs, https://arxiv.org/abs/1611.02163) and
    Srivastava et al. 2017 (VEEGAN, https://arxiv.org/abs/1705.07761): each sample goes to its
    nearest mode, it is "high quality" if within 3 standard deviations of it, and we report the
    modes covered, the share of high-quality samples and KL(mode histogram || uniform).
  * `code_accuracy` -- InfoGAN's unsupervised classification (Chen et al. 2016,
    https://arxiv.org/abs/1606.03657): accuracy of a categorical code used as a class label
    after the best one-to-one matching of code values to labels (Hungarian algorithm).

DCGAN's checks (Radford et al. 2015, https://arxiv.org/abs/1511.06434)
  * `nearest_neighbours` -- nearest training images of generated samples (memorisation check);
  * `interpolate` / `step_evenness` -- walks between latent vectors, and how evenly the images
    change along them ("no sharp transitions");
  * `latent_arithmetic` -- vector arithmetic on averaged latent vectors.
"""

import math

import numpy as np
import scipy.optimize
import scipy.special

from models.errors import GanZooError

# Parzen widths searched by the GAN paper's protocol: 10 log-spaced values from 0.1 to 1.
PARZEN_SIGMAS = tuple(np.logspace(-1, 0, 10))


# --------------------------------------------------------------------------------------------
# Frechet distance
# --------------------------------------------------------------------------------------------


def _as_matrix(features, what="features"):
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise GanZooError(f"{what} must be a (n >= 2, d) array, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise GanZooError(f"{what} contain NaN or Inf: the model or extractor produced them")
    return features


def gaussian_statistics(features):
    """(mean (d,), covariance (d, d)) of `features` (n, d), the unbiased covariance."""
    features = _as_matrix(features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) between N(mu1, S1) and N(mu2, S2).

    Tr((S1 S2)^1/2) is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix S1^1/2 S2 S1^1/2 (which has the same spectrum as S1 S2), so no complex
    numbers or ill-conditioned general square roots are involved.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise GanZooError(
            f"Frechet distance needs matching statistics, got means {mu1.shape}, {mu2.shape} and "
            f"covariances {sigma1.shape}, {sigma2.shape}"
        )
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root
    return float(max(distance, 0.0))  # rounding can leave a tiny negative for equal inputs


def frechet_distance_features(features1, features2):
    """The Frechet distance between Gaussians fitted to two feature sets (n1, d) and (n2, d)."""
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


# --------------------------------------------------------------------------------------------
# Kernel distance (KID)
# --------------------------------------------------------------------------------------------


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    """The unbiased estimate of MMD^2 between samples x (m, d) and y (n, d), cubic kernel."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    return float(
        (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
        + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
        - 2.0 * k_xy.mean()
    )


def kernel_distance(features1, features2, subsets=100, subset_size=1000, seed=0):
    """KID: (mean, std) of the unbiased MMD^2 over `subsets` random subsets of each set.

    Each subset draws `subset_size` rows (at most the smaller set's size) without replacement,
    as in Binkowski et al.'s reference code. Values are usually quoted x 1000.
    """
    x, y = _as_matrix(features1), _as_matrix(features2)
    size = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)]
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


# --------------------------------------------------------------------------------------------
# Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020)
# --------------------------------------------------------------------------------------------

PRECISION_RECALL_K = 3  # Kynkaanniemi et al.'s k
DENSITY_COVERAGE_K = 5  # Naeem et al.'s k
# At most this many float64 distances (16 MB) per block. A pass peaks near 55 MB whatever N
# (10,000 x 10,000 at once would be 800 MB), ~170 MB when most pairs tie (e.g. generated
# samples that are all the same image).
_DISTANCE_BLOCK = 1 << 21


def _manifold_inputs(real, fake, k_real, k_fake, what):
    """The two feature sets as float64 matrices, or one GanZooError line saying what to pass."""
    for k in (k_real, k_fake):
        if k is not None and (not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1):
            raise GanZooError(f"{what}: k must be an integer >= 1, got {k!r}: pass the papers' k "
                              f"({PRECISION_RECALL_K} for precision / recall, {DENSITY_COVERAGE_K} for "
                              "density / coverage) or another positive integer")
    sets = []
    for features, name, k in ((real, "real", k_real), (fake, "generated", k_fake)):
        features = np.asarray(features, np.float64)
        if features.ndim != 2:
            raise GanZooError(f"{what}: {name} features must be a (samples, dimensions) array, "
                              f"got shape {features.shape}: pass one feature vector per row")
        least = 1 if k is None else k + 1
        if len(features) < least:
            reason = f" (a ball reaches the k={k}-th nearest other sample)" if k else ""
            raise GanZooError(f"{what} needs at least {least} {name} sample{'s' * (least > 1)}{reason}, got "
                              f"{len(features)}: pass more samples" + (" or a smaller k" if k else ""))
        if not np.all(np.isfinite(features)):
            raise GanZooError(f"{what}: {name} features contain NaN or Inf: the model or extractor "
                              "produced them")
        sets.append(features)
    if sets[0].shape[1] != sets[1].shape[1]:
        raise GanZooError(f"{what}: real features have {sets[0].shape[1]} dimensions, generated "
                          f"{sets[1].shape[1]}: pass features of the same extractor")
    return sets


def _rows_per_block(columns, batch_size):
    return batch_size if batch_size else max(1, _DISTANCE_BLOCK // max(columns, 1))


def _pair_squared_distances(a, b):
    """sum_d (a_i - b_i)^2 of paired rows: the reference value of a distance. It depends only
    on the two vectors (a - b and b - a square to the same numbers, summed in the same order),
    so X_j against X_i's radius is decided the same way in every pass and for every block size."""
    difference = a - b
    return (difference * difference).sum(axis=1)


class _Distances:
    """Squared Euclidean distances between the rows of `a` and of `b`, a block at a time.

    A block is computed fast as (|a_i|^2 + |b_j|^2) - 2 a_i.b_j with one matrix product, whose
    rounding depends on where a pair falls in the product; `tolerance` (a generous bound on the
    rounding of both formulas) bounds its difference from `_pair_squared_distances`, and every
    comparison with a radius that falls within it is
    decided on the reference value instead, so the results do not depend on the blocks.
    """

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.a_norms, self.b_norms = _squared_norms(a), _squared_norms(b)
        scale = self.a_norms.max() + self.b_norms.max()
        self.tolerance = 8.0 * (a.shape[1] + 1) * np.finfo(np.float64).eps * scale

    def block(self, start, stop):
        d2 = self.a[start:stop] @ self.b.T
        d2 *= -2.0
        d2 += np.add.outer(self.a_norms[start:stop], self.b_norms)
        return np.maximum(d2, 0.0, out=d2)

    def reference(self, start, rows, cols):
        out = np.empty(len(rows))
        step = max(1, _DISTANCE_BLOCK // max(self.a.shape[1], 1))
        for first in range(0, len(rows), step):  # with many duplicates every pair can be a near-tie
            part = slice(first, first + step)
            out[part] = _pair_squared_distances(self.a[start + rows[part]], self.b[cols[part]])
        return out

    def inside(self, start, d2, radii):
        """d2 <= radii (broadcast to d2's shape: the closed balls), near-ties re-checked."""
        inside = d2 <= radii + self.tolerance
        unsure = inside & (d2 > radii - self.tolerance)
        if unsure.any():
            rows, cols = np.nonzero(unsure)
            radii = np.broadcast_to(radii, d2.shape)
            inside[rows, cols] = self.reference(start, rows, cols) <= radii[rows, cols]
        return inside


def _neighbour_radii(features, ks, batch_size=None):
    """Squared distance of every row to its k-th nearest OTHER row, for each k: (len(ks), n).

    A row's distance to itself is excluded (set to inf) rather than skipped by position, so an
    exact duplicate of the row still counts as a neighbour at distance 0. The fast distances
    pick the candidates (every row whose fast distance is within twice the tolerance of the
    fast k-th smallest, which includes all rows whose reference distance can be among the k
    smallest); the radius is the k-th smallest reference distance among them.
    """
    n = len(features)
    distances = _Distances(features, features)
    kth = [k - 1 for k in ks]
    radii = np.empty((len(ks), n))
    rows_per_block = _rows_per_block(n, batch_size)
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        d2 = distances.block(start, stop)
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf
        fast = np.partition(d2, kth, axis=1)[:, kth]
        rows, cols = np.nonzero(d2 <= fast.max(axis=1, keepdims=True) + 2.0 * distances.tolerance)
        reference = distances.reference(start, rows, cols)
        order = np.lexsort((reference, rows))  # by row, then by distance
        first = np.searchsorted(rows[order], np.arange(stop - start))
        radii[:, start:stop] = reference[order][first[None, :] + np.array(kth)[:, None]]
    return radii


def precision_recall_density_coverage(real_features, fake_features, precision_recall_k=PRECISION_RECALL_K,
                                      density_coverage_k=DENSITY_COVERAGE_K, batch_size=None):
    """{"precision", "recall", "density", "coverage"} of generated features against real ones.

    X_1..X_N are the real features, Y_1..Y_M the generated ones, NND_k(X_i) the distance from
    X_i to its k-th nearest neighbour among the other real features, B(x, r) the CLOSED ball
    {y : ||y - x|| <= r} (a point exactly on the radius is inside).
      * precision = (1/M) sum_j 1[exists i: Y_j in B(X_i, NND_k(X_i))], k = precision_recall_k
      * recall    = (1/N) sum_i 1[exists j: X_i in B(Y_j, NND_k(Y_j))] (the same with the roles
        swapped: the generated manifold is built from the generated features)
      * density   = 1/(k M) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))], k = density_coverage_k
      * coverage  = (1/N) sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]
    Precision, recall and coverage lie in [0, 1]; density in [0, N/k] and is (k + 1)/k for a
    set against itself when no two distances tie. Distances are Euclidean, in float64 by
    blocks of `batch_size` rows (default: blocks of ~2M distances), so memory stays
    O(block + N + M) whatever the set sizes; a distance within rounding of a radius is
    recomputed from the difference vector, so ties (duplicates, a set against itself) are
    decided the same way whatever the blocks. Many exact duplicates (a generator whose samples
    are all one image) make every pair such a tie: correct, but several times slower.
    """
    what = "precision / recall / density / coverage"
    real, fake = _manifold_inputs(real_features, fake_features,
                                  max(precision_recall_k, density_coverage_k), precision_recall_k, what)
    return _manifold_metrics(real, fake, precision_recall_k, density_coverage_k, batch_size)


def precision_recall(real_features, fake_features, k=PRECISION_RECALL_K, batch_size=None):
    """(precision, recall) of Kynkaanniemi et al. 2019 with k-NN balls (k = 3 in the paper);
    the definitions are in `precision_recall_density_coverage`."""
    real, fake = _manifold_inputs(real_features, fake_features, k, k, "precision / recall")
    result = _manifold_metrics(real, fake, k, None, batch_size)
    return result["precision"], result["recall"]


def density_coverage(real_features, fake_features, k=DENSITY_COVERAGE_K, batch_size=None):
    """(density, coverage) of Naeem et al. 2020 with k-NN balls around the real features only
    (k = 5 in the paper); the definitions are in `precision_recall_density_coverage`."""
    real, fake = _manifold_inputs(real_features, fake_features, k, None, "density / coverage")
    result = _manifold_metrics(real, fake, None, k, batch_size)
    return result["density"], result["coverage"]


def _manifold_metrics(real, fake, pr_k, dc_k, batch_size):
    """One pass over the real-real, generated-generated (only for recall) and generated-real
    distances; `pr_k` / `dc_k` None skips precision-recall / density-coverage."""
    ks = [k for k in (pr_k, dc_k) if k is not None]
    real_radii = dict(zip(ks, _neighbour_radii(real, ks, batch_size)))
    fake_radii = _neighbour_radii(fake, [pr_k], batch_size)[0] if pr_k else None
    distances = _Distances(fake, real)
    precise = 0  # generated samples inside the real manifold (k = pr_k)
    recalled = np.zeros(len(real), bool)  # real samples inside the generated manifold
    in_balls = 0  # pairs (j, i) with Y_j in B(X_i, NND_k(X_i)), k = dc_k
    covered = np.zeros(len(real), bool)  # real balls holding a generated sample
    rows = _rows_per_block(len(real), batch_size)
    for start in range(0, len(fake), rows):
        stop = min(start + rows, len(fake))
        d2 = distances.block(start, stop)
        if pr_k:
            precise += int(np.count_nonzero(distances.inside(start, d2, real_radii[pr_k][None, :]).any(axis=1)))
            recalled |= distances.inside(start, d2, fake_radii[start:stop, None]).any(axis=0)
        if dc_k:
            inside = distances.inside(start, d2, real_radii[dc_k][None, :])
            in_balls += int(np.count_nonzero(inside))
            covered |= inside.any(axis=0)
    out = {}
    if pr_k:
        out["precision"] = precise / len(fake)
        out["recall"] = float(recalled.mean())
    if dc_k:
        out["density"] = in_balls / (dc_k * len(fake))
        out["coverage"] = float(covered.mean())
    return out


# --------------------------------------------------------------------------------------------
# Classifier (Inception) score
# --------------------------------------------------------------------------------------------


def classifier_score(probabilities, splits=10):
    """(mean, std) over `splits` equal parts of exp(E_x KL(p(y|x) || p(y))).

    `probabilities` (n, K) are softmax outputs. With one split this is exactly 1 when every row
    is the same and K when the rows are one-hot and spread evenly over the K classes.
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or len(p) < splits or splits < 1:
        raise GanZooError(
            f"classifier score needs (n, classes) probabilities with n >= splits={splits}, got {p.shape}"
        )
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # KL(p(y|x) || p(y)) per sample; rel_entr is 0 where p(y|x) == 0.
        kl = scipy.special.rel_entr(part, marginal).sum(axis=1)
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------------------------
# Parzen-window log-likelihood (Goodfellow et al. 2014, Breuleux et al. 2011)
# --------------------------------------------------------------------------------------------


def _squared_norms(x):
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


def _squared_distances(a, b, b_norms=None):
    """||a_i - b_j||^2 (len(a), len(b)) in float64 from float32 products, clipped at 0."""
    a32, b32 = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    if b_norms is None:
        b_norms = _squared_norms(b)
    a_norms = _squared_norms(a)
    products = (a32 @ b32.T).astype(np.float64)
    return np.clip(a_norms[:, None] + b_norms[None, :] - 2.0 * products, 0.0, None)


def parzen_log_likelihoods(points, centers, sigmas, batch_size=1000):
    """log p(x) of every row of `points` under each Parzen window in `sigmas`: (len(sigmas), n).

    p(x) = 1/N sum_i N(x; center_i, sigma^2 I). The squared distances of one block of
    `batch_size` points to one block of `batch_size` centers are computed once and reused for
    every sigma; a running log-sum-exp over the center blocks keeps memory at
    O(batch_size^2 + len(sigmas) * n) whatever the number of centers.
    """
    points = np.asarray(points, np.float64).reshape(len(points), -1)
    centers = np.asarray(centers, np.float64).reshape(len(centers), -1)
    sigmas = np.asarray(sigmas, np.float64).reshape(-1)
    if points.shape[1] != centers.shape[1]:
        raise GanZooError(
            f"Parzen window: points have {points.shape[1]} dimensions, centers {centers.shape[1]}"
        )
    if not np.all(sigmas > 0):
        raise GanZooError(f"Parzen widths must be positive, got {sigmas.tolist()}")
    n, d = points.shape
    center_norms = _squared_norms(centers)
    log_sums = np.full((len(sigmas), n), -np.inf)
    for start in range(0, n, batch_size):
        block = points[start : start + batch_size]
        rows = slice(start, start + len(block))
        for c_start in range(0, len(centers), batch_size):
            c_stop = c_start + batch_size
            distances = _squared_distances(block, centers[c_start:c_stop], center_norms[c_start:c_stop])
            for s, sigma in enumerate(sigmas):
                exponent = -distances / (2.0 * sigma**2)
                block_sum = scipy.special.logsumexp(exponent, axis=1)
                log_sums[s, rows] = np.logaddexp(log_sums[s, rows], block_sum)
    normaliser = np.log(len(centers)) + 0.5 * d * np.log(2.0 * np.pi * sigmas**2)
    return log_sums - normaliser[:, None]


def select_parzen_sigma(validation, centers, sigmas=PARZEN_SIGMAS, batch_size=1000):
    """(best sigma, {sigma: mean validation log-likelihood}): the width the protocol keeps."""
    means = parzen_log_likelihoods(validation, centers, sigmas, batch_size).mean(axis=1)
    best = int(np.argmax(means))
    return float(np.asarray(sigmas)[best]), {float(s): float(m) for s, m in zip(sigmas, means)}


def parzen_log_likelihood(test, validation, centers, sigmas=PARZEN_SIGMAS, batch_size=1000):
    """The GAN paper's protocol: sigma chosen on `validation`, log-likelihood of `test`.

    Returns a dict: `mean` and `stderr` (std / sqrt(n)) of the test log-likelihoods in nats,
    `sigma` (the chosen width) and `validation` ({sigma: mean validation log-likelihood}).
    """
    sigma, scores = select_parzen_sigma(validation, centers, sigmas, batch_size)
    values = parzen_log_likelihoods(test, centers, [sigma], batch_size)[0]
    return {
        "mean": float(values.mean()),
        "stderr": float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0,
        "sigma": sigma,
        "validation": scores,
    }


# --------------------------------------------------------------------------------------------
# Mode coverage of 2-D mixtures
# --------------------------------------------------------------------------------------------


def mode_coverage(points, means, std, min_count=1, quality_stds=3.0):
    """Mode statistics of 2-D `points` against a mixture with `means` (k, 2) and one `std`.

    Every point goes to its nearest mode and is high quality when within `quality_stds`
    standard deviations of it. A mode is covered when it holds at least `min_count`
    high-quality points. Returns a dict with
      `modes_covered` (int), `num_modes`, `high_quality` (fraction of all points),
      `counts` (high-quality points per mode), and
      `reverse_kl` -- KL(q || uniform) of the mode histogram q of the high-quality points
      (0 when they spread evenly, log k when they all sit in one mode; inf with none at all).
    """
    points = np.asarray(points, np.float64)
    means = np.asarray(means, np.float64)
    if points.ndim != 2 or points.shape[1] != means.shape[1] or len(points) == 0:
        raise GanZooError(
            f"mode coverage needs points (n, {means.shape[1]}), got shape {points.shape}"
        )
    distances = np.sqrt(((points[:, None, :] - means[None, :, :]) ** 2).sum(axis=-1))
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(points)), nearest] <= quality_stds * std
    counts = np.bincount(nearest[good], minlength=len(means))
    total = counts.sum()
    if total:
        q = counts / total
        reverse_kl = float(np.sum(scipy.special.rel_entr(q, np.full(len(means), 1.0 / len(means)))))
    else:
        reverse_kl = math.inf
    return {
        "modes_covered": int(np.sum(counts >= min_count)),
        "num_modes": int(len(means)),
        "high_quality": float(good.mean()),
        "reverse_kl": reverse_kl,
        "counts": counts.tolist(),
    }


# --------------------------------------------------------------------------------------------
# InfoGAN: a categorical code as a classifier
# --------------------------------------------------------------------------------------------


def code_accuracy(codes, labels):
    """(accuracy, {code: label}) of `codes` as predictions of `labels` after the best
    one-to-one matching of code values to labels (scipy's linear_sum_assignment on the
    contingency table). Codes left unmatched (more codes than labels) count as errors."""
    codes, labels = np.asarray(codes).reshape(-1), np.asarray(labels).reshape(-1)
    if len(codes) != len(labels) or len(codes) == 0:
        raise GanZooError(f"code accuracy needs as many codes as labels, got {len(codes)} and {len(labels)}")
    code_values, code_index = np.unique(codes, return_inverse=True)
    label_values, label_index = np.unique(labels, return_inverse=True)
    table = np.zeros((len(code_values), len(label_values)), np.int64)
    np.add.at(table, (code_index, label_index), 1)
    rows, cols = scipy.optimize.linear_sum_assignment(table, maximize=True)
    accuracy = table[rows, cols].sum() / len(codes)
    mapping = {int(code_values[r]): int(label_values[c]) for r, c in zip(rows, cols)}
    return float(accuracy), mapping


# --------------------------------------------------------------------------------------------
# DCGAN's checks
# --------------------------------------------------------------------------------------------


def nearest_neighbours(queries, reference, k=1, batch_size=256):
    """(indices (n, k), Euclidean distances (n, k)) of the k nearest rows of `reference` to
    every row of `queries` (both flattened), computed a block of queries at a time."""
    queries = np.asarray(queries, np.float32).reshape(len(queries), -1)
    reference = np.asarray(reference, np.float32).reshape(len(reference), -1)
    k = min(k, len(reference))
    norms = _squared_norms(reference)
    indices, distances = [], []
    for start in range(0, len(queries), batch_size):
        d2 = _squared_distances(queries[start : start + batch_size], reference, norms)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d2, part, axis=1).argsort(axis=1)
        part = np.take_along_axis(part, order, axis=1)
        indices.append(part)
        distances.append(np.sqrt(np.take_along_axis(d2, part, axis=1)))
    return np.concatenate(indices), np.concatenate(distances)


def interpolate(start, stop, steps):
    """`steps` latent vectors evenly spaced on the line from `start` to `stop` (both included):
    shape (steps, *start.shape). DCGAN's walks are linear."""
    weights = np.linspace(0.0, 1.0, steps).reshape(-1, *([1] * np.ndim(start)))
    return (1.0 - weights) * np.asarray(start) + weights * np.asarray(stop)


def step_evenness(paths):
    """How evenly images change along latent walks: paths (walks, steps, ...) of images.

    For each walk, the largest pixel distance between consecutive images divided by the mean
    one; averaged over walks. 1 means every step changes the image equally; a sharp transition
    (a jump from one garment to another) gives a value near the number of steps.
    """
    paths = np.asarray(paths, np.float64)
    walks, length = paths.shape[:2]
    differences = (paths[:, 1:] - paths[:, :-1]).reshape(walks, length - 1, -1)
    steps = np.sqrt((differences**2).sum(axis=-1))
    ratios = steps.max(axis=1) / np.maximum(steps.mean(axis=1), 1e-12)
    return float(ratios.mean())


def latent_arithmetic(group_a, group_b, group_c):
    """DCGAN's vector arithmetic: mean(a) - mean(b) + mean(c) of three groups of latent vectors."""
    return np.mean(group_a, axis=0) - np.mean(group_b, axis=0) + np.mean(group_c, axis=0)
