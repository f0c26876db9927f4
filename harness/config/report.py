"""Report files (`reports/*.yaml`): what to show and what to gate on."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict, load_model_file
from harness.errors import ConfigError, UnknownNameError
from harness.stats.metricspec import declarations, lookup

RuleKind = Literal["non_inferiority", "superiority", "bound"]


class GateRule(Strict):
    """One gate rule: a hypothesis about a metric, decided on its confidence bounds.

    - non_inferiority: `variant` is worse than `baseline` by at most `margin` (paired, on the
      same items). `max_drop: x` is shorthand for kind non_inferiority with margin x.
    - superiority: `variant` beats `baseline` (by more than `margin`, default 0).
    - bound: the metric of `variant` is at least `min` and/or at most `max` (`min`/`max` without
      a baseline are shorthand for it).

    "Worse" and "beats" follow the metric's declared direction (lower is better for
    hallucination_rate, latency, perplexity). Each rule ends pass (the bounds lie on the good
    side), fail (on the bad side), inconclusive (they straddle the threshold) or error."""

    kind: RuleKind | None = None
    """Default: non_inferiority with max_drop, bound with min/max."""
    variant: str
    """The variant the rule judges (the candidate)."""
    task: str
    """The task whose runs the rule reads."""
    metric: str
    """A metric as stored or declared (`harness list metrics`): per item (acc, rougeL,
    hallucination_rate, win_rate, ...) or run-level (latency_s_p95, throughput_tokens_per_s_c4,
    cost_per_1k_output_tokens_c1, corpus_bleu, lc_win_rate, consistency, ...)."""
    baseline: str | None = None
    """non_inferiority / superiority: the variant compared against, on the items both have."""
    margin: float | None = Field(default=None, ge=0)
    """non_inferiority: the largest loss allowed; superiority: the gain required (default 0)."""
    max_drop: float | None = Field(default=None, ge=0)
    """Shorthand: kind non_inferiority with this margin."""
    min: float | None = None
    """bound: the metric must be at least this (its lower confidence bound, to pass)."""
    max: float | None = None
    """bound: the metric must be at most this (its upper confidence bound, to pass)."""
    alpha: float | None = Field(default=None, gt=0, lt=0.5)
    """This rule's error rate; default statistics.alpha."""
    allow_partial: bool = False
    """Accept a --limit (partial) run; by default such a rule is an error."""
    require_healthy_judge: bool = True
    """Rules on judged metrics (win_rate, judge_rating, lc_win_rate, ...) are inconclusive while
    the judge's health checks fail (order-swap consistency, position bias, anchor agreement)."""
    since: str | None = None
    """non_inferiority / superiority against a release: the baseline's run tagged with this tag
    (`harness tag`, `harness gate --tag`) instead of its latest run, paired on items. Without a
    `baseline`, the variant is compared with its own tagged run (this release against the last)."""
    calibrated: bool = False
    """On a judge's per-dimension rating (judge_<dimension>): decide on the judge's mean corrected
    by people's ratings of a random slice of the same outputs (`harness review import`), by
    prediction-powered inference, instead of the judge's raw mean. The people's ratings stand in
    for the judge's health: such a rule decides even when the judge's health checks fail. Without
    people's ratings of the variant's judged outputs it is an error."""
    clean_only: bool = False
    """Decide on the items clear of the variant's training data only (the run's contamination
    check: `contaminated` = 0 in both runs). A bound on contamination itself is a rule on the
    metric `contaminated`, e.g. {metric: contaminated, max: 0.05}."""
    statistic: Literal["mean", "ci_low", "ci_high"] | None = None
    """Deprecated and ignored: every rule is now decided on its confidence bounds (the gate
    says so when a file still sets it). (Not named `on`: YAML 1.1 reads `on` as true.)"""
    tolerance: float | None = Field(default=None, ge=0)
    """Bound rules on a single measurement (one figure with no items behind it, e.g. a cost per
    1K tokens from one serving batch): how far the figure may be off, in its own unit. One number
    has no sampling distribution, so such a rule passes only when value + tolerance (for max;
    value - tolerance for min) clears the bound, fails when the whole band lies beyond it, and
    without a tolerance is inconclusive. Ignored by rules over items."""
    name: str | None = None
    """Optional label printed with the verdict."""

    @model_validator(mode="before")
    @classmethod
    def _since_defaults_baseline(cls, data):
        # `since:` without a baseline compares the variant with its own tagged run
        if isinstance(data, dict) and data.get("since") is not None and data.get("baseline") is None and "variant" in data:
            data = {**data, "baseline": data["variant"]}
        return data

    @model_validator(mode="after")
    def _kind(self):
        bounds = self.min is not None or self.max is not None
        if self.kind is None and self.max_drop is None and not bounds:
            raise ValueError("say what the rule checks: max_drop (or kind: non_inferiority with a margin), "
                             "kind: superiority with a baseline, or min/max")
        kind = self.rule_kind
        if self.since is not None and kind == "bound":
            raise ValueError("since: compares with a tagged run: use kind non_inferiority (with a margin) or superiority")
        if self.since is not None and self.calibrated:
            raise ValueError("calibrated rules compare the current runs; since: is not supported with calibrated: true")
        if kind == "bound":
            if not bounds:
                raise ValueError("a bound rule needs min and/or max")
            if self.baseline is not None or self.margin is not None or self.max_drop is not None:
                raise ValueError("a bound rule takes min/max, not baseline, margin or max_drop")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        else:
            if bounds:
                raise ValueError(f"a {kind} rule compares with a baseline: min/max belong to bound rules")
            if self.baseline is None:
                raise ValueError(f"a {kind} rule needs a baseline")
            if self.max_drop is not None and (kind != "non_inferiority" or self.margin is not None):
                raise ValueError("max_drop is shorthand for kind: non_inferiority with a margin; give one of max_drop or margin")
            if kind == "non_inferiority" and self.margin is None and self.max_drop is None:
                raise ValueError("a non_inferiority rule needs a margin (the largest loss allowed), e.g. margin: 0.01")
        return self

    @property
    def rule_kind(self) -> RuleKind:
        """The kind, with the shorthands resolved."""
        return self.kind or ("non_inferiority" if self.max_drop is not None else "bound")

    @property
    def effective_margin(self) -> float:
        """non_inferiority: the loss allowed; superiority: the gain required."""
        return self.margin if self.margin is not None else (self.max_drop or 0.0)


class StatisticsSpec(Strict):
    """How confidence intervals, tests and gate verdicts are computed."""

    resamples: int = Field(default=2000, ge=100)
    """Bootstrap resamples and permutations over items."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Two-sided level of the intervals shown in tables."""
    seed: int = 0
    """Bootstrap seed: the same rows always give the same interval."""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """Gate rules: the one-sided error rate of each verdict (a rule passes when its one-sided
    1 - alpha bound lies on the good side)."""
    multiplicity: Literal["holm", "none"] = "holm"
    """Holm's correction across the rules of the gate and across the comparisons of each report
    table, so the chance of any wrong verdict stays at alpha. `none`: each rule at alpha (the
    gate as a whole still passes wrongly at most alpha of the time, since every rule must pass)."""
    power: float = Field(default=0.8, gt=0, lt=1)
    """For minimum detectable effects and the items a decision needs (`harness plan`)."""
    pairing: Literal["same_data", "shared_items"] = "same_data"
    """How two variants' runs are paired item by item. `same_data`: only runs that saw the same
    data and prompts (equal hashes) are compared; otherwise a gate rule is an error naming both
    runs and what differs, and the report withholds the comparison. `shared_items`: pair on the
    items both runs have with identical content (same id, same rendered prompt, options and
    reference), and say how many items each side dropped."""


class TradeoffSpec(Strict):
    """The quality-versus-latency-versus-cost view."""

    task: str
    """The quality task (e.g. brand_tweets)."""
    metric: str
    """Its quality metric (e.g. rougeL, rubric, win_rate)."""
    latency_task: str | None = None
    """The latency task; default the first latency task with runs."""


class TrendSpec(Strict):
    """A metric tracked across runs: each variant's value per dated run (or per tagged release),
    with control limits from the runs before it and the change point marked."""

    task: str
    """The task whose runs are tracked."""
    metric: str
    """A per-item metric of the task (e.g. hallucination_rate, rougeL)."""
    variants: list[str] | None = None
    """Default: the report's variants."""
    by: Literal["run", "tag"] = "run"
    """run: every complete run, by date; tag: the runs tagged as releases (`harness tag`), in tag order."""
    last: int = Field(default=12, ge=2)
    """Show the most recent N points."""
    sigma: float = Field(default=3.0, gt=0)
    """Control limits at this many standard errors (3: about 0.3% false flags per point)."""


class ReportSpec(Strict):
    """A report file: which variants to compare, on which tasks, and the gate."""

    title: str
    """Shown at the top of the report."""
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
    """Intervals, tests and the gate's error rate."""
    tradeoff: TradeoffSpec | None = None
    """Quality vs latency vs cost across variants; default: the first leaderboard column against
    the first latency task, when there is one."""
    trends: list[TrendSpec] = []
    """Metrics tracked across runs or releases, shown as control charts."""
    gate: list[GateRule] = []
    """The deployment rules `harness gate` decides (exit 0 pass, 1 fail, 3 inconclusive, 2 error)."""

    @model_validator(mode="after")
    def _baseline_listed(self):
        if self.baseline is not None and self.baseline not in self.variants:
            raise ValueError(f"baseline '{self.baseline}' is not in variants")
        return self

    @property
    def baseline_name(self) -> str:
        return self.baseline or self.variants[0]


def load_report(path: Path | str) -> ReportSpec:
    """Parse and check a report file: the one check `validate`, `gate`, `report`, `plan`, `tag`
    and `run --until-decided` all make, so each says the same thing about the same mistake."""
    spec = load_model_file(ReportSpec, path)
    check_rule_metrics(spec, path)
    return spec


def check_rule_metrics(spec: ReportSpec, path: Path | str) -> None:
    """Every gate rule names a declared metric, and a comparison rule one with a better direction
    (checked without a store: `harness validate` catches a misspelt metric before CI does)."""

    for i, rule in enumerate(spec.gate):
        metric = lookup(rule.metric)
        where = f"{path}: gate[{i}].metric"
        if metric is None:
            raise UnknownNameError("metric", rule.metric, {d.metric.name for d in declarations()}, where=where)
        if rule.rule_kind != "bound" and metric.direction == "none":
            raise ConfigError(f"{where}: '{rule.metric}' ({metric.display}) has no better direction, so a {rule.rule_kind} "
                              "rule means nothing for it; use a bound (min/max)")
