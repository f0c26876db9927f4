"""Sweep files (`harness ship`): a parent, its export candidates, the suites and the gate rules
each candidate must pass against the parent, and how to choose among those that pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict, load_model_file
from harness.config.report import GateRule, StatisticsSpec


class SweepSpec(Strict):
    """A sweep: which of a parent's export candidates ships."""

    models: str
    """The models file declaring the parent and the candidates (relative to this file)."""
    parent: str
    """The variant the candidates must keep (e.g. the fine-tune as trained)."""
    candidates: list[str] = Field(min_length=1)
    """Variants of the models file to build, evaluate and compare with the parent (GGUF exports,
    `gguf_lora`, quantized variants, ...)."""
    suites: list[str] = Field(min_length=1)
    """Suites every candidate and the parent are evaluated on (relative to this file)."""
    rules: list[dict[str, Any]] = Field(min_length=1)
    """Gate rules each candidate must pass, written without `variant` and `baseline` (the
    candidate is filled in, and the parent as the baseline of comparative rules), e.g.
    {kind: non_inferiority, task: brand_tweets, metric: rougeL, margin: 0.05} or
    {task: mmlu_sample, metric: parent_agreement, min: 0.9}."""
    choose: Literal["smallest", "fastest"] = "smallest"
    """Among the candidates that pass every rule (and the budgets): the smallest artifact, or the
    highest throughput on the latency task."""
    budget_mb: float | None = Field(default=None, gt=0)
    """Candidates whose artifact is larger are not chosen."""
    min_tokens_per_s: float | None = Field(default=None, gt=0)
    """Candidates slower on the latency task are not chosen."""
    latency_task: str | None = None
    """The latency task whose throughput and p95 latency the table shows (default: the first
    latency task evaluated)."""
    statistics: StatisticsSpec = StatisticsSpec()
    """As in a report file: confidence, resamples, multiplicity across a candidate's rules."""

    @model_validator(mode="after")
    def _rules(self):
        if self.parent in self.candidates:
            raise ValueError(f"parent '{self.parent}' is also a candidate")
        for i, rule in enumerate(self.rules):
            clash = {"variant", "baseline"} & set(rule)
            if clash:
                raise ValueError(f"rules[{i}]: leave out {', '.join(sorted(clash))} (the candidate and the parent are filled in)")
            _rule(rule, self.candidates[0], self.parent)
        return self

    def gate_rules(self, candidate: str) -> list[GateRule]:
        """The rules for one candidate, against the parent."""
        return [_rule(r, candidate, self.parent) for r in self.rules]


def _rule(rule: dict[str, Any], candidate: str, parent: str) -> GateRule:
    """A rule for `candidate`: compared with `parent`, unless it bounds a figure of the candidate
    alone (min/max: e.g. parent_agreement, which is already relative to the parent)."""
    bounds = "min" in rule or "max" in rule
    return GateRule.model_validate({**rule, "variant": candidate, **({} if bounds else {"baseline": parent})})


def load_sweep(path: Path | str) -> SweepSpec:
    """Parse and check a sweep file."""
    return load_model_file(SweepSpec, path)
