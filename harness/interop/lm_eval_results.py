"""Our runs as lm-eval results files, so tools built for lm-eval read them.

lm-eval's EvaluationTracker writes, per model, `<model>/results_<date>.json` (results, groups,
group_subtasks, configs, versions, n-shot, higher_is_better, n-samples, the run's config) and
`<model>/samples_<task>_<date>.jsonl` (one line per document: its arguments, responses, metrics
and hashes). This writes the same layout for each variant from its latest runs (what reports
read): a task's metric is its mean over items with lm-eval's standard error (sample standard
deviation / sqrt(n)); a suite with several tasks is a group whose metrics are the size-weighted
means of its tasks' (with the pooled standard error), as lm-eval aggregates a group such as mmlu."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from harness import __version__
from harness.errors import StoreError
from harness.stats.metricspec import direction
from harness.store.db import Store

OUTPUT_TYPES = {"multiple_choice": "multiple_choice", "classification": "multiple_choice", "generation": "generate_until",
                "perplexity": "loglikelihood_rolling", "judge_single": "generate_until", "judge_pairwise": "generate_until"}
"""Our task kinds as lm-eval's output types (lm_eval tasks keep their own)."""


def sanitize_model_name(name: str) -> str:
    """lm-eval's folder name for a model (lm_eval.utils.sanitize_model_name)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def mean_stderr(values: list[float]) -> float | str:
    """lm-eval's standard error of a mean; "N/A" for fewer than two values, as lm-eval writes it."""
    n = len(values)
    if n < 2:
        return "N/A"
    mu = sum(values) / n
    return math.sqrt(sum((x - mu) ** 2 for x in values) / (n - 1)) / math.sqrt(n)


def pooled_stderr(stderrs: list[float], sizes: list[int]) -> float:
    """lm-eval's pooled standard error of a size-weighted group mean (lm_eval.api.metrics.pooled_sample_stderr)."""
    var = sum((n - 1) * se ** 2 * n for n, se in zip(sizes, stderrs)) / (sum(sizes) - len(sizes))
    return math.sqrt(var / sum(sizes))


@dataclass(frozen=True)
class Written:
    variant: str
    results: Path
    samples: list[Path]


def export(store: Store, out: Path, variants: list[str] | None = None) -> list[Written]:
    """Write lm-eval results and samples files for each variant (default: every variant with a
    run) into `out`; a variant with no run is a StoreError."""
    present = [r["variant"] for r in store.query("SELECT DISTINCT variant FROM latest_runs ORDER BY variant")]
    unknown = [v for v in variants or [] if v not in present]
    if unknown:
        raise StoreError(f"no run of variant(s) {', '.join(unknown)} in the store (it has: {', '.join(present) or 'none'})",
                         hint="`harness list runs` shows what is stored")
    if not present:
        raise StoreError("the store has no run to export", hint="run `harness run ...` first")
    return [_variant(store, out, v) for v in variants or present]


def _variant(store: Store, out: Path, variant: str) -> Written:
    runs = store.query("SELECT * FROM latest_runs WHERE variant = ? ORDER BY suite, task", [variant])
    date_id = max(r["started_at"] for r in runs).isoformat().replace(":", "-")
    folder = out / sanitize_model_name(variant)
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict = {k: {} for k in ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better",
                                 "n-samples", "task_hashes")}
    per_task_values: dict[str, dict[str, list[float]]] = {}
    sample_files = []
    for r in runs:
        task = r["task"]
        values = _values(store, r["run_id"])
        if not values:
            continue  # a run with no per-item score (nothing lm-eval could show)
        per_task_values[task] = values
        doc["results"][task] = {"alias": task}
        for metric, xs in values.items():
            doc["results"][task][f"{metric},none"] = sum(xs) / len(xs)
            doc["results"][task][f"{metric}_stderr,none"] = mean_stderr(xs)
        config = json.loads(r["task_config"]) if r["task_config"] else {}
        fewshot = config["fewshot"].get("k", 0) if isinstance(config.get("fewshot"), dict) else 0
        doc["configs"][task] = {"task": task, "tag": [r["suite"]], "output_type": OUTPUT_TYPES.get(r["task_type"], r["task_type"]),
                                "num_fewshot": fewshot,
                                "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": direction(m) != "lower"}
                                                for m in values],
                                "metadata": {"harness_run_id": r["run_id"], "harness_task_type": r["task_type"],
                                             "data_hash": r["data_hash"], "prompt_hash": r["prompt_hash"],
                                             "suite_hash": r["suite_hash"], "partial": bool(r["partial"]),
                                             "version": __version__, "harness_task_config": config}}
        doc["versions"][task] = __version__
        doc["n-shot"][task] = fewshot
        doc["higher_is_better"][task] = {m: direction(m) != "lower" for m in values}
        doc["n-samples"][task] = {"original": r["n_items_total"] or r["n_samples"], "effective": r["n_samples"]}
        path, task_hash = _samples_file(store, folder, r, date_id, list(values))
        doc["task_hashes"][task] = task_hash
        sample_files.append(path)
    _groups(doc, runs, per_task_values)
    first = runs[0]
    libraries = json.loads(first["libraries"]) if first["libraries"] else {}
    doc.update({"config": {"model": f"harness:{first['backend']}", "model_args": f"variant={variant},variant_key={first['variant_key']}",
                           "batch_size": None, "device": first["device"], "limit": None, "random_seed": first["seed"],
                           "gen_kwargs": json.loads(first["generation_config"]) if first["generation_config"] else None},
                "git_hash": first["git_commit"], "date": max(r["started_at"] for r in runs).timestamp(),
                "transformers_version": libraries.get("transformers"), "lm_eval_version": None,
                "harness_version": __version__, "model_source": first["backend"], "model_name": variant,
                "model_name_sanitized": sanitize_model_name(variant), "system_instruction": None, "system_instruction_sha": None,
                "fewshot_as_multiturn": False, "chat_template": None, "chat_template_sha": None,
                "start_time": min(r["started_at"] for r in runs).timestamp(), "end_time": max(r["started_at"] for r in runs).timestamp(),
                "total_evaluation_time_seconds": str(sum(r["wall_s"] for r in runs))})
    results = folder / f"results_{date_id}.json"
    results.write_text(json.dumps(doc, indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    return Written(variant, results, sample_files)


def _values(store: Store, run_id: str) -> dict[str, list[float]]:
    rows = store.query("SELECT metric, list(value ORDER BY sample_id) AS v FROM scores WHERE run_id = ? AND value IS NOT NULL "
                       "GROUP BY metric ORDER BY metric", [run_id])
    return {r["metric"]: r["v"] for r in rows}


def _groups(doc: dict, runs: list[dict], values: dict[str, dict[str, list[float]]]) -> None:
    """Each suite of two or more exported tasks as a group: every metric its tasks share,
    weighted by their sizes (lm-eval's aggregate_subtask_metrics and pooled_sample_stderr)."""
    suites: dict[str, list[str]] = {}
    for r in runs:
        if r["task"] in values:
            suites.setdefault(r["suite"], []).append(r["task"])
    for suite, tasks in suites.items():
        if len(tasks) < 2 or suite in values:
            continue
        doc["group_subtasks"][suite] = tasks
        shared = set.intersection(*(set(values[t]) for t in tasks))
        entry: dict = {"alias": suite}
        for metric in sorted(shared):
            sizes = [len(values[t][metric]) for t in tasks]
            means = [doc["results"][t][f"{metric},none"] for t in tasks]
            errors = [doc["results"][t][f"{metric}_stderr,none"] for t in tasks]
            entry[f"{metric},none"] = sum(m * n for m, n in zip(means, sizes)) / sum(sizes)
            entry[f"{metric}_stderr,none"] = (pooled_stderr(errors, sizes) if all(isinstance(e, float) for e in errors)
                                              else "N/A")
        doc["groups"][suite] = entry
        doc["results"][suite] = dict(entry)
        doc["versions"][suite] = __version__
        doc["higher_is_better"][suite] = {m: direction(m) != "lower" for m in shared}
        doc["n-samples"][suite] = {"original": sum(doc["n-samples"][t]["original"] for t in tasks),
                                   "effective": sum(doc["n-samples"][t]["effective"] for t in tasks)}


def _samples_file(store: Store, folder: Path, run: dict, date_id: str, metrics: list[str]) -> tuple[Path, str]:
    """One JSON line per sample, as lm-eval's samples files have them; and the task hash lm-eval
    computes from them (sha256 of the concatenated doc, prompt and target hashes)."""
    rows = store.query("""SELECT s.sample_id, s.item_id, s.prompt, s.reference, s.output, s.details, s.content_hash,
                                 map_from_entries(list((c.metric, c.value))) AS scores
                          FROM samples s LEFT JOIN scores c ON c.run_id = s.run_id AND c.sample_id = s.sample_id
                          WHERE s.run_id = ? GROUP BY ALL ORDER BY s.sample_id""", [run["run_id"]])
    gen = json.loads(run["generation_config"]) if run["generation_config"] else {}
    path = folder / f"samples_{run['task']}_{date_id}.jsonl"
    hashes = []
    with path.open("w", encoding="utf-8") as f:
        for i, s in enumerate(rows):
            target = s["reference"] if s["reference"] is not None else ""
            line = {"doc_id": i, "doc": {"id": s["sample_id"], "item_id": s["item_id"], "prompt": s["prompt"], "reference": s["reference"]},
                    "target": target, "arguments": {"gen_args_0": {"arg_0": s["prompt"], "arg_1": gen}},
                    "resps": [[s["output"]]], "filtered_resps": [s["output"]], "filter": "none", "metrics": metrics,
                    "doc_hash": _hash(s["content_hash"] or s["sample_id"]), "prompt_hash": _hash(s["prompt"]),
                    "target_hash": _hash(target)}
            line.update({m: v for m, v in (s["scores"] or {}).items() if m in metrics})
            hashes.append(line["doc_hash"] + line["prompt_hash"] + line["target_hash"])
            f.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    return path, _hash("".join(hashes))
