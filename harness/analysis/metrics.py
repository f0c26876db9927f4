"""Aggregates as SQL over the score rows (latest run of each variant and task)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.scorers.text_overlap import CORPUS_METRICS, corpus_scorer
from harness.stats.intervals import (
    COUNTS_MAX_DISTINCT,
    COUNTS_MIN_N,
    Estimate,
    bootstrap_counts,
    bootstrap_mean,
    bootstrap_statistic,
)
from harness.store.db import Store


@dataclass(frozen=True)
class MetricSummary:
    variant: str
    suite: str
    task: str
    metric: str
    estimate: Estimate
    run_id: str


def metric_names(store: Store, variants: list[str], tasks: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(suite, task, metric) present for any of the variants, in a stable order."""
    rows = store.query(
        """SELECT DISTINCT r.suite, r.task, s.metric FROM latest_runs r JOIN scores s USING (run_id)
           WHERE list_contains(?, r.variant) ORDER BY r.suite, r.task, s.metric""", [variants])
    return [(r["suite"], r["task"], r["metric"]) for r in rows if tasks is None or r["task"] in tasks]


def sample_values(store: Store, variant: str, task: str, metric: str) -> dict[str, float]:
    """Per-item values of one metric in the variant's latest run of the task."""
    key = ("latest_run", variant, task)
    if key not in store.memo:
        rows = store.query("SELECT run_id FROM latest_runs WHERE variant = ? AND task = ? ORDER BY last_used_at DESC, started_at DESC LIMIT 1",
                           [variant, task])
        run_id = rows[0]["run_id"] if rows else None
        if not store.read_only:
            return run_values(store, run_id, metric) if run_id else {}
        store.memo[key] = run_id
    run_id = store.memo[key]
    return run_values(store, run_id, metric) if run_id else {}


def run_clusters(store: Store, run_id: str) -> dict[str, str]:
    """Each sample's cluster in one run: its declared cluster (cluster_field, HaluEval's source),
    else its item (a multi-turn item's turns together), else itself. Statistics resample these."""
    key = ("run_clusters", run_id)
    if key in store.memo:
        return store.memo[key]
    clusters = store.pairs("SELECT sample_id, coalesce(cluster, item_id, sample_id) FROM samples WHERE run_id = ?", [run_id])
    if store.read_only:
        store.memo[key] = clusters
    return clusters


def unclustered_runs(store: Store, run_ids: list[str]) -> set[str]:
    """The runs among `run_ids` in which no two samples share a cluster (counted in DuckDB)."""
    todo = [r for r in run_ids if ("unclustered", r) not in store.memo]
    if todo:
        rows = store.query("""SELECT run_id, count(*) = count(DISTINCT coalesce(cluster, item_id, sample_id)) AS flat
                              FROM samples WHERE list_contains(?, run_id) GROUP BY run_id""", [todo])
        found = {r["run_id"]: bool(r["flat"]) for r in rows}
        if not store.read_only:  # a writer's runs may still change: nothing kept
            return {r for r in run_ids if found.get(r, True)}
        for r in todo:
            store.memo[("unclustered", r)] = found.get(r, True)  # a run without samples shares no cluster
    return {r for r in run_ids if store.memo[("unclustered", r)]}


def paired_counts(store: Store, run_a: str, run_b: str, metric: str) -> list[tuple[float, float, int]] | None:
    """(value in run_a, value in run_b, items) over the items both runs scored (paired by sample
    id), counted in DuckDB; None when there are more than COUNTS_MAX_DISTINCT combinations (the
    caller reads the items)."""
    rows = store.query("""SELECT a.value AS a, b.value AS b, count(*) AS n FROM scores a JOIN scores b USING (sample_id)
                          WHERE a.run_id = ? AND b.run_id = ? AND a.metric = ? AND b.metric = ?
                            AND a.value IS NOT NULL AND b.value IS NOT NULL
                          GROUP BY ALL ORDER BY a, b LIMIT ?""", [run_a, run_b, metric, metric, COUNTS_MAX_DISTINCT + 1])
    return None if len(rows) > COUNTS_MAX_DISTINCT else [(r["a"], r["b"], r["n"]) for r in rows]


def value_counts(store: Store, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[list[float], list[int]]]:
    """(run, metric) -> (distinct values, items with each), counted in DuckDB (no item is read)."""
    if not keys:
        return {}
    rows = store.query("""SELECT run_id, metric, value, count(*) AS n FROM scores
                          WHERE list_contains(?, run_id) AND list_contains(?, run_id || chr(0) || metric) AND value IS NOT NULL
                          GROUP BY ALL ORDER BY run_id, metric, value""",
                       [sorted({run for run, _ in keys}), [f"{run}\x00{metric}" for run, metric in keys]])
    out: dict[tuple[str, str], tuple[list[float], list[int]]] = {}
    for r in rows:
        values, counts = out.setdefault((r["run_id"], r["metric"]), ([], []))
        values.append(r["value"])
        counts.append(r["n"])
    return out


def discordant(table: list[tuple[float, float, int]]) -> tuple[int, int, int]:
    """(n10, n01, n) of a paired_counts table read as 0/1 outcomes (above 0.5 is a 1): the pairs
    only the first run gets right, only the second, and all pairs."""
    return (sum(k for x, y, k in table if x > 0.5 >= y), sum(k for x, y, k in table if y > 0.5 >= x),
            sum(k for _, _, k in table))


def run_values(store: Store, run_id: str, metric: str) -> dict[str, float]:
    """Per-item values of one metric in one run (items without a value left out). A read-only
    store keeps them: a report reads a baseline's values once per comparison."""
    key = ("run_values", run_id, metric)
    if key in store.memo:
        return store.memo[key]
    values = store.pairs("SELECT sample_id, value FROM scores WHERE run_id = ? AND metric = ? AND value IS NOT NULL", [run_id, metric])
    if store.read_only:
        store.memo[key] = values
    return values


def summarize(store: Store, variants: list[str], tasks: list[str] | None = None, resamples: int = 2000,
              confidence: float = 0.95, seed: int = 0, run_ids: list[str] | None = None) -> list[MetricSummary]:
    """Mean (computed in SQL), n and a bootstrap CI for every variant x task x metric of the runs
    reports read (or of the given runs, e.g. those a `harness run` just produced)."""
    source, params = ("runs", [run_ids]) if run_ids is not None else ("latest_runs", [variants])
    where = "list_contains(?, r.run_id)" if run_ids is not None else "list_contains(?, r.variant)"
    rows = store.query(
        f"""SELECT r.variant, r.suite, r.task, s.metric, r.run_id, avg(s.value) AS mean, count(s.value) AS n,
                  count(DISTINCT s.value) AS distinct_values
           FROM {source} r JOIN scores s USING (run_id)
           WHERE {where} GROUP BY ALL ORDER BY r.suite, r.task, s.metric, r.variant""", params)  # source: a constant
    rows = [r for r in rows if tasks is None or r["task"] in tasks]
    # Many items of few values (0/1, ratings) in runs without shared clusters: the interval comes
    # from the value counts DuckDB computes, so a 250,000-item run is never read into memory
    few = [(r["run_id"], r["metric"]) for r in rows if r["n"] >= COUNTS_MIN_N and r["distinct_values"] <= COUNTS_MAX_DISTINCT]
    flat = unclustered_runs(store, sorted({run for run, _ in few}))
    counted = value_counts(store, [(run, metric) for run, metric in few if run in flat])
    out = []
    for r in rows:
        est = None
        if (r["run_id"], r["metric"]) in counted:
            est = bootstrap_counts(*counted[(r["run_id"], r["metric"])], resamples, confidence, seed)
        if est is None:
            values = run_values(store, r["run_id"], r["metric"])
            clusters = run_clusters(store, r["run_id"])
            est = bootstrap_mean(values.values(), resamples, confidence, seed, clusters=[clusters.get(k, k) for k in values])
        out.append(MetricSummary(r["variant"], r["suite"], r["task"], r["metric"], est, r["run_id"]))
        corpus = CORPUS_METRICS.get(r["metric"])
        if corpus:
            out.append(MetricSummary(r["variant"], r["suite"], r["task"], corpus,
                                     corpus_estimate(store, r["run_id"], corpus, resamples, confidence, seed), r["run_id"]))
    return out


def corpus_estimate(store: Store, run_id: str, metric: str, resamples: int = 1000, confidence: float = 0.95,
                    seed: int = 0) -> Estimate:
    """A corpus-level metric (BLEU, chrF) over a run's stored outputs and references, with a
    bootstrap CI over items. Not a mean of per-item values, so it has no paired per-item form."""
    rows = store.query("SELECT output, reference FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id])
    outputs = [r["output"] or "" for r in rows]
    refs = [r["reference"] or "" for r in rows]
    n, score = corpus_scorer(metric, outputs, refs)
    return bootstrap_statistic(n, score, resamples, confidence, seed)
