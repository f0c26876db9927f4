"""Open the store, apply migrations, write one task run per transaction, read with bound parameters."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import StoreError
from harness.stats.metricspec import Metric, builtin_metrics, name_parts
from harness.store.integrity import damage_reason, damaged, is_full, is_lock_conflict, length_problem
from harness.store.journal import Journal
from harness.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRow:
    """One evaluation of one task on one variant."""

    run_id: str
    run_key: str
    suite: str
    suite_hash: str
    task: str
    task_type: str
    metrics: str
    variant: str
    variant_key: str
    backend: str
    device: str
    dtype: str
    data_hash: str
    prompt_hash: str
    generation_config: str
    seed: int
    harness_version: str
    git_commit: str | None
    started_at: datetime
    last_used_at: datetime
    wall_s: float
    n_samples: int
    judge: str | None = None
    """Judge runs: the judge's identity as JSON (never an API key)."""
    partial: bool = False
    """Run on a --limit sample of the task's items: reports and gates prefer a full run."""
    n_items_total: int | None = None
    """How many items the task has (n_samples of them were evaluated)."""
    task_config: str | None = None
    """The task spec as validated, as JSON."""
    suite_tasks: str | None = None
    """The suite's tasks at run time ([{task, type, baseline}]), so a report can name missing ones."""
    libraries: str | None = None
    """Versions of the libraries that produced the rows, as JSON."""
    backend_details: str | None = None
    """What the backend reported about itself (harness.backends.base.BackendInfo.details) as JSON:
    model path, adapters, whether prefix reuse was on and why."""
    chat_template: str | None = None
    """Whether the prompts were laid out with the model's chat template, which one and why, as
    JSON (harness.models.chat_plan.ChatPlan.record); None: plain prompts."""


@dataclass(frozen=True)
class SampleRow:
    run_id: str
    sample_id: str
    prompt: str
    reference: str | None
    output: str | None
    details: str
    item_id: str | None = None
    """The item this sample is of (default: sample_id; a turn or a latency request names its item)."""
    turn: int | None = None
    """Multi-turn generation: the turn (1, 2, ...)."""
    concurrency: int | None = None
    """Latency tasks: the concurrency level the request was sent at."""
    content_hash: str | None = None
    """The item as rendered before the model saw it (harness.tasks.sample.Sample.content_hash):
    two runs pair only on items whose content is identical."""
    cluster: str | None = None
    """Items sharing a cluster are correlated (harness.tasks.sample.Sample.cluster); None: the
    item is its own (its turns together)."""


@dataclass(frozen=True)
class ScoreRow:
    run_id: str
    sample_id: str
    scorer: str
    metric: str
    value: float | None


@dataclass(frozen=True)
class NoiseRow:
    """One metric's noise band of one variant on one task (see the `noise_bands` table)."""

    variant: str
    variant_key: str
    suite: str
    task: str
    metric: str
    data_hash: str
    prompt_hash: str
    n_items: int
    reference: float
    """The metric's mean under the declared serving settings."""
    band: float
    """The largest distance of any setting's mean from `reference`."""
    by_setting: str
    """{setting label: mean} as JSON."""
    created_at: datetime
    harness_version: str


@dataclass(frozen=True)
class JudgmentRow:
    """One judge call of a judge run (see the `judgments` table)."""

    run_id: str
    sample_id: str
    call_index: int
    role: str
    position: str | None
    sample_index: int
    prompt_name: str
    verdict: str | None
    winner: str | None
    rating: float | None
    ratings: str | None
    human: str | None
    parsed: bool
    error: str | None
    reply: str | None
    len_candidate: int | None
    len_other: int | None
    cached: bool
    latency_s: float | None
    attempts: int | None


@dataclass(frozen=True)
class StatRow:
    run_id: str
    metric: str
    value: float | None
    low: float | None
    high: float | None
    n: int
    warning: str | None
    family: str | None = None
    """The declared metric the name instantiates (`latency_s_p{q}_{bucket}`); filled on write."""
    concurrency: int | None = None
    percentile: float | None = None
    bucket: str | None = None
    label: str | None = None
    dimension: str | None = None


@dataclass(frozen=True)
class VariantRow:
    """A built (or base) model, with its lineage and build record."""

    variant_key: str
    name: str
    parent_key: str | None
    parent_name: str | None
    method: str
    recipe_hash: str | None
    data_hash: str | None
    artifact_kind: str
    artifact_path: str | None
    artifact_bytes: int | None
    trainable_params: int | None
    total_params: int | None
    train_curve: str | None
    metrics: str | None
    wall_s: float | None
    peak_rss_mb: float | None
    device: str | None
    fallback: str | None
    config: str | None
    created_at: datetime


DUCKDB_CONFIG: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
"""Opening a store never makes DuckDB fetch extensions from the network (an SQLite file or an
`md:` path would otherwise make it try)."""


def _check_path(path: Path, read_only: bool) -> None:
    """Clear errors for paths that can't be a store, before DuckDB gives a vaguer one."""
    import re

    text = str(path)
    # md:, motherduck:, s3:/, https:/ ... (Path() folds '//'); a one-letter prefix is a Windows drive
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", text):
        raise StoreError(f"{text}: remote stores are refused; the store is a local DuckDB file", hint="pass a local path with --store")
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a store file", hint=f"pass a file path, e.g. --store {path / 'harness.duckdb'}")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise StoreError(f"{path}: {parent} is a file, so no store can be created below it", hint="pass another --store path")
    if path.is_file():
        with path.open("rb") as f:
            head = f.read(16)
        if head.startswith(b"SQLite format 3"):
            raise StoreError(f"{path}: is an SQLite database, not a DuckDB store", hint="pass a harness store with --store")
    elif read_only:
        raise StoreError(f"{path}: no results store here yet", hint="run `harness run ...` first, or pass --store")


LOCKED = "in use by another process"


def _is_lock_error(exc: Exception) -> bool:
    return is_lock_conflict(exc)


def _take_session_lock(path: Path):
    """The writer-session lock `<store>.lock` (an flock, released by the OS if the process dies),
    with the holder's PID in it for the error message."""
    import fcntl
    import os

    lock_path = path.with_name(path.name + ".lock")
    try:
        f = open(lock_path, "a+")
    except OSError as exc:
        raise StoreError(f"{lock_path}: cannot create the store's lock file: {exc.strerror}",
                         hint="check the folder's permissions, or pass another --store") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        pid = f.read().strip()
        f.close()
        who = f" (process {pid})" if pid else ""
        raise StoreError(f"{path}: another harness run or build{who} is writing to this store",
                         hint="wait for it to finish (reports, gates and listings work meanwhile), or pass another --store") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _open_error(path: Path, exc: Exception) -> StoreError:
    """DuckDB's open failure, said in words with what to do about it."""
    import re

    msg = str(exc)
    if "not a valid DuckDB database file" in msg:
        return damaged(path, "not a DuckDB database file: another format, a file of zeros, or one cut short")
    if damage_reason(exc):
        return damaged(path, damage_reason(exc) or msg)
    if _is_lock_error(exc):
        pid = re.search(r"PID (\d+)", msg)
        who = f" (process {pid.group(1)})" if pid else ""
        return StoreError(f"{path}: {LOCKED}{who}",
                          hint="harness runs hold the store only while committing; a long SQL session holds it until it "
                               "closes, so query a snapshot instead (`harness export DIR`)")
    if "Permission denied" in msg:
        return StoreError(f"{path}: permission denied", hint="check the file's and its folder's permissions, or pass another --store")
    if is_full(exc):
        return StoreError(f"{path}: the disk is full", hint="free some space and run the command again")
    return StoreError(f"{path}: cannot open the store: {msg}")


DEFAULT_WAIT_S = 60.0
"""How long opening the store waits while another process has it (a run commits in bursts of
well under a second; a long read-only SQL session can hold it for longer). HARNESS_STORE_WAIT_S
overrides it."""


MEMORY_LIMIT = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def duckdb_config() -> dict[str, Any]:
    """DUCKDB_CONFIG, with DuckDB's memory limit from $HARNESS_STORE_MEMORY when set. DuckDB keeps
    the blocks it read in memory up to its limit (default: 80% of RAM), so reading a large store
    grows a report's memory with the store; a limit bounds it, at some cost in time."""
    import os

    raw = os.environ.get("HARNESS_STORE_MEMORY")
    if raw is None:
        return DUCKDB_CONFIG
    if not MEMORY_LIMIT.fullmatch(raw.strip()):
        raise StoreError(f"HARNESS_STORE_MEMORY={raw!r}: expected a size such as 512MB or 2GiB",
                         hint="unset it to let DuckDB use up to 80% of this machine's memory")
    return {**DUCKDB_CONFIG, "memory_limit": raw.strip()}


def wait_seconds() -> float:
    """The lock wait: $HARNESS_STORE_WAIT_S, else DEFAULT_WAIT_S."""
    import os

    raw = os.environ.get("HARNESS_STORE_WAIT_S")
    if raw is None:
        return DEFAULT_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        raise StoreError(f"HARNESS_STORE_WAIT_S={raw!r}: expected a number of seconds",
                         hint=f"unset it to wait the default {DEFAULT_WAIT_S:.0f} s, or set e.g. HARNESS_STORE_WAIT_S=300") from None
    if not value >= 0:
        raise StoreError(f"HARNESS_STORE_WAIT_S={raw!r}: must be at least 0", hint="0 means: fail at once when another process holds the store")
    return value


class Store:
    """A DuckDB file.

    Two ways to hold it. `hold=True` (the default: reports, gates, listings, short writes) keeps
    one connection open until close(). `hold=False` is a writer session for long jobs (`harness
    run`, `harness build`): it takes the session lock file `<store>.lock` for its whole life, so
    a second long writer gets a clear error, but opens DuckDB only for each read or commit. So
    readers can open the store while a run is in progress; when one holds it at the instant of a
    commit, the commit waits for it (up to wait_seconds())."""

    def __init__(self, path: Path, read_only: bool = False, hold: bool = True, migrate: bool = True):
        self.path = path
        self.hold = hold
        self.read_only = read_only
        self.memo: dict = {}
        """Read-only stores only: results of repeated reads (reports ask for a baseline's values once
        per comparison); nothing can change underneath while this process holds the file."""
        self.con: Any = None
        """The open duckdb.DuckDBPyConnection (duckdb imports lazily), or None while none is open."""
        self._session_lock = None
        self.journal: Journal | None = None
        """A writer session's journal of finished units and judge replies (see store/journal.py)."""
        _check_path(path, read_only)
        if not read_only:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path}: cannot create its folder: {exc.strerror}", hint="pass another --store path") from None
        if not hold:
            if read_only:
                raise ValueError("a writer session (hold=False) is never read-only")
            self._session_lock = _take_session_lock(path)
        try:
            self.con = self._connect(read_only)
            short = length_problem(self.con, path)
            if short:  # DuckDB itself would fail only at the first read of a lost block
                raise damaged(path, short)
            applied = self._applied()
            known = [name for name, _ in MIGRATIONS]
            unknown = [name for name in applied if name not in known]
            if unknown:
                raise StoreError(f"{path}: written by a newer harness (schema {', '.join(unknown)} is unknown to harness {_version()})",
                                 hint="upgrade harness (pip install -U harness) to read this store")
            if not read_only:
                self._migrate()
            elif applied != known:
                if not migrate:  # e.g. `harness view`, which never writes to the store
                    raise StoreError(f"{path}: store schema is older than this harness ({len(known) - len(applied)} migration(s) to apply), "
                                     "and this command only reads",
                                     hint="run any writing command once (e.g. `harness list runs`), then read it again")
                self._migrate_then_reopen()
            if not hold:
                self.journal = Journal(path)
                self.settle_journal()  # what a killed session journaled but never committed
        except BaseException:
            self.close()
            raise
        if not hold:
            self.con.close()
            self.con = None

    def _connect(self, read_only: bool):
        """A DuckDB connection, waiting (with a note in the log) while another process has the file."""
        import duckdb

        deadline, delay, said = time.monotonic() + wait_seconds(), 0.02, False
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=duckdb_config())
            except duckdb.Error as exc:
                err = _open_error(self.path, exc)
                if not _is_lock_error(exc) or time.monotonic() + delay > deadline:
                    raise err from None
                if not said:
                    log.warning("%s; waiting up to %.0fs for it", err.message, deadline - time.monotonic())
                    said = True
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextmanager
    def _connected(self):
        """The connection for one read or one commit: the held one (or one an enclosing call
        opened), or in a writer session one opened now and closed when this call is done. DuckDB's
        errors that mean a damaged file or a full disk become the store's own errors."""
        import duckdb

        opened = self.con is None
        if opened:
            if self.hold:
                raise StoreError(f"{self.path}: the store is closed")
            self.con = self._connect(False)
        try:
            yield self.con
        except duckdb.Error as exc:
            reason = damage_reason(exc, self.path)
            if reason:
                raise damaged(self.path, reason) from exc
            if is_full(exc):
                raise StoreError(f"{self.path}: the disk is full; the store is as it was before this write",
                                 hint="free some space (or raise the file-size limit) and run the command again") from exc
            raise
        finally:
            if opened and self.con is not None:
                con, self.con = self.con, None
                con.close()

    def _migrate_then_reopen(self) -> None:
        """An older store opened for reading: migrate it (a short write), then read."""
        self.con.close()
        self.con = None
        try:
            self.con = self._connect(False)
        except StoreError as err:
            raise StoreError(f"{self.path}: store schema is older than this harness, and it can't be migrated now: {err}",
                             hint="run any writing command (e.g. `harness run`) once the store is free") from None
        try:
            self._migrate()
        finally:
            self.con.close()
            self.con = None
        self.con = self._connect(True)
        log.info("%s: migrated to this harness's schema", self.path)

    def _applied(self) -> list[str]:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'").fetchone()[0]
        if not exists:
            return []
        return [r[0] for r in self.con.execute("SELECT name FROM schema_migrations ORDER BY id").fetchall()]

    def _migrate(self) -> None:
        self.con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
        applied = set(self._applied())
        for i, (name, sql) in enumerate(MIGRATIONS, start=1):
            if name in applied:
                continue
            with self.transaction() as con:
                con.execute(sql)
                if name == NAME_PARTS_MIGRATION:
                    self.fill_name_parts(con)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [i, name, _now()])
            log.debug("applied migration %s", name)

    def fill_name_parts(self, con) -> int:
        """Migration 008's second half: the family and name parts of run figures stored before
        they were columns, from the built-in metric declarations (SQL can't read those; no
        plugin is imported, so a broken plugin can't stop a store from opening). lm-eval's
        figures are its own names and keep none. Returns the figures filled."""
        declared = builtin_metrics()
        metrics = con.execute("SELECT DISTINCT metric FROM run_stats WHERE family IS NULL AND run_id IN "
                              "(SELECT run_id FROM runs WHERE task_type <> 'lm_eval')").fetchall()
        filled = 0
        for (metric,) in metrics:
            row = with_name_parts(StatRow("", metric, None, None, None, 0, None), declared)
            if row.family is None:
                continue
            con.execute("UPDATE run_stats SET family = ?, concurrency = ?, percentile = ?, bucket = ?, label = ?, dimension = ? "
                        "WHERE metric = ? AND family IS NULL AND run_id IN (SELECT run_id FROM runs WHERE task_type <> 'lm_eval')",
                        [row.family, row.concurrency, row.percentile, row.bucket, row.label, row.dimension, metric])
            filled += 1
        return filled

    # -- writes -----------------------------------------------------------------------------
    def write_task_run(self, run: RunRow, samples: list[SampleRow], scores: list[ScoreRow],
                       judgments: Sequence[JudgmentRow] = (), stats: Sequence[StatRow] = (), checkpoint_key: str | None = None,
                       declared: Sequence[Metric] = (), pool_key: str | None = None) -> None:
        """One transaction per task: the run, its samples, scores (and judge calls and judge
        health) land together or not at all; so does removing the run's checkpoint, when
        `checkpoint_key` names one (its units copied to `pool_key` first, when given). `declared`: the metrics the run's kind and scorers declare,
        from which each run figure's family and name parts are stored as columns."""
        with self.transaction() as con:
            self._insert("runs", [run])
            self._insert("samples", samples)
            # A sample is its own item unless its kind said otherwise (a turn, a latency request).
            con.execute("UPDATE samples SET item_id = sample_id WHERE run_id = ? AND item_id IS NULL", [run.run_id])
            self._insert("scores", scores)
            self._insert("judgments", list(judgments))
            self._insert("run_stats", [with_name_parts(s, declared) for s in stats])
            if checkpoint_key is not None:
                if pool_key is not None:  # a --limit run's finished items stay for a larger --limit run
                    con.execute("""INSERT OR IGNORE INTO checkpoints SELECT ?, unit, payload, created_at FROM checkpoints
                                   WHERE run_key = ? AND unit <> '__wall_s__'""", [pool_key, checkpoint_key])
                con.execute("DELETE FROM checkpoints WHERE run_key = ?", [checkpoint_key])

    def write_noise(self, rows: list[NoiseRow]) -> None:
        """A variant's noise bands, replacing what was measured before for the same variant key and task."""
        with self.transaction() as con:
            for key in {(r.variant, r.variant_key, r.suite, r.task) for r in rows}:
                con.execute("DELETE FROM noise_bands WHERE variant = ? AND variant_key = ? AND suite = ? AND task = ?", list(key))
            self._insert("noise_bands", rows)

    def noise_band(self, variant: str, task: str, metric: str) -> dict | None:
        """The latest noise band of `variant`'s `metric` on `task` measured on the weights its
        latest run of that task used, or None."""
        rows = self.query("""SELECT n.* FROM noise_bands n JOIN latest_runs r ON r.variant = n.variant AND r.task = n.task
                             AND r.variant_key = n.variant_key
                             WHERE n.variant = ? AND n.task = ? AND n.metric = ? ORDER BY n.created_at DESC LIMIT 1""",
                          [variant, task, metric])
        return rows[0] if rows else None

    def upsert_variant(self, row: VariantRow) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM variants WHERE variant_key = ?", [row.variant_key])
            self._insert("variants", [row])

    @contextmanager
    def transaction(self):
        """One transaction: what the block writes lands together or not at all (rolled back on
        any exception, which is then raised again). Yields the connection."""
        with self._connected() as con:
            con.execute("BEGIN")
            try:
                yield con
                con.execute("COMMIT")
            except Exception as exc:
                self.rollback(exc)
                raise

    def rollback(self, exc: Exception) -> None:
        """Roll back after `exc`, without letting the rollback hide it: a failed COMMIT (a full
        disk, say) may already have ended the transaction, and 'no transaction is active' would
        then replace the real cause. A full disk becomes its own StoreError."""
        import duckdb

        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # the transaction is already gone; `exc` (raised by the caller) says why
        if is_full(exc):
            raise StoreError(f"{self.path}: the disk is full; nothing of this task was stored",
                             hint="free some space (or raise the file-size limit) and run the command again") from exc

    def _insert(self, table: str, rows: list) -> None:
        if not rows:
            return
        import pyarrow as pa

        # Bulk insert BY NAME from an Arrow table: column order can't silently shift. DuckDB finds
        # `incoming` by replacement scan of this local variable (no register/unregister, which
        # would itself fail inside an aborted transaction and hide the real error).
        # Column by column: dataclasses.asdict per row costs more than the insert itself at scale.
        names = [f.name for f in fields(rows[0])]
        incoming = pa.Table.from_pydict({n: [getattr(r, n) for r in rows] for n in names})  # noqa: F841 (read by DuckDB)
        self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")  # table is a code constant

    def judge_cache_get(self, keys: list[str]) -> dict[str, str]:
        """Cached judge replies for these call keys."""
        if not keys:
            return {}
        with self._connected() as con:
            rows = con.execute("SELECT cache_key, reply FROM judge_cache WHERE list_contains(?, cache_key)", [keys]).fetchall()
        return dict(rows)

    def judge_cache_put(self, rows: list[tuple[str, str, str]]) -> None:
        """(cache_key, judge_hash, reply) rows, committed at once: paid-for calls survive a crash later in the run."""
        if not rows:
            return
        import pyarrow as pa

        now = _now()
        incoming = pa.Table.from_pylist([{"cache_key": k, "judge_hash": j, "reply": r, "created_at": now}  # noqa: F841
                                         for k, j, r in rows])
        with self._connected() as con:
            con.execute("INSERT OR IGNORE INTO judge_cache BY NAME SELECT * FROM incoming")

    def checkpoint_put(self, run_key: str, units: list[tuple[str, str]]) -> None:
        """(unit, JSON payload) rows of an unfinished run, committed now."""
        if not units:
            return
        import pyarrow as pa

        now = _now()
        incoming = pa.Table.from_pylist([{"run_key": run_key, "unit": u, "payload": p, "created_at": now}  # noqa: F841
                                         for u, p in units])
        with self._connected() as con:
            con.execute("INSERT OR REPLACE INTO checkpoints BY NAME SELECT * FROM incoming")

    def fidelity_put(self, rows: list[tuple[str, str, str, str, float]]) -> None:
        """(run_id, parent_run_id, sample_id, metric, value) rows, replacing earlier ones, in one transaction."""
        if not rows:
            return
        import pyarrow as pa

        incoming = pa.Table.from_pylist([dict(zip(("run_id", "parent_run_id", "sample_id", "metric", "value"), r))  # noqa: F841
                                         for r in rows])
        with self._connected() as con:
            con.execute("INSERT OR REPLACE INTO fidelity BY NAME SELECT * FROM incoming")

    def journal_unit(self, run_key: str, unit: str, payload: str) -> None:
        """A finished unit of a running task, durable at once (committed later with its checkpoint)."""
        if self.journal is not None:
            self.journal.append({"unit": unit, "run_key": run_key, "payload": payload})

    def journal_judge(self, cache_key: str, judge_hash: str, reply: str) -> None:
        """An answered judge call, durable at once, fsync'ed (it was paid for). Any thread."""
        if self.journal is not None:
            self.journal.append({"judge": cache_key, "judge_hash": judge_hash, "reply": reply}, sync=True)

    def settle_journal(self) -> tuple[int, int]:
        """Copy the journal's records into the store and remove it: judge replies into the cache,
        finished units into the checkpoints of runs not finished since (a finished run removed its
        checkpoint, and must not get it back). Returns (replies, units) taken."""
        if self.journal is None:
            return 0, 0
        records = self.journal.records()
        if not records:
            self.journal.remove()
            return 0, 0
        import pyarrow as pa

        now = _now()
        judged = [{"cache_key": r["judge"], "judge_hash": r["judge_hash"], "reply": r["reply"], "created_at": now}
                  for r in records if "judge" in r]
        kept: dict[tuple[str, str], str] = {}
        for r in records:  # in order: a checkpoint cleared after its units were journaled stays cleared
            if "unit" in r:
                kept[(r["run_key"], r["unit"])] = r["payload"]
            elif "clear" in r:
                kept = {k: v for k, v in kept.items() if k[0] != r["clear"]}
        units = [{"run_key": k, "unit": u, "payload": p, "created_at": now} for (k, u), p in kept.items()]
        with self.transaction() as con:
            if judged:
                replies = pa.Table.from_pylist(judged)  # noqa: F841 (read by DuckDB)
                con.execute("INSERT OR IGNORE INTO judge_cache BY NAME SELECT * FROM replies")
            if units:
                finished = pa.Table.from_pylist(units)  # noqa: F841 (read by DuckDB)
                con.execute("""INSERT OR REPLACE INTO checkpoints BY NAME
                               SELECT * FROM finished WHERE run_key NOT IN (SELECT run_key FROM runs)""")
        self.journal.remove()
        taken = (len(judged), len(units))
        log.debug("%s: journal settled: %d judge replies, %d finished units", self.path, *taken)
        return taken

    def checkpoint_get(self, run_key: str) -> dict[str, str]:
        """The units an unfinished run with this key has stored: unit -> JSON payload."""
        with self._connected() as con:
            return dict(con.execute("SELECT unit, payload FROM checkpoints WHERE run_key = ?", [run_key]).fetchall())

    def checkpoint_clear(self, run_key: str) -> None:
        """Forget an unfinished run's units (`--force`, or scratch work such as `harness noise`)."""
        if self.journal is not None:
            self.journal.append({"clear": run_key})
        with self._connected() as con:
            con.execute("DELETE FROM checkpoints WHERE run_key = ?", [run_key])

    def export_parquet(self, out_dir: Path) -> list[str]:
        """Every table as Parquet in `out_dir`, from one consistent read, plus DuckDB's schema.sql
        and load.sql (`IMPORT DATABASE 'dir'` rebuilds a store from them). Returns the tables."""
        import duckdb

        with self._connected() as con:
            # EXPORT takes no bound parameters: the path is quoted as an SQL string literal
            literal = "'" + str(out_dir).replace("'", "''") + "'"
            try:
                con.execute(f"EXPORT DATABASE {literal} (FORMAT PARQUET)")
            except duckdb.Error as exc:
                raise StoreError(f"{out_dir}: cannot write the snapshot: {exc}", hint="pass another directory") from None
            return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                                              "ORDER BY table_name").fetchall()]

    # -- reads ------------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[dict]:
        """Run SQL with bound parameters; rows as dicts."""
        with self._connected() as con:
            cur = con.execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def read_sql(self, sql: str) -> tuple[list[str], list[tuple]]:
        """A person's own SQL (`harness sql`): column names and rows. Only on a read-only store, so
        the statement can't change it."""
        if not self.read_only:
            raise StoreError(f"{self.path}: people's own SQL runs on a read-only store only")
        with self._connected() as con:
            cur = con.execute(sql)
            if cur.description is None:
                return [], []
            return [d[0] for d in cur.description], cur.fetchall()

    def pairs(self, sql: str, params: list[Any] | None = None) -> dict:
        """Run a two-column query; rows as {first: second} (no dict per row: campaign-sized reads)."""
        with self._connected() as con:
            return dict(con.execute(sql, params or []).fetchall())

    def find_run(self, run_key: str) -> dict | None:
        rows = self.query("SELECT * FROM runs WHERE run_key = ? ORDER BY started_at DESC LIMIT 1", [run_key])
        return rows[0] if rows else None

    def mark_reused(self, run_id: str) -> None:
        """An identical run was asked for again: it becomes the one reports read."""
        with self._connected() as con:
            con.execute("UPDATE runs SET last_used_at = ? WHERE run_id = ?", [_now(), run_id])

    def find_run_for(self, run_key: str, variant: str) -> dict | None:
        """The newest run under `run_key` recorded for `variant` (a run may be recorded for several
        names that resolve to the same content)."""
        rows = self.query("SELECT * FROM runs WHERE run_key = ? AND variant = ? ORDER BY started_at DESC LIMIT 1",
                          [run_key, variant])
        return rows[0] if rows else None

    def attribute_run(self, run_id: str, variant: str, new_run_id: str) -> None:
        """Record `run_id` (of another name with the same content) as `variant`'s run too: a copy of
        the run with its samples, scores, judge calls and figures under `new_run_id`, in one
        transaction, so every report, gate and query finds it under the name that asked for it."""
        now = _now()
        with self.transaction() as con:
            con.execute("INSERT INTO runs SELECT * REPLACE (? AS run_id, ? AS variant, ?::TIMESTAMP AS last_used_at) "
                        "FROM runs WHERE run_id = ?", [new_run_id, variant, now, run_id])
            for table in ("samples", "scores", "judgments", "run_stats"):  # code constants
                con.execute(f"INSERT INTO {table} SELECT * REPLACE (? AS run_id) FROM {table} WHERE run_id = ?",
                            [new_run_id, run_id])

    def variant(self, name: str) -> dict | None:
        """The newest build of a variant name."""
        rows = self.query("SELECT * FROM variants WHERE name = ? ORDER BY created_at DESC LIMIT 1", [name])
        return rows[0] if rows else None

    def variant_by_key(self, key: str) -> dict | None:
        rows = self.query("SELECT * FROM variants WHERE variant_key = ?", [key])
        return rows[0] if rows else None

    def close(self) -> None:
        if self.journal is not None:
            try:
                self.settle_journal()
            except Exception as exc:  # a full disk, say: the journal stays for the next session
                log.warning("%s: the journal's records stay in %s for the next run (%s)", self.path, self.journal.path, exc)
            finally:
                self.journal.close()
                self.journal = None
        if self.con is not None:
            self.con.close()
            self.con = None
        if self._session_lock is not None:
            self._session_lock.close()  # releases the flock
            self._session_lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_store(path: Path | str, read_only: bool = False, create: bool = True) -> Store:
    """The store at `path`; with `create=False` a missing one is an error instead of a new, empty
    store (imports of people's labels and outcomes attach them to runs that must exist)."""
    if not create and not read_only and not Path(path).is_file():
        _check_path(Path(path), read_only=True)  # says what the path is instead, or that no store is here
    return Store(Path(path), read_only=read_only)


def _version() -> str:
    return __version__


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def nan_to_null(x: float) -> float | None:
    """NaN (e.g. no CI for a point figure) is stored as NULL."""
    import math

    return None if math.isnan(x) else x


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


NAME_PARTS_MIGRATION = "008_structured_item_and_figure_keys"
"""The migration after which run figures' name parts are filled in Python (fill_name_parts)."""

_PART_COLUMNS = {"c": ("concurrency", int), "q": ("percentile", float), "bucket": ("bucket", str), "label": ("label", str),
                 "dimension": ("dimension", str)}
"""Metric-name placeholders stored as run_stats columns."""


def with_name_parts(row: StatRow, declared: Sequence[Metric]) -> StatRow:
    """The run figure with the family it instantiates among `declared` and the values of its
    name's placeholders as columns (throughput_tokens_per_s_c4: family throughput_tokens_per_s_c{c},
    concurrency 4). Unchanged when nothing declared names it (lm-eval's own figures)."""
    found = name_parts(row.metric, declared)
    if found is None:
        return row
    family, params = found
    parts = {column: cast(params[key]) for key, (column, cast) in _PART_COLUMNS.items() if key in params}
    return replace(row, family=family, **parts)
