"""Anytime-valid confidence sequences for a bounded mean, so a gate may look at its data as it
arrives and stop as soon as a rule is decided without the repeated looks inflating its error.

The bound is the predictable plug-in empirical-Bernstein confidence sequence of Waudby-Smith and
Ramdas (2023, "Estimating means of bounded random variables by betting", Theorem 2): values are
rescaled to [0, 1] and, in a fixed order that does not depend on them, each gets a weight
lambda_i chosen from the values before it (larger when they vary little), and

    mean_lambda = sum(lambda_i x_i) / sum(lambda_i)
    half-width  = (log(1 / alpha) + sum(v_i psi(lambda_i))) / sum(lambda_i)
    v_i = 4 (x_i - running mean before i)^2,   psi(l) = (-log(1 - l) - l) / 4

so mean_lambda - half-width is a lower bound that holds at every n at once with probability
>= 1 - alpha, however often it is checked and whenever the evaluation stops (each side at
alpha). Unlike a Hoeffding-type bound it adapts to the values' own spread: a 0/1 rate near 0.9
or a ROUGE score with a small spread is decided far sooner than the worst case. Simulated error
rates and items used: benchmarks/gate_statistics.py (sequential section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

LAMBDA_CAP = 0.5
"""The largest weight a value gets (the paper's c = 1/2)."""


@dataclass(frozen=True)
class SequentialBound:
    """The anytime-valid one-sided bounds on a mean after n values."""

    mean: float
    """The plain mean (the bounds are centred on a weighted one, close to it)."""
    low: float
    """mean > low at every n simultaneously, with probability >= 1 - alpha."""
    high: float
    n: int
    sd: float
    """The values' standard deviation (for planning)."""


def sequential_bounds(values: list[float], low: float, high: float, alpha: float) -> list[tuple[float, float]]:
    """The anytime-valid one-sided (1 - alpha) (low, high) bounds on the mean after each of
    `values` (each in [low, high], taken in the order given): one pass."""
    width = high - low
    if width <= 0:
        raise ValueError(f"values need a range of positive width, got [{low}, {high}]")
    log_term = math.log(1 / alpha)
    sum_x = sum_sq = 0.0  # running sums for the plug-in mean and variance of the values before i
    weight = weighted = penalty = 0.0
    out = []
    for i, value in enumerate(values, start=1):
        x = min(1.0, max(0.0, (value - low) / width))
        mu_before = (0.5 + sum_x) / i  # the running estimates start at 1/2 and 1/4 (the paper's)
        var_before = (0.25 + sum_sq) / i
        lam = min(LAMBDA_CAP, math.sqrt(2 * log_term / (var_before * i * math.log(i + 1))))
        weight += lam
        weighted += lam * x
        penalty += (x - mu_before) ** 2 * (-math.log(1 - lam) - lam)  # v_i psi(lambda_i): the 4s cancel
        sum_x += x
        sum_sq += (x - (0.5 + sum_x) / (i + 1)) ** 2
        centre, half = weighted / weight, (log_term + penalty) / weight
        out.append((low + width * max(0.0, centre - half), low + width * min(1.0, centre + half)))
    return out


def sequential_bound(values: list[float], low: float, high: float, alpha: float) -> SequentialBound:
    """The bounds after all of `values` (see sequential_bounds), with the plain mean and spread."""
    n = len(values)
    if n == 0:
        return SequentialBound(float("nan"), -math.inf, math.inf, 0, float("nan"))
    lo, hi = sequential_bounds(values, low, high, alpha)[-1]
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return SequentialBound(mean, lo, hi, n, sd)


def items_to_decide(gap: float, sd: float, alpha: float, most: int = 10 ** 7) -> int | None:
    """About how many items the sequence needs before its half-width falls below `gap`, for
    values with standard deviation `sd` (its asymptotic width, sd * sqrt(2 log(1/alpha) log n / n)
    and the first-order cost of the weights); None when more than `most`."""
    if gap <= 0 or sd <= 0:
        return None if gap <= 0 else 2
    log_term = math.log(1 / alpha)

    def half(n: int) -> float:
        return sd * math.sqrt(2 * log_term * math.log(n + 1) / n) * 1.1 + log_term / (LAMBDA_CAP * n)

    n = 2
    while n <= most:
        if half(n) < gap:
            lo, hi = n // 2, n
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if half(mid) < gap else (mid, hi)
            return hi
        n *= 2
    return None
