"""Item-level flips between two variants on one task: the items that went from pass to fail and
from fail to pass (for 0/1 metrics), or got most worse and most better (continuous metrics),
with the input and both outputs, most informative first.

Informativeness: the size of the change in the metric's better direction, then, for multiple
choice, how much probability the gold option lost or gained (from the stored option
log-likelihoods), so a confident new mistake comes before a coin flip that landed the other way."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import StoreError
from harness.stats.metricspec import direction, lookup


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
    n_worse: int = 0
    """How many went worse (the list may hold only the first of them)."""
    n_better: int = 0

    def words(self) -> str:
        kind = ("went from pass to fail", "from fail to pass") if self.binary else ("got worse", "got better")
        return (f"{self.after} vs {self.before} on {self.task} ({self.metric}, {self.n_shared} shared items): "
                f"{self.n_worse} {kind[0]}, {self.n_better} {kind[1]}")


GOLD_PROBABILITY = """(SELECT exp(list_extract(l, g + 1) - list_max(l)) / list_sum(list_transform(l, lambda x: exp(x - list_max(l))))
    FROM (SELECT CAST(json_extract({d}, '$.loglikelihoods') AS DOUBLE[]) AS l, CAST(json_extract({d}, '$.gold') AS INTEGER) AS g))"""
"""SQL: the gold option's probability (softmax over the options' log-likelihoods) from a multiple-choice
sample's details; NULL for other samples. Computed in DuckDB, so a campaign's flips need no JSON
parsing in Python."""


def _latest(store, variant: str, task: str) -> dict:
    rows = store.query("SELECT run_id FROM latest_runs WHERE variant = ? AND task = ?", [variant, task])
    if not rows:
        raise StoreError(f"no run of task '{task}' for variant '{variant}' in the store",
                         hint=f"`harness run ... --variant {variant}`, or check the names with `harness list runs`")
    return rows[0]


def item_flips(store, task: str, before: str, after: str, metric: str, limit: int | None = None) -> Flips:
    """The flips of `metric` between the latest runs of two variants on `task`; with `limit`, only
    the first `limit` of each side (most informative first) are listed, and counted all the same."""

    runs = {v: _latest(store, v, task)["run_id"] for v in (before, after)}
    sign = -1.0 if direction(metric) == "lower" else 1.0
    # Pairing, comparing, counting and ordering happen in DuckDB; only the listed items' text comes
    # back to Python (a campaign's task has tens of thousands of items per variant).
    pairs = """WITH a AS (SELECT sample_id, value FROM scores WHERE run_id = ? AND metric = ? AND value IS NOT NULL),
                    b AS (SELECT sample_id, value FROM scores WHERE run_id = ? AND metric = ? AND value IS NOT NULL),
                    c AS (SELECT a.sample_id, a.value AS value_a, b.value AS value_b, ? * (b.value - a.value) AS change
                          FROM a JOIN b USING (sample_id))"""
    args = [runs[before], metric, runs[after], metric, sign]
    counts = store.query(pairs + """ SELECT count(*) AS n, count(*) FILTER (WHERE change < 0) AS worse,
                                            count(*) FILTER (WHERE change > 0) AS better FROM c""", args)[0]
    if not counts["n"]:
        stored = [r["metric"] for r in store.query("SELECT DISTINCT metric FROM scores WHERE run_id = ? ORDER BY 1", [runs[after]])]
        raise StoreError(f"no item of {task} has '{metric}' in both {before}'s and {after}'s runs (stored: {', '.join(stored)})")

    def side(condition: str, order: str) -> list[Flip]:  # order: ASC for the worse side, DESC for the better
        # most informative first: the largest change, then the largest move of the gold option's probability
        rows = store.query(pairs + f"""
            SELECT * FROM (
                SELECT c.*, sa.output AS output_a, sb.prompt, sb.reference, sb.output AS output_b,
                       {GOLD_PROBABILITY.format(d="sb.details")} - {GOLD_PROBABILITY.format(d="sa.details")} AS gold_shift
                FROM c LEFT JOIN samples sa ON sa.run_id = ? AND sa.sample_id = c.sample_id
                       LEFT JOIN samples sb ON sb.run_id = ? AND sb.sample_id = c.sample_id
                WHERE {condition})
            ORDER BY change {order}, coalesce(gold_shift, 0) {order}, sample_id LIMIT ?""",
                           args + [runs[before], runs[after], limit if limit is not None else counts["n"]])
        return [Flip(r["sample_id"], r["prompt"], r["reference"], (r["output_a"], r["value_a"]), (r["output_b"], r["value_b"]),
                     r["change"], r["gold_shift"]) for r in rows]

    declared = lookup(metric)
    binary = declared is not None and declared.values == "binary"
    worse = side("change < 0", "ASC") if counts["worse"] else []
    better = side("change > 0", "DESC") if counts["better"] else []
    return Flips(task, metric, before, after, binary, counts["n"], worse, better, counts["worse"], counts["better"])
