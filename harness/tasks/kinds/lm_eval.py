"""lm-eval's task catalogue on harness variants: `type: lm_eval` tasks.

lm-eval builds the task (its dataset, prompts, few-shot examples, filters and metrics) and runs
its own evaluation loop, but every request goes through an `lm_eval.api.model.LM` adapter over the
variant's harness backend, so log-likelihoods, generation, batching and prefix reuse are the
harness's (hf, llama.cpp, vLLM, an endpoint). Every lm-eval sample becomes a harness sample row
(the doc, the requests, the responses) with one score row per numeric per-item metric, so the
intervals, paired tests, gates and the report work on them unchanged. Metrics lm-eval only
aggregates over the corpus (e.g. a corpus F1 passed as tuples) are stored as run-level figures
with lm-eval's own value.

Offline (the default), a task whose dataset is not in the local `datasets` cache fails with an
error naming the dataset; local task YAML (`include_path`) over local files always works.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import GenerationConfig
from harness.errors import ConfigError, HarnessError, require
from harness.hashing import stable_hash
from harness.stats.metricspec import KindRows, TaskKind, TaskRun
from harness.store.db import SampleRow, ScoreRow, StatRow
from harness.tasks.sample import PreparedTask, Sample, sample_items


@dataclass(frozen=True)
class LmEvalTasks:
    """What lm-eval built for a harness task: its task dict (as lm-eval's evaluate takes it), the
    tasks in it by name, and the group's name when the harness task names an lm-eval group."""

    task_dict: dict
    tasks: dict[str, Any]
    group: str | None = None

    def sample_id(self, task: str, doc_id: int) -> str:
        """A document's sample id: its index (one task), or `task/index` (a group's subtasks)."""
        return f"{task}/{doc_id}" if self.group else str(doc_id)

    def split_id(self, sample_id: str) -> tuple[str, int]:
        if not self.group:
            return next(iter(self.tasks)), int(sample_id)
        name, _, doc = sample_id.rpartition("/")
        return name, int(doc)


def prepare(task, suite_name: str, suite_path: Path, limit: int | None, seed: int, suite_tasks: str):
    """A PreparedTask for an lm-eval task or group: lm-eval builds it (ConfigError when it can't:
    unknown task, dataset not cached offline); one Sample per evaluated doc (a group's: every
    subtask's, each labelled with its subtask); `limit` (and `lm_eval.limit`) draw a seeded random
    sample of docs, passed to lm-eval by doc id."""

    spec = task.lm_eval
    where = f"{suite_path}: task '{task.name}'"
    native = build_task(spec, suite_path.parent, where, seed)
    samples = []
    for name, sub in native.tasks.items():
        docs = list(sub.eval_docs)
        if not docs:
            raise ConfigError(f"{where}: lm-eval task '{name}' has no documents in its evaluation split")
        for i, doc in enumerate(docs):
            fields = dict(doc) if isinstance(doc, dict) else {"doc": doc}
            if native.group:
                fields = {**fields, "lm_eval_task": name}
            samples.append(Sample(native.sample_id(name, i), _text(sub, doc), reference=_target(sub, doc), fields=fields))
    if task.category_field is not None and any(task.category_field not in s.fields for s in samples):
        raise ConfigError(f"{where}: category_field: the task's documents have no field '{task.category_field}'")
    n_total = len(samples)
    if spec.limit:
        samples = sample_items(samples, spec.limit, seed, f"{task.name}/lm_eval.limit")
        n_total = len(samples)
    if limit is not None:
        samples = sample_items(samples, limit, seed, task.name)
    import lm_eval

    data_hash = stable_hash([[s.id, s.fields] for s in samples])
    prompt_hash = stable_hash([[sub.dump_config() for sub in native.tasks.values()] if native.group else native.tasks[spec.task].dump_config(),
                               native.group, spec.model_dump(), lm_eval.__version__])
    return PreparedTask(task, suite_name, tuple(samples), data_hash, prompt_hash, (), n_total, suite_tasks, native=native)


def build_task(spec, base_dir: Path, where: str, seed: int) -> LmEvalTasks:
    """lm-eval's task (or group) `spec.task`, few-shot count and seed set on every task as
    simple_evaluate sets them."""
    require("lm_eval", "lm-eval tasks (type: lm_eval)", "lm-eval")
    from lm_eval.tasks import TaskManager, get_task_dict

    include = None
    if spec.include_path:
        include = (base_dir / spec.include_path).resolve()
        if not include.is_dir():
            raise ConfigError(f"{where}: lm_eval.include_path: {include} is not a directory")
    manager = TaskManager(include_path=str(include) if include else None, include_defaults=include is None or spec.include_defaults)
    if spec.task not in manager.all_tasks:
        raise ConfigError(f"{where}: lm_eval.task: lm-eval has no task '{spec.task}'" + (f" (nor does {include})" if include else ""),
                          hint="`python -m lm_eval --tasks list` lists lm-eval's own; a local task YAML needs include_path")
    try:
        tasks = get_task_dict([spec.task], manager)
    except Exception as exc:  # lm-eval raises whatever `datasets` raises: name what was being loaded
        config = _yaml_config(manager, spec.task)
        dataset = (config or {}).get("dataset_path", "?")
        offline = "offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE), and the dataset is not in the local datasets cache" \
            if "offline" in str(exc).lower() or "connect" in str(exc).lower() or "couldn't" in str(exc).lower() else ""
        raise ConfigError(f"{where}: lm-eval could not load task '{spec.task}' (dataset {dataset!r}): "
                          f"{offline or type(exc).__name__ + ': ' + str(exc).splitlines()[0]}",
                          hint="download it once online (HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0), or point a local task YAML "
                               "at local files (dataset_path: json, dataset_kwargs.data_files) through include_path") from None
    subtasks, groups = _flatten(tasks)
    if not subtasks:
        raise ConfigError(f"{where}: lm_eval.task '{spec.task}' holds no task")
    for native in subtasks.values():
        if spec.num_fewshot is not None:
            native.set_config(key="num_fewshot", value=spec.num_fewshot)
        native.set_fewshot_seed(seed=seed)
    return LmEvalTasks(tasks, subtasks, groups[0] if groups else None)


def _flatten(task_dict: dict) -> tuple[dict[str, Any], list[str]]:
    """The tasks of an lm-eval task dict by name (a group's, its subgroups' too), and the groups
    met on the way, outermost first."""
    tasks: dict[str, Any] = {}
    groups: list[str] = []
    for key, value in task_dict.items():
        if isinstance(value, dict):
            groups.append(str(getattr(key, "group_name", None) or getattr(key, "group", None) or key))
            inner, nested = _flatten(value)
            tasks.update(inner)
            groups += nested
        else:
            tasks[str(key)] = value
    return tasks, groups


def _yaml_config(manager, name: str) -> dict | None:
    """The task's YAML config as lm-eval indexed it (to name its dataset in an error)."""
    entry = manager.task_index.get(name)
    cfg = getattr(entry, "cfg", None) if entry is not None else None
    if isinstance(cfg, dict):
        return cfg
    path = getattr(entry, "yaml_path", None) or (entry.get("yaml_path") if isinstance(entry, dict) else None)
    if path:
        import yaml

        try:
            return yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):  # lm-eval's YAML may use its own tags; the error then says '?'
            return None
    return None


def _text(native, doc) -> str:
    try:
        text = native.doc_to_text(doc)
        return text if isinstance(text, str) else json.dumps(text, default=str)
    except Exception as exc:
        raise ConfigError(f"lm-eval task '{native.config.task}': doc_to_text failed on a document: {exc}") from None


def _target(native, doc) -> str:
    target = native.doc_to_target(doc)
    choices = native.doc_to_choice(doc) if native.config.doc_to_choice is not None else None
    if isinstance(target, int) and choices and 0 <= target < len(choices):
        return str(choices[target])
    return target if isinstance(target, str) else json.dumps(target, default=str)


def harness_lm(backend, chat=None):
    """An lm_eval LM whose requests are served by a harness backend; with `chat` (a
    harness.models.chat_template.ChatTemplate), lm-eval lays prompts out with that template."""
    from lm_eval.api.model import LM

    class HarnessLM(LM):
        @property
        def tokenizer_name(self) -> str:
            return f"harness-{chat.hash}" if chat is not None else "harness"

        def chat_template(self, chat_template: bool | str = False) -> str | None:
            return chat.source if chat is not None else ""

        def apply_chat_template(self, chat_history, add_generation_prompt=True) -> str:
            if chat is None:
                raise HarnessError("an lm_eval task asked for a chat template, but the model is evaluated without one")
            return chat.render(list(chat_history), add_generation_prompt=add_generation_prompt)

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            out = backend.loglikelihood([tuple(r.args) for r in requests])
            return [(o.logprob, o.is_greedy) for o in out]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            # The whole text after the start token, as lm-eval scores texts that fit one window.
            limit = backend.info.max_length
            out = backend.loglikelihood([("", r.args[0]) for r in requests])
            if limit and any(o.n_tokens >= limit - 1 for o in out):
                raise HarnessError(f"a loglikelihood_rolling text is longer than the backend's context ({limit} tokens); "
                                   "harness scores rolling texts in one window only")
            return [o.logprob for o in out]

        def generate_until(self, requests, disable_tqdm: bool = False):
            results: list[str | None] = [None] * len(requests)
            groups: dict[str, list[int]] = {}
            for i, r in enumerate(requests):
                groups.setdefault(json.dumps(r.args[1], sort_keys=True, default=str), []).append(i)
            for key, idx in groups.items():
                kw = dict(json.loads(key))
                until = kw.pop("until", None) or []
                until = [until] if isinstance(until, str) else list(until)
                sample = bool(kw.pop("do_sample", False))
                temperature = float(kw.pop("temperature", 0.0) or 0.0) if sample else 0.0
                config = GenerationConfig(max_new_tokens=int(kw.pop("max_gen_toks", 256)), temperature=temperature,
                                          top_p=float(kw.pop("top_p", 1.0) or 1.0) if temperature > 0 else 1.0,
                                          stop=tuple(until), top_k=int(kw.pop("top_k", 0) or 0) if temperature > 0 else 0,
                                          repetition_penalty=float(kw.pop("repetition_penalty", 1.0)))
                if kw:
                    raise HarnessError(f"lm-eval generation settings harness does not apply: {sorted(kw)}")
                outs = backend.generate([requests[i].args[0] for i in idx], config)
                for i, o in zip(idx, outs):
                    results[i] = o.text
            return results

    return HarnessLM()


def metric_name(metric: str, filter_name: str) -> str:
    """lm-eval's `metric,filter` as a harness metric name: `exact_match`, `exact_match_strict_match`."""
    name = metric if filter_name in ("none", "", None) else f"{metric}_{filter_name}"
    return re.sub(r"\W+", "_", name).strip("_")


def rows(backend, task, run: TaskRun) -> KindRows:
    """lm-eval's evaluation loop over the harness backend; a sample row and numeric score rows per
    doc. For a group, lm-eval's own group aggregate of each metric is kept as a run figure
    `group_<metric>` beside the per-item rows (whose mean is the size-weighted aggregate)."""
    from lm_eval import evaluator

    native: LmEvalTasks = task.native
    ids: dict[str, list[int]] = {name: [] for name in native.tasks}
    for s in task.samples:
        name, doc_id = native.split_id(s.id)
        ids[name].append(doc_id)
    results = evaluator.evaluate(lm=harness_lm(backend, task.chat), task_dict=native.task_dict, samples=ids, log_samples=True,
                                 bootstrap_iters=0, verbosity="WARNING", apply_chat_template=task.chat is not None,
                                 fewshot_as_multiturn=task.fewshot_as_multiturn)
    by_doc = _by_doc(results, native)
    samples, scores, corpus = [], [], set()
    for s in task.samples:
        doc = by_doc.get(s.id)
        if doc is None:
            raise HarnessError(f"lm-eval returned no result for document {s.id} of task '{task.spec.lm_eval.task}'")
        output: object = doc["filtered"].get("none", next(iter(doc["filtered"].values()), None))
        details = {"arguments": doc["arguments"], "responses": doc["responses"], "filtered": doc["filtered"],
                   "metrics": {k: v if _number(v) else str(v) for k, v in doc["metrics"].items()}, "lm_eval_task": doc["task"]}
        if native.group:
            details["category"] = doc["task"]  # the report and the viewer break a group down by subtask
        samples.append(SampleRow(run.run_id, s.id, s.prompt, s.reference, json.dumps(output, default=str)[:10000] if not isinstance(output, str) else output,
                                 json.dumps(details, default=str)))
        for metric, value in doc["metrics"].items():
            if _number(value):
                scores.append(ScoreRow(run.run_id, s.id, "lm_eval", metric, float(value)))
            else:
                corpus.add(metric)
    stats = _run_stats(run.run_id, results, native, ids, corpus, len(task.samples))
    return KindRows(samples, scores, stats)


def _by_doc(results: dict, native: LmEvalTasks) -> dict[str, dict]:
    """lm-eval's logged samples by harness sample id: arguments, responses, filtered responses and
    per-filter metrics."""
    by_doc: dict[str, dict] = {}
    for name in native.tasks:
        for entry in results["samples"].get(name, []):
            doc = by_doc.setdefault(native.sample_id(name, int(entry["doc_id"])),
                                    {"arguments": [list(map(str, a)) for a in _args(entry)], "responses": _plain(entry.get("resps")),
                                     "metrics": {}, "filtered": {}, "task": name})
            filt = entry.get("filter", "none")
            doc["filtered"][filt] = _plain(entry.get("filtered_resps"))
            for metric in entry.get("metrics", []):
                doc["metrics"][metric_name(metric, filt)] = entry.get(metric)
    return by_doc


def _run_stats(run_id: str, results: dict, native: LmEvalTasks, ids: dict[str, list[int]], corpus: set[str], n: int) -> list:
    """Run figures: lm-eval's corpus-only aggregates (no per-item values to resample), and for a
    group its own aggregate of each metric as `group_<metric>`."""
    stats = []
    for name in native.tasks:
        for key, value in results["results"].get(name, {}).items():
            if "," not in key or "_stderr" in key or not _number(value):
                continue
            metric, filt = key.split(",", 1)
            if metric_name(metric, filt) in corpus:
                label = metric_name(metric, filt) if not native.group else f"{name}/{metric_name(metric, filt)}"
                stats.append(StatRow(run_id, label, float(value), None, None, len(ids[name]),
                                     "lm-eval's corpus aggregate (no per-item values to resample)"))
    if native.group:
        aggregate = results.get("groups", {}).get(native.group) or results["results"].get(native.group, {})
        for key, value in aggregate.items():
            if "," in key and "_stderr" not in key and _number(value):
                metric, filt = key.split(",", 1)
                stats.append(StatRow(run_id, f"group_{metric_name(metric, filt)}", float(value), None, None,
                                     int(aggregate.get("sample_len") or n), None))
    return stats


def _args(entry) -> list:
    return [a if isinstance(a, (list, tuple)) else [a] for a in entry.get("arguments", [])]


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def _number(value) -> bool:
    return isinstance(value, (int, float, bool)) and not (isinstance(value, float) and math.isnan(value))


KIND = TaskKind("lm_eval", "an lm-eval task by name, evaluated through the variant's harness backend (metrics: the task's own)",
                metrics=(), rows=rows, prepare=prepare)
