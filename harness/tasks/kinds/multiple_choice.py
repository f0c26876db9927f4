"""Multiple-choice tasks: each item's options scored by log-likelihood in one backend call
(batched across all items, as lm-eval does), the option with the highest log-likelihood taken as
the answer, then the task's scorers (acc, acc_norm, ...)."""

from __future__ import annotations

import json
from dataclasses import asdict

from harness.analysis import fidelity
from harness.analysis.contamination import CONTAMINATION_METRICS
from harness.backends.base import LOGLIKELIHOOD, Loglikelihood
from harness.config.suite import MultipleChoiceTask
from harness.data.loaders import LETTERS, Record
from harness.errors import ConfigError
from harness.stats.metricspec import KindRows, TaskKind, TaskRun
from harness.store.db import SampleRow
from harness.tasks.prepare import MISSING, examples_for, field_value, with_examples
from harness.tasks.prompts import render as render_template
from harness.tasks.sample import Sample
from harness.tasks.scoring import score_sample


def rows(backend, task, run: TaskRun) -> KindRows:
    """A sample row per item (the option ranked first, every option's log-likelihood) and its scores."""

    by_id = option_loglikelihoods(backend, task.samples, run.ckpt)
    samples, scores = [], []
    for s in task.samples:
        out = by_id[s.id]
        best = max(range(len(out)), key=lambda i: (out[i].logprob, -i))
        details = {"options": list(s.options), "continuations": list(s.continuations), "gold": s.gold,
                   "loglikelihoods": [o.logprob for o in out], "is_greedy": [o.is_greedy for o in out],
                   "tokens": [o.n_tokens for o in out]}
        score_rows, extra = score_sample(run.run_id, s, out, run.scorers)
        samples.append(SampleRow(run.run_id, s.id, s.prompt, s.continuations[s.gold].strip(), s.continuations[best].strip(),
                                 json.dumps({**details, **extra})))
        scores += score_rows
    return KindRows(samples, scores)


def option_loglikelihoods(backend, samples, ckpt=None) -> dict[str, list]:
    """Each multiple-choice item's option log-likelihoods. One backend call batches across all
    items (as lm-eval does, so the figures don't depend on checkpointing); an item is
    checkpointed as soon as the last of its options is scored, and stored items aren't asked again."""

    todo = [s for s in samples if ckpt is None or ckpt.get(s.id) is None]
    requests: list[tuple[str, str]] = []
    owner, positions = [], {}
    for s in todo:
        positions[s.id] = list(range(len(requests), len(requests) + len(s.continuations)))
        requests += [(s.prompt, c) for c in s.continuations]
        owner += [s.id] * len(s.continuations)
    left = {s.id: len(s.continuations) for s in todo}
    got: dict[int, Loglikelihood] = {}

    def on_done(results: dict[int, Loglikelihood]) -> None:
        for pos, result in results.items():
            got[pos] = result
            sid = owner[pos]
            left[sid] -= 1
            if left[sid] == 0 and ckpt is not None:
                ckpt.add(sid, [asdict(got[p]) for p in positions[sid]])

    results = backend.loglikelihood(requests, on_done=on_done) if requests else []
    out = {sid: [results[p] for p in pos] for sid, pos in positions.items()}
    return {s.id: out.get(s.id) or [Loglikelihood(**o) for o in ckpt.get(s.id)] for s in samples}


def render(task, rec: Record, sid: str, shots: list[Record], where: str) -> Sample:
    """The item's options as continuations (letters or texts) after its rendered context; few-shot
    examples show their gold continuation."""
    p = task.prompt
    item_where = f"{where}: item {rec.id}"
    options, gold = _options(rec, task, item_where)
    conts = _continuations(task, options)
    shown = []
    delimiter = task.multiple_choice.target_delimiter
    for ex in examples_for(task, rec, shots):
        ex_options, ex_gold = _options(ex, task, f"{where}: few-shot example {ex.id}")
        answer = _continuations(task, ex_options)[ex_gold][len(delimiter):]
        shown.append((render_template(p.template, ex.fields, f"{where}: prompt.template"), answer))
    parts = with_examples(task, rec, shown, item_where, delimiter)
    return Sample(sid, parts.text, tuple(conts), tuple(options), gold, fields=dict(rec.fields), chat=parts)


def _options(rec: Record, task: MultipleChoiceTask, where: str) -> tuple[list[str], int]:
    mc = task.multiple_choice
    if mc.choices_fields:
        missing = [f for f in mc.choices_fields if field_value(rec.fields, f) is MISSING]
        if missing:
            raise ConfigError(f"{where}: missing field(s) {missing} (multiple_choice.choices_fields)")
        options = [field_value(rec.fields, f) for f in mc.choices_fields]
    else:
        options = field_value(rec.fields, mc.choices_field)
        if options is MISSING:
            raise ConfigError(f"{where}: missing field '{mc.choices_field}' (multiple_choice.choices_field)")
        if not isinstance(options, list) or len(options) < 2:
            raise ConfigError(f"{where}: field '{mc.choices_field}' must be a list of at least 2 options")
    answer = field_value(rec.fields, mc.answer_field)
    if answer is MISSING:
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


def _continuations(task: MultipleChoiceTask, options: list[str]) -> list[str]:
    mc = task.multiple_choice
    if mc.continuation == "letter":
        return [mc.target_delimiter + LETTERS[i] for i in range(len(options))]
    return [mc.target_delimiter + o for o in options]


KIND = TaskKind("multiple_choice", "options scored by log-likelihood; metrics come from the task's scorers",
                metrics=CONTAMINATION_METRICS, run_metrics=fidelity.MULTIPLE_CHOICE_METRICS, rows=rows,
                needs=frozenset({LOGLIKELIHOOD}), contamination=True, render=render, shardable=True)
