"""Contamination check throughput (a benchmark, not a test): how fast harness.analysis.contamination indexes
training text and checks evaluation items against it, beside a plain-Python reference (a set of
13-word tuples) on the same data, which also confirms both find the same items.

Training text: the real documents under ../shared/data (HaluEval, XSum), repeated (each copy's
words rotated, so its n-grams are new) until it reaches --words; without that folder, a synthetic
Zipf-distributed vocabulary. Items: sentences drawn from the documents (planted, must be found)
and as many fresh synthetic sentences (must not be).

    python benchmarks/contamination.py                 # 1,000,000 training words
    python benchmarks/contamination.py --words 200000  # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.analysis.contamination import Index, words  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def corpus(target: int, seed: int) -> tuple[list[str], str]:
    docs = []
    for path in sorted(SHARED.glob("halueval/*.jsonl")) + sorted(SHARED.glob("xsum/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            docs += [v for v in row.values() if isinstance(v, str) and len(v.split()) > 20]
    origin = "real documents from ../shared/data (HaluEval, XSum)"
    rng = random.Random(seed)
    if not docs:
        vocab = [f"w{i}" for i in range(50000)]
        weights = [1 / (i + 1) for i in range(len(vocab))]
        docs = [" ".join(rng.choices(vocab, weights, k=300)) for _ in range(200)]
        origin = "synthetic Zipf text (../shared/data not found)"
    out, n, copy = [], 0, 0
    while n < target:
        for d in docs:
            w = d.split()
            k = copy % max(len(w), 1)
            text = " ".join(w[k:] + w[:k]) if copy else d
            out.append(text)
            n += len(w)
            if n >= target:
                break
        copy += 1
    return out, origin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--n", type=int, default=13)
    add_write_docs_flag(parser)
    args = parser.parse_args()
    docs, origin = corpus(args.words, 0)
    rng = random.Random(1)
    planted = []
    for d in rng.sample(docs[: max(1, len(docs) // 4)], args.items // 2):
        w = words(d)
        if len(w) < args.n + 5:
            continue
        i = rng.randrange(0, len(w) - args.n - 5)
        planted.append(" ".join(w[i:i + args.n + 5]))
    fresh = [" ".join(f"zz{rng.randrange(10**6)}" for _ in range(args.n + 5)) for _ in range(args.items - len(planted))]
    items = planted + fresh

    t0 = time.perf_counter()
    idx = Index(args.n)
    src = idx.add_texts("train", docs)
    src.grams(args.n)
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = [idx.check({"text": t}).contaminated for t in items]
    t_check = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = set()
    for d in docs:
        w = words(d)
        ref.update(tuple(w[i:i + args.n]) for i in range(len(w) - args.n + 1))
    t_ref_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_found = []
    for t in items:
        w = words(t)
        ref_found.append(any(tuple(w[i:i + args.n]) in ref for i in range(len(w) - args.n + 1)))
    t_ref_check = time.perf_counter() - t0

    index_mb = (src.grams(args.n).nbytes + src.ids.nbytes) / 2**20
    del ref
    import tracemalloc

    tracemalloc.start()
    ref = set()
    for d in docs:
        w = words(d)
        ref.update(tuple(w[i:i + args.n]) for i in range(len(w) - args.n + 1))
    ref_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()

    print(f"# Contamination check ({src.n_words:,} training words from {origin}; {len(items)} items, n = {args.n})\n")
    print("| implementation | index | training words/s | index memory | check items | items/s | planted found | fresh flagged |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, ti, mb, tc, f in (("harness (hashed n-grams, numpy)", t_index, index_mb, t_check, found),
                                ("reference (set of word tuples)", t_ref_index, ref_mb, t_ref_check, ref_found)):
        print(f"| {name} | {ti:.2f} s | {src.n_words / ti:,.0f} | {mb:,.0f} MB | {tc:.2f} s | {len(items) / tc:,.0f} | "
              f"{sum(f[:len(planted)])} of {len(planted)} | {sum(f[len(planted):])} of {len(fresh)} |")
    print(f"\nagreement with the reference: {sum(a == b for a, b in zip(found, ref_found))} of {len(items)} items")


if __name__ == "__main__":
    raise SystemExit(run_recorded("contamination", main, markdown=True))
