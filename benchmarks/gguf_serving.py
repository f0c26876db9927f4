"""llama.cpp against transformers on the embedded default model (a benchmark, not a test): the
same prompts through harness's own run path, side by side in one process on one machine.

Models (a temporary models file): the embedded Gemma 3 270M served by hf in float32 (the
reference), and two `gguf` exports of it made by the recipe with llama.cpp's converter and
quantizer, served by the llama_cpp backend: f16 (near-unquantized: parity) and Q4_K_M (what a
CPU deployment ships: its fidelity).

- Generation: the brand_tweets task of suites/brand_voice.yaml (16 briefs, greedy, 40 new
  tokens, stop at a newline, hf batch 8 as the suite says; llama.cpp serves one at a time).
  Throughput = output tokens / generation seconds (the backends' own latencies, scorers excluded).
- Multiple choice: suites/mmlu_sample.yaml (40 items, 3-shot, 4 letter options): per-option
  log-likelihood differences against hf, answer agreement, accuracy, seconds.

    python benchmarks/gguf_serving.py            # about 6 minutes on a 2-core CPU (first run converts)
    python benchmarks/gguf_serving.py --keep DIR # keep the store and exports in DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODELS = """
base: {name: hf-fp32, source: embedded, dtype: float32}
variants:
  - {name: llamacpp-f16, parent: hf-fp32, method: gguf, config: {quantization: f16}}
  - {name: llamacpp-q4km, parent: hf-fp32, method: gguf, config: {quantization: Q4_K_M}}
"""

GEN_SUITE = """
name: bench_generation
tasks:
  - name: brand_tweets
    type: generation
    data: {{format: jsonl, path: {data}, limit: 16}}
    id_field: id
    prompt: {{template: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:", reference: "{{{{ tweet }}}}"}}
    generation: {{max_new_tokens: 40, temperature: 0.0, stop: ["\\n"], batch_size: 8}}
    scorers: [rouge]
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it (default: a temporary folder)")
    add_write_docs_flag(parser)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from harness.cli import main as harness

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-llamacpp-"))
    work.mkdir(parents=True, exist_ok=True)
    models = work / "models.yaml"
    models.write_text(MODELS)
    gen = work / "gen.yaml"
    gen.write_text(GEN_SUITE.format(data=REPO / "data" / "brand" / "test.jsonl"))
    store = str(work / "bench.duckdb")
    t0 = time.perf_counter()
    if harness(["build", str(models), "--store", store]) != 0:
        return 1
    build_s = time.perf_counter() - t0
    if harness(["run", str(gen), str(REPO / "suites" / "mmlu_sample.yaml"), "--models", str(models), "--store", store, "--force"]) != 0:
        return 1

    import duckdb

    con = duckdb.connect(store, read_only=True)
    sizes = {n: json.loads(m or "{}") for n, m in con.execute("SELECT name, metrics FROM variants").fetchall()}
    runs = {(v, t): (rid, wall) for rid, v, t, wall in con.execute("SELECT run_id, variant, task, wall_s FROM runs").fetchall()}
    names = ["hf-fp32", "llamacpp-f16", "llamacpp-q4km"]
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; build {build_s:.0f}s; store {store}")
    for n in names[1:]:
        m = sizes[n]
        print(f"  {n}: {m.get('gguf_bytes', 0) / 1e6:.0f} MB ({m.get('bits_per_weight')} bits/weight) from "
              f"{m.get('source_bytes', 0) / 1e6:.0f} MB of safetensors")

    print("\ngeneration: brand_tweets, 16 briefs, greedy, <= 40 new tokens")
    print(f"  {'model':15} {'out tokens':>10} {'gen s':>8} {'tokens/s':>9} {'x hf':>6} {'same text as hf':>16}")
    texts, rate = {}, {}
    for n in names:
        rows = con.execute("SELECT sample_id, output, details FROM samples WHERE run_id = ? ORDER BY sample_id",
                           [runs[(n, "brand_tweets")][0]]).fetchall()
        texts[n] = {sid: out for sid, out, _ in rows}
        details = [json.loads(d) for _, _, d in rows]
        tokens = sum(d["output_tokens"] for d in details)
        seconds = sum(d["latency_s"] for d in details)
        rate[n] = tokens / seconds
        same = sum(texts[n][k] == texts["hf-fp32"][k] for k in texts[n])
        print(f"  {n:15} {tokens:>10} {seconds:>8.1f} {rate[n]:>9.1f} {rate[n] / rate['hf-fp32']:>6.2f} {same:>13}/{len(rows)}")

    gguf = Path(con.execute("SELECT artifact_path FROM variants WHERE name = 'llamacpp-q4km'").fetchone()[0]) / "model.gguf"
    prompts = [p for (p,) in con.execute(
        "SELECT prompt FROM samples WHERE run_id = ? ORDER BY sample_id", [runs[("llamacpp-q4km", "brand_tweets")][0]]).fetchall()]
    _batching(gguf, prompts)

    print("\nmultiple choice: mmlu_sample, 40 items x 4 options, 3-shot")
    print(f"  {'model':15} {'acc':>6} {'run s':>7} {'max |dLL|':>10} {'mean |dLL|':>11} {'same answer':>12}")
    ref = _mc(con, runs[("hf-fp32", "mmlu_sample")][0])
    for n in names:
        got = _mc(con, runs[(n, "mmlu_sample")][0])
        diffs = [abs(a - b) for k in ref for a, b in zip(got[k][0], ref[k][0])]
        agree = sum(_argmax(got[k][0]) == _argmax(ref[k][0]) for k in ref)
        acc = sum(_argmax(got[k][0]) == got[k][1] for k in got) / len(got)
        print(f"  {n:15} {acc:>6.3f} {runs[(n, 'mmlu_sample')][1]:>7.1f} {max(diffs):>10.4f} {sum(diffs) / len(diffs):>11.5f} "
              f"{agree:>9}/{len(ref)}")
    con.close()
    return 0


def _batching(gguf: Path, prompts: list[str]) -> None:
    """The Q4_K_M file's generation throughput one sequence at a time and in batches (the
    backend's n_parallel), same prompts and settings as the suite, each after a warm-up call."""
    from harness.backends.base import GenerationConfig
    from harness.backends.llama_cpp import LlamaCppBackend

    print(f"\nllama.cpp batching, {gguf.parent.name}: the same {len(prompts)} briefs, greedy, <= 40 new tokens, stop at a newline")
    print(f"  {'sequences per batch':20} {'out tokens':>10} {'wall s':>7} {'tokens/s':>9} {'same text as 1':>15}")
    serial = None
    for n in (1, 8, 16):
        backend = LlamaCppBackend(gguf, n_parallel=n)
        config = GenerationConfig(max_new_tokens=40, stop=("\n",), batch_size=n)
        backend.generate(prompts[:n], config)  # warm-up
        start = time.perf_counter()
        outs = backend.generate(prompts, config)
        wall = time.perf_counter() - start
        backend.close()
        texts = [o.text for o in outs]
        serial = serial or texts
        tokens = sum(o.output_tokens for o in outs)
        same = sum(a == b for a, b in zip(texts, serial))
        print(f"  {n:<20} {tokens:>10} {wall:>7.2f} {tokens / wall:>9.1f} {same:>12}/{len(texts)}")


def _mc(con, run_id: str) -> dict:
    rows = con.execute("SELECT sample_id, details FROM samples WHERE run_id = ?", [run_id]).fetchall()
    return {sid: (json.loads(d)["loglikelihoods"], json.loads(d)["gold"]) for sid, d in rows}


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


if __name__ == "__main__":
    raise SystemExit(run_recorded("gguf_serving", main, start='machine:'))
