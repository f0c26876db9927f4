"""Tests over items that come in correlated clusters (a conversation's turns, HaluEval's two
answers over one passage, lm-eval documents sharing a passage).

Items of one cluster are not independent draws: resampling them one by one makes intervals too
narrow and gates too eager. Here the cluster is the unit: the mean over items is a ratio of
cluster sums to cluster sizes, tested with the cluster as the resampled unit
(benchmarks/cluster_coverage.py measures coverage at intra-cluster correlation 0.5)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.stats.hypothesis import Ratio, TestOutcome, one_sample_mean, ratio_test
from harness.stats.intervals import cluster_sums


def is_clustered(cluster_of: Mapping[str, str], items) -> bool:
    """Whether any two of these items share a cluster."""
    seen = [cluster_of.get(i, i) for i in items]
    return len(set(seen)) < len(seen)


def clustered_mean_test(values: Mapping[str, float], cluster_of: Mapping[str, str], threshold: float, alpha: float,
                        resamples: int = 2000, seed: int = 0, support: tuple[float, float] | None = None,
                        estimand: str = "mean", refine: bool = True) -> TestOutcome:
    """The mean of per-item values against a threshold, resampling clusters (`cluster_of`: item
    id -> cluster; an item not in it is its own cluster). Clusters of equal size: their means
    are independent draws of the same mean, tested as one_sample_mean does (with the range's
    safeguards); unequal sizes: the ratio of cluster sums to sizes, by the linearised ratio test."""
    import numpy as np

    items = list(values)
    x = np.array([values[i] for i in items], dtype=float)
    sums, sizes = cluster_sums(x, [cluster_of.get(i, i) for i in items])
    k = len(sums)
    if len(set(sizes.tolist())) == 1:
        o = one_sample_mean(sums / sizes, threshold, alpha, resamples, seed, refine, support=support)
        method = f"{o.method}, resampling {k} clusters of {int(sizes[0])} items"
    else:
        o = ratio_test(Ratio(tuple(sums), tuple(sizes)), threshold, alpha, resamples, seed, estimand=estimand, bounds=refine)
        method = f"cluster bootstrap of the mean ({k} clusters of {int(sizes.min())}-{int(sizes.max())} items)"
    return TestOutcome(float(x.mean()), o.low, o.high, o.p_above, o.p_below, len(x), method, estimand, o.se)


def clustered_paired_test(candidate: Mapping[str, float], baseline: Mapping[str, float], cluster_of: Mapping[str, str],
                          threshold: float, alpha: float, resamples: int = 2000, seed: int = 0,
                          support: tuple[float, float] | None = None, refine: bool = True) -> TestOutcome:
    """The mean paired difference on the items both have, resampling clusters of items."""
    shared = [i for i in candidate if i in baseline]
    d = {i: candidate[i] - baseline[i] for i in shared}
    spread = None if support is None else (support[0] - support[1], support[1] - support[0])
    return clustered_mean_test(d, cluster_of, threshold, alpha, resamples, seed, spread, "mean difference", refine)
