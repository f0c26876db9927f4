"""Validate classification on TweetEval emotion (../shared/data/tweeteval/emotion): run the shipped
suite scripts/suites/tweeteval_emotion.yaml through `harness run` on the variants of a models file
(default: the demo's, built by `make demo`), then recompute accuracy, macro-F1 and each label's
precision/recall/F1 with scikit-learn from the stored predictions and check they equal the
harness's figures. Prints each variant's figures with their intervals, and the majority-class and
uniform-random baselines. Not a unit test: it needs ../shared/data.

    python scripts/validate_tweeteval.py [--models models/demo.yaml] [--limit N] [--store PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "scripts" / "suites" / "tweeteval_emotion.yaml"
DATA = REPO.parent / "shared" / "data" / "tweeteval" / "emotion"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(REPO / "models" / "demo.yaml"))
    ap.add_argument("--store", default=str(REPO / ".harness" / "harness.duckdb"),
                    help="the store holding the built variants (default: the demo's)")
    ap.add_argument("--limit", type=int, help="a seeded random sample of N tweets (harness run --limit)")
    ap.add_argument("--variant", action="append", help="only these variants (repeatable)")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skip: {DATA} not found (the shared validation data is not part of a clone)")
        return 0
    cmd = [sys.executable, "-m", "harness", "run", str(SUITE), "--models", args.models, "--store", args.store]
    cmd += ["--limit", str(args.limit)] if args.limit else []
    for v in args.variant or []:
        cmd += ["--variant", v]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    print(f"harness run: {time.perf_counter() - t0:.0f} s")

    import duckdb
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    from harness.stats.intervals import bootstrap_mean
    from harness.tasks.kinds.classification import metric_label

    con = duckdb.connect(args.store, read_only=True)
    runs = con.execute("SELECT variant, run_id FROM latest_runs WHERE task = 'emotion' ORDER BY variant").fetchall()
    worst = 0.0
    for variant, run_id in runs:
        rows = [json.loads(d) for (d,) in con.execute("SELECT details FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id]).fetchall()]
        labels = rows[0]["labels"]
        gold = [r["gold"] for r in rows]
        pred = [r["predicted"] if r["predicted"] is not None else "(none)" for r in rows]
        stats = {m: (v, lo, hi) for m, v, lo, hi in con.execute("SELECT metric, value, low, high FROM run_stats WHERE run_id = ?", [run_id]).fetchall()}
        acc = con.execute("SELECT avg(value) FROM scores WHERE run_id = ? AND metric = 'acc'", [run_id]).fetchone()[0]
        acc_ci = bootstrap_mean([float(g == p) for g, p in zip(gold, pred)], 2000, 0.95, 0)
        p, r, f, support = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
        ours = [stats["macro_f1"][0], acc] + [stats[f"{k}_{metric_label(label)}"][0] for label in labels for k in ("precision", "recall", "f1")]
        theirs = [f1_score(gold, pred, labels=labels, average="macro", zero_division=0), accuracy_score(gold, pred)]
        theirs += [x[i] for i in range(len(labels)) for x in (p, r, f)]
        diff = max(abs(a - b) for a, b in zip(ours, theirs))
        worst = max(worst, diff)
        predicted_share = {label: pred.count(label) / len(pred) for label in labels}
        m = stats["macro_f1"]
        print(f"{variant:16} n={len(rows)}  accuracy {acc:.3f} [{acc_ci.low:.3f}, {acc_ci.high:.3f}]  macro-F1 {m[0]:.3f} [{m[1]:.3f}, {m[2]:.3f}]  "
              f"F1 per label {', '.join(f'{label} {x:.2f}' for label, x in zip(labels, f))}  "
              f"predicted {', '.join(f'{label} {predicted_share[label]:.0%}' for label in labels)}  "
              f"max |harness - sklearn| {diff:.1e}")
    if runs:
        gold = [json.loads(d)["gold"] for (d,) in con.execute("SELECT details FROM samples WHERE run_id = ?", [runs[0][1]]).fetchall()]
        labels = sorted(set(gold))
        majority = max(labels, key=gold.count)
        print(f"baselines: majority class ({majority}) accuracy {gold.count(majority) / len(gold):.3f}, macro-F1 "
              f"{f1_score(gold, [majority] * len(gold), labels=labels, average='macro', zero_division=0):.3f}; "
              f"uniform random accuracy {1 / len(labels):.3f}")
    print(f"largest difference from scikit-learn over all figures: {worst:.1e}")
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
