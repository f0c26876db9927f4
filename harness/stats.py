"""Confidence intervals and paired tests over items. Seeded: the same rows always give the
same interval. numpy only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 3) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"


@dataclass(frozen=True)
class PairedComparison:
    """candidate - baseline on the items both have, with a CI and a two-sided p-value."""

    diff: Estimate
    p_value: float
    wins: int
    losses: int
    ties: int


def bootstrap_mean(values, resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Percentile bootstrap of the mean, resampling items with replacement."""
    import numpy as np

    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(x.mean())
    if n == 1 or np.all(x == x[0]):
        return Estimate(mean, mean, mean, n)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    means = x[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(mean, float(low), float(high), n)


def paired_comparison(candidate: dict[str, float], baseline: dict[str, float], resamples: int = 2000,
                      confidence: float = 0.95, seed: int = 0) -> PairedComparison:
    """Paired bootstrap CI of the mean difference over shared item ids, and a sign-flip
    permutation test of 'no difference' (exact enough with `resamples` flips)."""
    import numpy as np

    shared = sorted(set(candidate) & set(baseline))
    d = np.array([candidate[k] - baseline[k] for k in shared], dtype=float)
    est = bootstrap_mean(d, resamples, confidence, seed)
    if len(d) == 0:
        return PairedComparison(est, float("nan"), 0, 0, 0)
    observed = abs(d.mean())
    rng = np.random.default_rng(seed + 1)
    signs = rng.choice([-1.0, 1.0], size=(resamples, len(d)))
    flipped = np.abs((signs * d).mean(axis=1))
    # +1 in numerator and denominator: a permutation p-value is never exactly 0.
    p = float((np.sum(flipped >= observed - 1e-12) + 1) / (resamples + 1))
    return PairedComparison(est, p, int(np.sum(d > 0)), int(np.sum(d < 0)), int(np.sum(d == 0)))


def bootstrap_statistic(n: int, statistic, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Percentile bootstrap of any corpus-level statistic: `statistic(indices)` is computed on
    the full item set and on `resamples` resamples of item indices (with replacement)."""
    import numpy as np

    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    point = float(statistic(list(range(n))))
    rng = np.random.default_rng(seed)
    values = [float(statistic(list(idx))) for idx in rng.integers(0, n, size=(resamples, n))]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return Estimate(point, float(low), float(high), n)
