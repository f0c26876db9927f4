"""Generation throughput of the hf backend (a benchmark, not a test): the embedded Gemma 3 270M on
the 16 brand briefs of suites/brand_voice.yaml (greedy, <= 40 new tokens, stop at a newline), one
request at a time against batches of 8, in float32, bfloat16 and bitsandbytes int8, one process,
one machine, each setting after a warm-up batch. Tokens/s = output tokens / wall seconds.

    python benchmarks/generation.py
    python benchmarks/generation.py --settings float32 bfloat16 --batches 1 8 16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["float32", "bfloat16", "int8"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    add_write_docs_flag(parser)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HARNESS_PROGRESS", "0")
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # a warning per int8 matmul otherwise
    from harness.backends.base import GenerationConfig
    from harness.backends.hf import HFBackend
    from harness.models.weights import convert_gguf, embedded_gguf

    model_dir = convert_gguf(*embedded_gguf())
    briefs = [json.loads(line)["topic"] for line in (REPO / "data" / "brand" / "test.jsonl").read_text().splitlines()[:16]]
    prompts = [f"Write a tweet for Lumen Coffee.\nBrief: {b}\nTweet:" for b in briefs]
    print(f"{len(prompts)} brand briefs, greedy, <= 40 new tokens, stop at a newline; {os.cpu_count()} CPUs")
    print(f"  {'setting':10} {'batch':>5} {'out tokens':>10} {'seconds':>8} {'tokens/s':>9}  same text as float32 batch 1")
    reference = None
    for setting in args.settings:
        kwargs = {"quantization": {"scheme": "int8"}} if setting == "int8" else {"dtype": setting}
        backend = HFBackend(model_dir, **kwargs)
        for batch in args.batches:
            config = GenerationConfig(max_new_tokens=40, temperature=0.0, stop=("\n",), batch_size=batch)
            backend.generate(prompts[:batch], config)  # warm-up
            t0 = time.perf_counter()
            outs = backend.generate(prompts, config)
            seconds = time.perf_counter() - t0
            tokens = sum(o.output_tokens for o in outs)
            texts = [o.text for o in outs]
            reference = reference or texts
            same = sum(a == b for a, b in zip(texts, reference))
            print(f"  {setting:10} {batch:>5} {tokens:>10} {seconds:>8.1f} {tokens / seconds:>9.1f}  {same}/{len(texts)}")
        backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("generation", main))
