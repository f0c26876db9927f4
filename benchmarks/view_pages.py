"""How fast `harness view` answers on a large store (a benchmark, not a test): each page's server
time, from the request to the rendered HTML, on stores of growing size, beside the floor every
page pays (opening the store read-only for the request and one trivial query).

Store: --variants variants (a lineage: v00 the base, each next one built on the one before) x one
generation task of --items items with text prompts, outputs and references, 2 metrics per item
(exact_match 0/1, rougeL in [0, 1]), each run written as harness writes one. Pages are requested
in-process (Starlette's test client: the app as uvicorn serves it, without the socket), each
--repeat times; the median is printed.

    python benchmarks/view_pages.py                      # 5 variants x 2,000 and 50,000 items
    python benchmarks/view_pages.py --items 1000         # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = "coffee morning roast latte neighbours bright fresh beans cup friends week menu season maple warm slow".split()


def build(path: Path, variants: int, items: int) -> None:
    import numpy as np

    from harness.store.db import RunRow, SampleRow, ScoreRow, Store, VariantRow

    rng = np.random.default_rng(0)
    now = datetime(2026, 12, 1)
    names = [f"v{k:02d}" for k in range(variants)]
    prompts = [f"Write a post. Brief: {' '.join(rng.choice(WORDS, 6))} #{i}" for i in range(items)]
    refs = [" ".join(rng.choice(WORDS, 12)) for _ in range(items)]
    with Store(path) as store:
        for k, name in enumerate(names):
            parent = names[k - 1] if k else None
            store.upsert_variant(VariantRow(name, name, parent, parent, "sft_lora" if k else "base", None, None, "adapter" if k else "base",
                                            None, None, None, None, None, None, None, None, "cpu", None, None, now - timedelta(days=10 - k)))
            run_id = f"{name}-gen"
            right = rng.random(items) < 0.3 + 0.05 * k
            samples, scores = [], []
            for i in range(items):
                out = refs[i] if right[i] else " ".join(rng.choice(WORDS, 10))
                samples.append(SampleRow(run_id, f"p{i:06d}", prompts[i], refs[i], out,
                                         json.dumps({"category": WORDS[i % 4], "latency_s": 0.5}), content_hash=f"c{i}"))
                scores += [ScoreRow(run_id, f"p{i:06d}", "exact_match", "exact_match", float(right[i])),
                           ScoreRow(run_id, f"p{i:06d}", "rouge", "rougeL", float(right[i]) * 0.6 + rng.random() * 0.4)]
            store.write_task_run(RunRow(run_id, run_id, "brand", "h", "posts", "generation", json.dumps(["exact_match", "rougeL"]),
                                        name, name, "hf", "cpu", "float32", "d", "p", None, 0, "bench", None, now, now, 1.0, items),
                                 samples, scores)


PAGES = {
    "runs": "/runs",
    "a run": "/runs/v01-gen",
    "task table": "/tasks/brand/posts",
    "items (all variants)": "/tasks/brand/posts/items",
    "items: flips v00 -> v01": "/tasks/brand/posts/items?flip_from=v00&flip_to=v01&metric=exact_match",
    "items: text search": "/tasks/brand/posts/items?q=maple+warm+slow",
    "items: value range, page 3": "/tasks/brand/posts/items?variant=v02&metric=rougeL&min=0.5&page=3",
    "an item (diff vs base)": "/tasks/brand/posts/items/p000042",
    "lineage": "/lineage",
}


def measure(path: Path, repeat: int) -> dict[str, float]:
    from starlette.testclient import TestClient

    from harness.store.db import Store
    from harness.viewer.app import create_app

    client = TestClient(create_app(path))
    out = {}
    floor = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with Store(path, read_only=True, migrate=False) as store:
            store.query("SELECT 1")
        floor.append(time.perf_counter() - t0)
    out["floor: open read-only + one query"] = statistics.median(floor)
    for name, url in PAGES.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}: {response.text[:500]}")
        out[name] = statistics.median(times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=5)
    parser.add_argument("--items", type=int, nargs="+", default=[2_000, 50_000])
    parser.add_argument("--repeat", type=int, default=5)
    add_write_docs_flag(parser)
    args = parser.parse_args()
    columns = []
    with tempfile.TemporaryDirectory(prefix="bench-view-") as tmp:
        for items in args.items:
            path = Path(tmp) / f"view-{items}.duckdb"
            t0 = time.perf_counter()
            build(path, args.variants, items)
            print(f"store: {args.variants} variants x {items:,} items ({args.variants * items:,} samples, "
                  f"{2 * args.variants * items:,} score rows), {path.stat().st_size / 1e6:.0f} MB, written in {time.perf_counter() - t0:.0f} s")
            columns.append((items, measure(path, args.repeat)))
    print(f"\nmedian server time per page of {args.repeat} requests (ms)")
    print("| page | " + " | ".join(f"{args.variants} x {items:,} items" for items, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in columns[0][1]:
        print(f"| {name} | " + " | ".join(f"{times[name] * 1000:,.0f}" for _, times in columns) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("view_pages", main))
