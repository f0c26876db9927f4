"""Several stores into one: `harness store merge A B ... --into C`, and `harness store import` of a
Parquet snapshot (`harness export`).

Machines or CI jobs each write their own store; a report reads the union. Sources are read only
(readers and runs on them keep working) and the target must be new: nothing is overwritten.
A run is the same run in two stores when it has the same run key and variant name (the same
content evaluated for the same name); the first store's copy is kept. When the two copies' scores
differ (a timed task, or a nondeterministic backend), that is a conflict: reported, the first kept,
the other left out. Checkpoints (a machine's unfinished work) are not merged."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import StoreError
from harness.store.db import Store, duckdb_config

RUN_TABLES = ("samples", "scores", "judgments", "run_stats", "audit_labels", "fidelity", "review_labels", "review_ratings",
              "run_tags")
"""Tables whose rows belong to a run (by run_id): copied with the run."""
KEYED_TABLES = {"variants": "variant_key", "judge_cache": "cache_key"}
"""Tables merged by their key: a key already in the target keeps the target's row."""
ROW_TABLES = ("noise_bands", "outcomes")
"""Tables merged row by row: identical rows once."""


@dataclass
class SourceReport:
    """What one source contributed."""

    path: Path
    runs_added: int = 0
    runs_duplicate: int = 0
    conflicts: list[str] = field(default_factory=list)
    rows_added: dict[str, int] = field(default_factory=dict)


def _checked_target(target: Path) -> None:
    if target.exists() or target.with_name(target.name + ".wal").exists():
        raise StoreError(f"{target}: exists; a merge writes a new store and overwrites nothing", hint="pass a new --into path")


def merge_stores(sources: list[Path], target: Path) -> list[SourceReport]:
    """Merge `sources` (in order: the first copy of a run wins) into the new store `target`.
    StoreError, before anything is written, for a missing or repeated source or an existing target."""
    import duckdb


    _checked_target(target)
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise StoreError(f"{', '.join(missing)}: no such store", hint="pass the .duckdb files to merge")
    resolved = [p.resolve() for p in sources]
    if len(set(resolved)) < len(resolved) or target.resolve() in resolved:
        raise StoreError("a store is named twice (or as both a source and the target)", hint="name each store once")
    for p in sources:  # brings an older store to this schema (a short write), and checks a newer one is refused
        Store(p, read_only=True).close()
    tmp = target.with_name(target.name + ".merging")
    tmp.unlink(missing_ok=True)
    Store(tmp).close()  # a fresh store at this harness's schema
    reports = []
    con = duckdb.connect(str(tmp), config=duckdb_config())
    try:
        for i, p in enumerate(sources):
            con.execute(f"ATTACH '{_quoted(p)}' AS src{i} (READ_ONLY)")  # a path, quoted: ATTACH takes no parameters
            con.execute("BEGIN")
            reports.append(_merge_one(con, f"src{i}", p))
            con.execute("COMMIT")
            con.execute(f"DETACH src{i}")
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    shutil.move(str(tmp), str(target))  # the target appears whole or not at all
    return reports


def _quoted(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")


def _tables(con, schema: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = ? "
                                      "AND table_type = 'BASE TABLE'", [schema]).fetchall()}


def _merge_one(con, src: str, path: Path) -> SourceReport:
    report = SourceReport(path)
    have = _tables(con, src)
    mine = {(k, v): rid for rid, k, v in con.execute("SELECT run_id, run_key, variant FROM runs").fetchall()}
    taken = {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}
    new_runs = []
    same_as: dict[str, str] = {}  # a duplicate's id -> the id of the copy kept
    for run_id, key, variant in con.execute(f"SELECT run_id, run_key, variant FROM {src}.runs ORDER BY started_at").fetchall():
        kept = mine.get((key, variant))
        if kept is None and run_id in taken:
            report.conflicts.append(f"run {run_id} ({variant}) is another run in an earlier store under the same id: left out")
            continue
        if kept is not None:
            if _same_scores(con, "main", kept, src, run_id):
                report.runs_duplicate += 1
                same_as[run_id] = kept
            else:
                report.conflicts.append(f"{variant}: run {run_id} has the same key as run {kept} of an earlier store but "
                                        "different scores (a timed or nondeterministic task): kept the earlier one")
            continue
        new_runs.append(run_id)
        mine[(key, variant)] = run_id
        taken.add(run_id)
    if new_runs:
        con.execute(f"INSERT INTO runs BY NAME SELECT * FROM {src}.runs WHERE list_contains(?, run_id)", [new_runs])
        for table in RUN_TABLES:
            if table in have:  # tables are code constants
                n = con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {src}.{table} WHERE list_contains(?, run_id)",
                                [new_runs]).fetchone()[0]
                report.rows_added[table] = n
        _point_at_kept_copies(con, new_runs, same_as)
    report.runs_added = len(new_runs)
    for table, key in KEYED_TABLES.items():
        if table in have:
            report.rows_added[table] = con.execute(
                f"INSERT INTO {table} BY NAME SELECT * FROM {src}.{table} WHERE {key} NOT IN (SELECT {key} FROM {table})").fetchone()[0]
    for table in ROW_TABLES:
        if table in have:
            report.rows_added[table] = con.execute(
                f"INSERT INTO {table} BY NAME (SELECT * FROM {src}.{table} EXCEPT SELECT * FROM {table})").fetchone()[0]
    return report


def _point_at_kept_copies(con, new_runs: list[str], same_as: dict[str, str]) -> None:
    """Runs taken from this source that name another run of it (a judge run's judged and baseline
    runs, a fidelity row's parent run) which was left out as a duplicate now name the copy kept."""
    import json

    if not same_as:
        return
    for run_id, judge in con.execute("SELECT run_id, judge FROM runs WHERE list_contains(?, run_id) AND judge IS NOT NULL",
                                     [new_runs]).fetchall():
        spec = json.loads(judge)
        moved = {k: same_as[v] for k in ("judged_run", "baseline_run") if (v := spec.get(k)) in same_as}
        if moved:
            con.execute("UPDATE runs SET judge = ? WHERE run_id = ?", [json.dumps({**spec, **moved}), run_id])
    for old, kept in same_as.items():
        con.execute("UPDATE fidelity SET parent_run_id = ? WHERE list_contains(?, run_id) AND parent_run_id = ?",
                    [kept, new_runs, old])


def _same_scores(con, a: str, run_a: str, b: str, run_b: str) -> bool:
    """Whether two runs stored the same per-item scores (sample, scorer, metric, value)."""
    differ = con.execute(f"""
        SELECT count(*) FROM (
            (SELECT sample_id, scorer, metric, value FROM {a}.scores WHERE run_id = ?
             EXCEPT SELECT sample_id, scorer, metric, value FROM {b}.scores WHERE run_id = ?)
            UNION ALL
            (SELECT sample_id, scorer, metric, value FROM {b}.scores WHERE run_id = ?
             EXCEPT SELECT sample_id, scorer, metric, value FROM {a}.scores WHERE run_id = ?))""",
                         [run_a, run_b, run_b, run_a]).fetchone()[0]
    return differ == 0


def import_snapshot(snapshot: Path, target: Path) -> list[str]:
    """A store rebuilt from a `harness export` directory (DuckDB's IMPORT DATABASE), brought to
    this harness's schema. Returns its tables. The target must be new."""
    import duckdb


    _checked_target(target)
    if not (snapshot / "schema.sql").is_file() or not (snapshot / "load.sql").is_file():
        raise StoreError(f"{snapshot}: not a snapshot (no schema.sql and load.sql)", hint="pass a directory `harness export` wrote")
    tmp = target.with_name(target.name + ".importing")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp), config=duckdb_config())
    try:
        con.execute(f"IMPORT DATABASE '{_quoted(snapshot)}'")
        con.close()
        Store(tmp).close()  # an older snapshot is migrated
    except duckdb.Error as exc:
        con.close()
        tmp.unlink(missing_ok=True)
        raise StoreError(f"{snapshot}: cannot import: {exc}", hint="pass a directory `harness export` wrote") from None
    shutil.move(str(tmp), str(target))
    with Store(target, read_only=True) as store:
        return [r["table_name"] for r in store.query("SELECT table_name FROM information_schema.tables "
                                                     "WHERE table_type = 'BASE TABLE' ORDER BY table_name")]
