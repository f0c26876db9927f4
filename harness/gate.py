"""`harness gate`: apply a report file's gate rules to the stored rows.

Exit codes: 0 every rule passes, 1 at least one fails, 2 the policy can't be evaluated
(missing variant, task or metric; bad file)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.report import GateRule, ReportSpec
from harness.errors import StoreError
from harness.metrics import sample_values
from harness.stats import Estimate, bootstrap_mean, paired_comparison
from harness.store.db import Store

PASS, FAIL, ERROR = 0, 1, 2


@dataclass(frozen=True)
class Verdict:
    rule: GateRule
    passed: bool
    observed: Estimate
    """The judged quantity: the metric (absolute rules) or candidate - baseline (non-regression)."""
    detail: str

    def line(self) -> str:
        label = self.rule.name or describe(self.rule)
        return f"{'PASS' if self.passed else 'FAIL'}  {label}: {self.detail}"


def describe(rule: GateRule) -> str:
    if rule.baseline is not None:
        return f"{rule.variant} vs {rule.baseline} on {rule.task}/{rule.metric}: drop <= {rule.max_drop:g}"
    bounds = []
    if rule.min is not None:
        bounds.append(f">= {rule.min:g}")
    if rule.max is not None:
        bounds.append(f"<= {rule.max:g}")
    return f"{rule.variant} {rule.task}/{rule.metric} {' and '.join(bounds)}"


def _values(store: Store, variant: str, rule: GateRule) -> dict[str, float]:
    values = sample_values(store, variant, rule.task, rule.metric)
    if not values:
        raise StoreError(f"gate rule '{rule.name or describe(rule)}': no scores for variant '{variant}', task '{rule.task}', metric '{rule.metric}'",
                         hint="run the suite for this variant first (`harness run`), and check the names with `harness list runs`")
    return values


def _statistic(est: Estimate, on: str) -> float:
    return {"mean": est.mean, "ci_low": est.low, "ci_high": est.high}[on]


def evaluate_rule(store: Store, rule: GateRule, spec: ReportSpec) -> Verdict:
    st = spec.statistics
    candidate = _values(store, rule.variant, rule)
    if rule.baseline is None:
        est = bootstrap_mean(candidate.values(), st.resamples, st.confidence, st.seed)
        value = _statistic(est, rule.statistic)
        ok = (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
        return Verdict(rule, ok, est, f"{rule.statistic}={value:.4f}; observed {est.fmt(4)}")
    baseline = _values(store, rule.baseline, rule)
    cmp = paired_comparison(candidate, baseline, st.resamples, st.confidence, st.seed)
    if cmp.diff.n == 0:
        raise StoreError(f"gate rule '{rule.name or describe(rule)}': '{rule.variant}' and '{rule.baseline}' share no items on {rule.task}")
    value = _statistic(cmp.diff, rule.statistic)
    ok = value >= -rule.max_drop
    floor = 0.0 - rule.max_drop  # 0.0 - x, so a max_drop of 0 prints as +0.0000, not -0.0000
    return Verdict(rule, ok, cmp.diff, f"{rule.statistic} diff={value:+.4f} (must be >= {floor:+.4f}); "
                                      f"diff {cmp.diff.fmt(4)}, paired p{format_p(cmp.p_value)}")


def format_p(p: float) -> str:
    """'=0.271', or '<0.001' when the permutation test's resolution is the limit."""
    return "<0.001" if p < 0.001 else f"={p:.3f}"


def evaluate_gate(store: Store, spec: ReportSpec) -> list[Verdict]:
    """Every rule's verdict; StoreError if a rule can't be evaluated."""
    return [evaluate_rule(store, rule, spec) for rule in spec.gate]


def exit_code(verdicts: list[Verdict]) -> int:
    return PASS if all(v.passed for v in verdicts) else FAIL
