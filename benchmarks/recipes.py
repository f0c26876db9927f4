"""Benchmark each build recipe on the embedded default model (Gemma 3 270M) on this machine.

Each recipe runs in its own process (so peak memory is that recipe's own) with a fresh store,
a few steps, and the same data as the demo. Prints one table: wall time, training steps/s,
examples/s, tokens/s where the trainer counts them, and peak RSS.

    python benchmarks/recipes.py [--steps 6] [--only sft_lora dpo ...]

Figures are machine-dependent: compare rows produced in the same run."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
PROMPT = "Write a tweet for Lumen Coffee.\\nBrief: {{ topic }}\\nTweet:"

SFT = f"""
  - name: sft
    parent: base
    method: sft_lora
    config:
      data: {{path: {REPO}/data/brand/train.jsonl, prompt: "{PROMPT}", completion: " {{{{ tweet }}}}", validation_fraction: 0}}
      lora: {{r: 8, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj]}}
      training: {{max_steps: STEPS, batch_size: 4, max_length: 96, logging_steps: 1, learning_rate: 0.0005}}
"""

PREFERENCE = """
  - name: pref
    parent: sft
    method: METHOD
    config:
      data: {source: pairs, path: PAIRS, validation_fraction: 0}
      training: {max_steps: STEPS, batch_size: 2, max_length: 96, logging_steps: 1}
"""

RECIPES = {
    "sft_lora": ("sft", SFT),
    "dpo": ("pref", SFT + PREFERENCE.replace("METHOD", "dpo")),
    "kto": ("pref", SFT + PREFERENCE.replace("METHOD", "kto")),
    "quantize_int8": ("q", "  - {name: q, parent: base, method: quantize, config: {scheme: int8}}\n"),
    "quantize_nf4": ("q", "  - {name: q, parent: base, method: quantize, config: {scheme: nf4}}\n"),
    "shrink": ("small", "  - {name: small, parent: base, method: shrink, config: {keep_every: 2}}\n"),
}


def pairs_file(tmp: Path) -> Path:
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()[:32]]
    path = tmp / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Write a tweet for Lumen Coffee.\nBrief: {r['topic']}\nTweet:",
                                        "chosen": " " + r["tweet"], "rejected": " Coffee is available. Visit us."}) + "\n"
                            for r in rows))
    return path


def run(recipe: str, steps: int) -> dict:
    target, variants = RECIPES[recipe]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = tmp / "models.yaml"
        models.write_text("base: {name: base, source: embedded}\nvariants:\n" +
                          variants.replace("STEPS", str(steps)).replace("PAIRS", str(pairs_file(tmp))))
        store = tmp / "h.duckdb"
        # Parents are built first (not timed); then the target alone, in a fresh process.
        parent_names = [line.split("name:")[1].split(",")[0].strip() for line in variants.splitlines() if "name:" in line]
        for name in parent_names[:-1]:
            subprocess.run([sys.executable, "-m", "harness", "build", str(models), "--store", str(store), "--variant", name],
                           check=True, capture_output=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "build", str(models), "--store", str(store), "--variant", target],
                       check=True, capture_output=True)
        wall = time.perf_counter() - t0
        import duckdb

        con = duckdb.connect(str(store), read_only=True)
        row = con.execute("SELECT wall_s, peak_rss_mb, train_curve, metrics FROM variants WHERE name = ?", [target]).fetchone()
        con.close()
    curve = json.loads(row[2] or "[]")
    train_rt = [p for p in curve if "train_runtime" in p]
    runtime = train_rt[-1]["train_runtime"] if train_rt else None
    tokens = max((p.get("num_tokens", 0) for p in curve), default=0)
    batch = 2 if recipe in ("dpo", "kto") else 4
    return {"recipe": recipe, "process_s": round(wall, 1), "build_s": round(row[0], 1),
            "train_s": round(runtime, 1) if runtime else None,
            "steps_per_s": round(steps / runtime, 3) if runtime else None,
            "examples_per_s": round(steps * batch / runtime, 2) if runtime else None,
            "tokens_per_s": round(tokens / runtime, 1) if runtime and tokens else None,
            "peak_rss_gb": round(row[1] / 1024, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES))
    add_write_docs_flag(parser)
    args = parser.parse_args()
    rows = [run(r, args.steps) for r in (args.only or RECIPES)]
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join("-" if r[c] is None else str(r[c]) for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("recipes", main))
