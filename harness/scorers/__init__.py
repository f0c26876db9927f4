"""Scorers: one function from (sample, output) to {metric: value}.

A scorer declares which task types it applies to with the `scorer` decorator, which only
sets attributes (no registration happens here: names resolve through harness.registry)."""

from __future__ import annotations


def scorer(task_types: tuple[str, ...], metrics: tuple[str, ...], needs_reference: bool = False):
    """Mark a function as a scorer for `task_types` producing `metrics`; `needs_reference`:
    it compares the output with the task's reference text."""

    def mark(fn):
        fn.task_types = task_types
        fn.metrics = metrics
        fn.needs_reference = needs_reference
        return fn

    return mark
