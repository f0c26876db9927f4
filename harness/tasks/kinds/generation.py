"""Generation tasks: outputs generated (one backend call per batch, checkpointed as batches
finish; multi-turn items turn by turn), or replayed from an answer set, or read from a field;
then the task's scorers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import cast

from harness.analysis import fidelity
from harness.analysis.contamination import CONTAMINATION_METRICS
from harness.analysis.diversity import DIVERSITY_METRICS, diversity_rows
from harness.analysis.recitation import RECITATION_METRICS
from harness.analysis.sequence_kl import store_sequence_kl
from harness.backends.base import REPLAY, Generation, GenerationConfig, token_count_note
from harness.config.suite import GenerationTask
from harness.data.loaders import Record
from harness.errors import ConfigError
from harness.progress import progress
from harness.stats.metricspec import KindRows, TaskKind, TaskRun
from harness.store.db import SampleRow, ScoreRow
from harness.tasks.prepare import conversation_prompt, render_plain
from harness.tasks.prompts import render as render_template
from harness.tasks.sample import PreparedTask, Sample
from harness.tasks.scoring import score_sample


def rows(backend, task, run: TaskRun) -> KindRows:
    """A sample row per output (per turn for multi-turn items) with its accounting, and its scores.
    With `generation.n` > 1, each item's draws are scored one by one and kept in its details; the
    item's score is their aggregate (mean, max, min), and the draws' diversity is scored too."""

    g = task.spec.generation
    config = GenerationConfig(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), g.batch_size, run.seed, g.top_k,
                              g.repetition_penalty)
    samples, scores = [], []
    generated = generate_draws(backend, task, config, g.n, run.ckpt) if g.n > 1 else generate_samples(backend, task, config, run.ckpt)
    note = token_count_note(backend)  # after generating: an endpoint learns then whether it sends usage
    for s, out, extra in generated:
        if g.n > 1:
            score_rows, scored, extra = score_draws(run.run_id, s, out, run.scorers, g.aggregate)
            score_rows += diversity_rows(run.run_id, s.id, [o.text for o in out], g.draft_similarity)
            out = out[0]
        else:
            score_rows, scored = score_sample(run.run_id, s, out, run.scorers)
        details = {"prompt_tokens": out.prompt_tokens, "output_tokens": out.output_tokens, "latency_s": out.latency_s,
                   **note, **extra, **scored}
        samples.append(SampleRow(run.run_id, s.id, s.prompt, s.reference, out.text, json.dumps(details), item_id=s.item_id,
                                 turn=s.turn))
        scores += score_rows
    return KindRows(samples, scores, generation_config=config)


def generate_draws(backend, task: PreparedTask, config: GenerationConfig, n: int, ckpt=None):
    """(sample, [n Generations], {}) per item: n sampled outputs of each prompt, checkpointed as
    units `<id>#s<k>`, so a resumed run draws only the missing ones."""
    if REPLAY in backend.info.capabilities:
        raise ConfigError(f"task '{task.spec.name}': an answer set holds one output per item; generation.n > 1 needs a model")
    units = [(f"{s.id}#s{k}", s.prompt) for s in task.samples for k in range(1, n + 1)]
    outs = generate_checkpointed(backend, units, config, ckpt)
    return [(s, outs[i * n:(i + 1) * n], {}) for i, s in enumerate(task.samples)]


AGGREGATES: dict[str, Callable[[list[float]], float]] = {"mean": lambda v: sum(v) / len(v), "max": max, "min": min}


def score_draws(run_id: str, sample, draws: list, scorers, aggregate: str) -> tuple[list, dict, dict]:
    """Score rows of an item scored over its draws (each metric's `aggregate` over the draws
    where it applies; None where it applies to none), its scorers' details (the first draw's),
    and the draws themselves (text, tokens, scores) for the sample's details."""

    per_draw = [score_sample(run_id, sample, out, scorers) for out in draws]
    keys = list(dict.fromkeys((r.scorer, r.metric) for rows, _ in per_draw for r in rows))
    rows = []
    for scorer_name, metric in keys:
        values = [r.value for rs, _ in per_draw for r in rs if (r.scorer, r.metric) == (scorer_name, metric) and r.value is not None]
        rows.append(ScoreRow(run_id, sample.id, scorer_name, metric, AGGREGATES[aggregate](values) if values else None))
    listed = [{"text": out.text, "output_tokens": out.output_tokens,
               "scores": {f"{r.metric}": r.value for r in rs}} for out, (rs, _) in zip(draws, per_draw)]
    return rows, per_draw[0][1], {"draws": listed, "aggregate": aggregate}


def generate_checkpointed(backend, units: list[tuple[str, str]], config: GenerationConfig, ckpt=None) -> list:
    """Generations for (unit, prompt) pairs, one backend call per batch, each output
    checkpointed as its batch finishes; stored units are not generated again. Prompts go in the
    backend's own order (longest first), so a fresh run forms the batches one call would."""

    if ckpt is None:
        return backend.generate([p for _, p in units], config)
    todo = sorted(((u, p) for u, p in units if ckpt.get(u) is None), key=lambda up: -len(up[1]))
    size = max(config.batch_size, 1)
    for start in progress(range(0, len(todo), size), desc="generate", unit="batch"):
        batch = todo[start:start + size]
        for (u, _), out in zip(batch, backend.generate([p for _, p in batch], config)):
            ckpt.add(u, asdict(out))
    return [Generation(**ckpt.get(u)) for u, _ in units]


def generate_outputs(backend, task: PreparedTask, config: GenerationConfig, ckpt=None):
    """(sample, Generation, {}) per item: one output of each prompt, generated (checkpointed) or,
    for an answer set, replayed by item id."""
    if REPLAY in backend.info.capabilities:
        outs = backend.replay([(s.id, 1) for s in task.samples])
    else:
        outs = generate_checkpointed(backend, [(s.id, s.prompt) for s in task.samples], config, ckpt)
    return [(s, o, {}) for s, o in zip(task.samples, outs)]


def generate_samples(backend, task: PreparedTask, config: GenerationConfig, ckpt=None):
    """(sample, Generation, extra details) per output. Multi-turn items become one sample per
    turn (`<id>#t<k>`): turn k is generated for every item at once, with the model's own
    earlier answers in the conversation. A replayed answer set looks answers up by item id.
    With a checkpoint, outputs are committed as they are generated and stored ones reused."""
    spec = cast(GenerationTask, task.spec)  # this kind's tasks only
    replay = backend.replay if REPLAY in backend.info.capabilities else None
    if spec.output_field is not None:
        outs = []
        for s in task.samples:
            if spec.output_field not in s.fields:
                raise ConfigError(f"task '{spec.name}': item {s.id} has no field '{spec.output_field}' (output_field)")
            text = str(s.fields[spec.output_field])
            outs.append(Generation(text, 0, len(text.split()), 0.0))
        return [(s, o, {"output_from": spec.output_field}) for s, o in zip(task.samples, outs)]
    if spec.multi_turn is None:
        return generate_outputs(backend, task, config, ckpt)
    results = []
    answers: dict[str, list[str]] = {s.id: [] for s in task.samples}
    n_turns = max(len(s.turns) for s in task.samples)
    for k in range(1, n_turns + 1):
        todo = [s for s in task.samples if len(s.turns) >= k]
        prompts = [conversation_prompt(spec, list(s.turns[:k]), answers[s.id], task.chat) for s in todo]
        outs = (replay([(s.id, k) for s in todo]) if replay
                else generate_checkpointed(backend, [(f"{s.id}#t{k}", p) for s, p in zip(todo, prompts)], config, ckpt))
        for s, prompt, out in zip(todo, prompts, outs):
            answers[s.id].append(out.text)
            turn_sample = replace(s, id=f"{s.id}#t{k}", prompt=prompt, reference=s.references[k - 1], item_id=s.id, turn=k)
            results.append((turn_sample, out, {"turn": k, "user_turns": list(s.turns[:k]), "answers": list(answers[s.id]),
                                               "references": list(s.references[:k])}))
    return sorted(results, key=lambda r: r[0].id)


def render(task, rec: Record, sid: str, shots: list[Record], where: str) -> Sample:
    """A multi-turn item's rendered turns (and a reference per turn), or the plain rendering."""
    if task.multi_turn is not None:
        return _render_turns(task, rec, sid, where)
    return render_plain(task, rec, sid, shots, where)


def _render_turns(task: GenerationTask, rec: Record, sid: str, where: str) -> Sample:
    mt = task.multi_turn
    assert mt is not None  # render() calls this for multi-turn tasks only
    turns = rec.fields.get(mt.turns_field)
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise ConfigError(f"{where}: item {rec.id}: field '{mt.turns_field}' must be a non-empty list of strings (multi_turn.turns_field)")
    refs = rec.fields.get(mt.references_field) if mt.references_field else None
    if refs is not None and not (isinstance(refs, list) and all(isinstance(r, (str, type(None))) for r in refs)):
        raise ConfigError(f"{where}: item {rec.id}: field '{mt.references_field}' must be a list with one reference per turn")
    rendered = tuple(render_template(task.prompt.template, {**rec.fields, "turn": t}, f"{where}: item {rec.id}: prompt.template") for t in turns)
    references = tuple((refs[i] if refs and i < len(refs) else None) for i in range(len(turns)))
    return Sample(sid, rendered[0], turns=rendered, references=references, fields=dict(rec.fields))


KIND = TaskKind("generation", "outputs generated and scored by the task's scorers", metrics=CONTAMINATION_METRICS + RECITATION_METRICS + DIVERSITY_METRICS,
                run_metrics=(*fidelity.GENERATION_METRICS, fidelity.SEQUENCE_KL), rows=rows, contamination=True,
                after_run=(store_sequence_kl,), render=render, shardable=True)
