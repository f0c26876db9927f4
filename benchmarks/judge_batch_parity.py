"""The local judge's rating path: a score must not depend on its batch (a benchmark, not a test).

The embedded Gemma 3 270M rates brand tweets (data/brand/test.jsonl) as the demo's local choice
judge does (probability-weighted 1-10 rating from the option log-likelihoods), three ways: all
calls in batches of 8 with prefix reuse (the default), the same with prefix reuse off, and each
call alone. Prints the largest rating difference between the ways beside the time per call; the
speed-up of reuse is printed only at parity (every rating within 0.005), since a faster path that
moves the scores is not the same judge.

    python benchmarks/judge_batch_parity.py              # 24 tweets, about a minute on 2 cores
    python benchmarks/judge_batch_parity.py --calls 4    # a quick look
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PARITY = 0.005
SYSTEM = ("You are a strict reviewer of a coffee brand's social media. Rate the tweet below for how well it sounds like "
          "Lumen Coffee: warm, concise, one emoji at most, a house hashtag. Answer with a rating from 1 to 10.")


def ratings(judge, calls) -> list[float]:
    return [float(re.search(r"\[\[([0-9.]+)\]\]", r.text).group(1)) for r in judge.judge_many(calls, desc="rate")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=24)
    add_write_docs_flag(parser)
    args = parser.parse_args()
    from harness.backends.hf import HFBackend
    from harness.judge.clients import JudgeCall, LocalJudge
    from harness.models.weights import convert_gguf, embedded_gguf

    model_dir = convert_gguf(*embedded_gguf())
    tweets = [json.loads(line)["tweet"] for line in (REPO / "data" / "brand" / "test.jsonl").read_text().splitlines()[:args.calls]]
    calls = [JudgeCall(SYSTEM, f"Tweet: {t}", "rating") for t in tweets]
    out = {}
    for name, reuse, alone in (("batches of 8, prefix reuse on", True, False), ("batches of 8, prefix reuse off", False, False),
                               ("one call at a time", False, True)):
        judge = LocalJudge(HFBackend(model_dir, batch_size=8, prefix_reuse=reuse), "gemma")
        t0 = time.perf_counter()
        got = [ratings(judge, [c])[0] for c in calls] if alone else ratings(judge, calls)
        out[name] = (got, (time.perf_counter() - t0) / len(calls), judge.backend.info.details.get("prefix_reuse"))
    ref = out["one call at a time"][0]
    print(f"Gemma 3 270M (float32) as the local choice judge, {len(calls)} brand tweets rated 1-10\n")
    print("| scoring | seconds per call | max rating difference from one call at a time | prefix reuse |")
    print("|---|---|---|---|")
    for name, (got, per, reuse) in out.items():
        print(f"| {name} | {per:.2f} | {max(abs(a - b) for a, b in zip(got, ref)):.4f} | {reuse} |")
    on, off = out["batches of 8, prefix reuse on"], out["batches of 8, prefix reuse off"]
    gap = max(abs(a - b) for a, b in zip(on[0], ref))
    print()
    if gap <= PARITY:
        print(f"At parity (every rating within {PARITY}): prefix reuse is {off[1] / on[1]:.2f}x the speed of plain batches.")
    else:
        print(f"Not at parity (a rating moved by {gap:.4f} > {PARITY}): no speed-up is reported.")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("judge_batch_parity", main, markdown=True))
