"""The judge task kinds and their metrics: per-item verdicts (win_rate, judge_rating, ...) and
the judge-health figures of a judged run, recomputable from the stored judge calls so the gate
can test them (`run_statistic`)."""

from __future__ import annotations

from types import SimpleNamespace

from harness.judge.health import (
    PAIRWISE_FIGURES,
    RATING_CATEGORIES,
    SINGLE_FIGURES,
    anchor_agrees,
    cohen_kappa,
    pairwise_point,
    rounded_rating_anchors,
    single_point,
)
from harness.judge.task import combine_pairwise, combine_single
from harness.stats.hypothesis import ItemStatistic
from harness.stats.metricspec import Metric, RunValues, TaskKind

_STAT = "harness.judge.kinds:run_statistic"


def _health(name, display, direction, description="", judged=False, statistic=_STAT) -> Metric:
    return Metric(name, display, direction, level="run", description=description, judged=judged, statistic=statistic)


UNJUDGED = Metric("unjudged", "unjudged (no verdict or rating)", "lower", "binary", low=0, high=1,
                  description="the judge gave no usable verdict (failed calls or unparseable replies)")
_COMMON_HEALTH = (
    _health("parse_failure_rate", "judge parse failures", "lower", "share of answered judge calls without a parseable verdict"),
    _health("error_rate", "judge call errors", "lower", "share of judge calls that failed after their retries"),
    _health("anchor_agreement", "agreement with human anchors", "higher"),
    _health("anchor_kappa", "Cohen's kappa with human anchors", "higher"),
    _health("anchor_coverage", "anchors with a verdict", "higher", statistic=None),
)

PAIRWISE = TaskKind(
    "judge_pairwise", "LLM judge comparing a candidate's outputs with a baseline's, in both orders",
    metrics=(
        Metric("win_rate", "win rate against the baseline", "higher", low=0, high=1, judged=True,
               description="per item: 1 win, 0.5 tie (or verdict flipped with the order), 0 loss"),
        Metric("inconsistent", "verdict flipped with the order", "lower", "binary", low=0, high=1),
        UNJUDGED,
    ),
    run_metrics=(
        _health("lc_win_rate", "length-controlled win rate", "higher",
                "win rate at zero length difference (logistic fit on the length difference)", judged=True),
        _health("consistency", "order-swap consistency", "higher", "share of items whose verdict survives the swap"),
        _health("first_position_win_rate", "first-position win rate", "none", "0.5 = no position bias"),
        _health("longer_wins", "longer answer wins", "none", "0.5 = no length bias"),
        _health("length_slope", "length bias (logit per 100 characters)", "none"),
        _health("tie_rate", "tie rate", "none"),
    ) + _COMMON_HEALTH)

SINGLE = TaskKind(
    "judge_single", "LLM judge rating each output 1-10 (optionally per dimension)",
    metrics=(
        Metric("judge_rating", "judge rating (1-10)", "higher", "ordinal", low=1, high=10, judged=True),
        Metric("judge_{dimension}", "judge rating of {dimension} (1-10)", "higher", "ordinal", low=1, high=10, judged=True),
        UNJUDGED,
    ),
    run_metrics=(
        _health("mean_rating", "mean judge rating", "higher", judged=True),
        _health("rating_sd", "spread of ratings (sd)", "higher", "a judge whose ratings barely vary separates nothing"),
        _health("length_correlation", "rating-length correlation (Spearman)", "none"),
    ) + _COMMON_HEALTH)


def run_statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """A judge-health figure of a stored judge run as a function of its items, from the stored
    judge calls (the same computation as when the run was written)."""
    import json

    run = store.query("SELECT task_type, judge FROM runs WHERE run_id = ?", [run_id])
    rows = [SimpleNamespace(**r) for r in store.query("SELECT * FROM judgments WHERE run_id = ? ORDER BY call_index", [run_id])]
    if not run or not rows:
        return RunValues()
    pairwise = run[0]["task_type"] == "judge_pairwise"
    swap = (json.loads(run[0]["judge"]) if run[0]["judge"] else {}).get("order", "swap") == "swap"
    if metric.startswith("anchor_"):
        if pairwise:
            anchors = combine_pairwise(rows, swap).anchors
            categories, within, weights = ["A", "B", "tie"], 0, None
        else:
            anchors = rounded_rating_anchors(combine_single(rows)[2])
            categories, within, weights = RATING_CATEGORIES, 1, "quadratic"
        pairs = [(j, h) for j, h in anchors if j is not None]
        ids = tuple(str(i) for i in range(len(pairs)))
        if metric == "anchor_agreement":
            return RunValues(ItemStatistic(ids, lambda idx: sum(anchor_agrees(*pairs[i], within) for i in idx) / len(idx)))
        return RunValues(ItemStatistic(ids, lambda idx: cohen_kappa([pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                                                                    categories, weights)))
    if pairwise and metric in PAIRWISE_FIGURES:
        outcome = combine_pairwise(rows, swap)
        by_item: dict = {}
        for c in outcome.calls:
            by_item.setdefault(c.item, []).append(c)
        items = tuple(sorted(by_item))
        return RunValues(ItemStatistic(items, lambda idx: pairwise_point(metric, by_item, outcome.final, [items[i] for i in idx])[0]))
    if not pairwise and metric in SINGLE_FIGURES:
        by_item, medians, _ = combine_single(rows)
        lengths = {r["sample_id"]: len(r["output"] or "") for r in
                   store.query("SELECT sample_id, output FROM samples WHERE run_id = ?", [run_id])}
        items = tuple(sorted(by_item))
        ratings = [(medians[i], lengths.get(i, 0), all(r.error is not None for r in by_item[i])) for i in items]
        return RunValues(ItemStatistic(items, lambda idx: single_point(metric, ratings, list(idx))[0]))
    return RunValues()
