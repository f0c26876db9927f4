"""Build the report's view model from the store: plain dataclasses, no HTML."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from harness import __version__
from harness.analysis.coverage import missing_tasks, partial_runs
from harness.analysis.fidelity import Unavailable, item_values, parent_run
from harness.analysis.flips import item_flips
from harness.analysis.metrics import (
    MetricSummary,
    discordant,
    paired_counts,
    run_clusters,
    run_values,
    sample_values,
    summarize,
    unclustered_runs,
)
from harness.analysis.pairing import identical_items, mismatch
from harness.config.report import ReportSpec
from harness.errors import ConfigError
from harness.report.formatting import nice_ticks
from harness.report.gate import Verdict, evaluate_gate, needed_words
from harness.report.trends import trend_view
from harness.review.audit import agreement
from harness.review.calibration import calibrated
from harness.review.outcomes import outcome_view
from harness.review.rubric import rating_agreement, review_agreement
from harness.stats.clusters import clustered_paired_test, is_clustered
from harness.stats.hypothesis import holm, mde, paired_binary_counts, paired_test, two_sided
from harness.stats.intervals import bootstrap_mean
from harness.stats.metricspec import arrow, direction, lookup
from harness.store.db import Store
from harness.tasks.kinds.classification import confusion as counts
from harness.tasks.kinds.classification import stored_predictions

log = logging.getLogger(__name__)

SERVING_KINDS = ("latency", "load")
"""Task kinds whose per-request figures are timings: no leaderboard column, flips or forest row."""


@dataclass(frozen=True)
class Cell:
    mean: float
    low: float
    high: float
    n: int
    best: bool = False


@dataclass(frozen=True)
class Comparison:
    """A variant against the baseline on one metric, paired on shared items."""

    variant: str
    metric: str
    diff: float
    """The test's estimate of the difference (mean difference; Hodges-Lehmann shift for ratings)."""
    low: float
    high: float
    p_value: float
    """Two-sided p-value of 'no difference' with the test that fits the metric's values."""
    wins: int
    losses: int
    ties: int
    test: str = ""
    p_adjusted: float = float("nan")
    """Holm-adjusted across the comparisons of the task's table."""
    mde: float = float("nan")
    """Minimum detectable effect at this n (two-sided, power from the report's statistics)."""
    n: int = 0
    direction: str = "none"
    noise_band: float = float("nan")
    """The widest noise band (`harness noise`) of the two variants on this task and metric."""


@dataclass(frozen=True)
class SampleView:
    sample_id: str
    prompt: str
    reference: str | None
    outputs: list[tuple[str, str | None, float | None, str | None]]
    """(variant, output, headline score, what was read from the output: an extracted answer) per variant."""


@dataclass(frozen=True)
class TaskView:
    suite: str
    task: str
    task_type: str
    metrics: list[str]
    headline: str
    """The metric shown on the leaderboard and beside each sample output."""
    table: dict[str, dict[str, Cell]]
    """variant -> metric -> cell."""
    comparisons: list[Comparison]
    samples: list[SampleView]
    runs: list[dict]
    health: dict[str, list[dict]] = field(default_factory=dict)
    """variant -> run-level figures (metric, value, low, high, n, warning): judge health for
    judge tasks, serving figures for latency tasks, corpus perplexity for perplexity tasks."""
    judge: str | None = None
    """Judge tasks: who judged, in words."""
    audit: dict | None = None
    """Hallucination tasks with imported human labels: verifier-human agreement and kappa."""
    flips: list = field(default_factory=list)
    """harness.analysis.flips.Flips of each variant against the baseline on the headline metric."""
    confusion: dict | None = None
    """Classification tasks: {labels, matrices: variant -> counts[gold][predicted] (last column: no label)}."""
    review: list = field(default_factory=list)
    """Rubric tasks with imported human reviews: per check, agreement of the automatic check with the person."""
    categories: dict | None = None
    """Tasks whose items have a category (category_field): {categories, cells: variant -> category -> Estimate}
    of the headline metric."""
    ratings: list = field(default_factory=list)
    """Rubric tasks with imported human ratings of the judged dimensions: per dimension, the person
    against the LLM judge on the same outputs (harness.review.rubric.rating_agreement)."""
    capacity: dict | None = None
    """Load tasks: each variant's curve (the SLO's percentile against the arrival rate), its
    verdict per rate and its capacity (capacity_view)."""
    calibrated: list = field(default_factory=list)
    """Single-grading judge tasks with people's ratings of some judged outputs: per variant and
    dimension, the judge's mean corrected by them (harness.review.calibration)."""

    @property
    def has_rubric(self) -> bool:
        """The task is scored by the rubric (so a human review of its checks can be imported)."""
        return any(m.startswith("rubric_") for m in self.metrics)

    @property
    def stats_title(self) -> str:
        return {"judge_pairwise": "Judge health (measured on this run)", "judge_single": "Judge health (measured on this run)",
                "latency": "Serving figures (latency percentiles at the first concurrency level)",
                "load": "Capacity: each arrival rate's latency percentiles and throughput, and the highest rate that meets the SLO",
                "classification": "Per-class figures (macro-F1, precision, recall, F1; 95% bootstrap intervals)"}.get(self.task_type, "Run-level figures")

    @property
    def reference_label(self) -> str:
        return "baseline answer" if self.task_type == "judge_pairwise" else "reference"

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return [(v, h["warning"]) for v, rows in self.health.items() for h in rows if h["warning"]]


@dataclass(frozen=True)
class ReportView:
    title: str
    notes: str
    generated_at: str
    harness_version: str
    variants: list[str]
    baseline: str
    confidence: float
    leaderboard_columns: list[tuple[str, str]]
    leaderboard: dict[str, dict[tuple[str, str], Cell]]
    tasks: list[TaskView]
    lineage: list[dict]
    verdicts: list[Verdict] = field(default_factory=list)
    tradeoff: dict | None = None
    """Quality vs latency vs cost: {quality, latency_task, rows: [...], points: svg}."""
    coverage: list[str] = field(default_factory=list)
    """Missing tasks and --limit (partial) runs: the report says what it does not show."""
    gate_status: str | None = None
    alpha: float = 0.05
    multiplicity: str = "holm"
    power: float = 0.8
    summary: dict = field(default_factory=dict)
    """The verdict first: {headline sentence, tone, per-variant lines}."""
    forest: dict = field(default_factory=dict)
    """Each variant's paired difference from the baseline on each headline, laid out for SVG."""
    deltas: dict = field(default_factory=dict)
    """Lineage deltas: {edges: {(parent, child): [{task, comparison, good, decided}]}, svg: layout}."""
    fidelity: list[dict] = field(default_factory=list)
    """Per variant and task: how far it drifted from its parent (agreement, flips, KL; exact
    match and ROUGE-L against the parent's outputs)."""
    outcomes: dict | None = None
    """Online outcomes of published drafts (harness.review.outcomes), when any were imported."""
    trends: list[dict] = field(default_factory=list)
    """The report's `trends:`: a metric per variant over dated runs or tags, with control limits
    and change points (harness.report.trends)."""
    contamination: list[dict] = field(default_factory=list)
    """Per checked task and variant: items overlapping the variant's training data, the main
    source, and the headline metric on all items and on the clean ones."""


def check_names(store: Store, spec: ReportSpec, where: str) -> None:
    """Every variant, task and headline the report file names exists in the store (ConfigError,
    exit 2, otherwise): a misspelt name must not quietly leave a table out."""
    have = {r["variant"] for r in store.query("SELECT DISTINCT variant FROM runs WHERE list_contains(?, variant)", [spec.variants])}
    missing = [v for v in spec.variants if v not in have]
    if missing:
        known = [r["variant"] for r in store.query("SELECT DISTINCT variant FROM runs ORDER BY variant")]
        raise ConfigError(f"{where}: variants: no runs of {', '.join(repr(m) for m in missing)} in {store.path} "
                          f"(variants with runs: {', '.join(known) or 'none'})",
                          hint="run the suites for them first (`harness run ... --variant NAME`), or fix the name")
    tasks = {r["task"] for r in store.query("SELECT DISTINCT task FROM latest_runs WHERE list_contains(?, variant)", [spec.variants])}
    named = list(spec.tasks or []) + list(spec.headline) + ([spec.tradeoff.task] if spec.tradeoff else []) + (
        [spec.tradeoff.latency_task] if spec.tradeoff and spec.tradeoff.latency_task else []) + [t.task for t in spec.trends]
    unknown = sorted({t for t in named if t not in tasks})
    if unknown:
        raise ConfigError(f"{where}: no task {', '.join(repr(t) for t in unknown)} has runs for these variants "
                          f"(tasks: {', '.join(sorted(tasks)) or 'none'})")


def build_view(store: Store, spec: ReportSpec, where: str = "report") -> ReportView:
    """Everything the template shows, computed from the store's rows."""

    st = spec.statistics
    check_names(store, spec, where)
    summaries = summarize(store, spec.variants, spec.tasks, st.resamples, st.confidence, st.seed)
    by_task: dict[tuple[str, str], list[MetricSummary]] = {}
    for s in summaries:
        by_task.setdefault((s.suite, s.task), []).append(s)

    leaderboard_columns: list[tuple[str, str]] = []
    leaderboard: dict[str, dict[tuple[str, str], Cell]] = {v: {} for v in spec.variants}
    tasks = []
    for (suite, task), rows in by_task.items():
        metrics = _metric_order(store, spec, task, [r.metric for r in rows])
        table: dict[str, dict[str, Cell]] = {v: {} for v in spec.variants}
        for metric in metrics:
            leader = decided_best([r for r in rows if r.metric == metric], direction(metric))
            for r in rows:
                if r.metric == metric:
                    table[r.variant][metric] = Cell(r.estimate.mean, r.estimate.low, r.estimate.high, r.estimate.n,
                                                    best=r.variant == leader)
        headline = spec.headline.get(task, metrics[0])
        if headline not in metrics:
            raise ConfigError(f"{where}: headline: task '{task}' has no metric '{headline}' (stored: {', '.join(metrics)})")
        tasks.append(_task_view(store, spec, suite, task, metrics, headline, table))
        if tasks[-1].task_type in SERVING_KINDS:
            continue  # per-request means mix concurrency levels or rates: serving figures go to their own views
        leaderboard_columns.append((task, headline))
        for v in spec.variants:
            if headline in table[v]:
                leaderboard[v][(task, headline)] = table[v][headline]
    tradeoff = _tradeoff(store, spec, leaderboard_columns, leaderboard, tasks)
    lineage = lineage_rows(store, spec.variants + _reward_models(store, spec.variants))
    deltas = lineage_deltas(store, spec, lineage, leaderboard_columns)
    contamination = _contamination(store, spec, tasks)
    fidelity = _fidelity(store, spec, tasks)
    forest = _forest(spec, tasks)
    gate = evaluate_gate(store, spec) if spec.gate else None
    summary = _summary(spec, gate.verdicts if gate else [], leaderboard_columns, leaderboard, contamination)
    return ReportView(
        title=spec.title, notes=spec.notes, generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        harness_version=__version__, variants=spec.variants, baseline=spec.baseline_name, confidence=st.confidence,
        leaderboard_columns=leaderboard_columns, leaderboard=leaderboard, tasks=tasks, lineage=lineage,
        tradeoff=tradeoff, alpha=st.alpha, multiplicity=st.multiplicity, power=st.power,
        coverage=[g.words() for g in missing_tasks(store, spec.variants)] + [p.words() for p in partial_runs(store, spec.variants, spec.tasks)]
        + unpaired(store, spec, [t.task for t in tasks]),
        verdicts=gate.verdicts if gate else [], gate_status=gate.status if gate else None, contamination=contamination,
        fidelity=fidelity, deltas=deltas, summary=summary, forest=forest,
        trends=[trend_view(store, spec, t) for t in spec.trends], outcomes=outcome_view(store, spec.variants, st.confidence, spec.baseline))


def _contamination(store: Store, spec: ReportSpec, tasks: list[TaskView]) -> list[dict]:
    """The contamination check of each task's runs, with the headline recomputed on clean items."""
    from collections import Counter

    st = spec.statistics
    out = []
    for t in tasks:
        declared = lookup(t.headline)
        for r in t.runs:
            flags = run_values(store, r["run_id"], "contaminated")
            if not flags:
                continue
            dirty = sorted(k for k, v in flags.items() if v == 1.0)
            sources = Counter()
            if dirty:
                for row in store.query("SELECT details FROM samples WHERE run_id = ? AND list_contains(?, sample_id)", [r["run_id"], dirty]):
                    src = json.loads(row["details"] or "{}").get("contamination", {}).get("source")
                    sources[src] += 1
            clean = None
            if declared is None or declared.level == "item":
                values = run_values(store, r["run_id"], t.headline)
                kept = [v for k, v in values.items() if flags.get(k) == 0.0]
                if kept and dirty:
                    e = bootstrap_mean(kept, st.resamples, st.confidence, st.seed)
                    clean = Cell(e.mean, e.low, e.high, e.n)
            out.append({"task": t.task, "variant": r["variant"], "n": len(flags), "contaminated": len(dirty),
                        "share": len(dirty) / len(flags), "sources": sources.most_common(2), "headline": t.headline,
                        "full": t.table.get(r["variant"], {}).get(t.headline), "clean": clean})
    return out


def _metric_order(store: Store, spec: ReportSpec, task: str, present: list[str]) -> list[str]:
    """Metrics in the order the suite lists its scorers (stored on each run), then any others."""
    rows = store.query("SELECT metrics FROM latest_runs WHERE task = ? AND list_contains(?, variant) ORDER BY started_at DESC LIMIT 1",
                       [task, spec.variants])
    declared = json.loads(rows[0]["metrics"]) if rows else []
    return [m for m in declared if m in present] + sorted(set(present) - set(declared))


def _task_view(store: Store, spec: ReportSpec, suite: str, task: str, metrics: list[str], headline: str,
               table: dict[str, dict[str, Cell]]) -> TaskView:
    comparisons = paired_comparisons(store, spec, task, metrics)
    runs = store.query(
        """SELECT variant, run_id, task_type, backend, device, dtype, data_hash, prompt_hash, suite_hash, variant_key,
                  generation_config, seed, harness_version, git_commit, started_at, wall_s, n_samples, judge, backend_details
           FROM latest_runs WHERE suite = ? AND task = ? AND list_contains(?, variant) ORDER BY variant""",
        [suite, task, spec.variants])
    task_type = runs[0]["task_type"] if runs else ""
    health, judge, audit = {}, None, None
    for r in runs:
        rows = store.query("SELECT metric, value, low, high, n, warning FROM run_stats WHERE run_id = ?", [r["run_id"]])
        if rows:
            health[r["variant"]] = sorted(rows, key=lambda h: (HEALTH_ORDER.index(h["metric"]) if h["metric"] in HEALTH_ORDER else 99,
                                                               h["metric"] if task_type not in SERVING_KINDS else 0))
    health = {v: health[v] for v in spec.variants if v in health}  # report order, not alphabetical
    if task_type.startswith("judge_"):
        judge = _judge_words(json.loads(runs[0]["judge"]) if runs[0]["judge"] else {})
    if "hallucination_rate" in metrics:
        audit = agreement(store, task, spec.variants)
    confusion = None
    if task_type == "classification" and runs:
        matrices, labels = {}, []
        for r in sorted(runs, key=lambda r: spec.variants.index(r["variant"])):
            labels, _, gold, predicted = stored_predictions(store, r["run_id"])
            matrices[r["variant"]] = counts(labels, gold, predicted)
        confusion = {"labels": labels, "matrices": matrices}
    capacity = capacity_view(store, runs, health) if task_type == "load" else None
    return TaskView(suite, task, task_type, metrics, headline, table, comparisons, _samples(store, spec, task, headline), runs,
                    health, judge, audit, _flips(store, spec, task, headline, [r["variant"] for r in runs], task_type), confusion,
                    review_rows(store, spec, task, metrics), by_category(store, spec, runs, headline),
                    rating_rows(store, spec, task, metrics), capacity, calibrated_view(store, spec, task, task_type, metrics))


def calibrated_view(store: Store, spec: ReportSpec, task: str, task_type: str, metrics: list[str]) -> list[dict]:
    """{variant, dimension, estimate: CalibratedMean} for each judged dimension of a single-grading
    judge task that people rated on 2 or more of the variant's judged outputs."""
    if task_type != "judge_single":
        return []
    dims = [m[len("judge_"):] for m in metrics if m.startswith("judge_") and m != "judge_rating"]
    rows = []
    for variant in spec.variants:
        for dim in dims:
            est = calibrated(store, variant, dim, spec.statistics.confidence, task)
            if est is not None:
                rows.append({"variant": variant, "dimension": dim, "estimate": est})
    return rows


def capacity_view(store: Store, runs: list[dict], health: dict[str, list[dict]]) -> dict | None:
    """Load tasks: per variant (and the runtime serving it), the SLO's percentile at each rate
    with its interval and verdict, the capacity and its cost; and an SVG of the curves with the
    budget drawn across (x: rate, y: latency in ms)."""
    import re

    config = json.loads(store.query("SELECT task_config FROM runs WHERE run_id = ?", [runs[0]["run_id"]])[0]["task_config"] or "{}")
    slo = (config.get("load") or {}).get("slo") or {}
    q, budget, of = slo.get("percentile", 95), slo.get("latency_ms", float("nan")), slo.get("of", "latency")
    source = "latency_s" if of == "latency" else "ttft_s"
    rows_by_variant = {}
    for r in runs:
        figures = {h["metric"]: h for h in health.get(r["variant"], [])}
        points = []
        for name, h in figures.items():
            m = re.fullmatch(rf"load_{source}_p{q:g}_(\d+)rpm", name)
            if m:
                rpm = int(m.group(1))
                met = figures.get(f"load_slo_met_{rpm}rpm", {}).get("value")
                points.append({"rate": rpm / 60, "ms": h["value"] * 1000 if h["value"] is not None else None,
                               "low": h["low"] * 1000 if h["low"] is not None else None,
                               "high": h["high"] * 1000 if h["high"] is not None else None,
                               "verdict": {1.0: "meets", 0.0: "misses"}.get(met, "undecided"),
                               "failed": figures.get(f"load_failed_{rpm}rpm", {}).get("value")})
        cap = figures.get("load_max_rate_at_slo", {})
        point = figures.get("load_max_rate_at_slo_point", {}).get("value")
        cost = figures.get("load_cost_per_1k_output_tokens_at_slo", {})
        details = json.loads(r["backend_details"]) if r.get("backend_details") else {}
        rows_by_variant[r["variant"]] = {"points": sorted(points, key=lambda x: x["rate"]), "capacity": cap.get("value"),
                                         "note": cap.get("warning"), "cost": cost.get("value"), "point": point,
                                         "runtime": f"{r['backend']}" + (f" {details['base_url']}" if details.get("base_url") else "")}
    if not any(v["points"] for v in rows_by_variant.values()):
        return None
    rates = sorted({pt["rate"] for v in rows_by_variant.values() for pt in v["points"]})
    finite = [pt["ms"] for v in rows_by_variant.values() for pt in v["points"] if pt["ms"] is not None and math.isfinite(pt["ms"])]
    top = max(finite + [budget if math.isfinite(budget) else 0]) * 1.15 or 1.0
    width, height, pad = 480, 220, 44

    def x(i: int) -> float:  # rates evenly spaced (they usually double)
        return pad + (width - pad - 10) * (i / max(1, len(rates) - 1))

    def y(ms: float) -> float:
        return height - pad + 10 - (height - pad - 10) * min(ms, top) / top

    lines = []
    for k, (variant, v) in enumerate(rows_by_variant.items()):
        pts = [(x(rates.index(pt["rate"])), y(pt["ms"])) for pt in v["points"] if pt["ms"] is not None]
        lines.append({"variant": variant, "colour": PALETTE[k % len(PALETTE)], "points": " ".join(f"{a:.1f},{b:.1f}" for a, b in pts),
                      "dots": [{"x": a, "y": b} for a, b in pts]})
    svg = {"width": width, "height": height, "lines": lines, "budget_y": y(budget) if math.isfinite(budget) else None,
           "x_ticks": [{"x": x(i), "label": f"{r:g}"} for i, r in enumerate(rates)],
           "y_ticks": [{"y": y(t), "label": f"{t:g}"} for t in nice_ticks(0, top)], "bottom": height - pad + 10, "left": pad}
    return {"variants": rows_by_variant, "rates": rates, "percentile": q, "budget_ms": budget, "of": of, "svg": svg}


PALETTE = ("#6b8cff", "#e08a00", "#157a2c", "#b3261e", "#6b1d9b", "#0b7285")
"""Line colours of the capacity curves, one per variant."""


def review_rows(store: Store, spec: ReportSpec, task: str, metrics: list[str]) -> list:
    if not any(m.startswith("rubric_") for m in metrics):
        return []

    return review_agreement(store, task, spec.variants)


def rating_rows(store: Store, spec: ReportSpec, task: str, metrics: list[str]) -> list:
    if not any(m.startswith("rubric_") for m in metrics):
        return []

    return rating_agreement(store, task, spec.variants)


def by_category(store: Store, spec: ReportSpec, runs: list[dict], metric: str) -> dict | None:
    """The headline metric per item category and variant, with bootstrap intervals: the
    categories come from the samples of the run itself or, for a judge run, of the run it judged
    (stored when the task names a category_field). None when no sample has a category."""

    st = spec.statistics
    cells: dict[str, dict] = {}
    names: set[str] = set()
    for r in sorted(runs, key=lambda r: spec.variants.index(r["variant"])):
        source = json.loads(r["judge"]).get("judged_run") if r.get("judge") else r["run_id"]
        rows = store.query(
            """SELECT json_extract_string(g.details, '$.category') AS category, list(s.value) AS values
               FROM scores s JOIN samples g ON g.run_id = ? AND g.sample_id = s.sample_id
               WHERE s.run_id = ? AND s.metric = ? AND s.value IS NOT NULL
                 AND json_extract_string(g.details, '$.category') IS NOT NULL
               GROUP BY ALL ORDER BY category""", [source, r["run_id"], metric])
        if rows:
            cells[r["variant"]] = {x["category"]: bootstrap_mean(x["values"], st.resamples, st.confidence, st.seed) for x in rows}
            names.update(cells[r["variant"]])
    return {"categories": sorted(names), "cells": cells, "metric": metric} if cells else None


def _paired(store: Store, spec: ReportSpec, variant: str, reference: str, task: str, metric: str) -> Comparison | None:
    """`variant` against `reference` on one per-item metric, paired on the items both have."""
    import numpy as np

    st = spec.statistics
    pairing = pairing_for(store, spec, variant, reference, task)
    if pairing is False:
        return None  # different data or prompts: withheld, and said in the report's coverage notes
    declared = lookup(metric)
    kind = declared.values if declared else "continuous"
    if pairing is None and kind == "binary":
        counted = _paired_binary_from_counts(store, spec, variant, reference, task, metric)
        if counted is not None:
            return counted
    cand, ref = sample_values(store, variant, task, metric), sample_values(store, reference, task, metric)
    if pairing is not None:
        cand, ref = _of_items(store, variant, task, cand, pairing), _of_items(store, reference, task, ref, pairing)
    shared = sorted(set(cand) & set(ref))
    if not shared:
        return None
    c, b = [cand[k] for k in shared], [ref[k] for k in shared]
    support = (declared.low, declared.high) if declared and declared.low is not None and declared.high is not None else None
    clusters = run_clusters(store, _latest(store, variant, task)["run_id"])
    if is_clustered(clusters, shared):
        o = clustered_paired_test({k: cand[k] for k in shared}, ref, clusters, 0.0, (1 - st.confidence) / 2, st.resamples,
                                  st.seed, support)
    else:
        o = paired_test(kind, c, b, 0.0, (1 - st.confidence) / 2, st.resamples, st.seed, support=support)
    d = np.asarray(c) - np.asarray(b)
    return Comparison(variant, metric, o.estimate, o.low, o.high, two_sided(o),
                      int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum()),
                      o.method + (" (HL shift)" if o.method.startswith("Wilcoxon") else ""),
                      mde=mde(o.se, 1 - st.confidence, st.power, sided=2), n=len(shared),
                      direction=declared.direction if declared else "none")


def _paired_binary_from_counts(store: Store, spec: ReportSpec, variant: str, reference: str, task: str,
                               metric: str) -> Comparison | None:
    """_paired for 0/1 outcomes on the same items, from the 2x2 table DuckDB counts (exact McNemar
    needs nothing else), so a campaign's 250,000-item runs are never read into memory. None where
    the counts can't stand in: the candidate's items share clusters, or the values are not few."""
    st = spec.statistics
    a, b = _latest(store, variant, task), _latest(store, reference, task)
    if a is None or b is None or a["run_id"] not in unclustered_runs(store, [a["run_id"]]):
        return None
    table = paired_counts(store, a["run_id"], b["run_id"], metric)
    if not table:
        return None
    n10, n01, n = discordant(table)
    o = paired_binary_counts(n10, n01, n, 0.0, (1 - st.confidence) / 2)
    declared = lookup(metric)
    return Comparison(variant, metric, o.estimate, o.low, o.high, two_sided(o), sum(k for x, y, k in table if x > y),
                      sum(k for x, y, k in table if x < y), sum(k for x, y, k in table if x == y), o.method,
                      mde=mde(o.se, 1 - st.confidence, st.power, sided=2), n=n, direction=declared.direction if declared else "none")


def _latest(store: Store, variant: str, task: str) -> dict | None:
    rows = store.query("SELECT * FROM latest_runs WHERE variant = ? AND task = ? ORDER BY last_used_at DESC, started_at DESC LIMIT 1",
                       [variant, task])
    return rows[0] if rows else None


def pairing_for(store: Store, spec: ReportSpec, variant: str, reference: str, task: str) -> frozenset[str] | None | bool:
    """How `variant` pairs with `reference` on `task`: None (same data and prompts: every shared
    item), the item ids with identical content (statistics.pairing: shared_items), or False when
    the runs differ and the report does not opt into shared items (the comparison is withheld)."""
    key = ("pairing", variant, reference, task)
    if key in store.memo:
        return store.memo[key]
    a, b = _latest(store, variant, task), _latest(store, reference, task)
    out: frozenset[str] | None | bool = None
    if a is not None and b is not None and mismatch(store, a, b) is not None:
        out = identical_items(store, a, b).ids if spec.statistics.pairing == "shared_items" else False
    store.memo[key] = out
    return out


def unpaired(store: Store, spec: ReportSpec, tasks: list[str]) -> list[str]:
    """The comparisons with the baseline the report withholds or restricts, and why."""
    base = spec.baseline_name
    out = []
    for task in tasks:
        b = _latest(store, base, task)
        for v in spec.variants:
            a = _latest(store, v, task) if v != base else None
            problem = mismatch(store, a, b) if a is not None and b is not None else None
            if problem is None:
                continue
            if spec.statistics.pairing == "shared_items":
                out.append(f"{task}: {problem}; {identical_items(store, a, b).words(v, base)}")
            else:
                out.append(f"{task}: {v} is not compared with {base}: {problem} (rerun the older, or set "
                           "statistics.pairing: shared_items to pair on the items with identical content)")
    return out


def _of_items(store: Store, variant: str, task: str, values: dict[str, float], items: frozenset[str]) -> dict[str, float]:
    run = _latest(store, variant, task)
    item_of = store.pairs("SELECT sample_id, coalesce(item_id, sample_id) FROM samples WHERE run_id = ?", [run["run_id"]]) if run else {}
    return {k: v for k, v in values.items() if item_of.get(k, k) in items}


def _holm_adjusted(spec: ReportSpec, comparisons: list[Comparison]) -> list[Comparison]:
    ps = [c.p_value for c in comparisons]
    adjusted = holm(ps) if spec.statistics.multiplicity == "holm" else ps
    return [replace(c, p_adjusted=a) for c, a in zip(comparisons, adjusted)]


def paired_comparisons(store: Store, spec: ReportSpec, task: str, metrics: list[str]) -> list[Comparison]:
    """Every variant against the baseline on every per-item metric of the task: the paired test
    that fits the metric's values, its interval, the minimum detectable effect, and p-values
    Holm-adjusted across the table (so a table of many rubric checks does not cry wolf)."""
    base = spec.baseline_name
    out = [_with_noise_band(store, c, base, task) for v in spec.variants if v != base for metric in metrics
           if (c := _paired(store, spec, v, base, task, metric)) is not None]
    return _holm_adjusted(spec, out)


def _with_noise_band(store: Store, c: Comparison, base: str | None, task: str) -> Comparison:
    bands = [b["band"] for v in (c.variant, base) if v
             if (b := store.noise_band(v, task, c.metric)) is not None and b["band"] is not None]
    return replace(c, noise_band=max(bands)) if bands else c


def lineage_deltas(store: Store, spec: ReportSpec, lineage: list[dict], columns: list[tuple[str, str]]) -> dict:
    """Each build step's effect: every variant against its parent (both in the report) on each
    leaderboard headline, paired, Holm-adjusted across all of them; and the tree drawn as SVG
    with each edge labelled by its deltas."""
    shown = {r["name"] for r in lineage}
    steps = []
    for r in lineage:
        parent = r.get("parent_name")
        if parent not in shown:
            continue
        for task, metric in columns:
            m = lookup(metric)
            if m is not None and m.level != "item":
                continue
            c = _paired(store, spec, r["name"], parent, task, metric)
            if c is not None:
                steps.append((r["name"], parent, task, c))
    adjusted = _holm_adjusted(spec, [c for *_, c in steps])
    edges: dict[tuple[str, str], list[dict]] = {}
    for (child, parent, task, _), c in zip(steps, adjusted):
        good = (c.diff > 0) if c.direction == "higher" else ((c.diff < 0) if c.direction == "lower" else None)
        edges.setdefault((parent, child), []).append({"task": task, "comparison": c, "good": good,
                                                      "decided": c.p_adjusted < 1 - spec.statistics.confidence})
    return {"edges": edges, "svg": _tree_svg(lineage, edges)} if edges else {}


def _tree_svg(lineage: list[dict], edges: dict) -> dict:
    """Layout of the lineage tree, top to bottom (one row per generation, siblings side by side),
    each edge's deltas written beside it, between the parent's row and the child's."""
    parent_of = {r["name"]: r.get("parent_name") for r in lineage}
    depth: dict[str, int] = {}

    def d(name: str) -> int:
        if name not in depth:
            p = parent_of.get(name)
            depth[name] = 0 if p not in parent_of else d(p) + 1
        return depth[name]

    rows: dict[int, list[str]] = {}
    for r in lineage:
        rows.setdefault(d(r["name"]), []).append(r["name"])
    col_w, box_w, box_h, line_h = 440, 170, 34, 15
    labels_into = {k: max((len(edges.get((parent_of[n], n), [])) for n in names), default=0) for k, names in rows.items()}
    top, y = {}, 20.0
    for k in sorted(rows):
        y += (24 + line_h * labels_into[k]) if k else 0
        top[k] = y
        y += box_h
    pos = {n: (20 + i * col_w, top[k]) for k, names in rows.items() for i, n in enumerate(names)}
    nodes = [{"name": n, "x": x, "y": yy, "w": box_w, "h": box_h} for n, (x, yy) in pos.items()]
    lines = []
    for (parent, child), deltas in edges.items():
        (px, py), (cx, cy) = pos[parent], pos[child]
        lines.append({"x1": px + box_w / 2, "y1": py + box_h, "x2": cx + box_w / 2, "y2": cy,
                      "lx": cx + box_w / 2 + 12, "ly": py + box_h + 16, "deltas": deltas})
    width = max(x for x, _ in pos.values()) + col_w
    return {"nodes": nodes, "lines": lines, "width": width, "height": y + 20}


def _tradeoff(store: Store, spec: ReportSpec, columns, leaderboard, tasks: list[TaskView]) -> dict | None:
    latency_tasks = [t for t in tasks if t.task_type == "latency"]
    if not latency_tasks:
        return None
    t_spec = spec.tradeoff
    lat = next((t for t in latency_tasks if t_spec and t.task == t_spec.latency_task), latency_tasks[0])
    if t_spec:
        quality = (t_spec.task, t_spec.metric)
    else:
        kinds = {t.task: t.task_type for t in tasks}
        quality = next((c for c in columns if kinds.get(c[0]) in ("generation", "multiple_choice", "classification", "judge_pairwise", "judge_single")), None)
    if quality is None:
        return None
    qtask = next((t for t in tasks if t.task == quality[0]), None)
    if t_spec and qtask is not None and quality[1] not in qtask.metrics:
        raise ConfigError(f"report tradeoff: task '{quality[0]}' has no metric '{quality[1]}' (stored: {', '.join(qtask.metrics)})")
    rows = []
    for v in spec.variants:
        figures = {h["metric"]: h["value"] for h in lat.health.get(v, [])}
        cell = qtask.table.get(v, {}).get(quality[1]) if qtask else None
        if not figures and cell is None:
            continue
        throughput = {k: x for k, x in figures.items() if k.startswith("throughput_tokens_per_s_c")}
        best_c = max(throughput, key=lambda k: throughput[k] or 0, default=None)
        cost_key = best_c.replace("throughput_tokens_per_s", "cost_per_1k_output_tokens") if best_c else None
        rows.append({"variant": v, "quality": cell, "latency_p50": figures.get("latency_s_p50"), "latency_p95": figures.get("latency_s_p95"),
                     "ttft_p50": figures.get("ttft_s_p50"), "throughput": throughput.get(best_c) if best_c else None,
                     "at": best_c.rsplit("_", 1)[-1] if best_c else None,
                     "cost": figures.get(cost_key) if cost_key else figures.get("api_cost_per_1k_output_tokens"),
                     "memory_mb": figures.get("peak_memory_mb")})
    return {"quality": f"{quality[0]} / {quality[1]}", "latency_task": lat.task, "rows": rows, "svg": _scatter(rows)}


def _scatter(rows: list[dict], width: int = 420, height: int = 220, pad: int = 44) -> dict:
    """Points (x = p50 latency, y = quality with its interval) scaled into an inline SVG box, with
    tick values on both axes. Latency starts at 0 and quality spans the points' intervals, so a
    gap smaller than the intervals is drawn small (no axis zooms in on noise)."""
    pts = [r for r in rows if r["latency_p50"] is not None and r["quality"] is not None]
    if not pts:
        return {}
    lows = [r["quality"].low for r in pts if math.isfinite(r["quality"].low)] or [r["quality"].mean for r in pts]
    highs = [r["quality"].high for r in pts if math.isfinite(r["quality"].high)] or [r["quality"].mean for r in pts]
    xticks = nice_ticks(0.0, max(r["latency_p50"] for r in pts))
    yticks = nice_ticks(min(lows + [r["quality"].mean for r in pts]), max(highs + [r["quality"].mean for r in pts]))
    x0, x1, y0, y1 = xticks[0], xticks[-1], yticks[0], yticks[-1]

    def sx(v: float) -> float:
        return pad + (v - x0) / ((x1 - x0) or 1.0) * (width - 2 * pad)

    def sy(v: float) -> float:
        v = min(max(v, y0), y1) if math.isfinite(v) else (y1 if v > 0 else y0)
        return height - pad - (v - y0) / ((y1 - y0) or 1.0) * (height - 2 * pad)

    points = []
    for r in pts:
        x = sx(r["latency_p50"])
        # Labels right of the point, or left of it in the right half, so none runs off the box.
        points.append({"variant": r["variant"], "x": x, "y": sy(r["quality"].mean), "y_low": sy(r["quality"].low),
                       "y_high": sy(r["quality"].high), "anchor": "end" if x > width / 2 else "start",
                       "dx": -7 if x > width / 2 else 7})
    return {"points": points, "xticks": [(sx(t), f"{t:g}") for t in xticks], "yticks": [(sy(t), f"{t:g}") for t in yticks],
            "left": pad, "right": width - pad, "top": pad, "bottom": height - pad}


HEALTH_ORDER = ["win_rate", "lc_win_rate", "mean_rating", "rating_sd", "consistency", "first_position_win_rate", "longer_wins", "length_slope",
                "length_correlation", "tie_rate", "parse_failure_rate", "error_rate", "anchor_agreement", "anchor_kappa", "anchor_coverage"]


def _flips(store: Store, spec: ReportSpec, task: str, headline: str, ran: list[str], task_type: str) -> list:
    """Each variant against the baseline, item by item, on the headline (per-item metrics only)."""

    declared = lookup(headline)
    base = spec.baseline_name
    if task_type in SERVING_KINDS or base not in ran or (declared is not None and declared.level != "item"):
        return []
    # Runs over different data or prompts have no flips to show (the coverage notes say why)
    return [item_flips(store, task, base, v, headline, limit=FLIPS_SHOWN) for v in spec.variants
            if v != base and v in ran and pairing_for(store, spec, v, base, task) is not False]


FLIPS_SHOWN = 2
"""Flips the report lists per side and variant (all are counted; `harness flips` lists them all)."""


def _judge_words(j: dict) -> str:
    who = f"{j.get('model')} at {j.get('base_url')}" if j.get("backend") == "openai" else f"local model {j.get('model')} ({j.get('mode')} mode)"
    how = f"pairwise against {j['baseline']}, order {j.get('order')}" if j.get("baseline") else "single-answer rating 1-10"
    return f"{who}; {how}; {j.get('samples', 1)} sample(s) per comparison"


def _samples(store: Store, spec: ReportSpec, task: str, headline: str) -> list[SampleView]:
    if spec.samples_per_task == 0:
        return []
    # The informative ones: among items every variant with a run answered (a pairwise judge task
    # has no run for its baseline), those where the variants' headline scores differ most; ties
    # (and items without scores) by id, so the pick is deterministic. Picked in DuckDB: a
    # campaign's task has tens of thousands of items per variant, and only a handful are shown.
    scored = """WITH v AS (SELECT r.variant, s.run_id, s.sample_id, sc.value
                          FROM latest_runs r JOIN samples s USING (run_id)
                          LEFT JOIN scores sc ON sc.run_id = s.run_id AND sc.sample_id = s.sample_id AND sc.metric = ?
                          WHERE r.task = ? AND list_contains(?, r.variant))"""
    args = [headline, task, spec.variants]
    picked = [r["sample_id"] for r in store.query(scored + """
        SELECT sample_id FROM v GROUP BY sample_id
        HAVING count(DISTINCT variant) = (SELECT count(DISTINCT variant) FROM v)
        ORDER BY coalesce(max(value) - min(value), 0) DESC, sample_id LIMIT ?""", args + [spec.samples_per_task])]
    if not picked:
        return []
    rows = store.query(scored + """
        SELECT v.variant, v.sample_id, s.prompt, s.reference, s.output, v.value,
               json_extract_string(s.details, '$.answer_match.extracted') AS extracted,
               json_extract_string(s.details, '$.answer_match.gold') AS gold,
               json_extract_string(s.details, '$.predicted') AS predicted FROM v
        JOIN samples s ON s.run_id = v.run_id AND s.sample_id = v.sample_id WHERE list_contains(?, v.sample_id)""", args + [picked])
    by_id: dict[str, dict] = {}
    for r in rows:
        entry = by_id.setdefault(r["sample_id"], {"prompt": r["prompt"], "reference": r["reference"], "outputs": {}})
        entry["outputs"][r["variant"]] = (r["output"], r["value"], _read_from(r))
    return [SampleView(k, by_id[k]["prompt"], by_id[k]["reference"],
                       [(v, *by_id[k]["outputs"].get(v, (None, None, None))) for v in spec.variants]) for k in picked]


def _read_from(row: dict) -> str | None:
    """What the scoring read from an output, shown under it: an extracted answer (or that none
    was found) against the gold one; a classification's predicted label."""
    if row["gold"] is not None:
        return f"extracted {row['extracted']!r} (gold {row['gold']!r})" if row["extracted"] is not None else \
            f"no answer found (gold {row['gold']!r})"
    if row["predicted"] is not None:
        return f"predicted label: {row['predicted']}"
    return None


def _reward_models(store: Store, variants: list[str]) -> list[str]:
    """The reward models that scored the report's runs (their held-out accuracy belongs beside the scores)."""
    rows = store.query("""SELECT DISTINCT json_extract_string(s.details, '$.reward.model') AS model FROM latest_runs r
                          JOIN samples s USING (run_id) WHERE list_contains(?, r.variant)
                          AND json_extract_string(s.details, '$.reward.model') IS NOT NULL ORDER BY model""", [variants])
    return [r["model"] for r in rows if r["model"] not in variants]


def lineage_rows(store: Store, names: list[str]) -> list[dict]:
    rows = store.query(
        """SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY name ORDER BY created_at DESC) AS rn FROM variants)
           WHERE rn = 1 AND list_contains(?, name)""", [names])
    by_name = {r["name"]: r for r in rows}
    out = []
    for name in names:
        r = by_name.get(name)
        if r is None:
            continue
        curve = json.loads(r["train_curve"]) if r["train_curve"] else []
        losses = [p["loss"] for p in curve if "loss" in p]
        metrics = json.loads(r["metrics"]) if r["metrics"] else {}
        out.append({**r, "metrics": metrics, "highlights": _highlights(metrics),
                    "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                    "loss_points": _sparkline(losses)})
    return out


def decided_best(rows: list[MetricSummary], way: str) -> str | None:
    """The variant that leads on a metric by a decided margin: its interval lies clear of every
    other variant's, on the better side. None for a tie, an overlap (a 0.0001 lead is no lead),
    a metric without a better direction, or a single variant."""
    if way not in ("higher", "lower") or len(rows) < 2:
        return None
    sign = 1 if way == "higher" else -1
    ranked = sorted(rows, key=lambda r: -sign * r.estimate.mean)
    top, rest = ranked[0], ranked[1:]
    if way == "higher":
        clear = all(top.estimate.low > r.estimate.high for r in rest)
    else:
        clear = all(top.estimate.high < r.estimate.low for r in rest)
    return top.variant if clear else None


def _summary(spec: ReportSpec, verdicts: list[Verdict], columns, leaderboard, contamination: list[dict]) -> dict:
    """Which variant to ship and why, in words, from the gate's verdicts and the leaderboard."""
    base = spec.baseline_name
    lines, shippable, blocked = [], [], []
    for v in spec.variants:
        mine = [x for x in verdicts if x.rule.variant == v]
        best = [f"{task} {metric}" for task, metric in columns if (c := leaderboard[v].get((task, metric))) and c.best]
        counts = {s_: sum(x.status == s_ for x in mine) for s_ in ("pass", "fail", "inconclusive", "error")}
        dirty = [r for r in contamination if r["variant"] == v and r["contaminated"]]
        parts = []
        if mine:
            parts.append(", ".join(f"{n} {s_}" for s_, n in counts.items() if n) + f" of {len(mine)} gate rule(s)")
        if best:
            parts.append("best on " + ", ".join(best))
        if dirty:
            parts.append("contaminated items in " + ", ".join(f"{r['task']} ({r['contaminated']} of {r['n']})" for r in dirty))
        why = ""
        if counts["fail"] or counts["error"]:
            bad = next(x for x in mine if x.status in ("fail", "error"))
            why = f"{bad.status}: {bad.label}"
            blocked.append(v)
        elif counts["inconclusive"]:
            open_ = [x for x in mine if x.status == "inconclusive"]
            # only plans a person could carry out: not a percentile's request floor, not millions of items
            need = [x.n_needed for x in open_ if needed_words(x).startswith("about")]
            why = f"{len(open_)} rule(s) undecided" + (f"; the largest needs about {max(need):.0f} items" if need else "")
        elif mine:
            shippable.append(v)
        lines.append({"variant": v, "baseline": v == base, "facts": "; ".join(parts) or "no gate rules, no best headline",
                      "why": why, "status": "fail" if v in blocked else ("pass" if v in shippable else ("inconclusive" if mine else ""))})
    if not verdicts:
        headline, tone = "No gate rules in this report: compare the figures below; nothing here decides a release.", "none"
    elif shippable:
        pick = max(shippable, key=lambda v: sum(1 for c in leaderboard[v].values() if c.best))
        headline = (f"Ship {pick}: every gate rule on it passes" + (f" ({len(shippable)} variants qualify; {pick} is best on the most "
                    "headlines)" if len(shippable) > 1 else "") + ".")
        tone = "pass"
    elif blocked and len(blocked) == len({x.rule.variant for x in verdicts}):
        headline, tone = f"Don't ship: every variant the gate judges has a failing or unevaluable rule ({', '.join(blocked)}).", "fail"
    else:
        undecided = [v for v in spec.variants if v not in blocked and any(x.rule.variant == v for x in verdicts)]
        headline = (f"No variant can be shipped on this evidence yet: {', '.join(undecided)} "
                    f"{'has' if len(undecided) == 1 else 'have'} undecided gate rules"
                    + (f", and {', '.join(blocked)} {'fails' if len(blocked) == 1 else 'fail'} one (blocked)" if blocked else "")
                    + ". More items would decide the undecided rules; `harness plan` says how many.")
        tone = "fail" if blocked else "inconclusive"
    return {"headline": headline, "tone": tone, "lines": lines}


def _forest(spec: ReportSpec, tasks: list[TaskView]) -> dict:
    """Every variant minus the baseline on each task's headline, with its interval: a forest plot,
    one scale per task (metrics differ in range); green when the better side is decided, red when
    the worse is. An interval that runs off the scale (or is unbounded) ends at the edge.

    Laid out for a phone: 360 units wide (drawn at most 560 px, at least as wide as the screen
    allows), each row the variant and its figures on one line and the interval on the full width
    under it, so the text stays at its size at 390 px."""

    left, width, row_h = 8, 344, 34
    rows, y = [], 30
    for t in tasks:
        if t.task_type in SERVING_KINDS:
            continue  # per-request means mix concurrency levels or rates (see the serving sections)
        group = [c for c in t.comparisons if c.metric == t.headline and not math.isnan(c.diff)]
        finite = [abs(v) for c in group for v in (c.low, c.high, c.diff) if math.isfinite(v)]
        if not group:
            continue
        span = max(finite) if finite and max(finite) > 0 else 1.0

        def x(v: float, span: float = span) -> float:
            v = max(-span, min(span, v)) if not math.isnan(v) else 0.0
            return left + width / 2 + v / span * width / 2

        rows.append({"header": f"{t.task}: {t.headline}{arrow(t.headline)} (scale ±{span:.3g})", "y": y})
        y += 18
        for c in group:
            decided = c.p_adjusted < 1 - spec.statistics.confidence
            good = (c.diff > 0) if c.direction == "higher" else ((c.diff < 0) if c.direction == "lower" else None)
            rows.append({"variant": c.variant, "y": y + 16, "text_y": y + 4, "x": x(c.diff), "x1": x(c.low), "x2": x(c.high),
                         "label": f"{c.diff:+.3g} [{c.low:+.3g}, {c.high:+.3g}] n={c.n}",
                         "color": ("#1a7f37" if good else "#b42318") if decided and good is not None else "#667085"})
            y += row_h
        y += 6
    if not rows:
        return {}
    return {"rows": rows, "zero": left + width / 2, "left": left, "width": width, "height": y + 4, "total": left + width + left}


def _fidelity(store: Store, spec: ReportSpec, tasks: list[TaskView]) -> list[dict]:
    """Per variant with a parent and task both ran: each fidelity figure with its bootstrap CI."""

    st = spec.statistics
    out = []
    for t in tasks:
        if t.task_type not in ("multiple_choice", "generation", "perplexity"):
            continue
        for r in t.runs:
            try:

                # KLs computed with both models loaded: per-token on perplexity texts, sequence-level
                # on a generation task's prompts (sequence_kl:)
                stored = store.query("SELECT metric, sample_id, value FROM fidelity WHERE run_id = ? AND parent_run_id = ? "
                                     "AND metric IN ('parent_token_kl', 'parent_seq_kl')",
                                     [r["run_id"], parent_run(store, r["run_id"])[1]["run_id"]])
                values = {} if t.task_type == "perplexity" else item_values(store, r["run_id"])
                for x in stored:
                    values.setdefault(x["metric"], {})[x["sample_id"]] = x["value"]
                if not values:
                    continue
            except Unavailable:
                continue
            parent = store.query("SELECT parent_name FROM variants WHERE variant_key = ?", [r["variant_key"]])[0]["parent_name"]
            figures = []
            for metric, vals in values.items():
                e = bootstrap_mean(list(vals.values()), st.resamples, st.confidence, st.seed)
                figures.append((lookup(metric).display, Cell(e.mean, e.low, e.high, e.n)))
            out.append({"variant": r["variant"], "parent": parent, "task": t.task, "figures": figures})
    return out


def _highlights(m: dict) -> list[str]:
    """A few build facts worth a stakeholder's glance, by recipe."""
    out = []
    if "eval_loss" in m:
        out.append(f"validation loss {m['eval_loss']:.3f}")
    after = m.get("heldout_after")
    if after:  # a reward model: held-out pairwise accuracy beside the length baseline
        base = m.get("length_baseline") or {}
        out.append(f"held-out pairwise accuracy {after['accuracy']:.3f} [{after['ci95'][0]:.3f}, {after['ci95'][1]:.3f}] "
                   f"(n={after['n']}; before training {m['heldout_before']['accuracy']:.3f}"
                   + (f"; 'longer is better' {base['accuracy']:.3f}" if base else "") + ")")
        vs = m.get("versus_length")
        if vs:
            out.append(f"accuracy minus 'longer is better' on the same pairs: {vs['difference']:+.3f} "
                       f"[{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}]")
    elif "reward_accuracies" in m:
        before = m.get("validation_before", {}).get("eval_rewards/accuracies")
        out.append(f"held-out reward accuracy {m['reward_accuracies']:.2f}" + (f" (before {before:.2f})" if before is not None else ""))
    if m.get("loss_type") == "rloo" and m.get("reward_first") is not None:
        kl = f", KL to the parent {m['kl_last']:.4f}" if m.get("kl_last") is not None else ""
        n = f", each over {m['completions_per_step']} sampled completions" if m.get("completions_per_step") else ""
        out.append(f"RL on {m['reward_model']}: mean reward {m['reward_first']:+.3f} -> {m['reward_last']:+.3f} "
                   f"(first and last logged step{n}: single steps, no interval{kl}; beta {m['beta']})")
    if "constitution" in m:
        c = m["constitution"]
        out.append(f"pairs labelled by an AI judge against the constitution '{c['name']}' ({len(c['principles'])} principles, "
                   f"sha256 {c['sha256'][:12]})")
    human = m.get("human_agreement")
    if human and human.get("n"):
        out.append(_human_agreement_line(human))
    if "reward_margins" in m:
        out.append(f"reward margin {m['reward_margins']:+.3f}")
    pref = m.get("preference_data")
    if pref and pref.get("source") == "unpaired":
        out.append(f"unpaired feedback: {pref['desirable']} desirable / {pref['undesirable']} undesirable; KTO weights "
                   f"{pref['desirable_weight']:.2f} / {pref['undesirable_weight']:.2f}")
    elif pref:
        out.append(f"pairs kept {pref['kept']}/{pref['input_pairs']}, length imbalance {pref['length_imbalance']:.0%}")
        out += [f"warning: {w}" for w in pref.get("warnings", [])]
    if "relative_error_mean" in m:
        out.append(f"{m['scheme']}: mean relative weight error {m['relative_error_mean']:.4f} (max {m['relative_error_max']:.4f})")
        out.append(f"memory {m['footprint_bytes_full_precision'] / 1e6:.0f} -> {m['footprint_bytes_quantized'] / 1e6:.0f} MB")
    if "merge_max_abs_logit_diff" in m:
        out.append(f"merged; max logit difference {m['merge_max_abs_logit_diff']:.1e}")
    rank = m.get("lora_rank")
    if rank and rank.get("layers"):
        out.append(f"LoRA rank for 95% energy: mean {rank['energy_rank_mean']:.1f}, max {rank['energy_rank_max']}")
    if "teacher" in m:
        out.append(f"{m.get('level', '')}-level distillation from {m['teacher']}")
    return out


def _human_agreement_line(h: dict) -> str:
    """AI labels against the human-labelled validation pairs, with the interval of the agreement."""

    agreed = round((h["agreement"] or 0) * h["n"])
    e = bootstrap_mean([1.0] * agreed + [0.0] * (h["n"] - agreed))
    kappa = "undefined" if h.get("kappa") is None else f"{h['kappa']:.2f}"
    return (f"AI labels vs people: agreement {e.mean:.0%} [{e.low:.0%}, {e.high:.0%}] on {h['n']} validation pairs, "
            f"Cohen's kappa {kappa} (the build stops below {h.get('min_agreement', 0):.0%})")


def _sparkline(values: list[float], width: int = 160, height: int = 32) -> str:
    """SVG polyline points for a small loss curve (inline: the report works offline)."""
    if len(values) < 2:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - (v - lo) / span * height:.1f}" for i, v in enumerate(values))


__all__ = ["build_view", "ReportView"]
