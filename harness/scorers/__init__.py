"""Scorers: declared objects that turn (sample, output) into a typed result.

A scorer declares the task types it applies to and the metrics it produces (harness.stats.metricspec),
so the gate, the report and `harness list` read one declaration. Names resolve through
harness.registry (no registration happens here); the `scorer` decorator only builds the object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.stats.metricspec import Metric


@dataclass(frozen=True)
class Scored:
    """What a scorer returns for one item."""

    values: dict[str, float | None]
    """metric -> value (None: not applicable to this item, e.g. an abstention's rate)."""
    details: dict | None = None
    """Anything worth keeping with the sample (e.g. checked claims); stored in samples.details."""


@dataclass(frozen=True)
class Scorer:
    """A declared scorer."""

    name: str
    fn: Callable[[Any, Any], Mapping[str, float | None] | Scored]
    """(sample, output) -> {metric: value} or Scored."""
    task_types: tuple[str, ...]
    metrics: tuple[Metric, ...]
    needs_reference: bool = False
    """It compares the output with the task's reference text."""
    configure: Callable[[dict, str, Path], Scorer] | None = None
    """Scorers that take a config (`- rubric: {...}`): returns the configured scorer."""
    config_hash: str | None = None
    """Content of the configuration (e.g. a rubric file): part of the run key."""
    description: str = ""
    state: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    """Configured scorers: what they were configured with (e.g. the parsed rubric)."""

    def __call__(self, sample, output) -> Scored:
        result = self.fn(sample, output)
        return result if isinstance(result, Scored) else Scored(dict(result))

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    def configured(self, fn, metrics: tuple[Metric, ...] | None = None, config_hash: str | None = None, **state) -> Scorer:
        """The same scorer bound to a configuration."""
        return replace(self, fn=fn, metrics=metrics or self.metrics, configure=None, config_hash=config_hash, state=state)


def scorer(task_types: tuple[str, ...], metrics: tuple[Metric, ...], needs_reference: bool = False,
           configure: Callable | None = None, name: str | None = None, description: str | None = None):
    """Declare a function as a scorer: returns a Scorer object (by default named after the
    function, described by the first line of its docstring)."""

    def build(fn) -> Scorer:
        return Scorer(name or fn.__name__, fn, task_types, metrics, needs_reference, configure,
                      description=description or (fn.__doc__ or "").strip().split("\n")[0])

    return build


def needs_config(name: str):
    """The body of a scorer that only works configured (configure() replaces it)."""

    def fn(sample, output):
        raise RuntimeError(f"the {name} scorer needs a config")

    return fn
