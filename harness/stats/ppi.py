"""Prediction-powered inference for a mean (Angelopoulos et al., 2023; the power-tuned "PPI++"
estimator): an LLM judge rates every item, people rate a random slice, and the human mean is
estimated from both.

    estimate = mean_rated(human) + lam * (mean_unrated(judge) - mean_rated(judge))

The rated slice measures how far the judge is off (its bias, on the items people rated); the
judge's ratings of the other items carry what the slice alone lacks. `lam` is tuned from the
data (the covariance of judge and human on the slice): a judge that tracks people gets weight
near 1, a judge that is noise gets weight near 0, and the estimate falls back to the human slice
alone, so the interval is never much wider than the slice's own. Its variance adds both samples':

    var = var_rated(human - lam * judge) / n + lam^2 * var_unrated(judge) / N

The normal interval is valid when the rated slice is a uniform random sample of the items (as
`harness review export` draws it). Simulated coverage is in benchmarks/gate_statistics.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist, fmean, variance


@dataclass(frozen=True)
class CalibratedMean:
    """A human-scale mean estimated from judge ratings of every item and human ratings of a slice."""

    estimate: float
    low: float
    high: float
    se: float
    judge_mean: float
    """The judge's own mean over every item: the uncorrected figure."""
    judge_bias: float
    """mean(judge - human) on the rated slice: how far the judge is off there."""
    weight: float
    """lam, the weight the judge's ratings of unrated items get (0: the human slice alone)."""
    n_rated: int
    n_unrated: int
    human_low: float
    human_high: float
    """The human slice's own interval (normal), for comparison: the calibrated one should be narrower."""

    def p_below(self, threshold: float) -> float:
        """One-sided p-value against 'the human mean is below threshold' (small: it is above)."""
        return _normal_tail(self.estimate, self.se, threshold, above=False)

    def p_above(self, threshold: float) -> float:
        """One-sided p-value against 'the human mean is above threshold' (small: it is below)."""
        return _normal_tail(self.estimate, self.se, threshold, above=True)


def _normal_tail(estimate: float, se: float, threshold: float, above: bool) -> float:
    if se <= 0:
        return 0.0 if (estimate < threshold if above else estimate > threshold) else 1.0
    z = (estimate - threshold) / se
    return NormalDist().cdf(z) if above else 1 - NormalDist().cdf(z)


def calibrated_mean(judge: dict[str, float], human: dict[str, float], confidence: float = 0.95,
                    tune: bool = True) -> CalibratedMean:
    """PPI++ for the mean of `human` over the items of `judge` (item id -> rating). Items with a
    human rating form the rated slice (they need a judge rating too); the others are unrated.
    Needs at least 2 rated items. `tune=False` fixes lam at 1 (classic PPI)."""
    rated = [k for k in human if k in judge]
    if len(rated) < 2:
        raise ValueError(f"prediction-powered inference needs at least 2 items rated by both people and the judge; got {len(rated)}")
    y = [human[k] for k in rated]
    f = [judge[k] for k in rated]
    unrated = [judge[k] for k in judge if k not in human]
    n, big_n = len(rated), len(unrated)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    var_y = variance(y)
    human_se = math.sqrt(var_y / n)
    if big_n < 2:  # nothing beyond the slice to borrow from
        lam = 0.0
    elif tune:
        var_f = variance(f + unrated)
        cov = sum((a - fmean(y)) * (b - fmean(f)) for a, b in zip(y, f)) / (n - 1)
        lam = 0.0 if var_f == 0 else max(0.0, min(1.0, cov / ((1 + n / big_n) * var_f)))
    else:
        lam = 1.0
    residual = [a - lam * b for a, b in zip(y, f)]
    estimate = fmean(y) + (lam * (fmean(unrated) - fmean(f)) if lam else 0.0)
    se = math.sqrt(variance(residual) / n + (lam ** 2 * variance(unrated) / big_n if lam else 0.0))
    return CalibratedMean(estimate, estimate - z * se, estimate + z * se, se, fmean(list(judge.values())),
                          fmean(b - a for a, b in zip(y, f)), lam, n, big_n,
                          fmean(y) - z * human_se, fmean(y) + z * human_se)


def rated_items_needed(judge_sd: float, residual_sd: float, human_sd: float, width: float, n_items: int,
                       confidence: float = 0.95) -> int:
    """People-rated items for a calibrated interval of total `width` over `n_items` judged items:
    the smallest n at which either the judge-corrected interval (lam = 1: spread of human - judge
    `residual_sd` on the n rated, the judge's spread `judge_sd` on the N - n others) or the
    people's slice alone (`human_sd`; the tuned estimator is never much wider than it) is that
    narrow. Returns n_items + 1 when even rating everything would not reach it."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = width / 2
    for n in range(2, n_items + 1):
        corrected = math.sqrt(residual_sd ** 2 / n + judge_sd ** 2 / (n_items - n)) if n < n_items else math.inf
        if z * min(corrected, human_sd / math.sqrt(n)) <= half:
            return n
    return n_items + 1
