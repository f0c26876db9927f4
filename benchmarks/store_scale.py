"""The store at the scale of an evaluation campaign (a benchmark, not a test): ingest of a million
score rows, then `harness report` and `harness gate` over that store, each a whole CLI call.

Campaign: --variants variants x one multiple-choice task of --items items (full MMLU is 14,042)
x 2 metrics (acc, acc_norm), each run written as harness writes one (harness.store.db.Store
.write_task_run: the run, its sample rows with JSON details, its score rows, in one transaction).
Values are 0/1 with per-variant accuracies 0.25 + 0.01 * k, so gate rules have real differences.

    python benchmarks/store_scale.py                      # 20 variants x 25,000 items x 2 = 1M score rows
    python benchmarks/store_scale.py --items 5000         # a quick look
    python benchmarks/store_scale.py --items 25000 250000 # memory across sizes: a campaign per size

Report and gate run twice: as they are, and with DuckDB's memory capped (HARNESS_STORE_MEMORY).
With several sizes, a table at the end sets them side by side: capped, the report's and the
gate's peak memory stay near flat as the store grows tenfold (they read counts from DuckDB, not
rows); uncapped, DuckDB caches what it read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--items", type=int, nargs="+", default=[25_000],
                        help="items per variant; several sizes run one campaign each, side by side")
    add_write_docs_flag(parser)
    args = parser.parse_args()
    results = [campaign(args.variants, items, keep=k == len(args.items) - 1) for k, items in enumerate(args.items)]
    if any(r["exit"] not in (0, 1, 3) for r in results):
        return 1
    if len(results) > 1:
        print(f"\nwall and peak memory of the whole process; capped: HARNESS_STORE_MEMORY={CAPPED} (DuckDB's memory limit)")
        print("| items per variant | score rows | store | ingest | `harness report` | report, capped | `harness gate` | gate, capped |")
        print("|---|---|---|---|---|---|---|---|")
        for r in results:
            cells = " | ".join(f"{r[(c, lim)][0]:.1f} s, {r[(c, lim)][1]:,.0f} MB" for c in ("report", "gate") for lim in (None, CAPPED))
            print(f"| {r['items']:,} | {r['scores']:,} | {r['mb']:,.0f} MB | {r['ingest']:,.0f} rows/s | {cells} |")
    return 0


def campaign(variants: int, items: int, keep: bool) -> dict:
    """Write a campaign of `variants` x `items`, then time `harness report` and `harness gate` on it."""
    import shutil

    import numpy as np

    from harness.store.db import RunRow, SampleRow, ScoreRow, Store

    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    store_path = work / "campaign.duckdb"
    rng = np.random.default_rng(0)
    names = [f"v{k:02d}" for k in range(variants)]
    now = datetime(2026, 11, 28)
    total_scores = total_samples = 0
    build_s = write_s = 0.0
    with Store(store_path) as store:
        for k, name in enumerate(names):
            t0 = time.perf_counter()
            run_id = f"{name}-mmlu"
            correct = rng.random(items) < 0.25 + 0.01 * k
            samples = [SampleRow(run_id, f"q{i}", f"Question {i}?\nA. a\nB. b\nC. c\nD. d\nAnswer:", "B", "B" if c else "A",
                                 json.dumps({"loglikelihoods": [-1.2, -0.9, -1.5, -1.7], "gold": 1}))
                       for i, c in enumerate(correct)]
            scores = [ScoreRow(run_id, f"q{i}", metric, metric, float(c)) for metric in ("acc", "acc_norm")
                      for i, c in enumerate(correct)]
            run = RunRow(run_id=run_id, run_key=run_id, suite="campaign", suite_hash="h", task="mmlu", task_type="multiple_choice",
                         metrics=json.dumps(["acc", "acc_norm"]), variant=name, variant_key=name, backend="hf", device="cpu",
                         dtype="float32", data_hash="d", prompt_hash="p", generation_config=None, seed=0, harness_version="bench",
                         git_commit=None, started_at=now, last_used_at=now, wall_s=1.0, n_samples=items)
            t1 = time.perf_counter()
            store.write_task_run(run, samples, scores)
            t2 = time.perf_counter()
            build_s += t1 - t0
            write_s += t2 - t1
            total_scores += len(scores)
            total_samples += len(samples)
            if k == 0:
                reference = _conversion_reference(scores)
            del samples, scores
    result = {"items": items, "scores": total_scores, "mb": store_path.stat().st_size / 1e6, "ingest": total_scores / write_s,
              "exit": 0}
    print(f"campaign: {variants} variants x {items:,} items: {total_scores:,} score rows, {total_samples:,} sample rows; "
          f"store {result['mb']:.0f} MB")
    print(f"  ingest (write_task_run, one transaction per run): {write_s:.1f} s = {total_scores / write_s:,.0f} score rows/s "
          f"({(total_scores + total_samples) / write_s:,.0f} rows/s counting samples); building the Python rows took {build_s:.1f} s")
    print(f"  reference, one run's {2 * items:,} score rows to Arrow: per-row dataclasses.asdict (the previous ingest) "
          f"{reference[0]:.3f} s, column-wise (now) {reference[1]:.3f} s")
    report = work / "campaign.yaml"
    rules = "".join(f"  - {{kind: non_inferiority, variant: {n}, baseline: v00, task: mmlu, metric: acc, margin: 0.01}}\n"
                    for n in names[1:6])
    report.write_text(f"title: campaign\nvariants: [{', '.join(names)}]\nbaseline: v00\nstatistics: {{resamples: 2000}}\n"
                      f"gate:\n{rules}")
    for cmd in (["report", str(report), "--store", str(store_path), "--out", str(work / "campaign.html")],
                ["gate", str(report), "--store", str(store_path)]):
        for limit in (None, CAPPED):
            env = {**os.environ, "HARNESS_PROGRESS": "0"}
            env.pop("HARNESS_STORE_MEMORY", None)
            if limit:
                env["HARNESS_STORE_MEMORY"] = limit
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", PEAK_MEMORY, *cmd], cwd=REPO, capture_output=True, text=True, env=env)
            elapsed = time.perf_counter() - t0
            peak = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB ")), 0)
            result[(cmd[0], limit)] = (elapsed, peak / 1024)
            print(f"  harness {cmd[0]} over the store (whole process, {variants} variants, 5 gate rules"
                  f"{f', HARNESS_STORE_MEMORY={limit}' if limit else ''}): {elapsed:.1f} s, peak memory {peak / 1024:,.0f} MB, "
                  f"exit {proc.returncode}")
        if proc.returncode not in (0, 1, 3):
            result["exit"] = proc.returncode
            print(proc.stderr[-2000:])
    if keep:
        print(f"  store kept at {store_path}")
    else:
        shutil.rmtree(work)  # a tenfold campaign's store is gigabytes: keep only the last one
    return result


CAPPED = "256MB"
"""The DuckDB memory limit of the capped report and gate: DuckDB otherwise caches the blocks it
read up to 80% of RAM, so uncapped peak memory follows the store's size."""

PEAK_MEMORY = """import sys
from harness.cli import main
code = main(sys.argv[1:])
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("PEAK_RSS_KB", hwm, file=sys.stderr)
sys.exit(code)"""
"""A harness CLI call that reports its peak resident memory (the process's, DuckDB's included).
VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over an exec, so a child started by
this benchmark (gigabytes of rows built) would report the benchmark's own peak."""


def _conversion_reference(rows) -> tuple[float, float]:
    """Seconds to turn rows into an Arrow table the previous way (asdict per row) and the current one."""
    from dataclasses import asdict, fields

    import pyarrow as pa

    t0 = time.perf_counter()
    pa.Table.from_pylist([asdict(r) for r in rows])
    t1 = time.perf_counter()
    names = [f.name for f in fields(rows[0])]
    pa.Table.from_pydict({n: [getattr(r, n) for r in rows] for n in names})
    return t1 - t0, time.perf_counter() - t1


if __name__ == "__main__":
    raise SystemExit(run_recorded("store_scale", main))
