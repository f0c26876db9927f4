"""Judge scores corrected by people (prediction-powered inference, harness.stats.ppi) by
simulation: coverage of the true human mean and interval width, against the judge's raw mean and
the people's slice alone (a benchmark, not a test).

Each dataset: N items whose human rating is drawn 1-10 (rounded normal, mean 6, sd 1.5); the
judge rates each item its human rating plus a planted bias plus noise (clipped to 1-10); people
rate a uniform random slice of n items. The true human mean is the rating distribution's own mean
(computed once from a million draws). Printed per setting: how often each 95% interval covers it,
and the mean interval width.

    python benchmarks/judge_calibration.py                 # 2,000 datasets per setting
    python benchmarks/judge_calibration.py --datasets 500
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

SETTINGS = [  # (items, rated by people, judge bias, judge noise sd, label)
    (1000, 100, 1.0, 1.0, "judge +1.0 biased, noise sd 1.0 (the issue's case)"),
    (1000, 100, 1.0, 3.0, "judge +1.0 biased, noise sd 3.0 (a poor judge)"),
    (1000, 30, 1.0, 1.0, "judge +1.0 biased, 30 rated"),
    (1000, 100, 0.0, 0.5, "unbiased, accurate judge"),
]


def human(rng: random.Random) -> float:
    return float(min(10, max(1, round(rng.gauss(6, 1.5)))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    add_write_docs_flag(parser)
    args = parser.parse_args()
    from harness.stats.ppi import calibrated_mean

    rng = random.Random(args.seed)
    truth = statistics.fmean(human(rng) for _ in range(1_000_000))
    z = statistics.NormalDist().inv_cdf(0.975)
    print(f"{args.datasets} datasets per setting; true human mean {truth:.4f}; 95% intervals")
    print("| setting | items / rated | coverage: corrected | raw judge | people alone | width: corrected | people alone | mean weight |")
    print("|---|---|---|---|---|---|---|---|")
    for n_items, n_rated, bias, noise, label in SETTINGS:
        cover = {"ppi": 0, "raw": 0, "human": 0}
        width = {"ppi": 0.0, "human": 0.0}
        weights = 0.0
        for _ in range(args.datasets):
            h = [human(rng) for _ in range(n_items)]
            j = [min(10.0, max(1.0, x + bias + rng.gauss(0, noise))) for x in h]
            rated = rng.sample(range(n_items), n_rated)
            est = calibrated_mean({str(i): j[i] for i in range(n_items)}, {str(i): h[i] for i in rated})
            cover["ppi"] += est.low <= truth <= est.high
            cover["human"] += est.human_low <= truth <= est.human_high
            half = z * statistics.stdev(j) / math.sqrt(n_items)
            cover["raw"] += abs(statistics.fmean(j) - truth) <= half
            width["ppi"] += est.high - est.low
            width["human"] += est.human_high - est.human_low
            weights += est.weight
        d = args.datasets
        print(f"| {label} | {n_items} / {n_rated} | {cover['ppi'] / d:.3f} | {cover['raw'] / d:.3f} | {cover['human'] / d:.3f} | "
              f"{width['ppi'] / d:.3f} | {width['human'] / d:.3f} | {weights / d:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("judge_calibration", main, markdown=True))
