"""Multiple-choice tasks: each item's options scored by log-likelihood in one backend call
(batched across all items, as lm-eval does), the option with the highest log-likelihood taken as
the answer, then the task's scorers (acc, acc_norm, ...)."""

from __future__ import annotations

import json
from dataclasses import asdict

from harness.analysis import fidelity
from harness.analysis.contamination import CONTAMINATION_METRICS
from harness.stats.metricspec import KindRows, TaskKind, TaskRun
from harness.tasks.scoring import score_sample
from harness.backends.base import LOGLIKELIHOOD, Loglikelihood
from harness.store.db import SampleRow


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
    requests, owner, positions = [], [], {}
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


KIND = TaskKind("multiple_choice", "options scored by log-likelihood; metrics come from the task's scorers",
                metrics=CONTAMINATION_METRICS, run_metrics=fidelity.MULTIPLE_CHOICE_METRICS, rows=rows,
                needs=frozenset({LOGLIKELIHOOD}), contamination=True)
