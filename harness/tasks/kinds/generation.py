"""Generation tasks: outputs generated (one backend call per batch, checkpointed as batches
finish; multi-turn items turn by turn), or replayed from an answer set, or read from a field;
then the task's scorers."""

from __future__ import annotations

import json
from dataclasses import asdict

from harness.analysis import fidelity
from harness.backends.base import REPLAY, GenerationConfig, token_count_note
from harness.analysis.contamination import CONTAMINATION_METRICS
from harness.errors import ConfigError
from harness.stats.metricspec import KindRows, TaskKind, TaskRun
from harness.progress import progress
from harness.tasks.scoring import score_sample
from harness.tasks.sample import PreparedTask
from harness.backends.base import Generation
from harness.store.db import SampleRow
from harness.store.db import ScoreRow
from harness.tasks.prepare import conversation_prompt
from harness.analysis.sequence_kl import store_sequence_kl


def rows(backend, task, run: TaskRun) -> KindRows:
    """A sample row per output (per turn for multi-turn items) with its accounting, and its scores.
    With `generation.n` > 1, each item's draws are scored one by one and kept in its details; the
    item's score is their aggregate (mean, max, min)."""

    g = task.spec.generation
    config = GenerationConfig(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), g.batch_size, run.seed, g.top_k,
                              g.repetition_penalty)
    samples, scores = [], []
    generated = generate_draws(backend, task, config, g.n, run.ckpt) if g.n > 1 else generate_samples(backend, task, config, run.ckpt)
    note = token_count_note(backend)  # after generating: an endpoint learns then whether it sends usage
    for s, out, extra in generated:
        if g.n > 1:
            score_rows, scored, extra = score_draws(run.run_id, s, out, run.scorers, g.aggregate)
            out = out[0]
        else:
            score_rows, scored = score_sample(run.run_id, s, out, run.scorers)
        details = {"prompt_tokens": out.prompt_tokens, "output_tokens": out.output_tokens, "latency_s": out.latency_s,
                   **note, **extra, **scored}
        samples.append(SampleRow(run.run_id, s.id, s.prompt, s.reference, out.text, json.dumps(details)))
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


AGGREGATES = {"mean": lambda v: sum(v) / len(v), "max": max, "min": min}


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


def generate_samples(backend, task: PreparedTask, config: GenerationConfig, ckpt=None):
    """(sample, Generation, extra details) per output. Multi-turn items become one sample per
    turn (`<id>#t<k>`): turn k is generated for every item at once, with the model's own
    earlier answers in the conversation. A replayed answer set looks answers up by item id.
    With a checkpoint, outputs are committed as they are generated and stored ones reused."""
    from dataclasses import replace


    spec = task.spec
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
        if replay:
            outs = replay([(s.id, 1) for s in task.samples])
        else:
            outs = generate_checkpointed(backend, [(s.id, s.prompt) for s in task.samples], config, ckpt)
        return [(s, o, {}) for s, o in zip(task.samples, outs)]
    results = []
    answers: dict[str, list[str]] = {s.id: [] for s in task.samples}
    n_turns = max(len(s.turns) for s in task.samples)
    for k in range(1, n_turns + 1):
        todo = [s for s in task.samples if len(s.turns) >= k]
        prompts = [conversation_prompt(spec, list(s.turns[:k]), answers[s.id]) for s in todo]
        outs = (replay([(s.id, k) for s in todo]) if replay
                else generate_checkpointed(backend, [(f"{s.id}#t{k}", p) for s, p in zip(todo, prompts)], config, ckpt))
        for s, prompt, out in zip(todo, prompts, outs):
            answers[s.id].append(out.text)
            turn_sample = replace(s, id=f"{s.id}#t{k}", prompt=prompt, reference=s.references[k - 1])
            results.append((turn_sample, out, {"turn": k, "user_turns": list(s.turns[:k]), "answers": list(answers[s.id]),
                                               "references": list(s.references[:k])}))
    return sorted(results, key=lambda r: r[0].id)


KIND = TaskKind("generation", "outputs generated and scored by the task's scorers", metrics=CONTAMINATION_METRICS,
                run_metrics=(*fidelity.GENERATION_METRICS, fidelity.SEQUENCE_KL), rows=rows, contamination=True,
                after_run=(store_sequence_kl,))
