"""Confidence intervals over items (the tables' figures). Seeded: the same rows always give the
same interval. Tests and verdicts live in harness.stats.hypothesis."""

from __future__ import annotations

from dataclasses import dataclass

from harness.stats.hypothesis import chunk_sizes


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 3) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"


COUNTS_MIN_N = 2000
"""From this many items on, bootstrap_mean draws value counts instead of item indices (below it,
figures stay exactly those of earlier releases, which drew indices)."""
COUNTS_MAX_DISTINCT = 64


def bootstrap_mean(values, resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                   clusters=None) -> Estimate:
    """Percentile bootstrap of the mean, resampling items with replacement; with `clusters` (one
    label per value: the turns of one conversation, the two answers over one passage) whole
    clusters are resampled, since items of a cluster are not independent draws."""
    import numpy as np

    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(x.mean())
    if n == 1 or np.all(x == x[0]):
        return Estimate(mean, mean, mean, n)

    rng = np.random.default_rng(seed)
    if clusters is not None:
        sums, sizes = cluster_sums(x, clusters)
        if len(sums) == 1:
            return Estimate(mean, float("nan"), float("nan"), n)  # one cluster: nothing to resample
        if len(sums) < n:
            k = len(sums)
            means = np.concatenate([sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
                                    for size in chunk_sizes(resamples, k) for idx in [rng.integers(0, k, size=(size, k))]])
            # Expanded percentile interval (Hesterberg 2015): few clusters make the plain one too
            # narrow (a bootstrap variance (k-1)/k of the truth, z where t belongs), so the
            # quantiles are taken further out, at the level where z equals sqrt(k/(k-1)) t_{k-1}.
            from scipy.stats import norm, t

            tail = float(norm.sf(np.sqrt(k / (k - 1)) * t.isf((1 - confidence) / 2, k - 1)))
            low, high = np.quantile(means, [tail, 1 - tail])
            return Estimate(mean, float(low), float(high), n)
    values, counts = np.unique(x, return_counts=True)
    if n >= COUNTS_MIN_N and len(values) <= COUNTS_MAX_DISTINCT:
        means = _count_means(values, counts, resamples, rng)
    else:
        # In chunks, so memory stays bounded (chunk x n indices) however many items there are.
        means = np.concatenate([x[rng.integers(0, n, size=(size, n))].mean(axis=1) for size in chunk_sizes(resamples, n)])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(mean, float(low), float(high), n)


def _count_means(values, counts, resamples: int, rng):
    """Few distinct values (0/1 scores, ratings) and many items: a resample's mean depends only on
    how many times each value was drawn, and those counts are multinomial(n, observed
    frequencies). The same bootstrap distribution, drawn in O(resamples x distinct values)
    instead of O(resamples x n): 25,000 items take milliseconds, not a third of a second."""
    n = int(counts.sum())
    return rng.multinomial(n, counts / n, size=resamples) @ values / n


def bootstrap_counts(values, counts, resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate | None:
    """bootstrap_mean of unclustered items given as distinct values and how many items have each
    (as a store counts them, without reading the items): the same Estimate, or None where
    bootstrap_mean would not draw value counts (fewer than COUNTS_MIN_N items, or too many
    distinct values), so the caller reads the items instead."""
    import numpy as np

    order = np.argsort(np.asarray(values, dtype=float))  # np.unique's order: the same draws
    v, c = np.asarray(values, dtype=float)[order], np.asarray(counts, dtype=np.int64)[order]
    n = int(c.sum())
    if n < COUNTS_MIN_N or len(v) > COUNTS_MAX_DISTINCT:
        return None
    mean = float(v @ c / n)
    if len(v) == 1:
        return Estimate(mean, mean, mean, n)
    means = _count_means(v, c, resamples, np.random.default_rng(seed))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(mean, float(low), float(high), n)


def bootstrap_statistic(n: int, statistic, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Percentile bootstrap of any corpus-level statistic: `statistic(indices)` is computed on
    the full item set and on `resamples` resamples of item indices (with replacement)."""
    import numpy as np

    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)

    point = float(statistic(list(range(n))))
    rng = np.random.default_rng(seed)
    values = np.array([float(statistic(list(idx))) for size in chunk_sizes(resamples, n) for idx in rng.integers(0, n, size=(size, n))])
    values = values[~np.isnan(values)]  # a resample can leave a figure undefined (e.g. no decisive verdict)
    if len(values) == 0:
        return Estimate(point, float("nan"), float("nan"), n)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return Estimate(point, float(low), float(high), n)


def cluster_sums(x, clusters):
    """Per-cluster sums and sizes of values x (arrays, in order of first appearance)."""
    import numpy as np

    index: dict = {}
    ids = np.array([index.setdefault(c, len(index)) for c in clusters])
    return np.bincount(ids, weights=np.asarray(x, dtype=float)), np.bincount(ids).astype(float)
