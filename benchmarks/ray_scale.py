"""`harness run --ray` on 1, 2 and 4 replicas (a benchmark, not a test): throughput, time to the
first committed shard and the overhead per shard, against the same run in one process.

Two backends, each on a multiple-choice task and a generation task:

- the fake backend sleeping `--delay` seconds per scored option or generated output, so the
  figures show the scheduling cost alone (dispatch, transfer of units, the driver's commits):
  replicas sleep in parallel, so N replicas should approach N times one;
- the embedded model (Gemma 3 270M, float32 on CPU): the MMLU-format sample (3-shot) and the brand
  tweets, with the replicas sharing this machine's cores (`resources.num_cpus` = cores / replicas,
  so torch in each replica gets that many threads).

Every run's rows are compared with the single-process run's (same samples, same scores).

    python benchmarks/ray_scale.py                    # both parts (the model part takes minutes)
    python benchmarks/ray_scale.py --skip-model       # the fake backend only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from _measurements import add_write_docs_flag, run_recorded  # beside this script: its folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FAKE_SUITE = """
name: scale
tasks:
  - name: mc
    type: multiple_choice
    data: {{format: jsonl, path: {data}}}
    id_field: id
    prompt: {{template: "Q: {{{{ q }}}}\\nA:"}}
    multiple_choice: {{choices_field: options, answer_field: gold, continuation: text}}
    scorers: [acc]
  - name: gen
    type: generation
    data: {{format: jsonl, path: {data}}}
    id_field: id
    prompt: {{template: "Brief: {{{{ q }}}}", reference: "{{{{ q }}}}"}}
    generation: {{max_new_tokens: 8, batch_size: 4}}
    scorers: [rouge]
"""

MODEL_SUITE = """
name: scale_model
tasks:
  - name: mc
    type: multiple_choice
    data: {{format: mmlu_csv, path: {repo}/data/mmlu_sample, split: test}}
    fewshot: {{k: 3, split: dev}}
    prompt:
      description: "The following are multiple choice questions (with answers) about {{{{ subject }}}}.\\n\\n"
      template: "{{{{ question.strip() }}}}\\nA. {{{{ choices[0] }}}}\\nB. {{{{ choices[1] }}}}\\nC. {{{{ choices[2] }}}}\\nD. {{{{ choices[3] }}}}\\nAnswer:"
    multiple_choice: {{choices_field: choices, answer_field: answer, continuation: letter}}
    scorers: [acc]
  - name: gen
    type: generation
    data: {{format: jsonl, path: {repo}/data/brand/test.jsonl}}
    id_field: id
    prompt: {{template: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:", reference: "{{{{ tweet }}}}"}}
    generation: {{max_new_tokens: 24, temperature: 0.0, stop: ["\\n"], batch_size: 4}}
    scorers: [rouge]
"""


def rows_of(store: Path) -> list:
    """Every sample and score row (timings left out): what two runs must agree on."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        samples = con.execute("""SELECT r.task, s.sample_id, s.output, s.details FROM samples s JOIN runs r USING (run_id)
                                 ORDER BY 1, 2""").fetchall()
        scores = con.execute("""SELECT r.task, x.sample_id, x.metric, x.value FROM scores x JOIN runs r USING (run_id)
                                ORDER BY 1, 2, 3""").fetchall()
    finally:
        con.close()
    untimed = []
    for task, sid, output, details in samples:
        d = json.loads(details)
        d.pop("latency_s", None)
        untimed.append((task, sid, output, d))
    return [untimed, scores]


def max_difference(a: list, b: list) -> float:
    """The largest difference between two runs' per-option log-likelihoods and scores (0: identical)."""
    gap = 0.0
    for (ta, sa, oa, da), (tb, sb, ob, db) in zip(a[0], b[0]):
        if (ta, sa) != (tb, sb) or oa != ob:
            return float("inf")
        for x, y in zip(da.get("loglikelihoods", []), db.get("loglikelihoods", [])):
            gap = max(gap, abs(x - y))
    for x, y in zip(a[1], b[1]):
        if x[:3] != y[:3]:
            return float("inf")
        gap = max(gap, abs((x[3] or 0) - (y[3] or 0)))
    return gap


def run_details(store: Path) -> dict[str, dict]:
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute("SELECT task, wall_s, n_samples, backend_details FROM runs").fetchall()
    finally:
        con.close()
    return {task: {"wall_s": wall, "n": n, **json.loads(details or "{}")} for task, wall, n, details in rows}


def measure(label: str, suite: Path, models_text: str, work: Path, replicas: list[int], cpus_per: dict[int, float],
            limit: int | None, shard_items: int) -> list[str]:
    """One backend: the plain run, then each replica count; table lines."""
    from harness.run.distributed import RayOptions
    from harness.run.evaluate import run_suites

    lines = []
    plain = work / f"{label}-plain.duckdb"
    models = work / f"{label}-plain.yaml"
    models.write_text(models_text.format(resources=""))
    t0 = time.perf_counter()
    run_suites([suite], models, plain, limit=limit)
    plain_wall = time.perf_counter() - t0
    reference = rows_of(plain)
    base = run_details(plain)
    for task in ("mc", "gen"):
        lines.append(f"| {label} | {task} | one process | {base[task]['n']} | {base[task]['wall_s']:.1f} s | "
                     f"{base[task]['n'] / base[task]['wall_s']:.1f} | 1.00x | – | – | – |")
    one: dict[str, float] = {}
    for n in replicas:
        store = work / f"{label}-{n}.duckdb"
        models = work / f"{label}-{n}.yaml"
        models.write_text(models_text.format(resources=f", resources: {{num_replicas: {n}, num_cpus: {cpus_per[n]}}}"))
        t0 = time.perf_counter()
        run_suites([suite], models, store, limit=limit, ray=RayOptions(None, shard_items))
        total = time.perf_counter() - t0
        gap = max_difference(rows_of(store), reference)
        same = "identical" if gap == 0 else (f"max diff {gap:.1e}" if gap < float("inf") else "DIFFERENT")
        for task, d in run_details(store).items():
            ray = d["ray"]
            rate = d["n"] / ray["wall_s"]
            one.setdefault(task, rate)
            # time the replicas were not computing (dispatch, transfer, commits), per shard
            overhead = max(ray["wall_s"] * ray["replicas"] - ray["replica_s"], 0.0) / ray["shards"]
            lines.append(f"| {label} | {task} | {n} replica{'s' if n > 1 else ''} | {d['n']} | {ray['wall_s']:.1f} s | "
                         f"{rate:.1f} | {rate / one[task]:.2f}x | {ray['first_commit_s']:.2f} s | {1000 * overhead:.0f} ms | {same} |")
        print(f"  {label}, {n} replica(s): whole command {total:.1f} s (plain {plain_wall:.1f} s, loading included)", flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=96, help="items of the fake backend's tasks")
    parser.add_argument("--delay", type=float, default=0.01, help="seconds the fake backend sleeps per option or output")
    parser.add_argument("--model-items", type=int, default=24, help="items of each task on the embedded model")
    parser.add_argument("--skip-model", action="store_true", help="the fake backend only")
    add_write_docs_flag(parser)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["HARNESS_PROGRESS"] = "0"
    logging.basicConfig(level=logging.WARNING)
    import ray

    cpus = os.cpu_count() or 2
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, namespace="harness")
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    data = work / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"i{k:03d}", "q": f"topic {k} " + "word " * (k % 7), "options": ["yes", "no", "maybe", "never"],
                                        "gold": k % 4}) + "\n" for k in range(args.items)))
    suite = work / "fake.yaml"
    suite.write_text(FAKE_SUITE.format(data=data))
    header = ["| backend | task | evaluated by | items | wall | items/s | vs 1 replica | first commit | overhead per shard | rows vs one process |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    print(f"machine: {cpus} CPUs; fake backend sleeping {args.delay * 1000:.0f} ms per option or output, {args.items} items per task, "
          "shards of 8 items")
    fake = ("base: {{name: fake-s, source: fake, options: {{delay_s: " + str(args.delay) + "}}{resources}}}\n")
    lines = measure("fake (sleeps)", suite, fake, work, [1, 2, 4], {1: 0.5, 2: 0.5, 4: 0.5}, None, 8)
    if not args.skip_model:
        msuite = work / "model.yaml"
        msuite.write_text(MODEL_SUITE.format(repo=REPO))
        model = "base: {{name: gemma3-270m, source: embedded, dtype: float32{resources}}}\n"
        print(f"embedded model: {args.model_items} items per task, shards of 4 items, replicas share {cpus} cores", flush=True)
        lines += measure("Gemma 3 270M", msuite, model, work, [1, 2, 4], {1: float(cpus), 2: cpus / 2, 4: cpus / 4},
                         args.model_items, 4)
    print("\n".join(header + lines))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_recorded("ray_scale", main))
