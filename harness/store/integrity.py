"""Is the store file whole? Recognising a damaged store (a copy interrupted, a full disk, a file of
zeros, some other file), checking every table (`harness store check`), and writing a consistent
copy while readers go on (`harness store backup`).

DuckDB notices damage only when it reads the damaged block: a store truncated to half its size
opens, and the first query that touches the lost half fails with an IOException. So opening checks
the one thing that costs nothing, the file's length against the blocks DuckDB's header says it
holds, and every read or commit turns DuckDB's damage errors into one "store is damaged" error
that says what to do; `harness store check` reads every row of every table, which verifies each
block's checksum."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import StoreError
from harness.textfile import temporary_name

DAMAGED_HINT = ("restore it from a backup (`harness store backup`) or a Parquet snapshot "
                "(`harness store import SNAPSHOT --into NEW`), or start a new store (pass another --store); "
                "`harness store check` lists which tables still read")

HEADER_BYTES = 3 * 4096
"""DuckDB's file header plus its two database headers, before the first block."""

DAMAGE_MARKS = ("Could not read enough bytes", "Corrupt database file", "not a valid DuckDB database file",
                "database has been invalidated")
"""Words of DuckDB's errors that mean the file's content is not what DuckDB wrote (a checksum
mismatch is "Corrupt database file: computed checksum ...")."""

FULL_MARKS = ("No space left", "File too large", "Disk quota exceeded")
"""Words of the OS errors that mean a write did not fit (a full disk, a file-size limit, a quota)."""


def is_lock_conflict(exc: BaseException) -> bool:
    """Did DuckDB refuse the file because another process holds it? (Not any message with 'lock'
    in it: "checksum ... in block at" is damage, not a lock.)"""
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text or "lock on file" in text


def damage_reason(exc: BaseException, path: Path | None = None) -> str | None:
    """DuckDB's words when `exc` says the store's file is damaged, else None. With `path`, an
    error that names another file (a person's own SQL reading a broken CSV, say) is not the store's."""
    text = str(exc)
    if not any(m in text for m in DAMAGE_MARKS):
        return None
    if path is not None and 'file "' in text and str(path) not in text and str(path.resolve()) not in text:
        return None
    return text.splitlines()[0][:300]


def is_full(exc: BaseException) -> bool:
    """Did `exc` come from a write that did not fit on the disk (or under a file-size limit)?"""
    return any(m in str(exc) for m in FULL_MARKS)


def damaged(path: Path, reason: str) -> StoreError:
    """The one error every command gives for a damaged store."""
    return StoreError(f"{path}: store is damaged ({reason})", hint=DAMAGED_HINT)


def length_problem(con, path: Path) -> str | None:
    """Why the file is too short for the blocks in use that its header declares (a truncated copy),
    or None. A lower bound only: DuckDB may cut free blocks off the file's end, so the declared
    total is no bound, while every used block lies inside a whole file."""
    size = con.execute("SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()").fetchone()
    if size is None:
        return None
    needed = HEADER_BYTES + int(size[0]) * int(size[1])
    actual = path.stat().st_size
    if actual < needed:
        return f"the file has {actual:,} bytes, and the {int(size[1])} blocks in use its header declares need {needed:,}: truncated"
    return None


@dataclass(frozen=True)
class TableCheck:
    """One table of the store, read in full: its rows, or the error that stopped the read."""

    table: str
    rows: int | None
    error: str | None = None


@dataclass(frozen=True)
class StoreCheck:
    """What `harness store check` found."""

    path: Path
    tables: tuple[TableCheck, ...]
    problem: str | None = None
    """A problem with the file as a whole (not a DuckDB file, truncated), if any."""

    @property
    def ok(self) -> bool:
        return self.problem is None and all(t.error is None for t in self.tables)


def retry_while_locked(action, wait_s: float):
    """`action()`, tried again (with backoff, up to `wait_s` seconds) while another process holds
    the file: a run holds it only for the instant of a commit."""
    import duckdb

    deadline, delay = time.monotonic() + wait_s, 0.02
    while True:
        try:
            return action()
        except duckdb.Error as exc:
            if not is_lock_conflict(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def check_store(path: Path, wait_s: float = 60.0, config: dict | None = None) -> StoreCheck:
    """Read every row of every table (a hash of each whole row, so every column's blocks are read
    and their checksums verified). Never raises for a damaged file: the result says what failed.
    `config`: DuckDB's connection settings (the store's, from `duckdb_config()`)."""
    import duckdb

    if not path.is_file():
        raise StoreError(f"{path}: no store here", hint="pass the store with --store")
    try:
        con = retry_while_locked(lambda: duckdb.connect(str(path), read_only=True, config=config or {}), wait_s)
    except duckdb.Error as exc:
        if is_lock_conflict(exc):
            raise StoreError(f"{path}: in use by another process for longer than {wait_s:.0f} s",
                             hint="run the check when the writer is done") from None
        reason = damage_reason(exc)
        if reason is None:
            raise StoreError(f"{path}: cannot open the store: {str(exc).splitlines()[0]}") from None
        return StoreCheck(path, (), reason)
    try:
        problem = length_problem(con, path)
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                                            "AND table_catalog = current_database() ORDER BY table_name").fetchall()]
        checks = []
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'  # a name read from the catalog, not user input
            try:
                n = con.execute(f"SELECT count(hash(t)) FROM {quoted} AS t").fetchone()[0]
                checks.append(TableCheck(table, int(n)))
            except duckdb.Error as exc:
                checks.append(TableCheck(table, None, str(exc).splitlines()[0][:300]))
        return StoreCheck(path, tuple(checks), problem)
    finally:
        con.close()


def backup_store(path: Path, out: Path, wait_s: float = 60.0, config: dict | None = None) -> StoreCheck:
    """A consistent copy of the store at `out` (new file), taken from one read-only snapshot, so
    readers go on meanwhile and a writer's commit waits only for the copy. Written to a temporary
    file, checked in full, then renamed into place; nothing is left at `out` on any error."""
    import duckdb

    if out.exists():
        raise StoreError(f"{out}: already exists; a backup is written to a new file", hint="pass another path, or remove it first")
    if not out.parent.is_dir():
        raise StoreError(f"{out}: its folder {out.parent} does not exist", hint="create the folder, or pass another path")
    source = check_store(path, wait_s, config)  # a damaged store is refused before anything is copied
    if not source.ok:
        raise damaged(path, source.problem or next(f"table {t.table}: {t.error}" for t in source.tables if t.error))
    tmp = temporary_name(out)
    try:
        con = duckdb.connect(config=config or {})
        try:
            literal = "'" + str(path).replace("'", "''") + "'"  # ATTACH takes no bound parameters
            retry_while_locked(lambda: con.execute(f"ATTACH {literal} AS src (READ_ONLY)"), wait_s)
            con.execute("ATTACH '" + str(tmp).replace("'", "''") + "' AS dst")
            con.execute("COPY FROM DATABASE src TO dst")
            con.execute("DETACH dst")
        finally:
            con.close()
        copy = check_store(tmp, wait_s, config)
        if not copy.ok:
            raise StoreError(f"{out}: the copy does not read back whole; nothing was kept", hint="check the disk, then try again")
        os.replace(tmp, out)
    except duckdb.Error as exc:
        if is_full(exc):
            raise StoreError(f"{out}: the disk is full; no backup was written", hint="free some space, or back up to another disk") from None
        raise StoreError(f"{out}: cannot write the backup: {str(exc).splitlines()[0]}", hint="pass another path") from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return StoreCheck(out, copy.tables)
