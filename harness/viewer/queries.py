"""What each page of `harness view` shows, read from the store with bound SQL parameters only.
Plain dicts and dataclasses; no HTML here."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import date, datetime

from harness.analysis.metrics import summarize
from harness.config.report import ReportSpec
from harness.report.view import lineage_deltas, lineage_rows
from harness.stats.intervals import Estimate
from harness.stats.metricspec import direction, lookup
from harness.store.db import Store

PAGE_SIZE = 50
"""Items per page of the items list."""

JSON_COLUMNS = ("metrics", "generation_config", "judge", "task_config", "suite_tasks", "libraries", "chat_template", "backend_details")


class NotFound(LookupError):
    """A URL that names no run, task or item of the store."""


def _parsed(run: dict) -> dict:
    return {k: (json.loads(v) if k in JSON_COLUMNS and isinstance(v, str) else v) for k, v in run.items()}


def _like(text: str) -> str:
    """A substring pattern for ILIKE ... ESCAPE '\\' that matches `text` literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# -- runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilter:
    """The runs page's filters (each one a query parameter; empty: no filter)."""

    suite: str = ""
    task: str = ""
    variant: str = ""
    since: str = ""
    """YYYY-MM-DD: runs started on or after this day."""
    until: str = ""
    """YYYY-MM-DD: runs started on or before this day."""
    status: str = "all"
    """all, complete or partial (a --limit sample)."""
    latest: bool = False
    """Only the run reports and gates read for each variant and task."""

    @classmethod
    def from_query(cls, query) -> RunFilter:
        """From a request's query parameters; a malformed date or status is a ValueError."""
        values = {f.name: query.get(f.name, "").strip() for f in fields(cls) if f.name != "latest"}
        for key in ("since", "until"):
            if values[key]:
                try:
                    date.fromisoformat(values[key])
                except ValueError:
                    raise ValueError(f"{key}={values[key]!r}: expected a date as YYYY-MM-DD") from None
        values["status"] = values["status"] or "all"
        if values["status"] not in ("all", "complete", "partial"):
            raise ValueError(f"status={values['status']!r}: expected all, complete or partial")
        return cls(**values, latest=query.get("latest", "") in ("1", "on", "true"))


def facets(store: Store) -> dict[str, list[str]]:
    """The suites, tasks and variants runs exist for (the filters' choices)."""
    rows = store.query("SELECT list(DISTINCT suite ORDER BY suite) AS suites, list(DISTINCT task ORDER BY task) AS tasks, "
                       "list(DISTINCT variant ORDER BY variant) AS variants FROM runs")[0]
    return {k: v or [] for k, v in rows.items()}


def runs(store: Store, f: RunFilter, limit: int = 500) -> list[dict]:
    """Runs matching the filter, newest first, with their headline figure: the mean, n and a
    normal-approximation 95% interval (mean +- 1.96 SE, clipped to the metric's range, computed in DuckDB: a list of hundreds of
    runs can't bootstrap each; a run's own page has the bootstrap interval)."""
    where, params = ["true"], []
    for column in ("suite", "task", "variant"):
        if getattr(f, column):
            where.append(f"r.{column} = ?")  # column: one of three constants
            params.append(getattr(f, column))
    if f.since:
        where.append("r.started_at >= CAST(? AS DATE)")
        params.append(f.since)
    if f.until:
        where.append("r.started_at < CAST(? AS DATE) + INTERVAL 1 DAY")
        params.append(f.until)
    if f.status != "all":
        where.append("coalesce(r.partial, false) = ?")
        params.append(f.status == "partial")
    source = "latest_runs" if f.latest else "runs"
    rows = store.query(f"""
        SELECT r.run_id, r.suite, r.task, r.task_type, r.variant, r.variant_key, r.backend, r.n_samples, r.n_items_total,
               coalesce(r.partial, false) AS partial, r.started_at, r.wall_s, r.harness_version, r.git_commit, r.metrics,
               l.run_id IS NOT NULL AS is_latest
        FROM {source} r LEFT JOIN latest_runs l USING (run_id)
        WHERE {' AND '.join(where)} ORDER BY r.started_at DESC, r.run_id LIMIT ?""", params + [limit])  # source: a constant
    heads = {(r["run_id"], json.loads(r["metrics"])[0]) for r in rows if json.loads(r["metrics"] or "[]")}
    means = {}
    if heads:
        means = {(m["run_id"], m["metric"]): m for m in store.query(
            """SELECT run_id, metric, avg(value) AS mean, count(value) AS n,
                      1.959964 * stddev_samp(value) / sqrt(count(value)) AS half
               FROM scores WHERE list_contains(?, run_id || chr(0) || metric) GROUP BY ALL""", [[f"{r}\x00{m}" for r, m in heads]])}
    out = []
    for r in rows:
        head = (json.loads(r["metrics"] or "[]") or [None])[0]
        m = means.get((r["run_id"], head))
        if m is not None and m["half"] is not None:
            declared = lookup(head)  # clipped to the metric's range (a 0/1 metric's interval ends at 1)
            low, high = m["mean"] - m["half"], m["mean"] + m["half"]
            m = {**m, "low": max(low, declared.low) if declared and declared.low is not None else low,
                 "high": min(high, declared.high) if declared and declared.high is not None else high}
        out.append({**r, "headline": head, "headline_mean": m})
    return out


def run(store: Store, run_id: str) -> dict:
    """One run with every provenance column (JSON parsed), its run-level figures and its metrics' means."""
    rows = store.query("SELECT r.*, l.run_id IS NOT NULL AS is_latest FROM runs r LEFT JOIN latest_runs l USING (run_id) "
                       "WHERE r.run_id = ?", [run_id])
    if not rows:
        raise NotFound(f"no run {run_id!r} in the store")
    out = _parsed(rows[0])
    out["stats"] = store.query("SELECT metric, value, low, high, n, warning FROM run_stats WHERE run_id = ? ORDER BY metric", [run_id])
    out["summary"] = [{"metric": s.metric, "estimate": s.estimate}
                      for s in summarize(store, [out["variant"]], run_ids=[run_id], resamples=1000)]
    return out


# -- a task ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskTable:
    suite: str
    task: str
    task_type: str
    metrics: list[str]
    variants: list[str]
    cells: dict[tuple[str, str], Estimate]
    runs: dict[str, dict]
    """variant -> its latest run of the task."""


@dataclass(frozen=True)
class TaskRuns:
    """Each variant's latest run of a task and the metrics they stored (no statistics)."""

    task_type: str
    metrics: list[str]
    runs: dict[str, dict]

    @property
    def variants(self) -> list[str]:
        return list(self.runs)


def task_runs(store: Store, suite: str, task: str) -> TaskRuns:
    """The runs reports read for the task, by variant, and its metrics in the order the runs
    declare them (then any other stored metric): what the items pages need, read cheaply."""
    latest = store.query("SELECT * FROM latest_runs WHERE suite = ? AND task = ? ORDER BY variant", [suite, task])
    if not latest:
        raise NotFound(f"no run of task {task!r} in suite {suite!r}")
    runs = {r["variant"]: _parsed(r) for r in latest}
    stored = [r["metric"] for r in store.query("SELECT DISTINCT metric FROM scores WHERE list_contains(?, run_id) ORDER BY metric",
                                               [[r["run_id"] for r in latest]])]
    declared = [m for r in runs.values() for m in r["metrics"]]
    metrics = [m for m in dict.fromkeys(declared + stored) if m in stored]
    return TaskRuns(latest[0]["task_type"], metrics, runs)


def task_table(store: Store, suite: str, task: str) -> TaskTable:
    """Every variant's latest run of the task: each metric's mean with its bootstrap interval."""
    t = task_runs(store, suite, task)
    summary = summarize(store, t.variants, run_ids=[r["run_id"] for r in t.runs.values()], resamples=1000)
    cells = {(s.variant, s.metric): s.estimate for s in summary}
    metrics = t.metrics + [m for m in dict.fromkeys(s.metric for s in summary) if m not in t.metrics]  # corpus-level ones too
    return TaskTable(suite, task, t.task_type, metrics, t.variants, cells, t.runs)


# -- items ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemFilter:
    """The items page's filters (each one a query parameter; empty: no filter)."""

    variant: str = ""
    metric: str = ""
    """The metric shown and filtered on (default: the task's first)."""
    min: float | None = None
    max: float | None = None
    flip_from: str = ""
    """With flip_to: items this variant got right (better) and flip_to wrong (worse)."""
    flip_to: str = ""
    category: str = ""
    contaminated: bool = False
    """Only items the contamination check flagged."""
    disagree: bool = False
    """Only items whose judge verdicts differ between the two orders (pairwise judge tasks)."""
    q: str = ""
    """Full-text search: a substring of the prompt, the output or the reference (any case)."""
    page: int = 1

    @classmethod
    def from_query(cls, query) -> ItemFilter:
        """From a request's query parameters; a malformed number is a ValueError."""

        def number(key: str) -> float | None:
            raw = query.get(key, "").strip()
            if not raw:
                return None
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{key}={raw!r}: expected a number") from None

        page = number("page")
        if page is not None and (page < 1 or page != int(page)):
            raise ValueError(f"page={query.get('page')!r}: expected a whole number from 1")
        flag = lambda key: query.get(key, "") in ("1", "on", "true")  # noqa: E731
        return cls(variant=query.get("variant", "").strip(), metric=query.get("metric", "").strip(), min=number("min"),
                   max=number("max"), flip_from=query.get("flip_from", "").strip(), flip_to=query.get("flip_to", "").strip(),
                   category=query.get("category", "").strip(), contaminated=flag("contaminated"), disagree=flag("disagree"),
                   q=query.get("q", "").strip(), page=int(page or 1))


@dataclass(frozen=True)
class ItemPage:
    rows: list[dict]
    total: int
    filter: ItemFilter
    metric: str
    metrics: list[str]
    variants: list[str]
    categories: list[str]
    binary: bool
    judged: bool
    """The task is a pairwise judge task (the order-disagreement filter applies)."""

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def items(store: Store, suite: str, task: str, f: ItemFilter) -> ItemPage:
    """The task's items in every variant's latest run (or one variant's), filtered; one page."""
    table = task_runs(store, suite, task)
    metric = f.metric or (table.metrics[0] if table.metrics else "")
    if f.metric and f.metric not in table.metrics:
        raise ValueError(f"metric={f.metric!r}: {task} has {', '.join(table.metrics)}")
    for key in ("variant", "flip_from", "flip_to"):
        name = getattr(f, key)
        if name and name not in table.runs:
            raise ValueError(f"{key}={name!r}: no run of {task} for that variant (there are: {', '.join(table.variants)})")
    if bool(f.flip_from) != bool(f.flip_to):
        raise ValueError("flip_from and flip_to go together: the variant before and the variant after")
    if f.flip_to:
        f = replace(f, variant=f.flip_to)
    run_ids = [table.runs[f.variant]["run_id"]] if f.variant else [r["run_id"] for r in table.runs.values()]
    where, params = ["list_contains(?, s.run_id)"], [run_ids]
    if f.min is not None:
        where.append("v.value >= ?")
        params.append(f.min)
    if f.max is not None:
        where.append("v.value <= ?")
        params.append(f.max)
    if f.category:
        where.append("json_extract_string(s.details, '$.category') = ?")
        params.append(f.category)
    if f.contaminated:
        where.append("""EXISTS (SELECT 1 FROM scores c WHERE c.run_id = s.run_id AND c.sample_id = s.sample_id
                                AND c.metric = 'contaminated' AND c.value > 0)""")
    if f.disagree:
        where.append(f"s.sample_id IN ({ORDER_DISAGREEMENT})")
        params.append(run_ids)
    if f.q:
        where.append("(s.prompt ILIKE ? ESCAPE '\\' OR s.output ILIKE ? ESCAPE '\\' OR s.reference ILIKE ? ESCAPE '\\')")
        params += [_like(f.q)] * 3
    flip_join, join_params = "", []
    binary = (lookup(metric).values == "binary") if lookup(metric) else False
    if f.flip_from:
        # right -> wrong for a 0/1 metric; otherwise worse in the metric's direction
        flip_join = "JOIN scores b ON b.run_id = ? AND b.sample_id = s.sample_id AND b.metric = ? AND b.value IS NOT NULL"
        join_params = [table.runs[f.flip_from]["run_id"], metric]
        if binary:
            where.append("b.value > 0.5 AND v.value <= 0.5")
        else:
            where.append("? * (v.value - b.value) < 0")
            params.append(-1.0 if direction(metric) == "lower" else 1.0)
    rows = store.query(f"""
        SELECT r.variant, s.run_id, s.sample_id, s.item_id, s.prompt, s.output, s.reference, v.value,
               {'b.value' if f.flip_from else 'NULL'} AS before, json_extract_string(s.details, '$.category') AS category,
               count(*) OVER () AS total
        FROM samples s JOIN runs r USING (run_id) {flip_join}
             LEFT JOIN scores v ON v.run_id = s.run_id AND v.sample_id = s.sample_id AND v.metric = ?
        WHERE {' AND '.join(where)}
        ORDER BY s.sample_id, r.variant LIMIT ? OFFSET ?""", join_params + [metric] + params + [PAGE_SIZE, (f.page - 1) * PAGE_SIZE])
    categories = [r["c"] for r in store.query("""SELECT DISTINCT json_extract_string(details, '$.category') AS c FROM samples
                                                 WHERE list_contains(?, run_id) AND c IS NOT NULL ORDER BY c""",
                                              [[r["run_id"] for r in table.runs.values()]])]
    return ItemPage(rows, rows[0]["total"] if rows else 0, f, metric, table.metrics, table.variants, categories, binary,
                    table.task_type == "judge_pairwise")


ORDER_DISAGREEMENT = """
    SELECT sample_id FROM judgments WHERE list_contains(?, run_id) AND role = 'item' AND winner IS NOT NULL
    GROUP BY run_id, sample_id HAVING count(DISTINCT position) = 2
       AND list_sort(list_distinct(list(winner) FILTER (WHERE position = 'candidate_first')))
        <> list_sort(list_distinct(list(winner) FILTER (WHERE position = 'candidate_second')))"""
"""Pairwise judge items whose verdicts (mapped back to candidate/baseline) differ between the
order candidate-first and the order candidate-second."""


# -- one item ------------------------------------------------------------------------------


def item(store: Store, suite: str, task: str, sample_id: str) -> list[dict]:
    """The item in each variant's latest run of the task: sample, scores, details, judge calls
    on it (by judge runs over that run, and by the run itself when it is a judge run), claims."""
    table = task_runs(store, suite, task)
    run_ids = [r["run_id"] for r in table.runs.values()]
    samples = store.query("""SELECT r.variant, s.* FROM samples s JOIN runs r USING (run_id)
                             WHERE list_contains(?, s.run_id) AND s.sample_id = ? ORDER BY r.variant""", [run_ids, sample_id])
    if not samples:
        raise NotFound(f"no item {sample_id!r} in {suite} / {task}")
    scores = store.query("SELECT run_id, scorer, metric, value FROM scores WHERE list_contains(?, run_id) AND sample_id = ? "
                         "ORDER BY scorer, metric", [run_ids, sample_id])
    judged = store.query("""
        SELECT r.task AS judge_task, r.run_id AS judge_run, coalesce(json_extract_string(r.judge, '$.judged_run'), r.run_id) AS on_run,
               json_extract_string(r.judge, '$.baseline') AS baseline, json_extract_string(r.judge, '$.model') AS model,
               j.position, j.sample_index, j.verdict, j.winner, j.rating, j.ratings, j.reply, j.error, j.parsed
        FROM latest_runs r JOIN judgments j USING (run_id)
        WHERE r.task_type LIKE 'judge_%' AND j.sample_id = ? AND j.role = 'item'
          AND (list_contains(?, r.run_id) OR list_contains(?, json_extract_string(r.judge, '$.judged_run')))
        ORDER BY r.task, j.position, j.sample_index, j.call_index""", [sample_id, run_ids, run_ids])
    out = []
    for s in samples:
        details = json.loads(s["details"]) if s["details"] else {}
        claims = {name: d for name, d in details.items() if isinstance(d, dict) and isinstance(d.get("claims"), list)}
        run_row = next(r for r in table.runs.values() if r["run_id"] == s["run_id"])
        out.append({**s, "details": {k: v for k, v in details.items() if k not in claims}, "claims": claims,
                    "scores": [x for x in scores if x["run_id"] == s["run_id"]],
                    "judgments": [j for j in judged if j["on_run"] == s["run_id"]], "run": run_row})
    return out


def default_baseline(store: Store, names: list[str]) -> str:
    """The variant outputs are diffed against unless the reader picks one: the one nearest the
    root of the lineage (the base model before its fine-tunes), then the first by name."""
    parents = store.pairs("SELECT name, any_value(parent_name) FROM variants GROUP BY name")

    def depth(name: str, seen: frozenset = frozenset()) -> int:
        parent = parents.get(name)
        return 0 if parent is None or parent in seen else 1 + depth(parent, seen | {name})

    return min(names, key=lambda n: (depth(n) if n in parents else 99, n))


# -- lineage -------------------------------------------------------------------------------


def lineage(store: Store, confidence: float = 0.95) -> dict:
    """Every stored variant with its build facts, and each build step's paired deltas on each
    task's headline (the first metric), as the report computes them."""
    names = [r["name"] for r in store.query("SELECT name, min(created_at) AS t FROM variants GROUP BY name ORDER BY t, name")]
    evaluated = [r["variant"] for r in store.query("SELECT DISTINCT variant FROM latest_runs ORDER BY variant")]
    rows = lineage_rows(store, names)
    if not rows:
        return {"rows": [], "deltas": {}}
    spec = ReportSpec(title="harness view", variants=[n for n in names if n in evaluated] or names,
                      statistics={"confidence": confidence, "resamples": 1000})
    columns = [(r["task"], json.loads(r["metrics"])[0]) for r in store.query(
        "SELECT DISTINCT task, first(metrics) AS metrics FROM latest_runs WHERE task_type NOT LIKE 'judge_%' GROUP BY task ORDER BY task")
        if json.loads(r["metrics"] or "[]")]
    return {"rows": rows, "deltas": lineage_deltas(store, spec, rows, columns)}


def when(value) -> str:
    """A timestamp as the pages show it."""
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else str(value or "")
