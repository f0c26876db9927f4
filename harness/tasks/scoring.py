"""Scoring one output with a task's scorers: score rows, and the details scorers return."""

from __future__ import annotations

from harness.store.db import ScoreRow


def score_sample(run_id: str, sample, output, scorers) -> tuple[list, dict]:
    """Score rows, and the details scorers return (stored with the sample, keyed by scorer
    name: e.g. the hallucination scorer's claims and verdicts)."""

    rows, details = [], {}
    for name, scorer in scorers:
        scored = scorer(sample, output)
        if scored.details is not None:
            details[name] = scored.details
        for metric, value in scored.values.items():
            rows.append(ScoreRow(run_id, sample.id, name, metric, None if value is None else float(value)))
    return rows, details
