"""The report's trends: a metric of each variant over its dated runs (or its tagged releases),
with control limits and the change point marked (harness.stats.control), e.g. a hallucination
rate or a cost per 1,000 words tracked monthly. Every point is a whole run's mean with its
interval over items; what moves beyond the items' own noise is flagged."""

from __future__ import annotations

import math
from statistics import NormalDist, fmean, stdev

from harness.analysis.metrics import run_values
from harness.config.report import ReportSpec, TrendSpec
from harness.report.formatting import nice_ticks
from harness.stats.control import control_chart
from harness.store.db import Store

WIDTH, HEIGHT, PAD = 560, 220, 44


def _runs(store: Store, trend: TrendSpec, variant: str) -> list[dict]:
    """The variant's complete runs of the task, oldest first, labelled by date or by tag."""
    if trend.by == "tag":
        rows = store.query("""SELECT r.run_id, t.tag AS label, t.tagged_at AS at FROM run_tags t JOIN runs r USING (run_id)
                              WHERE t.variant = ? AND t.task = ? ORDER BY t.tagged_at, t.tag""", [variant, trend.task])
    else:
        rows = store.query("""SELECT run_id, strftime(started_at, '%Y-%m-%d') AS label, started_at AS at FROM runs
                              WHERE variant = ? AND task = ? AND NOT coalesce(partial, false)
                              ORDER BY started_at""", [variant, trend.task])
    return rows[-trend.last:]


def trend_view(store: Store, spec: ReportSpec, trend: TrendSpec) -> dict:
    """{task, metric, by, variants: [{variant, points, svg}]}: each point a run's mean, its
    interval, the control limits it was judged against and whether it was flagged."""
    z = NormalDist().inv_cdf(0.5 + spec.statistics.confidence / 2)
    out = []
    for variant in trend.variants or spec.variants:
        points = []
        for r in _runs(store, trend, variant):
            values = [v for v in run_values(store, r["run_id"], trend.metric).values() if v is not None and not math.isnan(v)]
            if values:
                se = stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
                points.append({"label": r["label"], "run_id": r["run_id"], "mean": fmean(values), "se": se, "n": len(values)})
        if not points:
            continue
        chart = control_chart([(p["mean"], p["se"]) for p in points], trend.sigma)
        for p, c in zip(points, chart):
            p.update(low=p["mean"] - z * p["se"], high=p["mean"] + z * p["se"], centre=c.centre, limit_low=c.low,
                     limit_high=c.high, flagged=c.flagged, change=c.change)
        out.append({"variant": variant, "points": points, "svg": _svg(points)})
    return {"task": trend.task, "metric": trend.metric, "by": trend.by, "sigma": trend.sigma, "variants": out}


def _svg(points: list[dict]) -> dict:
    """Coordinates for the template: a point and whisker per run, its control band, the change
    points as dashed lines."""
    values = [v for p in points for v in (p["low"], p["high"], p["limit_low"], p["limit_high"]) if v is not None]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    step = (WIDTH - 2 * PAD) / max(1, len(points) - 1)

    def x(i: int) -> float:
        return PAD + i * step if len(points) > 1 else WIDTH / 2

    def y(v: float) -> float:
        return HEIGHT - PAD - (v - lo) / (hi - lo) * (HEIGHT - 2 * PAD)

    marks = [{"x": x(i), "y": y(p["mean"]), "y_low": y(p["low"]), "y_high": y(p["high"]), "flagged": p["flagged"],
              "label": p["label"], "band": None if p["limit_low"] is None else (y(p["limit_high"]), y(p["limit_low"])),
              "change": p["change"]} for i, p in enumerate(points)]
    return {"width": WIDTH, "height": HEIGHT, "marks": marks, "half_step": step / 2,
            "line": " ".join(f"{m['x']:.1f},{m['y']:.1f}" for m in marks),
            "y_ticks": [{"y": y(t), "label": f"{t:g}"} for t in ticks], "left": PAD, "bottom": HEIGHT - PAD, "top": PAD}
