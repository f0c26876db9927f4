"""Coverage of the report's 95% intervals on correlated items, by simulation (a benchmark, not a test).

Items come in clusters of 2 (a conversation's two turns, HaluEval's two answers over one
passage) with intra-cluster correlation 0.5: value = cluster effect + item noise, equal
variances. For K clusters it draws datasets, computes the interval the report prints
(harness.stats.intervals.bootstrap_mean) resampling clusters, as harness does for such tasks,
and resampling items as if independent, and prints how often each covers the true mean (target
0.95; with 2,000 datasets a true 0.95 is observed between 0.940 and 0.960). Scores are shown on
a continuous scale and as 0/1 outcomes (a latent threshold), the two shapes stored per item.

    python benchmarks/cluster_coverage.py                  # 2,000 datasets per cell, about 3 minutes
    python benchmarks/cluster_coverage.py --datasets 300   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.stats.intervals import bootstrap_mean  # noqa: E402

ICC = 0.5
SIZE = 2


def dataset(rng, k: int, binary: bool):
    """k clusters of SIZE items; returns values, labels and the true mean."""
    labels = np.repeat(np.arange(k), SIZE)
    latent = rng.normal(0, np.sqrt(ICC), k)[labels] + rng.normal(0, np.sqrt(1 - ICC), k * SIZE)
    if binary:  # P(latent > 0.5) under N(0, 1)
        return (latent > 0.5).astype(float), labels, 0.3085375387259869
    return 0.5 + 0.1 * latent, labels, 0.5


def cell(rng, k: int, binary: bool, datasets: int, resamples: int) -> list:
    clustered = independent = 0
    for _ in range(datasets):
        x, labels, truth = dataset(rng, k, binary)
        seed = int(rng.integers(1 << 30))
        c = bootstrap_mean(x, resamples, 0.95, seed, clusters=labels.tolist())
        i = bootstrap_mean(x, resamples, 0.95, seed)
        clustered += c.low <= truth <= c.high
        independent += i.low <= truth <= i.high
    return ["0/1" if binary else "continuous", k, k * SIZE, f"{clustered / datasets:.3f}", f"{independent / datasets:.3f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=2000, help="simulated datasets per cell (default 2000)")
    ap.add_argument("--clusters", type=int, nargs="+", default=[20, 50, 200], help="clusters per dataset")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per interval")
    ap.add_argument("--seed", type=int, default=2026)
    add_write_docs_flag(ap)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(f"95% percentile-bootstrap intervals of the mean; clusters of {SIZE} items, intra-cluster correlation {ICC}; "
          f"{args.datasets} datasets per cell, {args.resamples} resamples each\n")
    print("| values | clusters | items | coverage, resampling clusters (harness) | coverage, resampling items as independent |")
    print("|---|---|---|---|---|")
    for binary in (False, True):
        for k in args.clusters:
            print("| " + " | ".join(str(v) for v in cell(rng, k, binary, args.datasets, args.resamples)) + " |", flush=True)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    raise SystemExit(run_recorded("cluster_coverage", main, markdown=True))
