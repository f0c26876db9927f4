"""GPU check, run once on a lent H100/H200 (never in CI):

  1. QLoRA NF4 SFT (bitsandbytes 4-bit, double quantization, bf16 compute) for a few steps on
     the embedded default model;
  2. DPO for a few steps on top of it;
  3. serve the resulting adapters with vLLM (LoRA request) and generate.

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
      data: {{path: {data}/train.jsonl, prompt: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:", completion: " {{{{ tweet }}}}", validation_fraction: 0.1}}
      lora: {{r: 16, alpha: 32, target_modules: all-linear}}
      training: {{learning_rate: 0.0002, max_steps: 30, batch_size: 8, max_length: 96, logging_steps: 5}}
      qlora: {{quant_type: nf4, double_quant: true, compute_dtype: bfloat16}}
  - name: qlora-dpo
    parent: qlora-sft
    method: dpo
    config:
      data: {{source: rule, path: {data}/train.jsonl, prompt: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:", chosen: " {{{{ tweet }}}}", limit: 64, max_new_tokens: 40}}
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

    from harness.build import build_models
    from harness.store import open_store

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
        adapters = {r["name"]: r["artifact_path"] for r in s.query("SELECT name, artifact_path FROM variants WHERE method != 'base'")}
        base_dir = s.query("SELECT artifact_path FROM variants WHERE method = 'base'")[0]["artifact_path"]
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError:
        emit("vllm", skipped="vllm is not installed: pip install 'harness[vllm]'")
        return 0
    t0 = time.perf_counter()
    llm = LLM(model=base_dir, enable_lora=True, max_lora_rank=16, gpu_memory_utilization=0.3, max_model_len=512)
    prompts = ["Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:"] * 32
    params = SamplingParams(max_tokens=40, temperature=0.0, stop=["\n"])
    for i, (name, path) in enumerate(adapters.items(), start=1):
        t1 = time.perf_counter()
        outs = llm.generate(prompts, params, lora_request=LoRARequest(name, i, path))
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        elapsed = time.perf_counter() - t1
        emit("vllm", adapter=name, tokens=tokens, seconds=round(elapsed, 2), tokens_per_s=round(tokens / elapsed, 1),
             sample=outs[0].outputs[0].text[:120])
    emit("done", seconds_total=round(time.perf_counter() - t0, 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
