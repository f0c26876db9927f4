"""Bootstrap CIs and paired comparisons: seeded, sensible coverage, detect real differences."""

from __future__ import annotations

import numpy as np

from harness.stats import bootstrap_mean, paired_comparison


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(1).normal(0.5, 0.2, 200)
    a, b = bootstrap_mean(values, seed=3), bootstrap_mean(values, seed=3)
    assert a == b
    assert a.low < a.mean < a.high and a.n == 200
    # the 95% interval of a mean of 200 N(0.5, 0.2) draws is about +-0.028
    assert 0.04 < a.high - a.low < 0.07


def test_bootstrap_degenerate_cases():
    assert bootstrap_mean([1.0, 1.0, 1.0]).low == 1.0
    assert bootstrap_mean([]).n == 0


def test_paired_comparison_detects_a_real_shift_and_not_noise():
    rng = np.random.default_rng(0)
    base = {str(i): float(v) for i, v in enumerate(rng.normal(0, 1, 100))}
    better = {k: v + 0.5 + rng.normal(0, 0.1) for k, v in base.items()}
    same = {k: v + rng.normal(0, 0.1) for k, v in base.items()}
    cmp = paired_comparison(better, base)
    assert cmp.diff.low > 0.4 and cmp.p_value < 0.01 and cmp.wins > 90
    noise = paired_comparison(same, base)
    assert noise.diff.low < 0 < noise.diff.high and noise.p_value > 0.05


def test_paired_comparison_uses_only_shared_items():
    cmp = paired_comparison({"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.0, "b": 0.0})
    assert cmp.diff.n == 2 and cmp.diff.mean == 1.0
