"""Item-level flips between two variants on one task: the items that went from pass to fail and
from fail to pass (for 0/1 metrics), or got most worse and most better (continuous metrics),
with the input and both outputs, most informative first.

Informativeness: the size of the change in the metric's better direction, then, for multiple
choice, how much probability the gold option lost or gained (from the stored option
log-likelihoods), so a confident new mistake comes before a coin flip that landed the other way."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from harness.errors import StoreError


@dataclass(frozen=True)
class Flip:
    sample_id: str
    prompt: str | None
    reference: str | None
    before: tuple[str | None, float]
    """(output, metric value) of the first variant."""
    after: tuple[str | None, float]
    """(output, metric value) of the second variant."""
    change: float
    """The metric's change in its better direction (negative: worse)."""
    gold_shift: float | None = None
    """Multiple choice: change in the gold option's probability."""


@dataclass(frozen=True)
class Flips:
    task: str
    metric: str
    before: str
    after: str
    binary: bool
    n_shared: int
    worse: list[Flip]
    """Pass -> fail (0/1 metrics) or got worse, most informative first."""
    better: list[Flip]
    """Fail -> pass, or got better."""

    def words(self) -> str:
        kind = ("went from pass to fail", "from fail to pass") if self.binary else ("got worse", "got better")
        return (f"{self.after} vs {self.before} on {self.task} ({self.metric}, {self.n_shared} shared items): "
                f"{len(self.worse)} {kind[0]}, {len(self.better)} {kind[1]}")


def _gold_probability(details: str | None) -> float | None:
    d = json.loads(details or "{}")
    lls, gold = d.get("loglikelihoods"), d.get("gold")
    if not lls or gold is None:
        return None
    m = max(lls)
    z = sum(math.exp(x - m) for x in lls)
    return math.exp(lls[gold] - m) / z


def _latest(store, variant: str, task: str) -> dict:
    rows = store.query("SELECT run_id FROM latest_runs WHERE variant = ? AND task = ?", [variant, task])
    if not rows:
        raise StoreError(f"no run of task '{task}' for variant '{variant}' in the store",
                         hint=f"`harness run ... --variant {variant}`, or check the names with `harness list runs`")
    return rows[0]


def item_flips(store, task: str, before: str, after: str, metric: str) -> Flips:
    """The flips of `metric` between the latest runs of two variants on `task`."""
    from harness.metricspec import direction, lookup

    runs = {v: _latest(store, v, task)["run_id"] for v in (before, after)}
    rows = {}
    for v, run_id in runs.items():
        rows[v] = {r["sample_id"]: r for r in store.query(
            """SELECT sc.sample_id, s.prompt, s.reference, s.output, s.details, sc.value FROM scores sc
               LEFT JOIN samples s ON s.run_id = sc.run_id AND s.sample_id = sc.sample_id
               WHERE sc.run_id = ? AND sc.metric = ? AND sc.value IS NOT NULL""", [run_id, metric])}
    shared = sorted(set(rows[before]) & set(rows[after]))
    if not shared:
        stored = [r["metric"] for r in store.query("SELECT DISTINCT metric FROM scores WHERE run_id = ? ORDER BY 1", [runs[after]])]
        raise StoreError(f"no item of {task} has '{metric}' in both {before}'s and {after}'s runs (stored: {', '.join(stored)})")
    declared = lookup(metric)
    sign = -1.0 if direction(metric) == "lower" else 1.0
    binary = declared is not None and declared.values == "binary"
    worse, better = [], []
    for sid in shared:
        a, b = rows[before][sid], rows[after][sid]
        change = sign * (b["value"] - a["value"])
        if change == 0:
            continue
        pa, pb = _gold_probability(a["details"]), _gold_probability(b["details"])
        flip = Flip(sid, b["prompt"], b["reference"], (a["output"], a["value"]), (b["output"], b["value"]), change,
                    None if pa is None or pb is None else pb - pa)
        (worse if change < 0 else better).append(flip)
    # most informative first: the largest change, then the largest move of the gold option's probability
    worse.sort(key=lambda f: (f.change, f.gold_shift if f.gold_shift is not None else 0.0, f.sample_id))
    better.sort(key=lambda f: (-f.change, -(f.gold_shift or 0.0), f.sample_id))
    return Flips(task, metric, before, after, binary, len(shared), worse, better)
