"""Error rates and power of the gate's tests, by simulation (a benchmark, not a test).

For each kind of values (binary, continuous, ordinal) and n = 20, 100, 1000 it simulates
datasets at the worst case of each null hypothesis and under a stated alternative, runs the
same functions `harness gate` runs, and prints:

- false-pass rate of a non-inferiority rule (true difference exactly at the margin) and of a
  superiority rule (true difference 0): a rule passes when its one-sided p <= alpha. Target <= alpha.
- rejection rate of the report's two-sided paired test under 'no difference'. Target 0.04-0.06.
- power of each rule at a stated effect.
- false-pass rates of absolute bounds (one sample) and of a run-level p95 bound.
- family-wise error over 10 null rules, without and with Holm's correction. Target <= alpha.

    python benchmarks/gate_statistics.py                 # 2,000 datasets per cell (about 45 minutes on 2 cores)
    python benchmarks/gate_statistics.py --datasets 300  # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.stats.clusters import clustered_paired_test  # noqa: E402
from harness.stats.hypothesis import (  # noqa: E402
    ItemStatistic,
    Ratio,
    bootstrap_statistic_test,
    holm,
    one_sample_test,
    paired_test,
    quantile_test,
    ratio_test,
)

ALPHA = 0.05

# What each kind's rules look like: margin of the non-inferiority rule, the effect at which
# power is reported, and a generator of (candidate, baseline) for a true difference delta.
ORDINAL_NOISE = (np.arange(-3, 4), np.array([0.03, 0.07, 0.2, 0.4, 0.2, 0.07, 0.03]))


def binary_pairs(rng, n, delta):
    """Paired 0/1 outcomes (accuracy-like): P(cand right, base wrong) - P(reverse) = delta."""
    p10, p01 = 0.10 + max(delta, 0), 0.10 + max(-delta, 0)
    cells = rng.choice(4, size=n, p=[0.5, p10, p01, 1 - 0.5 - p10 - p01])
    cand = np.isin(cells, (0, 1)).astype(float)
    base = np.isin(cells, (0, 2)).astype(float)
    return cand, base


def continuous_pairs(rng, n, delta):
    """ROUGE-like scores: baseline uniform, candidate = baseline + delta + normal noise (sd 0.15)."""
    base = rng.uniform(0.1, 0.6, n)
    return base + delta + rng.normal(0, 0.15, n), base


def skewed_pairs(rng, n, delta):
    """Latency-like differences: centred exponential noise, so differences are skewed (right)."""
    base = rng.lognormal(0, 0.3, n)
    return base + delta + (rng.exponential(0.2, n) - 0.2), base


def left_skewed_pairs(rng, n, delta):
    """The same skew the other way: the hard direction for a test that passes above the threshold."""
    base = rng.lognormal(0, 0.3, n)
    return base + delta - (rng.exponential(0.2, n) - 0.2), base


BROKEN_SHARE, BROKEN_LOSS = 0.1, (0.6, 0.9)


def broken_pairs(rng, n, delta):
    """A fine-tune that breaks a minority of items badly (the usual shape of a regression): scores
    in [0, 1], a tenth of items lose 60-90% of their score, the others gain what makes up the
    broken ones' expected loss, with small noise; every item moves by delta besides, so the mean
    difference is delta."""
    base = rng.uniform(0.4, 0.85, n)
    make_up = BROKEN_SHARE * np.mean(BROKEN_LOSS) * 0.625 / (1 - BROKEN_SHARE)
    broken = rng.random(n) < BROKEN_SHARE
    cand = np.where(broken, base * (1 - rng.uniform(*BROKEN_LOSS, n)), base + make_up + rng.normal(0, 0.02, n)) + delta
    return np.clip(cand, 0, 1), base


def clustered_pairs(rng, n, delta):
    """Items in pairs that share a cluster effect (two turns of one conversation, two answers over
    one passage): differences with intra-cluster correlation 0.5. Returns the cluster labels too."""
    k = (n + 1) // 2
    labels = np.repeat(np.arange(k), 2)[:n]
    shared = rng.normal(0, 0.15 * np.sqrt(0.5), k)[labels]
    base = rng.uniform(0.1, 0.6, n)
    return base + delta + shared + rng.normal(0, 0.15 * np.sqrt(0.5), n), base, [str(c) for c in labels]


def ordinal_pairs(rng, n, delta):
    """1-10 judge ratings: rating differences symmetric about delta (ties common)."""
    base = rng.integers(3, 9, n).astype(float)
    noise = rng.choice(ORDINAL_NOISE[0], size=n, p=ORDINAL_NOISE[1]).astype(float)
    if delta == int(delta):
        shift = delta
    else:  # a fractional true shift: each item moves by floor or ceil of delta
        shift = np.floor(delta) + (rng.random(n) < delta - np.floor(delta))
    return base + noise + shift, base


KINDS = {
    # kind: (test kind, generator, NI margin, superiority effect for power, declared range)
    "binary": ("binary", binary_pairs, 0.05, 0.10, None),
    "continuous": ("continuous", continuous_pairs, 0.02, 0.05, None),
    "continuous, right-skewed": ("continuous", skewed_pairs, 0.02, 0.05, None),
    "continuous, left-skewed": ("continuous", left_skewed_pairs, 0.02, 0.05, None),
    "continuous in [0, 1], a tenth of items broken": ("continuous", broken_pairs, 0.05, 0.05, (0.0, 1.0)),
    "continuous, pairs of correlated items (ICC 0.5)": ("continuous", clustered_pairs, 0.02, 0.05, None),
    "(for reference: the same resampled as independent items, not used)": ("independent", clustered_pairs, 0.02, 0.05, None),
    "ordinal (1-10)": ("ordinal", ordinal_pairs, 1.0, 1.0, None),
}


def rate(flags) -> str:
    return f"{np.mean(flags):.3f}"


def paired_cells(name, datasets, n, rng, resamples):
    kind, gen, margin, effect, support = KINDS[name]

    def test(cand, base, threshold, clusters=None, alpha=ALPHA):
        seed = int(rng.integers(1 << 30))
        if clusters is not None and kind != "independent":  # as the gate runs it on a task with clusters
            ids = [str(i) for i in range(len(cand))]
            return clustered_paired_test(dict(zip(ids, cand)), dict(zip(ids, base)), dict(zip(ids, clusters)), threshold, alpha,
                                         resamples, seed, support, refine=False)
        return paired_test("continuous" if kind == "independent" else kind, cand, base, threshold, alpha, resamples, seed,
                           bounds=False, support=support)

    def passes(cand, base, threshold, clusters=None):
        return test(cand, base, threshold, clusters).p_above <= ALPHA

    def at(data, threshold):  # (cand, base, threshold[, clusters])
        return (data[0], data[1], threshold, *data[2:])

    ni_null = [passes(*at(gen(rng, n, -margin), -margin)) for _ in range(datasets)]
    sup_null, two_sided = [], []
    for _ in range(datasets):
        cand, base, *clusters = gen(rng, n, 0.0)
        sup_null.append(passes(cand, base, 0.0, *clusters))
        both = test(cand, base, 0.0, *clusters, alpha=ALPHA / 2)  # the report's two-sided test at ALPHA
        two_sided.append(min(1.0, 2 * min(both.p_above, both.p_below)) <= ALPHA)
    ni_power = [passes(*at(gen(rng, n, 0.0), -margin)) for _ in range(datasets)]
    sup_power = [passes(*at(gen(rng, n, effect), 0.0)) for _ in range(datasets)]
    return [name, n, rate(ni_null), rate(sup_null), rate(two_sided), f"{rate(ni_power)} (margin {margin:g}, true 0)",
            f"{rate(sup_power)} (effect {effect:g})"]


def one_sample_cells(datasets, n, rng, resamples):
    """Absolute bounds at the boundary: true value exactly at the bound; rule 'min'."""
    rows = []
    bound = 0.7
    flags = [one_sample_test("binary", (rng.random(n) < bound).astype(float), bound, ALPHA).p_above <= ALPHA
             for _ in range(datasets)]
    rows.append(["binary (share >= 0.7)", n, rate(flags)])
    # A 0/1 rate stored as a bounded continuous metric (hallucination_rate <= 0.1, true rate 0.1):
    # the all-zero samples used to pass on "no variation".
    flags = [one_sample_test("continuous", (rng.random(n) < 0.1).astype(float), 0.1, ALPHA, resamples,
                             int(rng.integers(1 << 30)), False, support=(0.0, 1.0)).p_below <= ALPHA for _ in range(datasets)]
    rows.append(["0/1 rate in [0, 1] (rate <= 0.1)", n, rate(flags)])
    # Continuous, skewed: a beta(2, 5) has mean 2/7.
    flags = [one_sample_test("continuous", rng.beta(2, 5, n), 2 / 7, ALPHA, resamples, int(rng.integers(1 << 30)), False).p_above <= ALPHA
             for _ in range(datasets)]
    rows.append(["continuous (beta(2,5) mean >= 2/7)", n, rate(flags)])
    ratings = np.arange(1, 11)
    probs = np.array([0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.2, 0.15, 0.07, 0.03])
    mean = float(ratings @ probs)
    flags = [one_sample_test("ordinal", rng.choice(ratings, n, p=probs).astype(float), mean, ALPHA, resamples,
                             int(rng.integers(1 << 30)), False).p_above <= ALPHA for _ in range(datasets)]
    rows.append([f"ordinal (mean rating >= {mean:.2f})", n, rate(flags)])
    # A run-level percentile: p95 latency <= its true value (lognormal latencies). The gate's
    # exact order-statistic test, beside a percentile bootstrap (what it replaced) for reference.
    true_p95 = float(np.exp(0.3 * 1.6448536))
    exact, boot = [], []
    for _ in range(datasets):
        x = rng.lognormal(0, 0.3, n)
        exact.append(quantile_test(x, 0.95, true_p95, ALPHA).p_below <= ALPHA)
        stat = ItemStatistic(tuple(map(str, range(n))), lambda idx, x=x: float(np.percentile(x[list(idx)], 95)))
        boot.append(bootstrap_statistic_test(stat, true_p95, ALPHA, 500, int(rng.integers(1 << 30))).p_below <= ALPHA)
    rows.append(["run-level: p95 latency <= true p95 (exact order-statistic test)", n, rate(exact)])
    rows.append(["(for reference: the same by percentile bootstrap, not used)", n, rate(boot)])
    # A run-level ratio (throughput = tokens / seconds over batches): the gate's linearised test,
    # beside a percentile bootstrap of the ratio (what it replaced) for reference.
    tokens_mean, secs_mean = 20.0, 1.0
    exact, boot = [], []
    for _ in range(datasets):
        tok = rng.poisson(tokens_mean, n).astype(float)
        sec = rng.gamma(4.0, secs_mean / 4.0, n)
        truth = tokens_mean / secs_mean
        exact.append(ratio_test(Ratio(tuple(tok), tuple(sec)), truth, ALPHA, resamples, int(rng.integers(1 << 30)),
                                bounds=False).p_above <= ALPHA)
        stat = ItemStatistic(tuple(map(str, range(n))), lambda idx, t=tok, s=sec: float(t[list(idx)].sum() / s[list(idx)].sum()))
        boot.append(bootstrap_statistic_test(stat, truth, ALPHA, 500, int(rng.integers(1 << 30))).p_above <= ALPHA)
    rows.append(["run-level: throughput >= true throughput (linearised ratio test)", n, rate(exact)])
    rows.append(["(for reference: the same by percentile bootstrap, not used)", n, rate(boot)])
    return rows


def holm_cells(datasets, n, rng, resamples, rules=10):
    """10 independent continuous non-inferiority rules, every one at its null boundary."""
    _, gen, margin, _, _ = KINDS["continuous"]
    raw, adjusted = [], []
    for _ in range(datasets):
        # as the gate runs it: small p-values resolved beyond 1 / (resamples + 1), which Holm's
        # alpha / 10 needs
        ps = [paired_test("continuous", *gen(rng, n, -margin), -margin, ALPHA, resamples, int(rng.integers(1 << 30))).p_above
              for _ in range(rules)]
        raw.append(min(ps) <= ALPHA)
        adjusted.append(min(holm(ps)) <= ALPHA)
    return [rules, n, rate(raw), rate(adjusted)]


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=2000, help="simulated datasets per cell (default 2000)")
    ap.add_argument("--n", type=int, nargs="+", default=[20, 100, 1000], help="items per dataset")
    ap.add_argument("--resamples", type=int, default=2000, help="permutations / bootstrap resamples per test (the gate's default)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--sections", nargs="+", choices=["paired", "bounds", "holm"], default=["paired", "bounds", "holm"],
                    help="which tables to simulate (default all)")
    add_write_docs_flag(ap)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(f"alpha {ALPHA}; {args.datasets} simulated datasets per cell; {args.resamples} resamples per test\n")
    if "paired" in args.sections:
        rows = [paired_cells(name, args.datasets, n, rng, args.resamples) for name in KINDS for n in args.n]
        table(["values", "n", "false pass: non-inferiority", "false pass: superiority", "two-sided test, rejection under null",
               "power: non-inferiority", "power: superiority"], rows)
    if "bounds" in args.sections:
        rows = [r for n in args.n for r in one_sample_cells(args.datasets, n, rng, args.resamples)]
        table(["absolute bound (value at the bound)", "n", "false pass"], rows)
    if "holm" in args.sections:
        rows = [holm_cells(args.datasets, n, rng, args.resamples) for n in args.n]
        table(["null rules", "n", "family-wise error, uncorrected", "family-wise error, Holm"], rows)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    raise SystemExit(run_recorded("gate_statistics", main, markdown=True))
