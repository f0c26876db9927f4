"""Bootstrap CIs and the gate's hypothesis tests: seeded, equal to scipy where scipy has the
test, intervals dual to the p-values, and error rates checked by (small) simulation.
benchmarks/gate_statistics.py runs the full simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest, wilcoxon

from harness.stats.hypothesis import (
    ItemStatistic,
    bootstrap_statistic_test,
    chunk_sizes,
    holm,
    mde,
    n_needed,
    one_sample_test,
    paired_binary,
    paired_continuous,
    paired_ordinal,
    paired_test,
    quantile_test,
    two_sided_p,
)
from harness.stats.intervals import bootstrap_mean


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


def test_resamples_are_drawn_in_bounded_chunks():
    sizes = list(chunk_sizes(2000, 1_000_000))
    assert sum(sizes) == 2000 and max(sizes) * 1_000_000 <= 2_000_000
    assert list(chunk_sizes(2000, 10)) == [2000]


def test_holm_matches_the_step_down_definition():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, float("nan"), 0.01])[0] == pytest.approx(0.5)
    assert math.isnan(holm([0.5, float("nan")])[1])


def test_exact_mcnemar_is_scipys_binomial_test_on_discordant_pairs():
    # discordant pairs: 12 items only the candidate gets right, 3 only the baseline
    cand = [1] * 12 + [0] * 3 + [1] * 20 + [0] * 5
    base = [0] * 12 + [1] * 3 + [1] * 20 + [0] * 5
    o = paired_binary(cand, base, 0.0, 0.05)
    assert o.method == "exact McNemar"
    assert o.p_above == pytest.approx(binomtest(12, 15, 0.5, alternative="greater").pvalue)
    assert two_sided_p("binary", cand, base) == pytest.approx(binomtest(12, 15, 0.5).pvalue)
    assert o.estimate == pytest.approx(9 / 40)


def test_tango_bounds_are_dual_to_the_margin_test():
    rng = np.random.default_rng(4)
    cand, base = (rng.random(80) < 0.6).astype(float), (rng.random(80) < 0.55).astype(float)
    o = paired_binary(cand, base, -0.05, 0.05)
    assert o.method == "Tango score test"
    assert o.low < o.estimate < o.high
    at_low = paired_binary(cand, base, o.low, 0.05)
    assert at_low.p_above == pytest.approx(0.05, abs=1e-3)  # the bound is where the test stops rejecting


def test_paired_bootstrap_bounds_are_dual_and_a_shift_is_detected():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 100)
    better = base + 0.5 + rng.normal(0, 0.1, 100)
    o = paired_continuous(better, base, 0.0, 0.05)
    assert o.low > 0.4 and o.p_above < 0.01 and o.method == "studentized paired bootstrap"
    # the bound is where the one-sided test stops rejecting
    assert paired_continuous(better, base, o.low - 1e-4, 0.05).p_above <= 0.05
    assert paired_continuous(better, base, o.low + 1e-4, 0.05).p_above > 0.05
    same = base + rng.normal(0, 0.1, 100)
    n = paired_continuous(same, base, 0.0, 0.025)
    assert n.low < 0 < n.high and two_sided_p("continuous", same, base) > 0.05


def test_wilcoxon_is_scipys_and_estimates_the_hodges_lehmann_shift():
    d = np.array([1, 2, 0, 1, 3, -1, 2, 1, 0, 2, 1, 1, -2, 2, 1, 3, 1, 0, 2, 1], dtype=float)
    base = np.full(len(d), 5.0)
    o = paired_ordinal(base + d, base, 0.0, 0.05)
    nz = d[d != 0]
    assert o.p_above == pytest.approx(wilcoxon(nz, alternative="greater", method="approx", correction=True).pvalue)
    i, j = np.triu_indices(len(d))
    assert o.estimate == pytest.approx(np.median((d[i] + d[j]) / 2))
    assert o.low <= o.estimate <= o.high


def test_one_sample_binary_is_clopper_pearson():
    values = [1.0] * 30 + [0.0] * 10
    o = one_sample_test("binary", values, 0.6, 0.05)
    ci = binomtest(30, 40).proportion_ci(0.90, method="exact")
    assert (o.low, o.high) == pytest.approx((ci.low, ci.high))
    assert o.p_above == pytest.approx(binomtest(30, 40, 0.6, alternative="greater").pvalue)


def test_quantile_test_is_exact_and_refuses_to_bound_a_p95_from_20_requests():
    x = np.arange(1, 21, dtype=float)  # 20 requests
    o = quantile_test(x, 0.95, 100.0, 0.05)  # every request is under 100 s
    assert o.p_below == pytest.approx(binom.sf(19, 20, 0.95))  # = 0.95^20 = 0.358: can't conclude
    assert math.isinf(o.high)
    big = quantile_test(np.arange(1, 201, dtype=float), 0.95, 1000.0, 0.05)
    assert big.p_below < 0.01 and big.high < 200


def test_paired_bootstrap_of_a_run_statistic_pairs_shared_items():
    ids = tuple(str(i) for i in range(50))
    fast = np.linspace(1, 2, 50)
    cand = ItemStatistic(ids, lambda idx: float(np.percentile(fast[list(idx)], 95)))
    base = ItemStatistic(ids, lambda idx: float(np.percentile(fast[list(idx)] + 1.0, 95)))
    o = bootstrap_statistic_test(cand, 0.0, 0.05, 300, 0, baseline=base)
    assert o.estimate == pytest.approx(-1.0) and o.low == pytest.approx(-1.0) and o.p_below < 0.01


def test_mde_and_items_needed():
    se = 0.1
    assert mde(se, 0.05, 0.8) == pytest.approx((1.6449 + 0.8416) * se, rel=1e-3)
    assert n_needed(40, se, 0.5 * mde(se, 0.05, 0.8), 0.05, 0.8) == 160  # half the gap -> four times the items
    assert math.isinf(n_needed(40, se, 0.0, 0.05))


@pytest.mark.parametrize("kind", ["binary", "continuous", "ordinal"])
def test_false_pass_rate_at_the_margin_is_at_most_alpha_by_simulation(kind):
    """300 datasets with the true difference exactly at the non-inferiority margin: the rule
    may pass at most about alpha of the time (binomial noise allowed: 300 draws, sd 0.013)."""
    rng = np.random.default_rng({"binary": 1, "continuous": 2, "ordinal": 3}[kind])
    n, margin, passes = 60, {"binary": 0.05, "continuous": 0.02, "ordinal": 1.0}[kind], 0
    for _ in range(300):
        if kind == "binary":
            cells = rng.choice(4, size=n, p=[0.5, 0.10, 0.15, 0.25])  # P(10) - P(01) = -0.05
            cand, base = np.isin(cells, (0, 1)).astype(float), np.isin(cells, (0, 2)).astype(float)
        elif kind == "continuous":
            base = rng.uniform(0, 1, n)
            cand = base - margin + rng.normal(0, 0.15, n)
        else:
            base = rng.integers(3, 9, n).astype(float)
            cand = base - 1 + rng.choice([-2, -1, 0, 1, 2], size=n, p=[0.1, 0.2, 0.4, 0.2, 0.1])
        o = paired_test(kind, cand, base, -margin, 0.05, 500, int(rng.integers(1 << 30)), bounds=False)
        passes += o.p_above <= 0.05
    assert passes / 300 <= 0.09


def test_small_p_values_are_resolved_beyond_the_resample_count():
    """A clear effect must survive a Holm correction over many comparisons: its p-value is not
    floored at 1 / (resamples + 1)."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 0.3, 16)
    o = paired_continuous(base + 0.3 + rng.normal(0, 0.05, 16), base, 0.0, 0.05, resamples=500)
    assert o.p_above < 1 / 501
    quick = paired_continuous(base + 0.3 + rng.normal(0, 0.05, 16), base, 0.0, 0.05, resamples=500, refine=False)
    assert quick.p_above == pytest.approx(1 / 501)


def test_ratio_test_is_the_mean_test_of_the_linearised_ratio():
    from harness.stats.hypothesis import Ratio, one_sample_mean, ratio_test

    rng = np.random.default_rng(8)
    tokens, seconds = rng.poisson(20, 30).astype(float), rng.gamma(4, 0.25, 30)
    r = Ratio(tuple(tokens), tuple(seconds))
    o = ratio_test(r, 18.0, 0.05, 500, 0)
    assert o.estimate == pytest.approx(tokens.sum() / seconds.sum())
    same = one_sample_mean(tokens - 18.0 * seconds, 0.0, 0.05, 500, 0)
    assert (o.p_above, o.p_below) == pytest.approx((same.p_above, same.p_below))
    assert o.low < o.estimate < o.high
    # exp of a ratio (corpus perplexity): the bound on the perplexity is the bound on log-perplexity, exponentiated
    nll = rng.uniform(20, 40, 30)
    ppl = ratio_test(Ratio(tuple(nll), tuple(np.full(30, 10.0)), exp=True), 20.0, 0.05, 500, 0)
    assert ppl.estimate == pytest.approx(math.exp(nll.sum() / 300)) and ppl.low < ppl.estimate < ppl.high


def test_bootstrap_by_value_counts_matches_index_resampling_for_many_items():
    """From COUNTS_MIN_N items on, 0/1 (and other few-valued) scores are bootstrapped by drawing
    value counts: the same distribution as drawing item indices, so the interval must agree with
    an index bootstrap (a different random stream: within Monte Carlo error) and with the normal
    approximation at this n."""
    import numpy as np

    from harness.stats.intervals import COUNTS_MIN_N, bootstrap_mean

    rng = np.random.default_rng(1)
    x = (rng.random(25_000) < 0.3).astype(float)
    assert len(x) >= COUNTS_MIN_N
    fast = bootstrap_mean(x, resamples=4000, seed=0)
    idx = rng.integers(0, len(x), size=(4000, len(x)))
    slow = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
    se = x.std() / np.sqrt(len(x))
    for got, want, normal in ((fast.low, slow[0], x.mean() - 1.96 * se), (fast.high, slow[1], x.mean() + 1.96 * se)):
        assert abs(got - want) < 0.15 * se and abs(got - normal) < 0.15 * se
    # below the threshold nothing changes: the same figures as an index bootstrap with the same seed
    small = x[:500]
    r = np.random.default_rng(0)
    want = np.quantile(np.concatenate([small[r.integers(0, 500, size=(2000, 500))].mean(axis=1)]), [0.025, 0.975])
    got = bootstrap_mean(small, resamples=2000, seed=0)
    assert (got.low, got.high) == (float(want[0]), float(want[1]))


def test_a_minority_of_broken_items_does_not_pass_more_than_alpha_by_simulation():
    """The regression shape the plain bootstrap passed 19% of the time at n = 16: a tenth of items
    lose 60-100% of their score (mean loss exactly at the margin). With the declared range [0, 1]
    the gate's paired test stays at alpha (betting bound below 30 items)."""
    from harness.stats.hypothesis import paired_test

    rng = np.random.default_rng(11)
    passes = 0
    for _ in range(200):
        base = rng.uniform(0.3, 0.85, 16)
        broken = rng.random(16) < 0.1
        cand = np.where(broken, base * (1 - rng.uniform(0.6, 1.0, 16)), base + rng.normal(0, 0.02, 16))
        margin = 0.1 * 0.8 * 0.575  # the expected loss: the truth sits exactly on the rule's threshold
        out = paired_test("continuous", list(np.clip(cand, 0, 1)), list(base), -margin, 0.05, 300, 0, bounds=False,
                          support=(0.0, 1.0))
        passes += out.p_above <= 0.05
    assert passes / 200 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 200)


def test_exact_bounds_for_samples_without_variation():
    from harness.stats.bounded import constant_sample_test

    p_above, p_below, low, high = constant_sample_test(0.0, 20, 0.0, 1.0, 0.1, 0.05)
    assert high == pytest.approx(1 - 0.05 ** (1 / 20)) and low == 0.0
    assert p_below == pytest.approx(0.9 ** 20) and p_above == 1.0  # (1 - 0.1)^20 = 0.12: 0 of 20 can't certify <= 0.1
    assert constant_sample_test(0.0, 40, 0.0, 1.0, 0.1, 0.05)[1] == pytest.approx(0.9 ** 40)  # 0.015: it can
