"""Turn a TaskSpec into concrete samples: load items, pick few-shot examples, render prompts.

Everything here runs before any model is loaded, so bad data or templates fail fast and
nothing is written to the store."""

from __future__ import annotations

from pathlib import Path

from harness import registry
from harness.config.suite import SuiteSpec, TaskSpec
from harness.data.loaders import LETTERS, LoadRequest, Record
from harness.errors import ConfigError
from harness.hashing import stable_hash
from harness.tasks.prompts import compile_template, render
from harness.scorers import Scorer
from harness.tasks.sample import PreparedTask, Sample, sample_items


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
    scorers = []
    for i, (name, config) in enumerate(task.scorer_refs):
        s = resolve_scorer(name, f"{where}: scorers[{i}]")
        if task.type not in s.task_types:
            raise ConfigError(f"{where}: scorers[{i}]: scorer '{name}' does not apply to {task.type} tasks (it scores {', '.join(s.task_types)})")
        if s.needs_reference and task.type == "generation" and task.prompt.reference is None and task.multi_turn is None:
            raise ConfigError(f"{where}: scorers[{i}]: scorer '{name}' compares outputs with a reference; set prompt.reference")
        if config is not None and s.configure is None:
            raise ConfigError(f"{where}: scorers[{i}]: scorer '{name}' takes no config (write it as a plain name)")
        if s.configure is not None:
            if config is None:
                raise ConfigError(f"{where}: scorers[{i}]: scorer '{name}' needs a config: `- {name}: {{...}}`")
            s = s.configure(config, f"{where}: scorers[{i}].{name}", suite_path.parent)
        scorers.append((name, s))
    if task.type == "generation" and task.fewshot.k and task.prompt.reference is None:
        raise ConfigError(f"{where}: few-shot generation needs prompt.reference (each example shows its answer)")
    if task.multi_turn is not None:
        compile_template(task.multi_turn.conversation, f"{where}: multi_turn.conversation")
    for field_name in ("template", "description", "reference"):
        source = getattr(task.prompt, field_name)
        if source:
            compile_template(source, f"{where}: prompt.{field_name}")

    records = _load(task, suite_path, task.data.split, where)
    if task.data.limit:
        # A seeded random sample of the file (the suite's seed), not its first N rows: files are
        # often sorted (by topic, by difficulty, by date), and the first N would inherit that.
        records = sample_items(records, task.data.limit, seed, f"{task.name}/data.limit")
    if not records:
        raise ConfigError(f"{where}: data has no items", hint="check data.path (an empty file?) and data.split / data.subjects")
    shots = _fewshot_pool(task, suite_path, where)
    if task.category_field is not None:
        missing = [r.id for r in records if task.category_field not in r.fields]
        if missing:
            raise ConfigError(f"{where}: item {missing[0]} has no field '{task.category_field}' (category_field)"
                              + (f", nor do {len(missing) - 1} more" if len(missing) > 1 else ""))

    samples = []
    seen: set[str] = set()
    for rec in records:
        sid = _sample_id(task, rec, where)
        if sid in seen:
            raise ConfigError(f"{where}: duplicate sample id '{sid}' (set id_field to a unique field)")
        seen.add(sid)
        samples.append(_render_sample(task, rec, sid, shots, where))
    n_total = len(samples)
    if limit is not None:
        samples = sample_items(samples, limit, seed, task.name)
    data_hash = stable_hash([[r.id, r.fields] for r in records] + [[r.id, r.fields] for r in shots])
    choices = {"multiple_choice": task.multiple_choice, "classification": task.classification}.get(task.type)
    prompt_hash = stable_hash([task.prompt.model_dump(), task.fewshot.model_dump(), choices.model_dump() if choices else None])
    return PreparedTask(task, suite_name, tuple(samples), data_hash, prompt_hash, tuple(scorers), n_total, suite_tasks)


def suite_tasks_json(suite: SuiteSpec) -> str:
    """The suite's tasks as recorded with each run: which tasks a variant's results should have."""
    import json

    return json.dumps([{"task": t.name, "type": t.type, "baseline": getattr(t, "baseline", None)} for t in suite.tasks])


def prepare_suite(suite: SuiteSpec, suite_path: Path, limit: int | None = None) -> list[PreparedTask]:
    """The suite's model-facing tasks (multiple choice, generation), rendered. Judge tasks are
    prepared by harness.judge.task, over these tasks' stored outputs."""
    tasks = suite_tasks_json(suite)
    return [prepare_task(t, suite.name, suite_path, limit, suite.seed, tasks) for t in suite.tasks if t.type != "judge"]


def conversation_prompt(task: TaskSpec, user_turns: list[str], answers: list[str]) -> str:
    """The model's input for the next turn: the user turns so far with the model's own earlier answers."""
    messages = []
    for i, user in enumerate(user_turns):
        messages.append({"role": "user", "content": user})
        if i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    return render(task.multi_turn.conversation, {"messages": messages}, f"task '{task.name}': multi_turn.conversation")


def _load(task: TaskSpec, suite_path: Path, split: str | None, where: str, path: str | None = None) -> list[Record]:
    data = task.data
    loader = registry.resolve("loader", data.format, where=f"{where}: data.format")
    rel = path or data.path
    resolved = (suite_path.parent / rel) if rel and not Path(rel).is_absolute() else (Path(rel) if rel else None)
    req = LoadRequest(resolved, split, tuple(data.subjects) if data.subjects else None, data.dataset, data.name)
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


def _sample_id(task: TaskSpec, rec: Record, where: str) -> str:
    if task.id_field is None:
        return rec.id
    if task.id_field not in rec.fields:
        raise ConfigError(f"{where}: id_field '{task.id_field}' is not a field of item {rec.id}")
    return str(rec.fields[task.id_field])


def _examples_for(task: TaskSpec, rec: Record, shots: list[Record]) -> list[Record]:
    # MMLU convention: examples come from the item's own subject (lm-eval runs one task per subject).
    pool = [s for s in shots if s.fields.get("subject") == rec.fields.get("subject")] if "subject" in rec.fields else shots
    return pool[: task.fewshot.k]


def _render_sample(task: TaskSpec, rec: Record, sid: str, shots: list[Record], where: str) -> Sample:
    p = task.prompt
    item_where = f"{where}: item {rec.id}"
    description = render(p.description, rec.fields, f"{item_where}: prompt.description") if p.description else ""
    if task.type == "multiple_choice":
        options, gold = _options(rec, task, item_where)
        conts = _continuations(task, options)
        parts = []
        for ex in _examples_for(task, rec, shots):
            ex_options, ex_gold = _options(ex, task, f"{where}: few-shot example {ex.id}")
            ex_conts = _continuations(task, ex_options)
            parts.append(render(p.template, ex.fields, f"{where}: prompt.template") + ex_conts[ex_gold])
        context = render(p.template, rec.fields, f"{item_where}: prompt.template")
        prompt = description + p.example_separator.join(parts + [context])
        return Sample(sid, prompt, tuple(conts), tuple(options), gold, fields=dict(rec.fields))
    if task.type == "classification":
        return _render_classification(task, rec, sid, shots, where)
    if task.multi_turn is not None:
        return _render_turns(task, rec, sid, where)
    parts = []
    for ex in _examples_for(task, rec, shots):
        parts.append(render(p.template, ex.fields, f"{where}: prompt.template") + render(p.reference, ex.fields, f"{where}: prompt.reference"))
    prompt = description + p.example_separator.join(parts + [render(p.template, rec.fields, f"{item_where}: prompt.template")])
    reference = render(p.reference, rec.fields, f"{item_where}: prompt.reference") if p.reference is not None else None
    return Sample(sid, prompt, reference=reference, fields=dict(rec.fields))


def gold_label(task: TaskSpec, rec: Record, where: str) -> int:
    """The index of a classification item's gold label (its text, or its index in `labels`)."""
    spec = task.classification
    if spec.label_field not in rec.fields:
        raise ConfigError(f"{where}: missing field '{spec.label_field}' (classification.label_field)")
    value = rec.fields[spec.label_field]
    if isinstance(value, str) and value in spec.labels:
        return spec.labels.index(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        index = int(value)
        if 0 <= index < len(spec.labels):
            return index
    raise ConfigError(f"{where}: field '{spec.label_field}' is {value!r}: expected one of {spec.labels} or an index 0-{len(spec.labels) - 1}")


def _render_classification(task: TaskSpec, rec: Record, sid: str, shots: list[Record], where: str) -> Sample:
    """Like a multiple-choice item whose options are the labels: continuations are the labels
    after the delimiter; few-shot examples show their gold label."""
    p, spec = task.prompt, task.classification
    item_where = f"{where}: item {rec.id}"
    conts = tuple(spec.target_delimiter + label for label in spec.labels)
    parts = [render(p.template, ex.fields, f"{where}: prompt.template") + conts[gold_label(task, ex, f"{where}: few-shot example {ex.id}")]
             for ex in _examples_for(task, rec, shots)]
    description = render(p.description, rec.fields, f"{item_where}: prompt.description") if p.description else ""
    prompt = description + p.example_separator.join(parts + [render(p.template, rec.fields, f"{item_where}: prompt.template")])
    gold = gold_label(task, rec, item_where)
    return Sample(sid, prompt, conts, tuple(spec.labels), gold, reference=spec.labels[gold], fields=dict(rec.fields))


def _render_turns(task: TaskSpec, rec: Record, sid: str, where: str) -> Sample:
    mt = task.multi_turn
    turns = rec.fields.get(mt.turns_field)
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise ConfigError(f"{where}: item {rec.id}: field '{mt.turns_field}' must be a non-empty list of strings (multi_turn.turns_field)")
    refs = rec.fields.get(mt.references_field) if mt.references_field else None
    if refs is not None and not (isinstance(refs, list) and all(isinstance(r, (str, type(None))) for r in refs)):
        raise ConfigError(f"{where}: item {rec.id}: field '{mt.references_field}' must be a list with one reference per turn")
    rendered = tuple(render(task.prompt.template, {**rec.fields, "turn": t}, f"{where}: item {rec.id}: prompt.template") for t in turns)
    references = tuple((refs[i] if refs and i < len(refs) else None) for i in range(len(turns)))
    return Sample(sid, rendered[0], turns=rendered, references=references, fields=dict(rec.fields))


_MISSING = object()


def field_value(fields: dict, path: str):
    """An item field by name, or by a dotted path into nested mappings (`choices.text`); a
    name that exists as it is wins over the path."""
    if path in fields:
        return fields[path]
    value = fields
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _options(rec: Record, task: TaskSpec, where: str) -> tuple[list[str], int]:
    mc = task.multiple_choice
    if mc.choices_fields:
        missing = [f for f in mc.choices_fields if field_value(rec.fields, f) is _MISSING]
        if missing:
            raise ConfigError(f"{where}: missing field(s) {missing} (multiple_choice.choices_fields)")
        options = [field_value(rec.fields, f) for f in mc.choices_fields]
    else:
        options = field_value(rec.fields, mc.choices_field)
        if options is _MISSING:
            raise ConfigError(f"{where}: missing field '{mc.choices_field}' (multiple_choice.choices_field)")
        if not isinstance(options, list) or len(options) < 2:
            raise ConfigError(f"{where}: field '{mc.choices_field}' must be a list of at least 2 options")
    answer = field_value(rec.fields, mc.answer_field)
    if answer is _MISSING:
        raise ConfigError(f"{where}: missing field '{mc.answer_field}' (multiple_choice.answer_field)")
    if mc.labels_field is not None:
        labels = field_value(rec.fields, mc.labels_field)
        if not isinstance(labels, list) or len(labels) != len(options):
            raise ConfigError(f"{where}: field '{mc.labels_field}' must list one label per option ({len(options)}) (multiple_choice.labels_field)")
        labels = [str(x).strip() for x in labels]
        if str(answer).strip() not in labels:
            raise ConfigError(f"{where}: answer {answer!r} is not one of the option labels {labels}")
        return [str(o) for o in options], labels.index(str(answer).strip())
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in LETTERS:
        gold = LETTERS.index(answer.strip().upper())
    elif isinstance(answer, int) or (isinstance(answer, str) and answer.strip().isdigit()):
        gold = int(answer)
    else:
        raise ConfigError(f"{where}: answer {answer!r} is neither an index nor a letter")
    if not 0 <= gold < len(options):
        raise ConfigError(f"{where}: answer {answer!r} is out of range for {len(options)} options")
    return [str(o) for o in options], gold


def _continuations(task: TaskSpec, options: list[str]) -> list[str]:
    mc = task.multiple_choice
    if mc.continuation == "letter":
        return [mc.target_delimiter + LETTERS[i] for i in range(len(options))]
    return [mc.target_delimiter + o for o in options]
