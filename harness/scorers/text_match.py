"""Exact-match scoring for generation tasks."""

from __future__ import annotations

from harness.backends.base import Generation
from harness.scorers import scorer
from harness.stats.metricspec import Metric
from harness.tasks.sample import Sample


@scorer(task_types=("generation",), needs_reference=True, metrics=(
    Metric("exact_match", "exact match", "higher", "binary", low=0, high=1),))
def exact_match(sample: Sample, output: Generation) -> dict[str, float]:
    """1 when the output equals the reference after stripping surrounding whitespace."""
    return {"exact_match": float(output.text.strip() == (sample.reference or "").strip())}
