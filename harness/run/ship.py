"""`harness ship SWEEP.yaml`: build a parent's export candidates, evaluate them beside the parent,
decide each one's gate rules against it, and recommend the smallest (or fastest) that passes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from harness.config.models import resolve_relative
from harness.config.report import ReportSpec
from harness.config.sweep import SweepSpec
from harness.errors import ConfigError
from harness.report.formatting import figure
from harness.report.gate import Verdict, evaluate_gate
from harness.run.build import build_models
from harness.run.evaluate import run_suites
from harness.store.db import Store

log = logging.getLogger(__name__)

PASS, FAIL, INCONCLUSIVE = 0, 1, 3


@dataclass(frozen=True)
class Candidate:
    name: str
    size_mb: float | None
    tokens_per_s: float | None
    p95_latency_s: float | None
    verdicts: list[Verdict]
    excluded: str | None = None
    """Why a candidate that passes every rule can't be chosen (over a budget), or None."""

    @property
    def passes(self) -> bool:
        return all(v.status == "pass" for v in self.verdicts)

    @property
    def status(self) -> str:
        """The worst verdict of its rules: error, fail, inconclusive, else pass."""
        statuses = {v.status for v in self.verdicts}
        return next((s for s in ("error", "fail", "inconclusive") if s in statuses), "pass")


def ship(sweep: SweepSpec, sweep_path: Path, store_path: Path, budget_mb: float | None = None,
         min_tokens_per_s: float | None = None) -> tuple[list[Candidate], Candidate | None]:
    """Build, evaluate and decide every candidate; (the candidates, the choice or None)."""
    models = resolve_relative(sweep.models, sweep_path)
    suites = [resolve_relative(s, sweep_path) for s in sweep.suites]
    if not models.is_file():
        raise ConfigError(f"{sweep_path}: models: {models} not found")
    build_models(models, store_path, sweep.candidates)
    run_suites(suites, models, store_path, [sweep.parent, *sweep.candidates])
    budget_mb = budget_mb if budget_mb is not None else sweep.budget_mb
    min_tps = min_tokens_per_s if min_tokens_per_s is not None else sweep.min_tokens_per_s
    out = []
    with Store(store_path, read_only=True) as store:
        for name in sweep.candidates:
            spec = ReportSpec(title=f"ship {name}", variants=[sweep.parent, name], baseline=sweep.parent,
                              statistics=sweep.statistics, gate=sweep.gate_rules(name))
            verdicts = evaluate_gate(store, spec).verdicts
            size, tps, p95 = _facts(store, name, sweep.latency_task)
            excluded = None
            if budget_mb is not None and (size is None or size > budget_mb):
                excluded = f"over the {budget_mb:g} MB budget" if size is not None else "size unknown"
            elif min_tps is not None and (tps is None or tps < min_tps):
                excluded = f"under {min_tps:g} tokens/s" if tps is not None else "no latency task measured its speed"
            out.append(Candidate(name, size, tps, p95, verdicts, excluded))
    eligible = [c for c in out if c.passes and c.excluded is None]
    if not eligible:
        return out, None
    if sweep.choose == "fastest":
        return out, max(eligible, key=lambda c: (c.tokens_per_s or 0.0, -(c.size_mb or 0.0)))
    return out, min(eligible, key=lambda c: (c.size_mb if c.size_mb is not None else float("inf"), -(c.tokens_per_s or 0.0)))


def _facts(store: Store, name: str, latency_task: str | None) -> tuple[float | None, float | None, float | None]:
    """(artifact MB, output tokens/s at the latency task's lowest concurrency, its p95 latency)."""
    row = store.variant(name)
    size = row["artifact_bytes"] / 1e6 if row and row["artifact_bytes"] else None
    where = "AND task = ?" if latency_task else ""
    runs = store.query(f"SELECT run_id, task_config FROM latest_runs WHERE variant = ? AND task_type = 'latency' {where} ORDER BY task",
                       [name] + ([latency_task] if latency_task else []))
    if not runs:
        return size, None, None
    stats = {r["metric"]: r["value"] for r in store.query("SELECT metric, value FROM run_stats WHERE run_id = ?", [runs[0]["run_id"]])}
    levels = (json.loads(runs[0]["task_config"] or "{}").get("latency") or {}).get("concurrency") or [1]
    return size, stats.get(f"throughput_tokens_per_s_c{levels[0]}"), stats.get("latency_s_p95")


def exit_code(candidates: list[Candidate], choice: Candidate | None) -> int:
    """0 a candidate is chosen; 1 every candidate fails a rule or is excluded; 3 none is chosen
    but some could still pass with more data (inconclusive rules)."""
    if choice is not None:
        return PASS
    return INCONCLUSIVE if any(c.status == "inconclusive" and c.excluded is None for c in candidates) else FAIL


def table(sweep: SweepSpec, candidates: list[Candidate], choice: Candidate | None) -> list[str]:
    """The recommendation table: a row per candidate with its size, speed and verdicts."""
    labels = [v.label.replace(candidates[0].name, "candidate", 1) for v in candidates[0].verdicts] if candidates else []
    lines = [f"candidates of {sweep.parent} (choose: {sweep.choose}); rules against the parent:"]
    lines += [f"  R{i + 1}: {label}" for i, label in enumerate(labels)]
    head = f"{'candidate':28} {'size MB':>9} {'tokens/s':>9} {'p95 s':>7}  " + "  ".join(f"{'R' + str(i + 1):>12}" for i in range(len(labels)))
    lines.append(head)
    for c in candidates:
        mark = "  <- ship this" if c is choice else (f"  ({c.excluded})" if c.excluded else "")
        lines.append(f"{c.name:28} {figure(c.size_mb):>9} {figure(c.tokens_per_s):>9} {figure(c.p95_latency_s):>7}  "
                     + "  ".join(f"{v.status:>12}" for v in c.verdicts) + mark)
    if choice is None:
        lines.append("no candidate passes every rule within the budgets: nothing to ship "
                     + ("(some rules are inconclusive: more items would decide them)" if exit_code(candidates, None) == INCONCLUSIVE
                        else "(each fails a rule or a budget)"))
    return lines
