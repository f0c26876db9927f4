"""Report files (`reports/*.yaml`): what to show and what to gate on."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict, load_model_file


class GateRule(Strict):
    """One gate rule. Absolute: `variant`, `task`, `metric` and `min` and/or `max`.
    Non-regression: `variant`, `baseline`, `task`, `metric`, `max_drop`."""

    variant: str
    """The variant the rule judges (the candidate)."""
    task: str
    metric: str
    """A metric name as stored (acc, acc_norm, rouge1, rougeL, bleu, chrf, ...)."""
    min: float | None = None
    max: float | None = None
    baseline: str | None = None
    """Non-regression: compare against this variant on the same items (paired)."""
    max_drop: float | None = Field(default=None, ge=0)
    """Non-regression: the candidate may be worse than the baseline by at most this much."""
    statistic: Literal["mean", "ci_low", "ci_high"] = "mean"
    """Which statistic must meet the bound: the point estimate, or a bound of its CI
    (`ci_low` asks that the bound holds with confidence, not just on average).
    (Not named `on`: YAML 1.1 reads a bare `on` key as the boolean true.)"""
    name: str | None = None
    """Optional label printed with the verdict."""

    @model_validator(mode="after")
    def _one_kind(self):
        absolute = self.min is not None or self.max is not None
        relative = self.baseline is not None or self.max_drop is not None
        if absolute == relative:
            raise ValueError("a rule is either absolute (min/max) or non-regression (baseline + max_drop)")
        if relative and (self.baseline is None or self.max_drop is None):
            raise ValueError("a non-regression rule needs both baseline and max_drop")
        return self


class StatisticsSpec(Strict):
    """How confidence intervals are computed."""

    resamples: int = Field(default=2000, ge=100)
    """Bootstrap resamples over items."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = 0
    """Bootstrap seed: the same rows always give the same interval."""


class TradeoffSpec(Strict):
    """The quality-versus-latency-versus-cost view."""

    task: str
    """The quality task (e.g. brand_tweets)."""
    metric: str
    """Its quality metric (e.g. rougeL, rubric, win_rate)."""
    latency_task: str | None = None
    """The latency task; default the first latency task with runs."""


class ReportSpec(Strict):
    """A report file: which variants to compare, on which tasks, and the gate."""

    title: str
    variants: list[str] = Field(min_length=1)
    """Variant names as built/run (base included), in display order."""
    baseline: str | None = None
    """Variant the others are compared against (paired differences). Default: the first."""
    tasks: list[str] | None = None
    """Tasks to show; default every task that has runs for these variants."""
    headline: dict[str, str] = {}
    """task -> the metric shown on the leaderboard; default: the first metric of the task's first scorer."""
    samples_per_task: int = Field(default=3, ge=0)
    """How many items to show side by side per task."""
    notes: str = ""
    """Free text shown at the top of the report (e.g. 'SFT ran 60 steps only')."""
    statistics: StatisticsSpec = StatisticsSpec()
    tradeoff: TradeoffSpec | None = None
    """Quality vs latency vs cost across variants; default: the first leaderboard column against
    the first latency task, when there is one."""
    gate: list[GateRule] = []

    @model_validator(mode="after")
    def _baseline_listed(self):
        if self.baseline is not None and self.baseline not in self.variants:
            raise ValueError(f"baseline '{self.baseline}' is not in variants")
        return self

    @property
    def baseline_name(self) -> str:
        return self.baseline or self.variants[0]


def load_report(path: Path | str) -> ReportSpec:
    """Parse a report file."""
    return load_model_file(ReportSpec, path)
