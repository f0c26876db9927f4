"""Metric declarations: every metric is declared once, by the scorer or task kind that produces
it, and the gate, the report and `harness list` read the declaration.

A declaration says which way is better, what the values are (which decides the paired test),
the range and unit, and whether the metric is a per-item score (one row per item in `scores`)
or a run-level figure (a percentile, a throughput, a corpus BLEU) computed from a run's items.
A name may be a family with placeholders, e.g. `rubric_{check}` or `latency_s_p{q}`: `{q}`,
`{c}` and `{n}` match digits, any other placeholder a word."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from harness import registry
from harness.stats.hypothesis import TEST_NAMES

Direction = Literal["higher", "lower", "none"]
"""Which way is better; `none`: neither (e.g. output length), so only absolute bounds apply."""
Values = Literal["binary", "continuous", "ordinal"]
"""What the per-item values are; it picks the paired test (harness.stats.hypothesis)."""


@dataclass(frozen=True)
class Metric:
    """One metric (or family of metrics), as its producer declares it."""

    name: str
    """The stored name, or a family pattern such as `rubric_{check}`."""
    display: str
    """How a person would call it (report headers, `harness list metrics`)."""
    direction: Direction
    values: Values = "continuous"
    """binary (0/1): exact McNemar; continuous: studentized paired bootstrap; ordinal (ratings): Wilcoxon."""
    level: Literal["item", "run"] = "item"
    """item: one score row per item; run: a figure of the whole run (gated by resampling its items)."""
    low: float | None = None
    """Smallest possible value (None: unbounded)."""
    high: float | None = None
    unit: str = ""
    description: str = ""
    judged: bool = False
    """The value comes from an LLM judge's verdicts: a gate rule on it needs a healthy judge."""
    statistic: str | None = None
    """Run-level metrics: `module:function(store, run_id, metric_name, params) -> RunValues`,
    recomputing the figure (and its resamples) from the run's stored per-item rows."""
    percentile: bool = False
    """Run-level: a percentile `{q}` of per-item values (p95 latency), tested exactly by order
    statistics rather than by resampling."""

    @property
    def test(self) -> str:
        """The paired test that fits the values, in words."""
        if self.level == "run":
            return "paired bootstrap over items"

        return TEST_NAMES[self.values]

    @property
    def is_family(self) -> bool:
        return "{" in self.name

    def match(self, name: str) -> dict[str, str] | None:
        """The placeholder values if `name` belongs to this metric (exact names: {})."""
        if not self.is_family:
            return {} if name == self.name else None
        m = _pattern(self.name).fullmatch(name)
        return m.groupdict() if m else None

    def named(self, name: str, **params: str) -> Metric:
        """A concrete member of a family (e.g. rubric_hashtags), with its display name filled in."""
        from dataclasses import replace

        return replace(self, name=name, display=self.display.format(**params) if params else self.display)

    def better(self, difference: float) -> bool | None:
        """Whether a positive-or-negative change is an improvement (None: no direction)."""
        if self.direction == "none" or difference == 0:
            return None
        return (difference > 0) == (self.direction == "higher")


_INTEGER_PLACEHOLDERS = {"q", "c", "n"}


@lru_cache(maxsize=256)
def _pattern(template: str) -> re.Pattern:
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos:m.start()])
        key = m.group(1)
        out += f"(?P<{key}>\\d+)" if key in _INTEGER_PLACEHOLDERS else f"(?P<{key}>[A-Za-z0-9_]+?)"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]))


@dataclass(frozen=True)
class TaskKind:
    """A kind of task (multiple choice, generation, perplexity, latency, judge) and the metrics
    it writes itself, besides those of its scorers."""

    name: str
    description: str
    metrics: tuple[Metric, ...] = ()
    """Per-item metrics the task kind stores (e.g. perplexity, latency_s, win_rate)."""
    run_metrics: tuple[Metric, ...] = ()
    """Run-level figures (percentiles, throughput, judge health, corpus perplexity)."""
    rows: Callable[..., KindRows] | None = None
    """`rows(backend, task, run: TaskRun) -> KindRows`: what a run of this kind computes. None
    for kinds run elsewhere (the judge kinds run over stored outputs, not a backend)."""
    options: Any = None
    """A plugin kind's options model (a harness.config.loader.Strict subclass): the task's
    `options:` block is validated by it when the suite is loaded; None: the kind takes none."""
    render: Callable[..., Any] | None = None
    """`render(task, record, sample_id, shots, where) -> Sample`: how one item of the suite's data
    becomes a sample; None: the prompt template (and reference) rendered as they are."""
    prepare: Callable[..., Any] | None = None
    """`prepare(task, suite_name, suite_path, limit, seed, suite_tasks) -> PreparedTask` for a kind
    that brings its own items (lm-eval's catalogue); None: the suite's data and prompt are
    rendered by harness.tasks.prepare."""
    needs: frozenset[str] = frozenset()
    """Backend capabilities a run of this kind uses (harness.backends.base: GENERATE,
    LOGLIKELIHOOD), checked when the backend is opened, before the task runs."""
    contamination: bool = False
    """Its items are checked against the variant's training data and the suite's corpora
    (harness.analysis.contamination) and get the contamination metrics."""
    shardable: bool = False
    """Its backend work is checkpointed in units that belong to items (`<item id>`, or
    `<item id>#<suffix>`), so `harness run --ray` can give shards of its items to several model
    replicas and assemble the run from the stored units. False: a run goes whole to one replica."""
    after_run: tuple[Callable[..., int], ...] = ()
    """Analyses run once every variant of a `harness run` is evaluated:
    `analysis(catalogue, evaluated names, outcomes, {task name: PreparedTask of this kind}) ->
    rows written` (e.g. token-level KL to the parent on perplexity tasks)."""


@dataclass(frozen=True)
class TaskRun:
    """What a task kind's `rows` gets besides the backend and the prepared task."""

    run_id: str
    seed: int
    ckpt: Any
    """The run's harness.tasks.checkpoint.Checkpoint: commit units as they finish, reuse stored ones."""
    scorers: list
    """(name, Scorer) pairs of the task."""


@dataclass(frozen=True)
class KindRows:
    """What a task kind's run produced: sample rows, score rows, run-level stats and the
    generation settings it used (recorded with the run), for the store."""

    samples: list
    scores: list
    stats: list = field(default_factory=list)
    generation_config: Any = None


@dataclass(frozen=True)
class Declared:
    """A metric with who declares it."""

    metric: Metric
    provider: str
    """`scorer <name>` or `task kind <name>`."""


def declarations(builtin_only: bool = False) -> list[Declared]:
    """Every declared metric: registered scorers' and task kinds' (plugins included unless
    `builtin_only`)."""
    names = (lambda kind: sorted(registry.BUILTINS[kind])) if builtin_only else registry.names
    out: list[Declared] = []
    for name in names("task_kind"):
        kind = registry.resolve("task_kind", name)
        out += [Declared(m, f"task kind {name}") for m in kind.metrics + kind.run_metrics]
    for name in names("scorer"):
        s = registry.resolve("scorer", name)
        out += [Declared(m, f"scorer {name}") for m in getattr(s, "metrics", ())]
    return out


@lru_cache(maxsize=1)
def _catalog() -> tuple[dict[str, Metric], tuple[Metric, ...]]:
    exact: dict[str, Metric] = {}
    families: list[Metric] = []
    for d in declarations():
        if d.metric.is_family:
            families.append(d.metric)
        else:
            exact.setdefault(d.metric.name, d.metric)
    return exact, tuple(families)


def lookup(name: str) -> Metric | None:
    """The declaration of a stored metric name (an exact name first, then a family), or None."""
    found = resolve(name)
    return found[0] if found else None


def direction(name: str) -> Direction:
    """Which way is better for a stored metric; `none` when nothing declares it."""
    m = lookup(name)
    return m.direction if m else "none"


def arrow(name: str) -> str:
    """' ↑' when higher is better for a stored metric, ' ↓' when lower is, '' when neither or
    undeclared: how every table and plot marks a metric's direction."""
    return {"higher": " ↑", "lower": " ↓"}.get(direction(name), "")


class Unavailable(Exception):
    """A run-level metric's statistic can't be computed for this run; the message says why
    (e.g. a fidelity figure of a variant whose parent has no run of the task)."""


@dataclass(frozen=True)
class RunValues:
    """A run-level metric recomputed from a run's stored items, ready to be tested."""

    statistic: object | None = None
    """A harness.stats.hypothesis.ItemStatistic: the figure as a function of a multiset of items
    (bootstrap, and paired comparisons on shared items)."""
    values: tuple[float, ...] = ()
    """Percentile metrics: the per-item values (tested exactly by order statistics)."""
    point: float | None = None
    """A single measurement with no items behind it (e.g. peak memory): no interval."""
    ratio: object | None = None
    """Ratio figures (throughput, cost per token, corpus perplexity): a harness.stats.hypothesis.Ratio,
    tested against a bound exactly as a mean rather than by a percentile bootstrap."""


def name_parts(name: str, metrics: Iterable[Metric]) -> tuple[str, dict[str, str]] | None:
    """The declared name a stored metric instantiates among `metrics`, and its placeholder values
    (`throughput_tokens_per_s_c4` -> (`throughput_tokens_per_s_c{c}`, {'c': '4'})); None when none
    of them declares it. Exact names win over families."""
    metrics = tuple(metrics)
    if any(not m.is_family and m.name == name for m in metrics):
        return name, {}
    for m in metrics:
        params = m.match(name) if m.is_family else None
        if params is not None:
            return m.name, params
    return None


def builtin_metrics() -> tuple[Metric, ...]:
    """The metrics of the built-in scorers and task kinds only (no plugin is imported)."""
    return tuple(d.metric for d in declarations(builtin_only=True))


def resolve(name: str) -> tuple[Metric, dict[str, str]] | None:
    """The declaration of a stored metric name and its placeholder values (e.g. {'q': '95'})."""
    exact, families = _catalog()
    if name in exact:
        return exact[name], {}
    for f in families:
        params = f.match(name)
        if params is not None:
            return f.named(name, **params), params
    return None
