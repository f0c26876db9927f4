"""Validate the judge pipeline on the real MT-Bench files (../shared/data/mt_bench): grade the
four shipped model-answer files (gpt-4, gpt-3.5-turbo, vicuna-13b-v1.3, llama-13b) with the
judge available here, single (1-10, reference-guided for math/reasoning/coding as in FastChat)
and pairwise against gpt-3.5-turbo (both orders), and print scores, ranking and judge health next
to the published GPT-4-judge scores. Not a unit test: it needs ../shared/data and a judge.

    python scripts/validate_mt_bench.py [--models models/demo.yaml] [--judge-variant gemma3-270m]
        [--base-url http://localhost:8000/v1 --judge-model NAME]   # an OpenAI-compatible judge instead
        [--limit N] [--workdir /tmp/mtb]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "mt_bench"
PUBLISHED = {"gpt-4": 8.99, "gpt-3.5-turbo": 7.94, "vicuna-13b-v1.3": 6.39, "llama-13b": 2.61}
NEED_REF = {"math", "reasoning", "coding"}  # FastChat's reference-guided categories


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO / "models" / "demo.yaml")
    ap.add_argument("--judge-variant", default=None, help="local judge: a model of --models (default its base)")
    ap.add_argument("--base-url", help="OpenAI-compatible judge endpoint instead of a local model")
    ap.add_argument("--judge-model", help="model name at --base-url")
    ap.add_argument("--limit", type=int, help="first N questions only")
    ap.add_argument("--per-category", type=int, help="first K questions of each of the 8 categories (a stratified subset)")
    ap.add_argument("--first-turn-only", action="store_true", help="judge turn 1 only (halves the judge calls)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/harness-mt-bench"))
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skip: {DATA} not found (the shared validation data is not part of a clone)")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from harness.progress import setup_logging
    from harness.run.evaluate import run_suites
    from harness.store.db import open_store

    setup_logging()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    refs = {json.loads(line)["question_id"]: json.loads(line)["choices"][0]["turns"]
            for line in (DATA / "reference_answer" / "gpt-4.jsonl").read_text().splitlines() if line.strip()}
    questions = []
    for line in (DATA / "question.jsonl").read_text().splitlines():
        q = json.loads(line)
        q.pop("reference", None)
        if q["category"] in NEED_REF and q["question_id"] in refs:
            q["reference"] = refs[q["question_id"]]
        questions.append(q)
    if args.per_category:
        kept: list[dict] = []
        for q in questions:
            if sum(k["category"] == q["category"] for k in kept) < args.per_category:
                kept.append(q)
        questions = kept
    if args.first_turn_only:
        questions = [{**q, "turns": q["turns"][:1], **({"reference": q["reference"][:1]} if "reference" in q else {})} for q in questions]
    questions = questions[: args.limit] if args.limit else questions
    (work / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    judge = (f"{{backend: openai, base_url: '{args.base_url}', model: '{args.judge_model}'}}" if args.base_url
             else "{backend: local, mode: choice" + (f", variant: {args.judge_variant}" if args.judge_variant else "") + "}")
    (work / "suite.yaml").write_text(f"""
name: mt_bench
tasks:
  - name: mt_bench
    type: generation
    data: {{format: jsonl, path: questions.jsonl}}
    id_field: question_id
    multi_turn: {{turns_field: turns, references_field: reference}}
    prompt: {{template: "{{{{ turn }}}}"}}
  - name: mt_bench_single
    type: judge
    grading: single
    of: mt_bench
    judge: {judge}
  - name: mt_bench_vs_gpt35
    type: judge
    grading: pairwise
    of: mt_bench
    baseline: gpt-3.5-turbo
    judge: {judge}
""")
    answers = {name: DATA / "model_answer" / f"{name}.jsonl" for name in PUBLISHED}
    store_path = work / "h.duckdb"
    t0 = time.perf_counter()
    run_suites([work / "suite.yaml"], None if args.base_url else args.models, store_path, answers=answers)
    wall = time.perf_counter() - t0
    from harness.analysis.metrics import summarize

    with open_store(store_path, read_only=True) as store:
        rows = {(r.variant, r.task, r.metric): r.estimate for r in summarize(store, list(PUBLISHED))}
        health = store.query("""SELECT r.variant, r.task, h.metric, h.value, h.low, h.high, h.warning
                                FROM run_stats h JOIN latest_runs r USING (run_id) ORDER BY r.task, r.variant, h.metric""")
        judge_row = store.query("SELECT judge FROM latest_runs WHERE task = 'mt_bench_single' LIMIT 1")[0]["judge"]
    turns = 1 if args.first_turn_only else 2
    print(f"\nMT-Bench validation: {len(questions)} questions x {turns} turn(s), judge {judge_row}, {wall:.0f}s\n")
    print(f"{'model':18} {'published (GPT-4 judge)':>24} {'this judge, mean rating [95% CI]':>36} {'win rate vs gpt-3.5 [CI]':>28}")
    for name in PUBLISHED:
        e = rows.get((name, "mt_bench_single", "judge_rating"))
        w = rows.get((name, "mt_bench_vs_gpt35", "win_rate"))
        rating = f"{e.mean:.2f} [{e.low:.2f}, {e.high:.2f}]" if e else "-"
        win = f"{w.mean:.3f} [{w.low:.3f}, {w.high:.3f}]" if w else "(baseline)"
        print(f"{name:18} {PUBLISHED[name]:24.2f} {rating:>36} {win:>28}")
    ours = sorted(PUBLISHED, key=lambda n: -rows[(n, "mt_bench_single", "judge_rating")].mean)
    print(f"\npublished ranking: {' > '.join(PUBLISHED)}")
    print(f"this judge's:      {' > '.join(ours)}")
    tau = kendall_tau([PUBLISHED[n] for n in PUBLISHED], [rows[(n, "mt_bench_single", "judge_rating")].mean for n in PUBLISHED])
    print(f"Kendall tau with the published ranking: {tau:+.2f}\n")
    print("judge health:")
    for h in health:
        ci = f" [{h['low']:.3f}, {h['high']:.3f}]" if h["low"] is not None else ""
        value = "undefined" if h["value"] is None else f"{h['value']:.3f}"
        print(f"  {h['task']:18} {h['variant']:16} {h['metric']:24} {value}{ci}" + (f"  WARNING: {h['warning']}" if h["warning"] else ""))
    return 0


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-a over all pairs (no ties expected among four model means)."""
    pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a))]
    s = sum((1 if (a[i] - a[j]) * (b[i] - b[j]) > 0 else -1 if (a[i] - a[j]) * (b[i] - b[j]) < 0 else 0) for i, j in pairs)
    return s / len(pairs)


if __name__ == "__main__":
    sys.exit(main())
