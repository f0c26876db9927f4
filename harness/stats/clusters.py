"""Tests over items that come in correlated clusters (a conversation's turns, HaluEval's two
answers over one passage, lm-eval documents sharing a passage).

Items of one cluster are not independent draws: resampling them one by one makes intervals too
narrow and gates too eager. Here the cluster is the unit: the mean over items is a ratio of
cluster sums to cluster sizes, tested with the cluster as the resampled unit
(benchmarks/cluster_coverage.py measures coverage at intra-cluster correlation 0.5)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.stats.bounded import bisect
from harness.stats.hypothesis import TestOutcome, one_sample_mean
from harness.stats.intervals import cluster_sums


def is_clustered(cluster_of: Mapping[str, str], items) -> bool:
    """Whether any two of these items share a cluster."""
    seen = [cluster_of.get(i, i) for i in items]
    return len(set(seen)) < len(seen)


def clustered_mean_test(values: Mapping[str, float], cluster_of: Mapping[str, str], threshold: float, alpha: float,
                        resamples: int = 2000, seed: int = 0, support: tuple[float, float] | None = None,
                        estimand: str = "mean", refine: bool = True) -> TestOutcome:
    """The mean of per-item values against a threshold, resampling clusters (`cluster_of`: item
    id -> cluster; an item not in it is its own cluster). Identical values: the exact bound with
    the clusters as the independent draws (none without a range). Clusters of equal size: their
    means are independent draws of the same mean, tested as one_sample_mean does (with the
    range's safeguards); unequal sizes: the ratio of cluster sums to sizes, linearised, with the
    range carried over to the linearised values."""
    import numpy as np

    items = list(values)
    x = np.array([values[i] for i in items], dtype=float)
    sums, sizes = cluster_sums(x, [cluster_of.get(i, i) for i in items])
    k, mean = len(sums), float(x.mean())
    if float(np.ptp(x)) <= 1e-12 * max(1.0, abs(mean)):
        o = one_sample_mean(np.full(k, mean), threshold, alpha, resamples, seed, refine, support=support)
        method = f"{o.method}, {k} clusters"
    elif len(set(sizes.tolist())) == 1:
        o = one_sample_mean(sums / sizes, threshold, alpha, resamples, seed, refine, support=support)
        method = f"{o.method}, resampling {k} clusters of {int(sizes[0])} items"
    else:
        o = _ratio_of_sums(sums, sizes, threshold, alpha, resamples, seed, support, refine)
        method = f"{o.method}, resampling {k} clusters of {int(sizes.min())}-{int(sizes.max())} items"
    return TestOutcome(mean, o.low, o.high, o.p_above, o.p_below, len(x), method, estimand, o.se)


def _ratio_of_sums(sums, sizes, threshold: float, alpha: float, resamples: int, seed: int,
                   support: tuple[float, float] | None, refine: bool) -> TestOutcome:
    """sum(sums) / sum(sizes) against t: the mean of u_c = sum_c - t size_c is <= 0 exactly when
    the ratio is <= t. With item values in [low, high] and low <= t <= high, u_c lies in
    [M (low - t), M (high - t)] (M the largest cluster), so one_sample_mean keeps the range's
    safeguards; bounds invert the test by bisection."""
    import numpy as np

    big = float(sizes.max())
    est = float(sums.sum() / sizes.sum())

    def test(t: float, refine: bool = True) -> TestOutcome:
        if support is not None and not support[0] <= t <= support[1]:  # a mean can't leave its range
            above = t < support[0]
            return TestOutcome(est, est, est, 0.0 if above else 1.0, 1.0 if above else 0.0, len(sums), "range", "mean", 0.0)
        lin = None if support is None else (big * (support[0] - t), big * (support[1] - t))
        return one_sample_mean(sums - t * sizes, 0.0, alpha, resamples, seed, refine, support=lin)

    at = test(threshold, refine)
    low = high = float("nan")
    if refine:
        lo_end, hi_end = support if support is not None else (est - 10 * (abs(est) + 1.0), est + 10 * (abs(est) + 1.0))
        low = bisect(lambda t: test(t, False).p_above <= alpha, lo_end, est, 40)
        high = bisect(lambda t: test(t, False).p_below > alpha, est, hi_end, 40)
    se = float(np.std(sums - est * sizes, ddof=1) / (np.sqrt(len(sums)) * sizes.mean()))
    return TestOutcome(est, low, high, at.p_above, at.p_below, len(sums), at.method.replace("studentized bootstrap",
                       "studentized cluster bootstrap of the ratio of sums"), "mean", se)


def clustered_paired_test(candidate: Mapping[str, float], baseline: Mapping[str, float], cluster_of: Mapping[str, str],
                          threshold: float, alpha: float, resamples: int = 2000, seed: int = 0,
                          support: tuple[float, float] | None = None, refine: bool = True) -> TestOutcome:
    """The mean paired difference on the items both have, resampling clusters of items."""
    shared = [i for i in candidate if i in baseline]
    d = {i: candidate[i] - baseline[i] for i in shared}
    spread = None if support is None else (support[0] - support[1], support[1] - support[0])
    return clustered_mean_test(d, cluster_of, threshold, alpha, resamples, seed, spread, "mean difference", refine)
