"""Validate the reward_model recipe on real preference data: Anthropic HH-RLHF harmless-base pairs
(../shared/data/hh_rlhf, 500 pairs). Each pair's shared conversation becomes the prompt and the
two final assistant turns the chosen / rejected responses; `harness build` trains a LoRA reward
model on the embedded Gemma 3 270M (or --base-dir, a transformers directory) and stores held-out
pairwise accuracy before and after training, with its interval, beside the trivial "longer is
better" baseline on the same held-out pairs. Not a unit test: it needs ../shared/data.

    python scripts/validate_reward_model.py [--pairs 500] [--steps 200] [--lr 5e-4] [--max-length 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "hh_rlhf" / "harmless_base_test_first500.jsonl"
TURN = "\n\nAssistant:"


def split_pair(chosen: str, rejected: str) -> dict | None:
    """The shared conversation up to the last assistant turn, and the two final turns."""
    cut = min(chosen.rfind(TURN), rejected.rfind(TURN))
    if cut < 0 or chosen[:cut] != rejected[:cut]:
        return None
    cut += len(TURN)
    prompt, a, b = chosen[:cut], chosen[cut:], rejected[cut:]
    return None if a == b else {"prompt": prompt, "chosen": a, "rejected": b}


MODELS = """
base: {base}
variants:
  - name: hh-rm
    parent: base
    method: reward_model
    config:
      data: {{source: pairs, path: {data}, validation_fraction: {fraction}, split_seed: 0, audit_sample: 20}}
      lora: {{r: 16, alpha: 32, target_modules: [q_proj, k_proj, v_proj, o_proj]}}
      training: {{max_steps: {steps}, batch_size: {batch}, max_length: {max_length}, learning_rate: {lr}, warmup_ratio: 0.05,
                  logging_steps: 10, seed: 0}}
      score_batch_size: 8
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--held-out", type=float, default=0.2, help="share of pairs held out (validation_fraction)")
    ap.add_argument("--base-dir", help="a transformers model directory instead of the embedded Gemma 3 270M")
    args = ap.parse_args()
    if not DATA.is_file():
        print(f"skip: {DATA} not found (the shared validation data is not part of a clone)")
        return 0
    work = Path(tempfile.mkdtemp(prefix="hh-rm-"))
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[: args.pairs]]
    pairs = [p for p in (split_pair(r["chosen"], r["rejected"]) for r in rows) if p]
    (work / "pairs.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    print(f"{len(pairs)} of {len(rows)} HH-RLHF pairs split into conversation + final turns")
    base = "{name: base, source: hf_dir, path: " + json.dumps(args.base_dir) + "}" if args.base_dir else "{name: base, source: embedded}"
    (work / "models.yaml").write_text(MODELS.format(base=base, data=work / "pairs.jsonl", fraction=args.held_out, steps=args.steps,
                                                    batch=args.batch, max_length=args.max_length, lr=args.lr))
    store = work / "h.duckdb"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "build", str(work / "models.yaml"), "--store", str(store)], check=True,
                   cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - t0

    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    metrics = json.loads(con.execute("SELECT metrics FROM variants WHERE method = 'reward_model'").fetchone()[0])
    before, after, base_line = metrics["heldout_before"], metrics["heldout_after"], metrics["length_baseline"]

    def fmt(d: dict) -> str:
        return f"{d['accuracy']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"

    print(f"\nHH-RLHF harmless-base, {metrics['pairs_train']} training pairs, {after['n']} held out; "
          f"{metrics['steps']} steps x batch {args.batch}, max_length {args.max_length}; build {wall:.0f} s")
    print("| scorer | held-out pairwise accuracy (95% CI) | mean margin |")
    print("|---|---|---|")
    print(f"| 'longer is better' (characters) | {fmt(base_line)} | - |")
    print(f"| reward model before training (random head) | {fmt(before)} | {before['margin']:.3f} |")
    print(f"| reward model after training | {fmt(after)} | {after['margin']:.3f} |")
    vs = metrics["versus_length"]
    print(f"reward model minus 'longer is better', paired on the same pairs: {vs['difference']:+.3f} "
          f"[{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}]")
    print(f"length balance of the pairs: {metrics['preference_data']['length_imbalance']:.2f}; work dir {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
