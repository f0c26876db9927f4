"""Prediction-powered inference (harness.stats.ppi), by simulation: a judge with a planted bias,
people rating a random slice."""

from __future__ import annotations

import random
import statistics

import pytest

from harness.stats.ppi import calibrated_mean, rated_items_needed


def _datasets(k: int, noise: float, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(k):
        h = [float(min(10, max(1, round(rng.gauss(6, 1.5))))) for _ in range(600)]
        j = [min(10.0, max(1.0, x + 1.0 + rng.gauss(0, noise))) for x in h]
        rated = rng.sample(range(600), 60)
        yield calibrated_mean({str(i): j[i] for i in range(600)}, {str(i): h[i] for i in rated}), statistics.fmean(j)


TRUTH = 5.9996  # the mean of round(N(6, 1.5)) clipped to 1-10 (a million draws: benchmarks/judge_calibration.py)


def test_the_corrected_interval_covers_the_human_mean_and_is_narrower_than_the_slice_alone():
    ests = list(_datasets(300, noise=1.0))
    coverage = sum(e.low <= TRUTH <= e.high for e, _ in ests) / len(ests)
    assert 0.91 <= coverage <= 0.99
    assert sum(abs(raw - TRUTH) < 0.3 for _, raw in ests) == 0  # the raw judge is a point off, always
    assert statistics.fmean(e.high - e.low for e, _ in ests) < 0.8 * statistics.fmean(e.human_high - e.human_low for e, _ in ests)
    assert all(abs(e.judge_bias - 1.0) < 0.5 for e, _ in ests)


def test_a_judge_that_is_noise_gets_little_weight_and_the_slice_decides():
    ests = list(_datasets(100, noise=8.0, seed=1))
    assert statistics.fmean(e.weight for e, _ in ests) < 0.2
    assert statistics.fmean(e.high - e.low for e, _ in ests) <= 1.05 * statistics.fmean(e.human_high - e.human_low for e, _ in ests)


def test_too_few_rated_items_and_the_slice_size_plan():
    with pytest.raises(ValueError, match="at least 2 items rated"):
        calibrated_mean({"a": 5.0, "b": 6.0}, {"a": 5.0})
    # a judge that tracks people (residual sd 0.5) needs far fewer rated items than one that does not
    good = rated_items_needed(judge_sd=1.8, residual_sd=0.5, human_sd=1.5, width=0.4, n_items=1000)
    poor = rated_items_needed(judge_sd=1.8, residual_sd=2.0, human_sd=1.5, width=0.4, n_items=1000)
    assert good < poor <= 1000
    assert rated_items_needed(judge_sd=1.8, residual_sd=2.0, human_sd=1.5, width=0.01, n_items=100) == 101
