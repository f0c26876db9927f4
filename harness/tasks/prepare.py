"""Turn a TaskSpec into concrete samples: load items, pick few-shot examples, render prompts.

Everything here runs before any model is loaded, so bad data or templates fail fast and
nothing is written to the store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness import registry
from harness.config.suite import SuiteSpec, TaskSpec
from harness.data.answers import with_reference_answers
from harness.data.loaders import LoadRequest, Record
from harness.errors import ConfigError
from harness.hashing import stable_hash
from harness.scorers import Scorer
from harness.tasks.prompts import compile_template, render
from harness.tasks.sample import ChatParts, PreparedTask, Sample, sample_items


def resolve_scorer(name: str, where: str) -> Scorer:
    """A registered scorer; a plugin that is not a declared Scorer is a clear error."""
    s = registry.resolve("scorer", name, where=where)
    if not isinstance(s, Scorer):
        raise ConfigError(f"{where}: scorer '{name}' ({registry.target('scorer', name)}) is not a harness.scorers.Scorer",
                          hint="declare it with the harness.scorers.scorer(...) decorator, listing its metrics")
    return s


def prepare_task(task: TaskSpec, suite_name: str, suite_path: Path, limit: int | None = None, seed: int = 0,
                 suite_tasks: str = "[]") -> PreparedTask:
    """Load and render a task; ConfigError (file, field, line) on any problem. `limit`: a seeded
    random sample of that many items (a smoke run, recorded as partial)."""
    where = f"{suite_path}: task '{task.name}'"
    kind = registry.resolve("task_kind", task.type, where=where)
    if kind.prepare is not None:
        # A kind that brings its own items (lm-eval's catalogue) prepares them itself.
        return kind.prepare(task, suite_name, suite_path, limit, seed, suite_tasks)
    scorers = [_configured_scorer(task, i, name, config, where, suite_path) for i, (name, config) in enumerate(task.scorer_refs)]
    _check_templates(task, where)
    records = _records(task, suite_path, seed, where)
    shots = _fewshot_pool(task, suite_path, where)
    samples = []
    ids = _sample_ids(task, records, where)
    for rec, sid in zip(records, ids):
        samples.append(replace(_render_sample(task, kind, rec, sid, shots, where), cluster=_cluster(task, rec, where)))
    n_total = len(samples)
    if limit is not None:
        samples = sample_items(samples, limit, seed, task.name)
    # Over the ids as the runs store them: two runs with equal data hashes pair item by item
    data_hash = stable_hash([[sid, r.fields] for sid, r in zip(ids, records)] + [[r.id, r.fields] for r in shots])
    choices = task.choices
    prompt_hash = stable_hash([task.prompt.model_dump(), task.fewshot.model_dump(), choices.model_dump() if choices else None])
    return PreparedTask(task, suite_name, tuple(samples), data_hash, prompt_hash, tuple(scorers), n_total, suite_tasks)


def _configured_scorer(task: TaskSpec, i: int, name: str, config, where: str, suite_path: Path) -> tuple[str, Scorer]:
    """Scorer entry i of the task: registered, applicable to the task's kind, configured."""
    at = f"{where}: scorers[{i}]"
    s = resolve_scorer(name, at)
    if task.type not in s.task_types:
        raise ConfigError(f"{at}: scorer '{name}' does not apply to {task.type} tasks (it scores {', '.join(s.task_types)})")
    if s.needs_reference and task.type == "generation" and task.prompt.reference is None and task.multi_turn is None:
        raise ConfigError(f"{at}: scorer '{name}' compares outputs with a reference; set prompt.reference")
    if config is not None and s.configure is None:
        raise ConfigError(f"{at}: scorer '{name}' takes no config (write it as a plain name)")
    if s.configure is not None:
        if config is None:
            raise ConfigError(f"{at}: scorer '{name}' needs a config: `- {name}: {{...}}`")
        s = s.configure(config, f"{at}.{name}", suite_path.parent)
    return name, s


def _check_templates(task: TaskSpec, where: str) -> None:
    """Every template of the task compiles (a typo in a field name fails here, before any model)."""
    if task.type == "generation":
        if task.fewshot.k and task.prompt.reference is None:
            raise ConfigError(f"{where}: few-shot generation needs prompt.reference (each example shows its answer)")
        if task.multi_turn is not None:
            compile_template(task.multi_turn.conversation, f"{where}: multi_turn.conversation")
    for field_name in ("template", "description", "reference"):
        source = getattr(task.prompt, field_name)
        if source:
            compile_template(source, f"{where}: prompt.{field_name}")


def _records(task: TaskSpec, suite_path: Path, seed: int, where: str) -> list[Record]:
    """The task's items (a seeded sample of them with data.limit), each with its category field."""
    records = _load(task, suite_path, task.data.split, where)
    if task.data.limit:
        # A seeded random sample of the file (the suite's seed), not its first N rows: files are
        # often sorted (by topic, by difficulty, by date), and the first N would inherit that.
        records = sample_items(records, task.data.limit, seed, f"{task.name}/data.limit")
    if not records:
        raise ConfigError(f"{where}: data has no items", hint="check data.path (an empty file?) and data.split / data.subjects")
    if task.category_field is not None:
        missing = [r.id for r in records if task.category_field not in r.fields]
        if missing:
            raise ConfigError(f"{where}: item {missing[0]} has no field '{task.category_field}' (category_field)"
                              + (f", nor do {len(missing) - 1} more" if len(missing) > 1 else ""))
    mt = getattr(task, "multi_turn", None)
    if mt is not None and mt.reference_answers is not None:
        records = with_reference_answers(records, (suite_path.parent / mt.reference_answers), task.id_field, task.category_field,
                                         str(mt.references_field), mt.reference_categories,
                                         f"{where}: multi_turn.reference_answers")
    return records


def suite_tasks_json(suite: SuiteSpec) -> str:
    """The suite's tasks as recorded with each run: which tasks a variant's results should have."""
    import json

    return json.dumps([{"task": t.name, "type": t.type, "baseline": getattr(t, "baseline", None)} for t in suite.tasks])


def prepare_suite(suite: SuiteSpec, suite_path: Path, limit: int | None = None) -> list[PreparedTask]:
    """The suite's model-facing tasks (multiple choice, generation), rendered. Judge tasks are
    prepared by harness.judge.task, over these tasks' stored outputs."""
    tasks = suite_tasks_json(suite)
    return [prepare_task(t, suite.name, suite_path, limit, suite.seed, tasks) for t in suite.tasks if t.type != "judge"]


def conversation_prompt(task: TaskSpec, user_turns: list[str], answers: list[str], chat=None) -> str:
    """The model's input for the next turn: the user turns so far with the model's own earlier
    answers, laid out by the task's `multi_turn.conversation` template, or by the model's chat
    template (`chat`, a harness.models.chat_template.ChatTemplate) when it is evaluated with one."""
    messages = []
    for i, user in enumerate(user_turns):
        messages.append({"role": "user", "content": user})
        if i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    if chat is not None:
        return chat.render(messages, add_generation_prompt=True)
    return render(task.multi_turn.conversation, {"messages": messages}, f"task '{task.name}': multi_turn.conversation")


def _load(task: TaskSpec, suite_path: Path, split: str | None, where: str, path: str | None = None) -> list[Record]:
    data = task.data
    loader = registry.resolve("loader", data.format, where=f"{where}: data.format")
    rel = path or data.path
    resolved = (suite_path.parent / rel) if rel and not Path(rel).is_absolute() else (Path(rel) if rel else None)
    req = LoadRequest(resolved, split, tuple(data.subjects) if data.subjects else None, data.dataset, data.name, where=where)
    return loader(req)


def _fewshot_pool(task: TaskSpec, suite_path: Path, where: str) -> list[Record]:
    fs = task.fewshot
    if fs.k == 0:
        return []
    if task.data.format == "mmlu_csv":
        return _load(task, suite_path, fs.split or "dev", where)
    if not fs.path:
        raise ConfigError(f"{where}: fewshot.path is required when fewshot.k > 0 (examples never come from the evaluated items)")
    return _load(task, suite_path, None, where, path=fs.path)


def content_id(fields: dict) -> str:
    """An item's id when its task names no id_field: a hash of its content, so the same item has
    the same id wherever it sits in the file (a reordered or edited file never pairs one item
    with another by position)."""
    return "h" + stable_hash(fields)[:12]


def _sample_ids(task: TaskSpec, records: list[Record], where: str) -> list[str]:
    """Each item's id: its id_field, or a hash of its content. Items whose content is identical
    (a file that lists one item twice) are told apart by occurrence: `<hash>~2`, `<hash>~3`."""
    if task.id_field is not None:
        return _field_ids(task.id_field, records, where)
    ids: list[str] = []
    seen: dict[str, int] = {}
    for rec in records:
        # A loader's own content-derived id stays (HaluEval's `<h>-right` / `<h>-hallucinated`),
        # and so does a loader's group as a readable prefix (mmlu_csv's `<subject>/<k>`)
        group = rec.id.rsplit("/", 1)[0] + "/" if "/" in rec.id else ""
        sid = rec.id if rec.named_by_content else group + content_id(rec.fields)
        seen[sid] = seen.get(sid, 0) + 1
        ids.append(sid if seen[sid] == 1 else f"{sid}~{seen[sid]}")
    return ids


def _field_ids(id_field: str, records: list[Record], where: str) -> list[str]:
    ids: list[str] = []
    for rec in records:
        if id_field not in rec.fields:
            raise ConfigError(f"{where}: id_field '{id_field}' is not a field of item {rec.id}")
        ids.append(str(rec.fields[id_field]))
    dupes = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) < len(ids) else []
    if dupes:
        raise ConfigError(f"{where}: duplicate sample id '{dupes[0]}' in id_field '{id_field}' "
                          "(it must be unique; without id_field items are identified by their content)")
    return ids


def examples_for(task: TaskSpec, rec: Record, shots: list[Record]) -> list[Record]:
    # MMLU convention: examples come from the item's own subject (lm-eval runs one task per subject).
    pool = [s for s in shots if s.fields.get("subject") == rec.fields.get("subject")] if "subject" in rec.fields else shots
    return pool[: task.fewshot.k]


def _cluster(task: TaskSpec, rec: Record, where: str) -> str | None:
    """The item's cluster: its cluster_field's value, or the loader's (HaluEval's source)."""
    if task.cluster_field is None:
        return rec.cluster
    if task.cluster_field not in rec.fields:
        raise ConfigError(f"{where}: cluster_field '{task.cluster_field}' is not a field of item {rec.id} "
                          f"(its fields: {', '.join(sorted(rec.fields))})")
    return f"{task.cluster_field}={rec.fields[task.cluster_field]}"


def _render_sample(task: TaskSpec, kind, rec: Record, sid: str, shots: list[Record], where: str) -> Sample:
    """One item as a sample: the kind's own renderer (options, labels, turns) or the plain one."""
    if kind.render is not None:
        return kind.render(task, rec, sid, shots, where)
    return render_plain(task, rec, sid, shots, where)


def render_plain(task: TaskSpec, rec: Record, sid: str, shots: list[Record], where: str) -> Sample:
    """The prompt template rendered for the item, after the few-shot examples (each followed by
    its rendered reference), and the item's reference when the prompt has one."""
    p = task.prompt
    item_where = f"{where}: item {rec.id}"
    shown = [(render(p.template, ex.fields, f"{where}: prompt.template"), render(p.reference, ex.fields, f"{where}: prompt.reference"))
             for ex in examples_for(task, rec, shots)]
    parts = with_examples(task, rec, shown, item_where)
    reference = render(p.reference, rec.fields, f"{item_where}: prompt.reference") if p.reference is not None else None
    return Sample(sid, parts.text, reference=reference, fields=dict(rec.fields), chat=parts)


def with_examples(task: TaskSpec, rec: Record, examples: list[tuple[str, str]], item_where: str,
                  delimiter: str = "") -> ChatParts:
    """The model input in parts: the description, the rendered few-shot examples (question,
    answer; `delimiter` between them) and the item's own rendered template; `.text` joins them
    by the prompt's example separator."""
    p = task.prompt
    description = render(p.description, rec.fields, f"{item_where}: prompt.description") if p.description else ""
    return ChatParts(description, tuple(examples), delimiter, p.example_separator,
                     render(p.template, rec.fields, f"{item_where}: prompt.template"))


MISSING = object()


def field_value(fields: dict, path: str):
    """An item field by name, or by a dotted path into nested mappings (`choices.text`); a
    name that exists as it is wins over the path."""
    if path in fields:
        return fields[path]
    value = fields
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


