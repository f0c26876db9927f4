"""Capacity at an SLO against a real server (a benchmark, not a test): llama.cpp's own
OpenAI-compatible server (`python -m llama_cpp.server`) serving a GGUF file, driven by
`harness load` twice with the same settings, to show how far the capacity it reports moves
between two runs on one machine.

Default: the demo's Q4_K_M export of the DPO variant (run `make demo` first), the brand briefs
of data/brand/test.jsonl as prompts, at most 16 new tokens, p90 latency <= 1000 ms, rates 1, 1.5, 2, 2.5 and 3
requests per second, 100 requests each. The server queues requests (`--interrupt_requests False`: by
default llama-cpp-python's server cuts the request being generated short when another arrives).

    python benchmarks/load_capacity.py
    python benchmarks/load_capacity.py --gguf path/to/model.gguf --rates 0.5 1 2 --slo-ms 1500
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SUITE = """
name: capacity
seed: 11
tasks:
  - name: brand_capacity
    type: load
    data: {{format: jsonl, path: {data}}}
    id_field: id
    prompt: {{template: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:"}}
    generation: {{max_new_tokens: {tokens}}}
    load:
      rates: [{rates}]
      requests_per_rate: {requests}
      slo: {{percentile: 90, latency_ms: {slo}}}
      price_per_hour: 0.10
      stop_after_failure: false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="the GGUF file to serve (default: the demo's brand-dpo-q4 export)")
    parser.add_argument("--rates", type=float, nargs="+", default=[1, 1.5, 2, 2.5, 3])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--slo-ms", type=float, default=1000)
    parser.add_argument("--runs", type=int, default=2)
    add_write_docs_flag(parser)
    args = parser.parse_args()
    gguf = args.gguf or next(iter(sorted((REPO / ".harness" / "artifacts").glob("brand-dpo-q4-*/model.gguf"))), None)
    if gguf is None or not gguf.is_file():
        print("no GGUF to serve: run `make demo` first, or pass --gguf", file=sys.stderr)
        return 2
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port",
                               str(port), "--n_threads", str(os.cpu_count() or 2), "--n_ctx", "512", "--verbose", "False",
                               # by default a new request cuts the one being generated short: queue them instead
                               "--interrupt_requests", "False"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("llama.cpp's server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        print(f"llama.cpp server (llama-cpp-python) on 127.0.0.1:{port} serving {gguf.relative_to(REPO) if gguf.is_relative_to(REPO) else gguf} "
              f"({gguf.stat().st_size / 1e6:.0f} MB), {os.cpu_count()} threads")
        capacities = []
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            suite = Path(tmp) / "capacity.yaml"
            suite.write_text(SUITE.format(data=REPO / "data" / "brand" / "test.jsonl", tokens=args.tokens,
                                          rates=", ".join(f"{r:g}" for r in args.rates), requests=args.requests, slo=args.slo_ms))
            for k in range(args.runs):
                store = Path(tmp) / f"run{k}.duckdb"
                t0 = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "harness", "load", str(suite), "--model",
                                       f"endpoint:http://127.0.0.1:{port}/v1,model=served,name=q4-llamacpp", "--store", str(store),
                                       "--seed", str(11 + k)],
                                      capture_output=True, text=True, cwd=REPO, env={**os.environ, "HARNESS_PROGRESS": "0"})
                print(f"\nrun {k + 1} (arrival seed {11 + k}), {time.perf_counter() - t0:.0f} s, exit {done.returncode}:")
                print(done.stdout.rstrip())
                if done.returncode != 0:
                    print(done.stderr[-3000:])
                    return 1
                json_out = subprocess.run([sys.executable, "-c", "import duckdb,sys,json; c=duckdb.connect(sys.argv[1], read_only=True); "
                                           "print(json.dumps(dict(c.execute(\"SELECT metric, value FROM run_stats WHERE metric LIKE "
                                           "'load_max_rate_at_slo%'\").fetchall())))", str(store)], capture_output=True, text=True, cwd=REPO)
                capacities.append(json.loads(json_out.stdout))
        rates = ", ".join(f"{r:g}" for r in args.rates)
        for metric, words in (("load_max_rate_at_slo", "decided (every rate up to it meets the SLO on its bound)"),
                              ("load_max_rate_at_slo_point", "on point estimates")):
            values = [c[metric] for c in capacities]
            spread = (max(values) - min(values)) / max(values) if max(values) else 0.0
            print(f"capacity at p90 <= {args.slo_ms:g} ms, {words}, over {args.runs} runs: {', '.join(f'{v:g}' for v in values)} "
                  f"requests/s (spread {100 * spread:.0f}% of the highest; rates tested: {rates})")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("load_capacity", main))
