"""Validate `type: lm_eval` tasks: one lm-eval task (MMLU's template over a shared MMLU subject,
written as a local task YAML over local JSONL, since the hub's copy is not cached here) run by
lm-eval itself (HFLM) and by `harness run` on the embedded Gemma 3 270M, each a whole process,
same machine. Prints the per-document agreement (largest log-likelihood difference, acc
identical on every document), both aggregates and both times. Not a unit test: it reads
../shared/data.

    python scripts/validate_lm_eval_task.py [--subject college_biology] [--shots 0]
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

REPO = Path(__file__).resolve().parent.parent
MMLU = REPO.parent / "shared" / "data" / "mmlu"

TASK_YAML = """task: mmlu_{subject}_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}/test.jsonl
    dev: {data}/dev.jsonl
test_split: test
fewshot_split: dev
fewshot_config: {{sampler: first_n}}
output_type: multiple_choice
description: "The following are multiple choice questions (with answers) about {words}.\\n\\n"
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
"""

LM_EVAL = r'''
import json, sys, time
t0 = time.perf_counter()
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
model_dir, tasks, name, k, out = sys.argv[1:6]
lm = HFLM(pretrained=model_dir, batch_size=8, dtype="float32", device="cpu")
res = simple_evaluate(model=lm, tasks=[name], num_fewshot=int(k), log_samples=True, bootstrap_iters=0, random_seed=0,
                      numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
                      task_manager=TaskManager(include_path=tasks, include_defaults=False))
lls = {s["doc_id"]: [r[0][0] for r in s["resps"]] for s in res["samples"][name]}
accs = {s["doc_id"]: s["acc"] for s in res["samples"][name]}
json.dump({"acc": res["results"][name]["acc,none"], "lls": lls, "accs": accs, "seconds": time.perf_counter() - t0}, open(out, "w"))
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subject", default="college_biology")
    ap.add_argument("--shots", type=int, default=0)
    args = ap.parse_args()
    if not (MMLU / "test" / f"{args.subject}_test.csv").is_file():
        print(f"skip: {MMLU} not found (the shared validation data is not part of a clone)")
        return 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HARNESS_PROGRESS": "0", "TOKENIZERS_PARALLELISM": "false"}
    work = Path(tempfile.mkdtemp(prefix="validate-lm-eval-"))
    data = work / "data"
    data.mkdir()
    for split in ("test", "dev"):
        with (MMLU / split / f"{args.subject}_{split}.csv").open(encoding="utf-8", newline="") as fh:
            rows = [{"question": r[0], "choices": r[1:5], "answer": "ABCD".index(r[5].strip())} for r in csv.reader(fh)]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    name = f"mmlu_{args.subject}_local"
    (work / "tasks").mkdir()
    (work / "tasks" / "task.yaml").write_text(TASK_YAML.format(subject=args.subject, data=data, words=args.subject.replace("_", " ")))
    suite = work / "suite.yaml"
    suite.write_text(f"name: lm_eval_check\ntasks:\n  - name: {args.subject}\n    type: lm_eval\n"
                     f"    lm_eval: {{task: {name}, include_path: tasks, num_fewshot: {args.shots}}}\n")
    models = work / "models.yaml"
    models.write_text("base: {name: gemma, source: embedded, dtype: float32, options: {batch_size: 8}}\n")
    sys.path.insert(0, str(REPO))
    from harness.models.weights import convert_gguf, embedded_gguf

    model_dir = convert_gguf(*embedded_gguf())
    store = work / "h.duckdb"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "run", str(suite), "--models", str(models), "--store", str(store)],
                   check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    ours_s = time.perf_counter() - t0
    out = work / "lm.json"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", LM_EVAL, str(model_dir), str(work / "tasks"), name, str(args.shots), str(out)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    theirs_s = time.perf_counter() - t0
    ref = json.loads(out.read_text())
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    details = {int(s): json.loads(d) for s, d in con.execute("SELECT sample_id, details FROM samples").fetchall()}
    accs = {int(s): v for s, v in con.execute("SELECT sample_id, value FROM scores WHERE metric = 'acc'").fetchall()}
    con.close()
    diffs = [abs(r[0][0] - b) for i, d in details.items() for r, b in zip(d["responses"], ref["lls"][str(i)])]
    same_acc = sum(accs[i] == ref["accs"][str(i)] for i in accs)
    ours_acc = sum(accs.values()) / len(accs)
    print(f"lm-eval task {name} ({len(accs)} documents, {args.shots}-shot), Gemma 3 270M fp32, {os.cpu_count()} CPUs")
    print(f"  harness (type: lm_eval, hf backend) {ours_s:6.1f} s  acc {ours_acc:.4f}")
    print(f"  lm-eval HFLM batch 8              {theirs_s:6.1f} s  acc {ref['acc']:.4f}")
    print(f"  per-document acc identical on {same_acc}/{len(accs)}; max |dLL| {max(diffs):.2e} over {len(diffs)} options")
    return 0 if same_acc == len(accs) and max(diffs) < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
