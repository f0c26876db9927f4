"""Hypothesis tests behind gate verdicts and report comparisons.

Every test answers the same question about a quantity theta (a mean, a paired difference, a
run-level statistic) and a threshold t: is theta above t, below t, or can the data not tell?
It returns one-sided p-values for both directions and the one-sided (1 - alpha) bounds, so a
verdict is "the interval lies entirely on one side" and the p-values say how strongly.

Which test fits depends on the metric's values (declared with the metric, see harness.stats.metricspec):

| values     | paired (candidate vs baseline)                          | one sample (absolute bound)         |
|------------|---------------------------------------------------------|-------------------------------------|
| binary     | exact McNemar at margin 0, Tango's score test otherwise | exact binomial (Clopper-Pearson)    |
| continuous | studentized bootstrap of the mean difference            | studentized bootstrap of the mean   |
| ordinal    | Wilcoxon signed-rank (Hodges-Lehmann shift)             | studentized bootstrap of the mean   |
| run-level  | paired percentile bootstrap over shared items           | percentiles: exact order statistics;|
|            |                                                         | ratios of sums: linearised mean;    |
|            |                                                         | others: percentile bootstrap        |

The bootstrap tests draw their resamples in chunks, so memory stays bounded
(chunk x n numbers) whatever the number of items. Seeded: the same rows give the same answer.
`benchmarks/gate_statistics.py` checks error rates and power by simulation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.stats import bounded

NAN = float("nan")
CHUNK_CELLS = 2_000_000
"""Resamples are drawn in chunks of at most this many numbers (about 16 MB of float64)."""


@dataclass(frozen=True)
class TestOutcome:
    """theta against a threshold: its estimate, one-sided bounds and p-values."""

    estimate: float
    low: float
    """One-sided (1 - alpha) lower bound: theta > low with confidence 1 - alpha."""
    high: float
    """One-sided (1 - alpha) upper bound."""
    p_above: float
    """p-value of H0: theta <= threshold (small when theta is above the threshold)."""
    p_below: float
    """p-value of H0: theta >= threshold (small when theta is below it)."""
    n: int
    method: str
    """The test, in words (e.g. 'exact McNemar')."""
    estimand: str
    """What theta is (e.g. 'difference in proportions', 'Hodges-Lehmann shift', 'p95')."""
    se: float
    """Standard error of the estimate at this n (for the minimum detectable effect)."""


# -- small helpers ------------------------------------------------------------------------------

def _norm_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def norm_ppf(q: float) -> float:
    """Standard normal quantile."""
    from scipy.stats import norm

    return float(norm.ppf(q))


def chunk_sizes(resamples: int, n: int):
    """Sizes of resample chunks so that chunk x n stays under CHUNK_CELLS."""
    step = max(1, CHUNK_CELLS // max(n, 1))
    done = 0
    while done < resamples:
        size = min(step, resamples - done)
        yield size
        done += size


_bisect = bounded.bisect
"""The boundary between lo (f true) and hi (f false) of a monotone predicate."""


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN and
    is not counted in the family."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [NAN] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda k: pvalues[k])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def mde(se: float, alpha: float, power: float = 0.8, sided: int = 1) -> float:
    """Minimum detectable effect: the true distance from the threshold that a test at level
    alpha detects with the given power, at the standard error of the current n (normal
    approximation). sided=2 for two-sided comparisons."""
    if not se or math.isnan(se):
        return NAN
    return (norm_ppf(1 - alpha / sided) + norm_ppf(power)) * se


def n_needed(n: int, se: float, distance: float, alpha: float, power: float = 0.8) -> float:
    """Items needed for a one-sided test to detect `distance` (the observed gap between the
    estimate and the threshold) with `power`: se shrinks as 1/sqrt(n)."""
    if n == 0 or not se or math.isnan(se) or distance == 0 or math.isnan(distance):
        return math.inf if distance == 0 else NAN
    return math.ceil(n * (mde(se, alpha, power) / abs(distance)) ** 2)


# -- paired tests -------------------------------------------------------------------------------

def mcnemar_exact(n10: int, n01: int, alternative: str) -> float:
    """Exact McNemar test of 'no difference' from the discordant pairs (scipy's binomtest):
    n10 = items the candidate gets right and the baseline wrong, n01 the reverse."""
    from scipy.stats import binomtest

    if n10 + n01 == 0:
        return 1.0
    return float(binomtest(n10, n10 + n01, 0.5, alternative=alternative).pvalue)


def _tango_z(n10: int, n01: int, n: int, t: float) -> float:
    """Tango's (1998) score statistic for H0: p10 - p01 = t in paired binary data, with the
    restricted maximum-likelihood estimate of p01 under H0."""
    ns = n - n10 - n01
    b = n10 * (1 - t) + n01 * (1 - 3 * t) - 2 * ns * t
    c = n01 * t * (1 - t)
    q = (b + math.sqrt(max(b * b + 8 * n * c, 0.0))) / (4 * n)
    q = min(max(q, max(0.0, -t)), (1 - t) / 2)
    var = n * (2 * q + t - t * t)
    diff = n10 - n01 - n * t
    if var <= 1e-15:
        return 0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def paired_binary(candidate: Sequence[float], baseline: Sequence[float], threshold: float, alpha: float,
                  bounds: bool = True) -> TestOutcome:
    """Difference in proportions (candidate - baseline) of 0/1 outcomes on the same items."""
    import numpy as np

    cand, base = np.asarray(candidate, dtype=float) > 0.5, np.asarray(baseline, dtype=float) > 0.5
    return paired_binary_counts(int(np.sum(cand & ~base)), int(np.sum(~cand & base)), len(candidate), threshold, alpha, bounds)


def paired_binary_counts(n10: int, n01: int, n: int, threshold: float, alpha: float, bounds: bool = True) -> TestOutcome:
    """paired_binary from the 2x2 table alone: n10 pairs the candidate gets right and the baseline
    wrong, n01 the reverse, n pairs in all (what a store can count without reading the items)."""
    if n == 0:
        return TestOutcome(NAN, NAN, NAN, NAN, NAN, 0, "exact McNemar", "difference in proportions", NAN)
    est = (n10 - n01) / n
    if abs(threshold) < 1e-12:
        p_above, p_below = mcnemar_exact(n10, n01, "greater"), mcnemar_exact(n10, n01, "less")
        method = "exact McNemar"
    else:
        z = _tango_z(n10, n01, n, threshold)
        p_above, p_below = 1 - _norm_cdf(z), _norm_cdf(z)
        method = "Tango score test"
    crit = norm_ppf(1 - alpha)
    # Bounds by inverting Tango's score test (continuous in the margin, unlike the exact test).
    low = _bisect(lambda t: _tango_z(n10, n01, n, t) > crit, -1 + 1e-9, est) if bounds and est > -1 + 1e-9 else -1.0
    high = _bisect(lambda t: _tango_z(n10, n01, n, t) >= -crit, est, 1 - 1e-9) if bounds and est < 1 - 1e-9 else 1.0
    # sd of the per-pair differences (+1 n10 times, -1 n01 times, 0 otherwise), ddof 1
    sd = math.sqrt(max(n10 + n01 - n * est * est, 0.0) / (n - 1)) if n > 1 else 0.0
    return TestOutcome(est, low, high, p_above, p_below, n, method, "difference in proportions", sd / math.sqrt(n))


def paired_continuous(candidate: Sequence[float], baseline: Sequence[float], threshold: float, alpha: float,
                      resamples: int = 2000, seed: int = 0, refine: bool = True,
                      support: tuple[float, float] | None = None) -> TestOutcome:
    """Mean difference on the same items, by the studentized (bootstrap-t) paired bootstrap of
    the differences where the sample's shape supports it (one_sample_mean). Chosen over a
    sign-flip permutation test, which is exact only for symmetric differences: on skewed ones
    (latency) it passed wrongly up to 11% of the time at n = 20 in simulation.

    `support`: the range of one item's value (low, high). Pairs whose values all sit on its ends
    are paired 0/1 outcomes (exact McNemar / Tango); otherwise the differences' range
    (low - high, high - low) lets one_sample_mean bound what it can't trust the bootstrap with."""
    import numpy as np

    if support is not None and len(candidate) and bounded.on_the_ends([*candidate, *baseline], *support):
        low, high = support
        o = paired_binary([(v - low) / (high - low) for v in candidate], [(v - low) / (high - low) for v in baseline],
                          threshold / (high - low), alpha, refine)
        span = high - low
        return TestOutcome(o.estimate * span, o.low * span, o.high * span, o.p_above, o.p_below, o.n,
                           o.method + " (values on the range's ends: 0/1 outcomes)", "mean difference", o.se * span)
    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    spread = None if support is None else (support[0] - support[1], support[1] - support[0])
    o = one_sample_mean(d, threshold, alpha, resamples, seed, refine, support=spread)
    return TestOutcome(o.estimate, o.low, o.high, o.p_above, o.p_below, o.n, o.method.replace("studentized bootstrap",
                       "studentized paired bootstrap"), "mean difference", o.se)


def wilcoxon_p(x, alternative: str) -> float:
    """scipy's Wilcoxon signed-rank test of x (zeros dropped). Exact where there are no tied
    magnitudes; with ties, the normal approximation with scipy's tie correction, as R's
    wilcox.test does (scipy would otherwise run a 10,000-resample permutation test per call,
    about a second each)."""
    import numpy as np
    from scipy.stats import wilcoxon

    x = np.asarray(x, dtype=float)
    x = x[np.abs(x) > 1e-12]
    if len(x) == 0:
        return 1.0
    ties = len(np.unique(np.abs(x))) < len(x)
    method = "approx" if ties else "auto"
    # With ties: continuity correction on, as R's wilcox.test has it by default (keeps the
    # level at small n with many tied ratings).
    return float(wilcoxon(x, alternative=alternative, method=method, correction=ties).pvalue)


def _wilcoxon_p(d, threshold: float) -> tuple[float, float]:
    """(p_above, p_below) of the Wilcoxon signed-rank test of d - threshold."""
    import numpy as np

    x = np.asarray(d, dtype=float) - threshold
    return wilcoxon_p(x, "greater"), wilcoxon_p(x, "less")


def hodges_lehmann(d) -> float:
    """Median of the Walsh averages (d_i + d_j) / 2, i <= j: the shift the signed-rank test
    estimates. Past 2,000 items a seeded random subset of 2 million Walsh averages is used."""
    import numpy as np

    d = np.asarray(d, dtype=float)
    n = len(d)
    if n <= 2000:
        i, j = np.triu_indices(n)
        return float(np.median((d[i] + d[j]) / 2))
    rng = np.random.default_rng(0)
    i = rng.integers(0, n, 2_000_000)
    j = rng.integers(0, n, 2_000_000)
    return float(np.median((d[i] + d[j]) / 2))


def paired_ordinal(candidate: Sequence[float], baseline: Sequence[float], threshold: float, alpha: float,
                   bounds: bool = True) -> TestOutcome:
    """Ordinal scores (e.g. 1-10 judge ratings): Wilcoxon signed-rank test of the shift in
    location, estimated by Hodges-Lehmann; bounds invert the test."""
    import numpy as np

    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(d)
    if n == 0:
        return TestOutcome(NAN, NAN, NAN, NAN, NAN, 0, "Wilcoxon signed-rank", "Hodges-Lehmann shift", NAN)
    est = hodges_lehmann(d)
    p_above, p_below = _wilcoxon_p(d, threshold)
    low = high = NAN
    if bounds:
        span = float(np.max(np.abs(d))) + 1.0
        low = _bisect(lambda t: _wilcoxon_p(d, t)[0] <= alpha, est - span, est, 40)
        high = _bisect(lambda t: _wilcoxon_p(d, t)[1] > alpha, est, est + span, 40)
    return TestOutcome(est, low, high, p_above, p_below, n, "Wilcoxon signed-rank", "Hodges-Lehmann shift", _sd(d) / math.sqrt(n))


# -- one sample ---------------------------------------------------------------------------------

def one_sample_binary(values: Sequence[float], threshold: float, alpha: float) -> TestOutcome:
    """Share of 1s against a bound: exact binomial test, Clopper-Pearson bounds."""

    return one_sample_binary_counts(sum(1 for v in values if v > 0.5), len(values), threshold, alpha)


def one_sample_binary_counts(k: int, n: int, threshold: float, alpha: float) -> TestOutcome:
    """one_sample_binary from the counts alone: k ones among n items."""
    from scipy.stats import binomtest

    if n == 0:
        return TestOutcome(NAN, NAN, NAN, NAN, NAN, 0, "exact binomial", "proportion", NAN)
    est = k / n
    if threshold <= 0:
        p_above, p_below = (0.0 if k > 0 else 1.0), 1.0
    elif threshold >= 1:
        p_above, p_below = 1.0, (0.0 if k < n else 1.0)
    else:
        p_above = float(binomtest(k, n, threshold, alternative="greater").pvalue)
        p_below = float(binomtest(k, n, threshold, alternative="less").pvalue)
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    return TestOutcome(est, float(ci.low), float(ci.high), p_above, p_below, n, "exact binomial", "proportion",
                       math.sqrt(max(est * (1 - est), 1e-12) / n))


SHAPE_MIN_N = 30
"""Below this many items a mean of bounded values is never left to the bootstrap alone: a rare
bad tail (a tenth of items broken) is too often absent from the sample or under-drawn."""
SHAPE_SKEW_FACTOR = 10.0
"""The bootstrap is trusted in a direction when n >= SHAPE_SKEW_FACTOR x g^2, g the sample's
skewness towards that direction's bad side (a form of Cochran's n > 25 g^2 rule, calibrated by
benchmarks/gate_statistics.py so every simulated cell keeps alpha)."""


def one_sample_mean(values: Sequence[float], threshold: float, alpha: float, resamples: int = 2000,
                    seed: int = 0, refine: bool = True, support: tuple[float, float] | None = None) -> TestOutcome:
    """Mean against a bound: studentized (bootstrap-t) resampling where the sample's shape
    supports it, which keeps its level at small n better than the percentile bootstrap.

    Each direction is checked on its own: a bound on the side of a long tail (a lower bound
    under left skew) is trusted only from n >= SHAPE_SKEW_FACTOR x skewness^2, and, for values
    with a declared range (`support`), from n >= SHAPE_MIN_N. Where it is not trusted, values
    with a range get the betting bound of harness.stats.bounded (valid at any n); values without
    one get no bound that side (infinite; the rule can't pass or fail on it). All values on the
    range's ends: the exact binomial test; no variation: the exact constant-sample bound with a
    range, none without. refine=False skips resolving small p-values (a simulation that only
    asks 'p <= alpha?')."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    n = len(x)
    method = "studentized bootstrap"
    if n == 0:
        return TestOutcome(NAN, NAN, NAN, NAN, NAN, 0, method, "mean", NAN)
    mean = float(x.mean())
    se = _sd(x) / math.sqrt(n)
    if support is not None and bounded.on_the_ends(x, *support) and support[1] > support[0]:
        low, high = support
        o = one_sample_binary([(v - low) / (high - low) for v in x], (threshold - low) / (high - low), alpha)
        return TestOutcome(mean, low + o.low * (high - low), low + o.high * (high - low), o.p_above, o.p_below, n,
                           "exact binomial (values on the range's ends: 0/1 outcomes)", "mean", se)
    # Identical values: their float sd can be 1e-17 rather than 0, which would hand the bootstrap a
    # zero-width interval; the range of the values says it exactly.
    if n < 2 or float(np.ptp(x)) <= 1e-12 * max(1.0, abs(mean)):
        if support is not None and n >= 1:
            p_above, p_below, low_b, high_b = bounded.constant_sample_test(mean, n, *support, threshold, alpha)
            return TestOutcome(mean, low_b, high_b, p_above, p_below, n, "exact bound (no variation)", "mean", 0.0)
        return TestOutcome(mean, -math.inf, math.inf, 1.0, 1.0, n, method + " (no variation and no declared range: "
                           "nothing bounds what unseen items could score)", "mean", 0.0)
    boot = _bootstrap_t(x, mean, se, threshold, alpha, resamples, seed, refine)
    g = _skewness(x)
    trust_low = n >= SHAPE_SKEW_FACTOR * max(0.0, -g) ** 2 and (support is None or n >= SHAPE_MIN_N)
    trust_high = n >= SHAPE_SKEW_FACTOR * max(0.0, g) ** 2 and (support is None or n >= SHAPE_MIN_N)
    if trust_low and trust_high:
        return boot
    p_above, p_below, low, high = boot.p_above, boot.p_below, boot.low, boot.high
    if support is not None:
        bp_above, bp_below, b_low, b_high = bounded.betting_test(x, *support, threshold, alpha, seed, bounds=refine)
        if not trust_low:
            p_above, low = bp_above, b_low
        if not trust_high:
            p_below, high = bp_below, b_high
        method = ("betting bound" if not (trust_low or trust_high) else "studentized bootstrap, betting bound "
                  + ("below" if not trust_low else "above")) + f" (values in [{support[0]:g}, {support[1]:g}]"
        method += f", n={n} < {SHAPE_MIN_N})" if n < SHAPE_MIN_N else f", skewness {g:+.1f})"
    else:
        if not trust_low:
            p_above, low = 1.0, -math.inf
        if not trust_high:
            p_below, high = 1.0, math.inf
        need = math.ceil(SHAPE_SKEW_FACTOR * g * g)
        method += (f" (skewness {g:+.1f}: a {'lower' if not trust_low else 'upper'} bound needs about {need} items "
                   "and no range is declared to bound the tail)")
    return TestOutcome(mean, low, high, p_above, p_below, n, method, "mean", se)


def _skewness(x) -> float:
    """Sample skewness (the biased moment estimator, as scipy.stats.skew)."""
    import numpy as np

    c = x - x.mean()
    m2 = float(np.mean(c * c))
    return float(np.mean(c ** 3)) / m2 ** 1.5 if m2 > 0 else 0.0


def _bootstrap_t(x, mean: float, se: float, threshold: float, alpha: float, resamples: int, seed: int,
                 refine: bool) -> TestOutcome:
    """The studentized bootstrap of the mean of x (n >= 2, se > 0)."""
    import numpy as np

    n = len(x)
    method = "studentized bootstrap"
    rng = np.random.default_rng(seed)

    def draw(count: int):
        ts = []
        for size in chunk_sizes(count, n):
            xs = x[rng.integers(0, n, size=(size, n))]
            m = xs.mean(axis=1)
            s = xs.std(axis=1, ddof=1) / math.sqrt(n)
            with np.errstate(divide="ignore", invalid="ignore"):
                ts.append(np.where(s > 0, (m - mean) / s, np.where(m == mean, 0.0, np.sign(m - mean) * np.inf)))
        return np.concatenate(ts)

    t_star = draw(resamples)
    t_obs = (mean - threshold) / se
    above, below, total = int(np.sum(t_star >= t_obs)), int(np.sum(t_star <= t_obs)), len(t_star)
    # A resampling p-value can't go below 1 / (resamples + 1), which a Holm correction over many
    # comparisons would multiply past any level. Where the tail is barely sampled, draw more
    # (up to 20x, within a bounded amount of work) so small p-values are resolved.
    limit = min(20 * resamples, max(resamples, 20_000_000 // n)) if refine else 0
    while min(above, below) < 10 and total < limit:
        more = draw(min(resamples * 4, limit - total))
        above, below, total = above + int(np.sum(more >= t_obs)), below + int(np.sum(more <= t_obs)), total + len(more)
    p_above = float((above + 1) / (total + 1))
    p_below = float((below + 1) / (total + 1))
    # Order statistics of t*, infinities included: resamples with no spread but a shifted mean
    # (few distinct values, small n) make a bound infinite rather than falsely tight.
    q_hi = float(np.quantile(t_star, 1 - alpha, method="higher"))
    q_lo = float(np.quantile(t_star, alpha, method="lower"))
    with np.errstate(invalid="ignore"):
        low, high = mean - q_hi * se, mean - q_lo * se
    return TestOutcome(mean, low, high, p_above, p_below, n, method, "mean", se)


# -- run-level statistics -------------------------------------------------------------------------

@dataclass(frozen=True)
class Ratio:
    """A run-level figure that is a ratio of sums over items (throughput = tokens / seconds,
    cost per token, corpus perplexity = exp(NLL / tokens)): scale * sum(num) / sum(den), and
    exp() of that when `exp` is set."""

    num: tuple[float, ...]
    den: tuple[float, ...]
    scale: float = 1.0
    exp: bool = False

    def linearised(self, threshold: float):
        """u_i = scale * num_i - t * den_i: their mean is <= 0 exactly when the ratio is <= t
        (on the log scale for exp ratios)."""
        import numpy as np

        t = (math.log(threshold) if threshold > 0 else -math.inf) if self.exp else threshold
        return self.scale * np.asarray(self.num, dtype=float) - t * np.asarray(self.den, dtype=float)

    def value(self, idx: Sequence[int] | None = None) -> float:
        import numpy as np

        num, den = np.asarray(self.num, dtype=float), np.asarray(self.den, dtype=float)
        if idx is not None:
            num, den = num[list(idx)], den[list(idx)]
        r = self.scale * num.sum() / den.sum() if den.sum() else NAN
        return math.exp(r) if self.exp else r


def ratio_test(ratio: Ratio, threshold: float, alpha: float, resamples: int = 2000, seed: int = 0,
               estimand: str = "ratio", bounds: bool = True) -> TestOutcome:
    """A ratio of sums against a bound, tested exactly as a mean: R <= t holds exactly when the
    mean of u_i = scale * num_i - t * den_i is <= 0, so the studentized bootstrap of that mean
    tests it (a percentile bootstrap of the ratio itself passed wrongly 7% of the time at n = 20
    in simulation). Bounds invert the test (bounds=False: p-values only, for simulations)."""
    import numpy as np

    num, den = np.asarray(ratio.num, dtype=float), np.asarray(ratio.den, dtype=float)
    n = len(num)
    method = "studentized bootstrap of the linearised ratio"
    if n == 0 or den.sum() == 0:
        return TestOutcome(NAN, NAN, NAN, NAN, NAN, n, method, estimand, NAN)
    est = ratio.value()
    if n == 1:
        return TestOutcome(est, est, est, 0.0 if est > threshold else 1.0, 0.0 if est < threshold else 1.0, 1,
                           "single measurement", estimand, NAN)

    def test(t: float, refine: bool = True) -> TestOutcome:
        if ratio.exp and t <= 0:  # a perplexity is above any threshold <= 0
            return TestOutcome(0, 0, 0, 0.0, 1.0, n, method, estimand, 0)
        return one_sample_mean(ratio.linearised(t), 0.0, alpha, resamples, seed, refine)

    at = test(threshold, bounds)
    low = high = NAN
    if bounds:
        span = abs(est) * 10 + 1e-9
        low_start = max(est - span, 0.0) if ratio.exp else est - span
        low = _bisect(lambda t: test(t, False).p_above <= alpha, low_start, est, 50)
        high = _bisect(lambda t: test(t, False).p_below > alpha, est, est + span, 50)
    se_r = _sd(ratio.linearised(est)) / (math.sqrt(n) * den.mean())
    se = se_r * est if ratio.exp else se_r  # delta method through exp()
    return TestOutcome(est, low, high, at.p_above, at.p_below, n, method, estimand, se)


def quantile_test(values: Sequence[float], q: float, threshold: float, alpha: float) -> TestOutcome:
    """A percentile (p50, p95, p99 latency) against a bound, distribution-free: the number of
    values below the threshold is binomial under H0, so the test and the order-statistic bounds
    are exact for continuous data. A percentile can't be bounded from too few items: with 20
    requests nothing bounds a p95 from above at 95%, and the bound is then infinite."""
    import numpy as np
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    name = f"p{q * 100:g}"
    if n == 0:
        return TestOutcome(NAN, NAN, NAN, NAN, NAN, 0, "exact binomial (order statistics)", name, NAN)
    est = float(np.percentile(x, q * 100))
    below = int(np.sum(x < threshold))
    above = int(np.sum(x > threshold))
    p_below = float(binom.sf(below - 1, n, q)) if below else 1.0
    p_above = float(binom.sf(above - 1, n, 1 - q)) if above else 1.0

    def upper(level: float) -> float:
        # smallest k with P(Bin(n, q) >= k) <= 1 - level: x_(k) >= the quantile with that confidence
        for k in range(1, n + 1):
            if binom.sf(k - 1, n, q) <= 1 - level:
                return float(x[k - 1])
        return math.inf

    def lower(level: float) -> float:
        # largest j with P(Bin(n, q) >= j) >= level: x_(j) <= the quantile with that confidence
        for j in range(n, 0, -1):
            if binom.sf(j - 1, n, q) >= level:
                return float(x[j - 1])
        return -math.inf

    lo95, hi95 = lower(0.975), upper(0.975)
    se = (hi95 - lo95) / (2 * 1.959964) if math.isfinite(hi95 - lo95) else NAN
    return TestOutcome(est, lower(1 - alpha), upper(1 - alpha), p_above, p_below, n, "exact binomial (order statistics)", name, se)


@dataclass(frozen=True)
class ItemStatistic:
    """A run-level statistic (a percentile, a throughput, a corpus BLEU) as a function of a
    multiset of its items, so it can be bootstrapped over items."""

    item_ids: tuple[str, ...]
    value: Callable[[Sequence[int]], float]
    """The statistic over items at these positions of item_ids (repeats allowed)."""


def bootstrap_statistic_test(candidate: ItemStatistic, threshold: float, alpha: float, resamples: int = 1000,
                             seed: int = 0, baseline: ItemStatistic | None = None, estimand: str = "statistic") -> TestOutcome:
    """Percentile bootstrap over items of a run-level statistic (or, with a baseline, of the
    candidate - baseline difference on shared items, resampled together)."""
    import numpy as np

    if baseline is None:
        ids = list(candidate.item_ids)
        cpos = list(range(len(ids)))

        def theta(idx):
            return candidate.value([cpos[i] for i in idx])
    else:
        bmap = {k: i for i, k in enumerate(baseline.item_ids)}
        ids = [k for k in candidate.item_ids if k in bmap]
        cmap = {k: i for i, k in enumerate(candidate.item_ids)}
        cpos = [cmap[k] for k in ids]
        bpos = [bmap[k] for k in ids]

        def theta(idx):
            return candidate.value([cpos[i] for i in idx]) - baseline.value([bpos[i] for i in idx])
    n = len(ids)
    method = "paired percentile bootstrap" if baseline is not None else "percentile bootstrap"
    if n == 0:
        return TestOutcome(NAN, NAN, NAN, NAN, NAN, 0, method, estimand, NAN)
    est = float(theta(list(range(n))))
    if n == 1:  # one unit (e.g. one batch): nothing to resample
        return TestOutcome(est, est, est, 0.0 if est > threshold else 1.0, 0.0 if est < threshold else 1.0, 1,
                           "single measurement", estimand, NAN)
    rng = np.random.default_rng(seed)
    draws = np.array([theta(list(row)) for size in chunk_sizes(resamples, n) for row in rng.integers(0, n, size=(size, n))])
    draws = draws[~np.isnan(draws)]
    if len(draws) == 0:
        return TestOutcome(est, NAN, NAN, NAN, NAN, n, method, estimand, NAN)
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    p_above = float((np.sum(draws <= threshold) + 1) / (len(draws) + 1))
    p_below = float((np.sum(draws >= threshold) + 1) / (len(draws) + 1))
    return TestOutcome(est, float(low), float(high), p_above, p_below, n, method, estimand, float(np.std(draws, ddof=1)))


# -- dispatch -----------------------------------------------------------------------------------

def paired_test(kind: str, candidate: Sequence[float], baseline: Sequence[float], threshold: float, alpha: float,
                resamples: int = 2000, seed: int = 0, bounds: bool = True,
                support: tuple[float, float] | None = None) -> TestOutcome:
    """The paired test that fits `kind` (binary, continuous, ordinal). bounds=False: only the
    p-values matter (a simulation asking 'p <= alpha?'), so skip the work that goes into the
    interval and into resolving very small p-values."""
    if kind == "binary":
        return paired_binary(candidate, baseline, threshold, alpha, bounds)
    if kind == "ordinal":
        return paired_ordinal(candidate, baseline, threshold, alpha, bounds)
    return paired_continuous(candidate, baseline, threshold, alpha, resamples, seed, refine=bounds, support=support)


def one_sample_test(kind: str, values: Sequence[float], threshold: float, alpha: float, resamples: int = 2000,
                    seed: int = 0, refine: bool = True, support: tuple[float, float] | None = None) -> TestOutcome:
    """The one-sample test that fits `kind`; `support`: the declared range of a value."""
    if kind == "binary":
        return one_sample_binary(values, threshold, alpha)
    return one_sample_mean(values, threshold, alpha, resamples, seed, refine, support=support)


def two_sided_p(kind: str, candidate: Sequence[float], baseline: Sequence[float], resamples: int = 2000, seed: int = 0,
                refine: bool = True, support: tuple[float, float] | None = None) -> float:
    """Two-sided p-value of 'no difference' with the paired test that fits `kind`: twice the
    smaller one-sided p (exact McNemar and Wilcoxon are symmetric under 'no difference', so this
    is scipy's two-sided p)."""
    if not len(candidate):
        return NAN
    return two_sided(paired_test(kind, candidate, baseline, 0.0, 0.025, resamples, seed, bounds=refine, support=support))


def two_sided(outcome: TestOutcome) -> float:
    """Two-sided p of an outcome tested at threshold 0."""
    return min(1.0, 2 * min(outcome.p_above, outcome.p_below))


TEST_NAMES = {"binary": "exact McNemar", "continuous": "studentized paired bootstrap", "ordinal": "Wilcoxon signed-rank"}
"""The paired test used for each kind of values, in words."""


def _sd(values) -> float:
    import numpy as np

    x = np.asarray(values, dtype=float)
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0
