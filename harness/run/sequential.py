"""`harness run --until-decided REPORT`: evaluate a growing seeded random sample of each task the
report's gate rules read, re-test the rules after each step with anytime-valid confidence
sequences (harness.stats.sequential), and stop as soon as every rule is decided, or when the
budget of items per task is spent (then: inconclusive, with the items it would need).

Each step is an ordinary `--limit n` run (recorded as partial): the sample at a larger n keeps
every item of a smaller one (harness.tasks.sample.sample_items), so a step adds items; a rule is
decided on the items evaluated so far. Because the bounds hold at every n at once, looking after
each step does not raise the chance of a wrong pass above alpha."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.metrics import run_values
from harness.config.report import GateRule, ReportSpec
from harness.errors import ConfigError
from harness.report.gate import describe
from harness.run.evaluate import run_suites
from harness.stats.metricspec import resolve
from harness.stats.sequential import SequentialBound, items_to_decide, sequential_bound
from harness.store.db import Store

GROWTH = 1.5
"""Each step's sample is this many times the one before (its new items only are evaluated: a
larger --limit keeps a smaller one's finished items)."""

FIRST = 20
"""Items per task in the first step."""


def look_sizes(first: int, budget: int) -> list[int]:
    """The sample sizes the steps look at: first, first x GROWTH, ... up to the budget."""
    sizes, n = [], first
    while n < budget:
        sizes.append(n)
        n = max(n + 1, math.ceil(n * GROWTH))
    return sizes + [budget]



@dataclass(frozen=True)
class SequentialVerdict:
    """A rule's state after a step."""

    rule: GateRule
    status: str
    """pass, fail, inconclusive (not decided yet / budget spent) or error."""
    bound: SequentialBound | None
    threshold: float | None
    reason: str = ""
    needed: int | None = None
    """Items the sequence would need to decide a gap the size of the one observed."""

    @property
    def label(self) -> str:
        return self.rule.name or describe(self.rule)


def _rule_shape(rule: GateRule) -> tuple[float, str, float, float]:
    """(threshold on the mean or mean difference, good side, lowest and highest value tested)."""
    found = resolve(rule.metric)
    if found is None:
        raise ConfigError(f"gate rule '{rule.name or describe(rule)}': '{rule.metric}' is not a metric any scorer or task kind declares")
    metric, _ = found
    if metric.level != "item" or metric.low is None or metric.high is None:
        raise ConfigError(f"--until-decided: rule '{rule.name or describe(rule)}' is on {rule.metric}, which is not a per-item metric "
                          "with a declared range; the anytime-valid bounds need bounded per-item values",
                          hint="keep such rules for `harness gate` after a full run")
    width = metric.high - metric.low
    kind = rule.rule_kind
    bounds = (metric.low, metric.high)
    if kind == "bound":
        if rule.min is not None and rule.max is not None:
            raise ConfigError(f"--until-decided: rule '{rule.name or describe(rule)}' has both min and max; give one per rule")
        return (rule.min, "above", *bounds) if rule.min is not None else (rule.max, "below", *bounds)  # type: ignore[return-value]
    if rule.since or rule.calibrated:
        raise ConfigError(f"--until-decided: rule '{rule.name or describe(rule)}' uses since/calibrated, which a sequential run "
                          "does not decide")
    m = rule.effective_margin
    higher = metric.direction == "higher"
    if kind == "non_inferiority":
        threshold, good = ((-m, "above") if higher else (m, "below"))
    else:
        threshold, good = ((m, "above") if higher else (-m, "below"))
    return threshold, good, -width, width  # a paired difference spans twice the metric's range


def check_rules(spec: ReportSpec, where: str) -> dict[int, tuple[float, str, float, float]]:
    """Every rule's shape, or a ConfigError before anything is evaluated."""
    if not spec.gate:
        raise ConfigError(f"{where}: no gate rules to decide", hint="add a `gate:` list to the report file")
    return {i: _rule_shape(rule) for i, rule in enumerate(spec.gate)}


def decide(store: Store, rule: GateRule, shape: tuple[float, str, float, float], runs: dict[tuple[str, str], str],
           alpha: float, final: str = "") -> SequentialVerdict:
    """The rule on the items evaluated so far (the runs of this step), in the seeded sample's
    order (the items' ids are content hashes: an order that does not depend on the values).
    `final`: why this is the last step (the budget, or the items ran out), if it is."""
    threshold, good, low, high = shape
    cand = runs.get((rule.variant, rule.task))
    base = runs.get((rule.baseline, rule.task)) if rule.baseline else None
    if cand is None or (rule.baseline and base is None):
        missing = rule.variant if cand is None else rule.baseline
        return SequentialVerdict(rule, "error", None, threshold, f"no run of {missing} on {rule.task} in this evaluation")
    c = run_values(store, cand, rule.metric)
    if base is not None:
        b = run_values(store, base, rule.metric)
        values = [c[k] - b[k] for k in sorted(set(c) & set(b))]
    else:
        values = [c[k] for k in sorted(c)]
    if not values:
        return SequentialVerdict(rule, "error", None, threshold, f"no values of {rule.metric}")
    bound = sequential_bound(values, low, high, alpha)
    passed = bound.low > threshold if good == "above" else bound.high < threshold
    failed = bound.high < threshold if good == "above" else bound.low > threshold
    if passed or failed:
        return SequentialVerdict(rule, "pass" if passed else "fail", bound, threshold)
    gap = abs(bound.mean - threshold)
    needed = items_to_decide(gap, bound.sd, alpha)
    return SequentialVerdict(rule, "inconclusive", bound, threshold, final or "not decided yet", needed)


@dataclass(frozen=True)
class Step:
    n: int
    verdicts: list[SequentialVerdict]


def run_until_decided(suite_paths: list[Path], models_path: Path | None, store_path: Path, spec: ReportSpec, where: str,
                      budget: int, first: int, force: bool = False, overrides=None, say=print) -> list[Step]:
    """Grow the sample from `first` items per task until every rule is decided or `budget` items
    per task are spent; the verdicts after each step."""
    if budget < 1:
        raise ConfigError(f"--budget-items must be at least 1 (got {budget})")
    shapes = check_rules(spec, where)
    alpha = spec.statistics.alpha
    variants = sorted({r.variant for r in spec.gate} | {r.baseline for r in spec.gate if r.baseline})
    n = min(first, budget)
    steps: list[Step] = []
    runs: dict[tuple[str, str], str] = {}
    while True:
        outcomes = run_suites(suite_paths, models_path, store_path, variants, force, limit=n, overrides=overrides)
        runs.update({(o.variant, o.task): o.run_id for o in outcomes})
        ruled = [o for o in outcomes if any(o.task == r.task for r in spec.gate)]
        with Store(store_path, read_only=True) as store:
            # a run that is not a --limit sample holds every item of its task: nothing more to add
            partial = {r["run_id"] for r in store.query("SELECT run_id FROM runs WHERE list_contains(?, run_id) AND partial",
                                                        [[o.run_id for o in ruled]])}
            exhausted = all(o.n_samples < n or o.run_id not in partial for o in ruled)
            final = ("budget spent" if n >= budget else "") or ("every item evaluated" if exhausted else "")
            verdicts = [decide(store, rule, shapes[i], runs, alpha, final) for i, rule in enumerate(spec.gate)]
        seen = min(n, max((o.n_samples for o in ruled), default=n))
        steps.append(Step(seen, verdicts))
        say(f"after {seen} items per task: " + "; ".join(f"{v.label}: {v.status}" for v in verdicts))
        if all(v.status in ("pass", "fail", "error") for v in verdicts) or final:
            return steps
        # a variant whose rules are all decided stops here: only the undecided rules' variants go on
        open_rules = [v.rule for v in verdicts if v.status == "inconclusive"]
        variants = sorted({r.variant for r in open_rules} | {r.baseline for r in open_rules if r.baseline})
        n = min(budget, max(n + 1, math.ceil(n * GROWTH)))


def exit_code(verdicts: list[SequentialVerdict]) -> int:
    """As `harness gate`: 2 error, 1 fail, 3 inconclusive, 0 pass."""
    statuses = {v.status for v in verdicts}
    return 2 if "error" in statuses else 1 if "fail" in statuses else 3 if "inconclusive" in statuses else 0
