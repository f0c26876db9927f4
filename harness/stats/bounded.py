"""Tests of a mean that hold at any n for values with a declared range, whatever their shape.

The studentized bootstrap of a mean is accurate when the sample shows the distribution's shape.
A fine-tune that breaks a minority of items badly gives left-skewed differences whose tail a
small sample may hold once or not at all: the bootstrap then passes a regression far more often
than alpha (benchmarks/gate_statistics.py: 0.19 at n = 16). A declared range bounds what an
unseen item can contribute, and the tests here use it:

- values that all lie on the range's ends are 0/1 data: exact binomial (Clopper-Pearson);
- values with no variation at all: the exact bound on how much of the distribution can lie
  elsewhere, unseen in n draws (0 of 20 leaves up to 13.9% of the mass at the far end);
- otherwise a betting confidence bound (Waudby-Smith & Ramdas 2023, hedged capital with the
  predictable plug-in bet, capital averaged over seeded orderings): valid for any distribution
  on the range at every n, wider than the bootstrap's where the bootstrap would be right.

harness.stats.hypothesis decides when the bootstrap is trusted and when these take over."""

from __future__ import annotations

import math
from collections.abc import Sequence

ORDERINGS = 16
"""Seeded orderings whose capital is averaged (an average of test martingales' final values is
still an e-value): the bound no longer depends on the items' order in the file."""
BET_CAP = 0.99
"""The largest fraction of capital bet on one item (WSR's c < 1 keeps the capital positive, so
the test is valid for any c). Their suggested 0.75 caps the evidence one item can add so low that
16 items 0.25 apart from the threshold with spread 0.1 never decide (11% power in simulation);
0.99 decides them 90% of the time, and one item at the range's far end still cuts the capital
100-fold."""


def _capital(y, m: float, alpha: float, orders) -> float:
    """Final capital of betting that the mean of y (values in [0, 1]) exceeds m, averaged over
    the orderings (rows of `orders`). Large capital is evidence against H0: mean <= m (Ville's
    inequality: P(capital >= 1 / alpha) <= alpha under H0)."""
    import numpy as np

    ys = y[orders]
    n = ys.shape[1]
    i = np.arange(1, n + 1)
    mu = (0.5 + np.cumsum(ys, axis=1)) / (i + 1)
    var = (0.25 + np.cumsum((ys - mu) ** 2, axis=1)) / (i + 1)
    var_before = np.concatenate([np.full((ys.shape[0], 1), 0.25), var[:, :-1]], axis=1)
    bet = np.minimum(np.sqrt(2 * math.log(1 / alpha) / (n * var_before)), BET_CAP / max(m, 1e-12))
    log_capital = np.sum(np.log1p(bet * (ys - m)), axis=1)
    return float(np.mean(np.exp(np.minimum(log_capital, 700.0))))


def _p_exceeds(y, m: float, alpha: float, orders) -> float:
    """p-value of H0: mean <= m for y in [0, 1]."""
    if m >= 1:
        return 1.0
    if m < 0:
        return 0.0
    return min(1.0, 1.0 / _capital(y, m, alpha, orders))


def betting_test(values: Sequence[float], low: float, high: float, threshold: float, alpha: float, seed: int = 0,
                 bounds: bool = True):
    """Mean of values in [low, high] against a threshold: one-sided p-values both ways and the
    one-sided (1 - alpha) bounds, by betting (bounds=False: NaN bounds, for simulations).
    Returns (p_above, p_below, lower, upper)."""
    import numpy as np

    span = high - low
    y = np.clip((np.asarray(values, dtype=float) - low) / span, 0.0, 1.0)
    m = (threshold - low) / span
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(len(y)) for _ in range(ORDERINGS)])
    p_above = _p_exceeds(y, m, alpha, orders)
    p_below = _p_exceeds(1 - y, 1 - m, alpha, orders)
    if not bounds:
        return p_above, p_below, math.nan, math.nan
    mean = float(y.mean())
    lower = _boundary(lambda t: _p_exceeds(y, t, alpha, orders) <= alpha, 0.0, mean)
    upper = 1 - _boundary(lambda t: _p_exceeds(1 - y, t, alpha, orders) <= alpha, 0.0, 1 - mean)
    return p_above, p_below, low + span * lower, low + span * upper


def _boundary(rejects, lo: float, hi: float, iterations: int = 40) -> float:
    """The largest m in [lo, hi] that the test still rejects (it rejects small m, not large):
    the one-sided bound. lo itself when even lo is not rejected."""
    if not rejects(lo + 1e-12):
        return lo
    return bisect(rejects, lo, hi, iterations)


def bisect(holds, lo: float, hi: float, iterations: int = 60) -> float:
    """The boundary between lo (`holds` true) and hi (false) of a monotone predicate."""
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if holds(mid):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def constant_sample_test(value: float, n: int, low: float, high: float, threshold: float, alpha: float):
    """n values all equal to `value`, in [low, high]. Under H0 'mean >= t' (t > value) the mass
    q away from `value` must be at least (t - value) / (high - value), so seeing none of it in n
    draws has probability at most (1 - q)^n: the exact p-value. The bounds invert it: the mean
    lies within value +- (distance to the range's end) x (1 - alpha^(1/n)).
    Returns (p_above, p_below, lower, upper)."""
    far = 1 - alpha ** (1 / n)
    upper = value + (high - value) * far
    lower = value - (value - low) * far
    p_below = 1.0 if threshold <= value else (1 - (threshold - value) / (high - value)) ** n if threshold < high else 0.0
    p_above = 1.0 if threshold >= value else (1 - (value - threshold) / (value - low)) ** n if threshold > low else 0.0
    return p_above, p_below, lower, upper


def on_the_ends(values: Sequence[float], low: float, high: float) -> bool:
    """Every value sits on one end of the range: 0/1 data in another unit."""
    return all(abs(v - low) < 1e-12 or abs(v - high) < 1e-12 for v in values)
