"""Sequential gates (`harness run --until-decided`) by simulation: the chance of a wrong pass when
the rule is looked at after every step, and the items used on clear differences against the
fixed-n design (a benchmark, not a test).

A bound rule "rate >= 0.5" on 0/1 items and on continuous scores in [0, 1] (Beta-distributed,
sd about 0.2), decided with harness.stats.sequential's anytime-valid bounds at the looks the
command makes (20, 30, 45, ... items: x1.5 a step) and, for the error rate, after every single item. The
fixed-n design is the one-sided z-test's sample size for 80% power at the planned effect; the
sequential run's budget is 2x that n.

    python benchmarks/sequential_gates.py                 # 2,000 datasets per setting
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

THRESHOLD, ALPHA, POWER = 0.5, 0.05, 0.8


def draw(kind: str, mean: float, n: int, rng: random.Random) -> list[float]:
    if kind == "0/1":
        return [1.0 if rng.random() < mean else 0.0 for _ in range(n)]
    k = 5.0  # Beta(k mean, k (1 - mean)): sd about 0.2 at mean 0.5
    return [rng.betavariate(k * mean, k * (1 - mean)) for _ in range(n)]


def fixed_n(sd: float, effect: float) -> int:
    z = statistics.NormalDist().inv_cdf
    return math.ceil(((z(1 - ALPHA) + z(POWER)) * sd / effect) ** 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    add_write_docs_flag(parser)
    args = parser.parse_args()
    from harness.run.sequential import FIRST, look_sizes
    from harness.stats.sequential import sequential_bounds

    rng = random.Random(args.seed)
    print(f"{args.datasets} datasets per row; rule: mean >= {THRESHOLD}; anytime-valid one-sided {1 - ALPHA:.0%} bounds")
    print("| values | true mean | planned effect | fixed-n design | budget | pass | fail | undecided | mean items used | used / fixed-n "
          "| checked after every item: used / fixed-n | wrong pass |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, sd in (("0/1", 0.5), ("scores in [0, 1]", 0.2)):
        effect = 0.1 if kind == "0/1" else 0.05
        design = fixed_n(sd, effect)
        budget = 2 * design
        for true in (THRESHOLD, THRESHOLD + effect, THRESHOLD + 2 * effect, THRESHOLD + 3 * effect, THRESHOLD - 2 * effect):
            passed = failed = every = 0
            used, continuous = [], []
            for _ in range(args.datasets):
                values = draw(kind, true, budget, rng)
                bounds = sequential_bounds(values, 0.0, 1.0, ALPHA)
                every += any(low > THRESHOLD for low, _ in bounds)
                continuous.append(next((i for i, (low, high) in enumerate(bounds, 1) if low > THRESHOLD or high < THRESHOLD), budget))
                for n in look_sizes(FIRST, budget):  # each look evaluates only its new items (the --limit item pool)
                    low, high = bounds[n - 1]
                    if low > THRESHOLD or high < THRESHOLD or n == budget:
                        passed += low > THRESHOLD
                        failed += high < THRESHOLD
                        used.append(n)
                        break
            d = args.datasets
            mean_used = statistics.fmean(used)
            wrong = f"{every / d:.3f}" if true <= THRESHOLD else "–"
            print(f"| {kind} | {true:.2f} | {effect} | {design} | {budget} | {passed / d:.3f} | {failed / d:.3f} | "
                  f"{(d - passed - failed) / d:.3f} | {mean_used:.0f} | {mean_used / design:.2f} | "
                  f"{statistics.fmean(continuous) / design:.2f} | {wrong} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("sequential_gates", main, markdown=True))
