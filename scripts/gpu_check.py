"""GPU check, run once on a lent H100/H200 (never in CI):

  1. QLoRA NF4 SFT (bitsandbytes 4-bit, double quantization, bf16 compute) for a few steps on
     the embedded default model;
  2. DPO for a few steps on top of it;
  3. serve the DPO variant with harness's vllm backend: the SFT adapter it was trained on is
     folded into the base first, the DPO adapter served as a LoRA request (the chain, not DPO
     on the bare base);
  4. multiple-choice parity: per-option log-likelihoods of vLLM against the hf backend on the
     same chain, over data/mmlu_sample (max and mean absolute difference, answer agreement);
  5. generation throughput of vLLM against hf on the same 64 prompts;
  6. `harness run --ray` with vLLM replicas: the MMLU-format sample on one process, on one Ray
     replica, on two data-parallel replicas (half a GPU each on a one-GPU machine, a GPU each on
     more) and, with two GPUs or more, one engine tensor-parallel over two; wall time and the
     largest per-option log-likelihood difference from the one-process run.

Prints one JSON line per stage with timings and memory. Exits 0 and says so when CUDA or an
optional package is missing. Usage:  python scripts/gpu_check.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODELS = """
base: {{name: gemma3-270m, source: embedded, dtype: bfloat16}}
variants:
  - name: qlora-sft
    parent: gemma3-270m
    method: sft_lora
    config:
      data:
        path: {data}/train.jsonl
        prompt: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:"
        completion: " {{{{ tweet }}}}"
        validation_fraction: 0.1
      lora: {{r: 16, alpha: 32, target_modules: all-linear}}
      training: {{learning_rate: 0.0002, max_steps: 30, batch_size: 8, max_length: 96, logging_steps: 5}}
      qlora: {{quant_type: nf4, double_quant: true, compute_dtype: bfloat16}}
  - name: qlora-dpo
    parent: qlora-sft
    method: dpo
    config:
      data:
        source: rule
        path: {data}/train.jsonl
        prompt: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:"
        chosen: " {{{{ tweet }}}}"
        limit: 64
        max_new_tokens: 40
      training: {{max_steps: 10, batch_size: 8, max_length: 96, learning_rate: 0.0001}}
"""


def emit(stage: str, **fields) -> None:
    print(json.dumps({"stage": stage, **fields}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        emit("skip", reason="torch is not installed")
        return 0
    if not torch.cuda.is_available():
        emit("skip", reason="no CUDA device: nothing to check here")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="harness-gpu-"))
    models = work / "models.yaml"
    models.write_text(MODELS.format(data=REPO / "data" / "brand"))
    store = work / "harness.duckdb"
    emit("device", name=torch.cuda.get_device_name(0), torch=torch.__version__)

    from harness.run.build import build_models
    from harness.store.db import open_store

    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    outcomes = build_models(models, store)
    emit("build", seconds=round(time.perf_counter() - t0, 1), peak_gpu_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2),
         variants=[o.name for o in outcomes])
    with open_store(store, read_only=True) as s:
        for row in s.query("SELECT name, method, fallback, device, wall_s, metrics, artifact_path FROM variants WHERE method != 'base'"):
            m = json.loads(row["metrics"] or "{}")
            emit("variant", name=row["name"], method=row["method"], device=row["device"], fallback=row["fallback"],
                 wall_s=round(row["wall_s"], 1), train_loss=m.get("train_loss"), eval_loss=m.get("eval_loss"),
                 reward_accuracy=m.get("reward_accuracies"), reward_margin=m.get("reward_margins"))
    try:
        import vllm  # noqa: F401
    except ImportError:
        emit("vllm", skipped="vllm is not installed: pip install 'harness[vllm]'")
        return 0
    from harness.backends import hf as hf_backend
    from harness.backends import vllm as vllm_backend
    from harness.backends.base import GenerationConfig
    from harness.config.models import load_models
    from harness.models.variants import resolve_built

    spec = load_models(models)
    with open_store(store, read_only=True) as s:
        chain = resolve_built(spec, models, "qlora-dpo", s)
    emit("chain", adapters=[str(a) for a in chain.adapters])
    requests = mmlu_requests()
    gen_prompts = [f"Write a tweet for Lumen Coffee.\nBrief: {topic}\nTweet:" for topic in TOPICS] * 8
    config = GenerationConfig(max_new_tokens=40, temperature=0.0, stop=("\n",), batch_size=len(gen_prompts))
    figures = {}
    for name, opener in (("vllm", vllm_backend.open_model), ("hf", hf_backend.open_model)):
        t0 = time.perf_counter()
        backend = opener(chain, {"max_length": 512} if name == "vllm" else {"batch_size": 64})
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lls = backend.loglikelihood(requests)
        mc_s = time.perf_counter() - t0
        backend.generate(gen_prompts[:4], config)  # warm-up (CUDA graphs, kernels)
        t0 = time.perf_counter()
        outs = backend.generate(gen_prompts, config)
        gen_s = time.perf_counter() - t0
        tokens = sum(o.output_tokens for o in outs)
        figures[name] = [r.logprob for r in lls]
        emit(name, load_s=round(load_s, 1), mc_requests=len(requests), mc_s=round(mc_s, 2), gen_prompts=len(gen_prompts),
             gen_tokens=tokens, gen_s=round(gen_s, 2), tokens_per_s=round(tokens / gen_s, 1), sample=outs[0].text[:100],
             peak_gpu_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2))
        backend.close()
        torch.cuda.empty_cache()
    diffs = [abs(a - b) for a, b in zip(figures["vllm"], figures["hf"])]
    agree = sum(_argmax(figures["vllm"][i:i + 4]) == _argmax(figures["hf"][i:i + 4]) for i in range(0, len(diffs), 4))
    emit("parity", max_abs_diff=round(max(diffs), 5), mean_abs_diff=round(sum(diffs) / len(diffs), 5),
         answers_agree=f"{agree}/{len(diffs) // 4}")
    ray_parallel(work, torch.cuda.device_count())
    return 0


PARALLEL_SUITE = """
name: gpu_parallel
tasks:
  - name: mmlu_sample
    type: multiple_choice
    data: {{format: mmlu_csv, path: {repo}/data/mmlu_sample, split: test}}
    fewshot: {{k: 3, split: dev}}
    prompt:
      description: "The following are multiple choice questions (with answers) about {{{{ subject }}}}.\\n\\n"
      template: "{{{{ question.strip() }}}}\\nA. {{{{ choices[0] }}}}\\nB. {{{{ choices[1] }}}}\\nC. {{{{ choices[2] }}}}\\nD. {{{{ choices[3] }}}}\\nAnswer:"
    multiple_choice: {{choices_field: choices, answer_field: answer, continuation: letter}}
    scorers: [acc]
"""


def ray_parallel(work: Path, gpus: int) -> None:
    """Stage 6: vLLM replicas on Ray (data parallel; tensor parallel 2 where two GPUs exist)."""
    try:
        import ray
    except ImportError:
        emit("ray", skipped="ray is not installed: pip install 'harness[ray]'")
        return
    import duckdb

    from harness.run.distributed import RayOptions
    from harness.run.evaluate import run_suites

    suite = work / "parallel.yaml"
    suite.write_text(PARALLEL_SUITE.format(repo=REPO))
    per = 1.0 if gpus >= 2 else 0.5
    configs = [("one process", "", None), ("ray, 1 replica", ", resources: {num_replicas: 1}", 1),
               (f"ray, 2 data-parallel replicas ({per:g} GPU each)", f", resources: {{num_replicas: 2, num_gpus: {per}}}", 2)]
    if gpus >= 2:
        configs.append(("ray, tensor parallel 2", ", resources: {num_replicas: 1}", "tp"))
    ray.init(include_dashboard=False, log_to_driver=False, namespace="harness")
    reference = None
    for label, resources, mode in configs:
        options = "{gpu_memory_utilization: 0.35, max_length: 1024" + (", tensor_parallel_size: 2" if mode == "tp" else "") + "}"
        models = work / f"parallel-{len(label)}.yaml"
        models.write_text(f"base: {{name: gemma3-270m, source: embedded, dtype: bfloat16, backend: vllm, options: {options}{resources}}}\n")
        store = work / f"parallel-{len(label)}.duckdb"
        t0 = time.perf_counter()
        try:
            run_suites([suite], models, store, ray=None if mode is None else RayOptions(None, 16))
        except Exception as exc:  # noqa: BLE001 - a stage's failure is reported, the next one still runs
            emit("ray", config=label, error=f"{type(exc).__name__}: {exc}"[:500])
            continue
        wall = time.perf_counter() - t0
        con = duckdb.connect(str(store), read_only=True)
        lls = [json.loads(d)["loglikelihoods"] for (d,) in con.execute("SELECT details FROM samples ORDER BY sample_id").fetchall()]
        details = json.loads(con.execute("SELECT backend_details FROM runs").fetchone()[0] or "{}")
        con.close()
        flat = [x for row in lls for x in row]
        reference = reference or flat
        emit("ray", config=label, items=len(lls), command_s=round(wall, 1), ray=details.get("ray"),
             max_abs_diff_vs_one_process=round(max(abs(a - b) for a, b in zip(flat, reference)), 6))
    ray.shutdown()


TOPICS = ["a rainy morning", "the new oat latte", "weekend opening hours", "a latte art workshop",
          "our single-origin beans", "a loyalty card", "iced coffee season", "the new cafe in town"]


def mmlu_requests() -> list[tuple[str, str]]:
    """Zero-shot MMLU-style prompts over data/mmlu_sample/test, four letter options each."""
    import csv

    requests = []
    for path in sorted((REPO / "data" / "mmlu_sample" / "test").glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            for row in csv.reader(fh):
                q, opts = row[0], row[1:5]
                prompt = q + "".join(f"\n{letter}. {o}" for letter, o in zip("ABCD", opts)) + "\nAnswer:"
                requests += [(prompt, f" {letter}") for letter in "ABCD"]
    return requests


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


if __name__ == "__main__":
    raise SystemExit(main())
