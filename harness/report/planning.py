"""`harness plan`: what it would take to decide. For every gate rule and report comparison, the
minimum detectable effect (MDE) at the current n from the stored item-level variance, and for
the undecided ones the items needed to decide a gap of the observed size, with the time and
cost of evaluating them from the recorded throughput of the runs involved."""

from __future__ import annotations

import json
import math

from harness.analysis.metrics import metric_names
from harness.config.report import ReportSpec
from harness.report.formatting import figure
from harness.report.gate import TOO_MANY, evaluate_gate, needed_words
from harness.report.view import check_names, paired_comparisons
from harness.review.calibration import judge_ratings, rated_needed
from harness.stats.metricspec import resolve
from harness.stats.sequential import items_to_decide
from harness.store.db import Store


def _seconds_per_item(store: Store, variants: list[str], task: str) -> tuple[float, list[str]]:
    """Recorded wall time per item of the task, summed over the variants (each must be rerun)."""
    total, parts = 0.0, []
    for v in variants:
        rows = store.query("SELECT wall_s, n_samples FROM latest_runs WHERE variant = ? AND task = ?", [v, task])
        if rows and rows[0]["n_samples"]:
            per = rows[0]["wall_s"] / rows[0]["n_samples"]
            total += per
            parts.append(f"{per:.2f} s/item for {v}")
    return total, parts


def _items_available(store: Store, variant: str, task: str) -> int | None:
    rows = store.query("SELECT n_items_total, n_samples FROM latest_runs WHERE variant = ? AND task = ?", [variant, task])
    return (rows[0]["n_items_total"] or rows[0]["n_samples"]) if rows else None


def recorded_price(store: Store) -> float | None:
    """The price_per_hour of the newest latency run that sets one."""
    for r in store.query("SELECT task_config FROM runs WHERE task_type = 'latency' AND task_config IS NOT NULL ORDER BY started_at DESC"):
        price = json.loads(r["task_config"]).get("latency", {}).get("price_per_hour")
        if price is not None:
            return float(price)
    return None


def _cost_words(store, variants, task, n_now, n_need, price) -> str:
    per, parts = _seconds_per_item(store, variants, task)
    if not per:
        return "no recorded throughput for these runs"
    extra = max(n_need - n_now, 0)
    secs = extra * per
    words = f"{extra} more items: about {_duration(secs)} of evaluation ({', '.join(parts)})"
    if price is not None:
        words += f", cost {price / 3600 * secs:.4f} at {price:g}/hour"
    available = _items_available(store, variants[0], task)
    if available is not None and n_need > available:
        words += f"; the task has {available} items, so add {n_need - available} more to its data"
    return words


def _duration(secs: float) -> str:
    if secs < 120:
        return f"{secs:.0f} s"
    if secs < 7200:
        return f"{secs / 60:.0f} min"
    return f"{secs / 3600:.1f} h"


def _people_needed(store: Store, v) -> list[str]:
    """For a calibrated rule not yet decided: how many outputs people should rate so the
    calibrated interval decides a gap the size of the judge's raw distance from the threshold."""
    found = resolve(v.rule.metric)
    if found is None or "dimension" not in found[1]:
        return []
    dim = found[1]["dimension"]
    raw = judge_ratings(store, v.rule.variant, dim, v.rule.task)
    if not raw:
        return []
    thresholds = v.thresholds or tuple(t for t in (v.rule.min, v.rule.max) if t is not None)
    if not thresholds:
        return []
    mean = sum(raw.values()) / len(raw)
    gap = min(abs(mean - t) for t in thresholds)
    alpha = v.alpha or 0.05
    need = rated_needed(store, v.rule.variant, dim, gap, 1 - 2 * alpha, v.rule.task) if gap > 0 else None
    if need is None:
        return []
    n, judged, rated = need
    if n > judged:
        return [f"      people's ratings: rating every one of the {judged} judged outputs would not decide a gap of {gap:.3g}"]
    return [f"      people's ratings: about {n} of the {judged} judged outputs rated on {dim} (now {rated}) give a calibrated "
            f"interval of +-{gap:.3g}, the judge's distance from the threshold"]


def _sequential_words(v) -> list[str]:
    """For a rule `harness run --until-decided` can decide (a per-item metric with a declared
    range, a single threshold): about how many items its anytime-valid bounds need if the
    observed gap is real."""
    o, m = v.outcome, v.metric
    if (o is None or m is None or m.level != "item" or m.low is None or m.high is None or len(v.thresholds) != 1
            or v.rule.since or v.rule.calibrated or not o.n or math.isnan(o.se)):
        return []
    gap = abs(o.estimate - v.thresholds[0])
    n = items_to_decide(gap, o.se * math.sqrt(o.n), v.alpha or 0.05)
    if n is None:
        return ["      --until-decided: no practical number of items decides a gap this small"]
    return [f"      --until-decided: about {n} items to a decision if the gap of {gap:.4g} is real (anytime-valid bounds)"]


def _rule_lines(store: Store, v, price: float | None) -> list[str]:
    """One gate rule's plan: its verdict, n, estimate and MDE, and what would decide it."""
    lines = [f"  {v.status.upper():13} {v.label}"]
    o = v.outcome
    if v.rule.calibrated and v.status in ("error", "inconclusive"):
        lines += _people_needed(store, v)
    if o is None or v.status == "error":
        return lines + [f"      {v.reason}"]
    lines.append(f"      n={o.n}; estimate {o.estimate:.4g}, threshold {', '.join(f'{t:g}' for t in v.thresholds)}; "
                 f"MDE {figure(v.mde)} at this n")
    lines += _sequential_words(v)
    if v.status == "inconclusive" and not v.decided:
        lines.append("      held back by the judge's failed health checks, not by n: more items won't decide it")
    elif v.status == "inconclusive":
        words = needed_words(v)
        if words.startswith("about"):
            variants = [v.rule.variant] + ([v.rule.baseline] if v.rule.baseline else [])
            lines.append(f"      to decide a gap of {abs(o.estimate - min(v.thresholds, key=lambda t: abs(o.estimate - t))):.4g}: "
                         f"about {int(v.n_needed)} items; {_cost_words(store, variants, v.rule.task, o.n, int(v.n_needed), price)}")
        else:
            lines.append(f"      {words}")
    return lines


def plan_lines(store: Store, spec: ReportSpec, price: float | None, where: str) -> list[str]:
    """The plan, as lines to print."""

    st = spec.statistics
    check_names(store, spec, where)
    price = price if price is not None else recorded_price(store)
    lines = [f"Plan for {where} (alpha {st.alpha}, power {st.power:.0%}"
             + (f", instance price {price:g}/hour" if price is not None else ", no instance price: --price-per-hour for costs") + ")"]
    if spec.gate:
        lines += ["", "Gate rules (one-sided tests; MDE = the smallest true gap from the threshold detected with that power)"]
        for v in evaluate_gate(store, spec).verdicts:
            lines += _rule_lines(store, v, price)
    lines += ["", f"Comparisons with {spec.baseline_name} (two-sided, Holm across each task's table)"]
    tasks = dict.fromkeys((t for _, t, _ in metric_names(store, spec.variants, spec.tasks)))
    for task in tasks:
        metrics = list(dict.fromkeys(m for _, t, m in metric_names(store, spec.variants, [task])))
        comps = paired_comparisons(store, spec, task, metrics)
        if not comps:
            continue
        lines.append(f"  {task}")
        for c in comps:
            decided = not math.isnan(c.p_adjusted) and c.p_adjusted <= 1 - st.confidence
            need = ""
            if not decided and abs(c.diff) > 1e-12 and not math.isnan(c.mde):
                n = math.ceil(c.n * (c.mde / abs(c.diff)) ** 2)
                if n <= c.n:
                    need = f"; detectable at this n alone, not after Holm's correction over the table's {len(comps)} comparisons"
                elif n > TOO_MANY:
                    need = f"; the difference is next to nothing: no practical number of items (over {TOO_MANY:,}) detects it"
                else:
                    need = (f"; about {n} items to detect a difference this size "
                            f"({_cost_words(store, [c.variant, spec.baseline_name], task, c.n, n, price)})")
            elif not decided:
                need = "; no difference observed"
            lines.append(f"    {c.variant:24} {c.metric:22} diff {c.diff:+.4g} (n={c.n}), MDE {figure(c.mde)}, "
                         f"p(Holm) {figure(c.p_adjusted)}{' significant' if decided else need}")
    return lines
