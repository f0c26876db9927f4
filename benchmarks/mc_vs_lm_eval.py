"""Multiple choice: harness against lm-eval's HFLM (a benchmark, not a test), one MMLU subject from
../shared/data/mmlu, the embedded Gemma 3 270M in float32, same prompts (lm-eval's MMLU template:
description, k examples from dev in file order, "Answer:", letter continuations), same machine,
each side a whole process (imports and model load included), run one after the other.

Prints the largest per-option log-likelihood difference beside both times, at 0-shot and at
5-shot; the speed ratio is printed only at parity (every option within 1e-4 of lm-eval's), since
a faster path that moves the numbers is not the same evaluation. The harness side scores inputs
that share the few-shot head on top of that head's key/value cache (harness.backends.hf,
PREFIX_MIN_TOKENS; checked exact against whole-prompt scoring on first use); `--no-prefix-reuse`
turns that off.

    python benchmarks/mc_vs_lm_eval.py                           # college_biology, 0 and 5 shots
    python benchmarks/mc_vs_lm_eval.py --subject marketing --shots 0
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
MMLU = REPO.parent / "shared" / "data" / "mmlu"

SUITE = """
name: bench_mc
seed: 1234
tasks:
  - name: mmlu
    type: multiple_choice
    data: {{format: mmlu_csv, path: {mmlu}, split: test, subjects: [{subject}]}}
    fewshot: {{k: {k}, split: dev}}
    prompt:
      description: "The following are multiple choice questions (with answers) about {{{{ subject }}}}.\\n\\n"
      template: "{{{{ question.strip() }}}}\\nA. {{{{ choices[0] }}}}\\nB. {{{{ choices[1] }}}}\\nC. {{{{ choices[2] }}}}\\nD. {{{{ choices[3] }}}}\\nAnswer:"
    multiple_choice: {{choices_field: choices, answer_field: answer, continuation: letter}}
    scorers: [acc]
"""

MODELS = "base: {{name: gemma, source: embedded, dtype: float32, options: {{batch_size: 8, prefix_reuse: {reuse}}}}}\n"

LM_EVAL = r'''
import json, sys, time
t0 = time.perf_counter()
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
model_dir, data_dir, subject, k, out = sys.argv[1:6]
lm = HFLM(pretrained=model_dir, batch_size=8, dtype="float32", device="cpu")
task = {"task": "bench_mmlu", "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": f"{data_dir}/test.jsonl", "dev": f"{data_dir}/dev.jsonl"}},
        "test_split": "test", "fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"}, "num_fewshot": int(k),
        "output_type": "multiple_choice",
        "description": f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n",
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "answer", "target_delimiter": " ", "fewshot_delimiter": "\n\n",
        "metric_list": [{"metric": "acc"}]}
res = simple_evaluate(model=lm, tasks=[task], num_fewshot=int(k), log_samples=True, random_seed=0, numpy_random_seed=0,
                      torch_random_seed=0, fewshot_random_seed=0)
samples = res["samples"]["bench_mmlu"]
lls = {s["doc_id"]: [r[0][0] if isinstance(r[0], (list, tuple)) else r[0] for r in s["resps"]] for s in samples}
json.dump({"acc": res["results"]["bench_mmlu"]["acc,none"], "lls": lls, "seconds": time.perf_counter() - t0}, open(out, "w"))
'''


PARITY = 1e-4
"""Largest per-option log-likelihood difference from lm-eval at which a time is comparable."""


def body(row: dict) -> str:
    """The item's own part of its prompt (lm-eval's doc_to_text)."""
    c = row["choices"]
    return f"{row['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"


def flop_floor(model_dir: Path, prompts: list[str]) -> tuple[float, float]:
    """(TFLOP, GFLOP/s): the matmul work of scoring `prompts` once their longest shared token
    prefix is computed once (2 x non-embedding parameters per token, plus the vocabulary
    projection of each prompt's last position; attention scores are under 1% at these lengths),
    and this CPU's float32 matmul rate on the model's projection shapes at a batch's token count."""
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = [tok(p)["input_ids"] for p in prompts]
    shared = 0
    while all(len(x) > shared and x[shared] == ids[0][shared] for x in ids):
        shared += 1
    tokens = shared + sum(len(x) - shared for x in ids)
    params = embed = 0
    for f in Path(model_dir).glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            for name in st.keys():
                n = st.get_slice(name).get_shape()
                size = 1
                for d in n:
                    size *= d
                params += size
                embed += size if "embed_tokens" in name else 0
    cfg = AutoConfig.from_pretrained(model_dir)
    cfg = getattr(cfg, "text_config", cfg)
    flop = 2 * (params - embed) * tokens + 2 * embed * len(prompts)
    h, inter = cfg.hidden_size, cfg.intermediate_size
    q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    m = 8 * max(1, (tokens - shared) // len(prompts))  # a batch of 8 suffixes
    shapes = [(h, q), (h, kv), (h, kv), (q, h), (h, inter), (h, inter), (inter, h)]
    x = {k: torch.randn(m, k) for k, _ in shapes}
    w = [torch.randn(k, n) for k, n in shapes]
    for _ in range(3):
        [x[k] @ wi for (k, _), wi in zip(shapes, w)]
    reps, start = 20, time.perf_counter()
    for _ in range(reps):
        [x[k] @ wi for (k, _), wi in zip(shapes, w)]
    seconds = time.perf_counter() - start
    rate = reps * sum(2 * m * k * n for k, n in shapes) / seconds / 1e9
    return flop / 1e12, rate


def rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [{"question": r[0], "choices": r[1:5], "answer": "ABCD".index(r[5].strip())} for r in csv.reader(fh)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subject", default="college_biology")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 5])
    parser.add_argument("--no-prefix-reuse", action="store_true")
    add_write_docs_flag(parser)
    args = parser.parse_args()
    if not (MMLU / "test" / f"{args.subject}_test.csv").is_file():
        print(f"{MMLU}/test/{args.subject}_test.csv not found (this benchmark reads ../shared/data)", file=sys.stderr)
        return 2
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HARNESS_PROGRESS": "0", "TOKENIZERS_PARALLELISM": "false"}
    work = Path(tempfile.mkdtemp(prefix="bench-mc-"))
    data = work / "data"
    data.mkdir()
    for split in ("test", "dev"):
        items = rows(MMLU / split / f"{args.subject}_{split}.csv")
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    models = work / "models.yaml"
    models.write_text(MODELS.format(reuse=str(not args.no_prefix_reuse).lower()))
    sys.path.insert(0, str(REPO))
    from harness.models.weights import convert_gguf, embedded_gguf

    model_dir = convert_gguf(*embedded_gguf())  # the checkpoint both sides load (converted once, cached)
    n = len(rows(MMLU / "test" / f"{args.subject}_test.csv"))
    print(f"subject {args.subject}: {n} items x 4 options; Gemma 3 270M fp32; {os.cpu_count()} CPUs; "
          f"prefix reuse {'off' if args.no_prefix_reuse else 'on'}")
    for k in args.shots:
        suite = work / f"suite{k}.yaml"
        suite.write_text(SUITE.format(mmlu=MMLU, subject=args.subject, k=k))
        store = work / f"h{k}.duckdb"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "run", str(suite), "--models", str(models), "--store", str(store),
                        "--force"], check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        ours_s = time.perf_counter() - t0
        out = work / f"lm{k}.json"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", LM_EVAL, str(model_dir), str(data), args.subject, str(k), str(out)],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        theirs_s = time.perf_counter() - t0
        ref = json.loads(out.read_text())
        import duckdb

        con = duckdb.connect(str(store), read_only=True)
        got = con.execute("SELECT prompt, details FROM samples").fetchall()
        acc = con.execute("SELECT avg(value) FROM scores WHERE metric = 'acc'").fetchone()[0]
        scoring_s = con.execute("SELECT sum(wall_s) FROM runs").fetchone()[0]
        con.close()
        # harness ids are content hashes; lm-eval's doc_id is the row: match on the item's own text,
        # which ends each prompt.
        tails = {body(r): i for i, r in enumerate(rows(MMLU / "test" / f"{args.subject}_test.csv"))}
        ours = {next(i for t, i in tails.items() if prompt.endswith(t)): json.loads(d)["loglikelihoods"] for prompt, d in got}
        diffs = [abs(a - b) for i, lls in ours.items() for a, b in zip(lls, ref["lls"][str(i)])]
        at_parity = max(diffs) <= PARITY
        ratio = f"ratio {theirs_s / ours_s:4.2f}x" if at_parity else f"ratio withheld: not at parity (> {PARITY:g})"
        print(f"  {k}-shot: max |dLL| {max(diffs):.2e} over {len(diffs)} options   harness {ours_s:6.1f} s (acc {acc:.3f})   "
              f"lm-eval HFLM batch 8 {theirs_s:6.1f} s (acc {ref['acc']:.3f})   {ratio}")
        tflop, rate = flop_floor(model_dir, [prompt for prompt, _ in got])
        print(f"          floor: {tflop:.2f} TFLOP of matmul (non-embedding weights x tokens computed once the shared head is "
              f"reused) at {rate:.0f} GFLOP/s (this CPU's float32 matmul at the model's shapes) = {1000 * tflop / rate:.1f} s; "
              f"harness scoring {scoring_s:.1f} s = {scoring_s / (1000 * tflop / rate):.2f}x the floor, the rest of its process "
              f"{ours_s - scoring_s:.1f} s; 4x lm-eval needs {theirs_s / 4:.1f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("mc_vs_lm_eval", main))
