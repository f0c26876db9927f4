"""The store: migrations recorded once, one transaction per task, read-only readers."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from harness.errors import StoreError
from harness.store.db import RunRow, SampleRow, ScoreRow, open_store
from harness.store.migrations import MIGRATIONS


def run_row(run_id="r1"):
    return RunRow(run_id=run_id, run_key="k", suite="s", suite_hash="h", task="t", task_type="generation", metrics="[]", variant="v",
                  variant_key="vk", backend="fake", device="none", dtype="none", data_hash="d", prompt_hash="p",
                  generation_config=None, seed=1, harness_version="0", git_commit=None, started_at=datetime(2026, 1, 1), last_used_at=datetime(2026, 1, 1),
                  wall_s=1.0, n_samples=1)


def test_migrations_apply_once(tmp_path):
    path = tmp_path / "h.duckdb"
    open_store(path).close()
    with open_store(path) as store:
        rows = store.query("SELECT id, name FROM schema_migrations ORDER BY id")
    assert [r["name"] for r in rows] == [name for name, _ in MIGRATIONS]


def test_task_write_is_atomic(tmp_path):
    with open_store(tmp_path / "h.duckdb") as store:
        bad_scores = [ScoreRow("r1", "0", "rouge", "rougeL", 0.5), ScoreRow("r1", "0", "rouge", "rougeL", 0.6)]  # duplicate key
        with pytest.raises(duckdb.ConstraintException):
            store.write_task_run(run_row(), [SampleRow("r1", "0", "p", "ref", "out", "{}")], bad_scores)
        assert store.query("SELECT count(*) AS n FROM runs")[0]["n"] == 0
        assert store.query("SELECT count(*) AS n FROM samples")[0]["n"] == 0
        store.write_task_run(run_row(), [SampleRow("r1", "0", "p", "ref", "out", "{}")], bad_scores[:1])
        assert store.query("SELECT value FROM scores WHERE run_id = ?", ["r1"])[0]["value"] == 0.5


def test_read_only_store_must_exist(tmp_path):
    with pytest.raises(StoreError, match="no results store"):
        open_store(tmp_path / "missing.duckdb", read_only=True)


def test_parameters_are_bound_not_formatted(tmp_path):
    with open_store(tmp_path / "h.duckdb") as store:
        store.write_task_run(run_row(), [], [])
        hostile = "v' OR '1'='1"
        assert store.query("SELECT * FROM runs WHERE variant = ?", [hostile]) == []
        assert store.variant(hostile) is None


# -- diagnostics: each way a store path can be wrong gets its own message, exit 2 -------------------

def _sqlite(path):
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()


@pytest.mark.parametrize("make, message, hint", [
    (lambda p: p.mkdir(), "is a directory, not a store file", "pass a file path"),
    (lambda p: _sqlite(p), "is an SQLite database, not a DuckDB store", "--store"),
    (lambda p: p.write_bytes(b"\x00" * 4096), "store is damaged (not a DuckDB database file", "start a new store"),
    (lambda p: p.write_bytes(b"DUCK"), "store is damaged (not a DuckDB database file", "start a new store"),
])
def test_store_paths_that_are_not_stores(tmp_path, capsys, make, message, hint):
    from harness.cli import main

    path = tmp_path / "h.duckdb"
    make(path)
    for args in (["list", "runs"], ["list", "variants"]):
        assert main([*args, "--store", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and hint in err and "another harness process" not in err


def test_store_under_a_file_and_remote_paths_are_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is a file, so no store can be created below it"):
        open_store(tmp_path / "afile" / "h.duckdb")
    for remote in ("md:my_db", "s3://bucket/h.duckdb"):
        with pytest.raises(StoreError, match="remote stores are refused"):
            open_store(remote)


def _hold(path, seconds: float, read_only: bool = False):
    """Another process holding the DuckDB file (a writer, or a read-only SQL session) for `seconds`."""
    import subprocess
    import sys

    code = (f"import duckdb, time; c = duckdb.connect({str(path)!r}, read_only={read_only}); print('ok', flush=True); "
            f"time.sleep({seconds}); c.close()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ok"
    return holder


def test_a_locked_store_names_the_other_process(tmp_path, monkeypatch):
    path = tmp_path / "h.duckdb"
    open_store(path).close()
    monkeypatch.setenv("HARNESS_STORE_WAIT_S", "0.3")
    holder = _hold(path, 30)
    try:
        with pytest.raises(StoreError, match=rf"in use by another process \(process {holder.pid}\)") as err:
            open_store(path)
        assert "harness export" in err.value.hint
    finally:
        holder.kill()
        holder.wait()
    open_store(path).close()  # free again


def test_a_memory_limit_bounds_duckdb(tmp_path, monkeypatch):
    """HARNESS_STORE_MEMORY becomes DuckDB's memory_limit for every connection to the store."""
    path = tmp_path / "h.duckdb"
    open_store(path).close()
    for raw, expected in [("64MB", "61.0 MiB"), ("1GiB", "1.0 GiB")]:
        monkeypatch.setenv("HARNESS_STORE_MEMORY", raw)
        with open_store(path, read_only=True) as store:
            assert store.query("SELECT current_setting('memory_limit') AS m")[0]["m"] == expected


def test_opening_waits_for_a_short_holder(tmp_path, monkeypatch, caplog):
    """A commit that meets a reader (or a reader that meets a commit) waits instead of failing."""
    path = tmp_path / "h.duckdb"
    open_store(path).close()
    monkeypatch.setenv("HARNESS_STORE_WAIT_S", "20")
    holder = _hold(path, 1.0, read_only=True)
    with open_store(path) as store:
        assert store.query("SELECT count(*) AS n FROM runs")[0]["n"] == 0
    holder.wait()
    assert "waiting up to" in caplog.text


def test_a_writer_session_lets_readers_in_between_commits(tmp_path, monkeypatch):
    """`harness run` holds the store only while it commits: a reader (another process, as
    `harness report` would be) opens it mid-run, and a second writer session is refused by name."""
    import os
    import subprocess
    import sys

    from harness.store.db import Store

    path = tmp_path / "h.duckdb"
    monkeypatch.setenv("HARNESS_STORE_WAIT_S", "0.3")
    with Store(path, hold=False) as writer:
        writer.write_task_run(run_row("r1"), [], [])
        reader = subprocess.run([sys.executable, "-c", f"from harness.store.db import open_store; s = open_store({str(path)!r}, read_only=True); "
                                 "print(s.query('SELECT count(*) AS n FROM runs')[0]['n'])"], capture_output=True, text=True, timeout=60)
        assert reader.returncode == 0, reader.stderr
        assert reader.stdout.strip() == "1"
        with pytest.raises(StoreError, match=rf"another harness run or build \(process {os.getpid()}\) is writing"):
            Store(path, hold=False)
        holder = _hold(path, 30, read_only=True)  # a long read-only SQL session
        try:
            with pytest.raises(StoreError, match="in use by another process"):
                writer.write_task_run(run_row("r2"), [], [])
        finally:
            holder.kill()
            holder.wait()
        writer.write_task_run(run_row("r2"), [], [])
    with open_store(path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM runs")[0]["n"] == 2


def test_export_writes_a_queryable_parquet_snapshot(tmp_path, capsys):
    from harness.cli import main

    path = tmp_path / "h.duckdb"
    with open_store(path) as store:
        store.write_task_run(run_row("r1"), [SampleRow("r1", "a", "p", None, "o", "{}")], [ScoreRow("r1", "a", "s", "m", 1.0)])
    assert main(["export", str(tmp_path / "snap"), "--store", str(path)]) == 0
    con = duckdb.connect()
    assert con.execute(f"SELECT value FROM '{tmp_path}/snap/scores.parquet'").fetchall() == [(1.0,)]
    rebuilt = duckdb.connect(str(tmp_path / "copy.duckdb"))
    rebuilt.execute(f"IMPORT DATABASE '{tmp_path}/snap'")
    assert rebuilt.execute("SELECT run_id FROM latest_runs").fetchall() == [("r1",)]
    assert main(["export", str(tmp_path / "snap"), "--store", str(path)]) == 2  # never over an earlier snapshot
    assert "exists and is not empty" in capsys.readouterr().err


def test_newer_and_older_schemas(tmp_path):
    path = tmp_path / "h.duckdb"
    open_store(path).close()
    # older: as written before migration 003 (its record and its columns gone); a reader migrates it
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM schema_migrations WHERE name = '003_partial_runs_and_provenance'")
    for column in ("partial", "n_items_total", "task_config", "suite_tasks", "libraries"):
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    con.close()
    with open_store(path, read_only=True) as store:
        assert [r["name"] for r in store.query("SELECT name FROM schema_migrations ORDER BY id")] == [n for n, _ in MIGRATIONS]
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES (99, '099_from_the_future', now())")
    con.close()
    for read_only in (True, False):
        with pytest.raises(StoreError, match="written by a newer harness .*099_from_the_future"):
            open_store(path, read_only=read_only)


def test_a_failed_commit_reports_its_own_cause(tmp_path, monkeypatch):
    """A rollback after a failed transaction must not replace the real error (a full disk used to
    surface as 'cannot rollback - no transaction is active')."""
    with open_store(tmp_path / "h.duckdb") as store:
        insert = store._insert

        def full_disk(table, rows):
            insert(table, rows)
            if table == "run_stats":
                store.con.execute("ROLLBACK")  # the failed write has already ended the transaction
                raise duckdb.IOException("IO Error: Could not write file: No space left on device")

        monkeypatch.setattr(store, "_insert", full_disk)
        with pytest.raises(StoreError, match="the disk is full; nothing of this task was stored"):
            store.write_task_run(run_row(), [], [])
        assert store.query("SELECT count(*) AS n FROM runs")[0]["n"] == 0


def test_item_turn_and_figure_parts_are_columns(tmp_path, scripted_latency):
    """Sample identity and run-figure names are never parsed by SQL users: item, turn and
    concurrency are sample columns; a figure's family and its concurrency, percentile and bucket
    are run_stats columns."""
    from harness.cli import main
    from tests.conftest import write

    store = tmp_path / "h.duckdb"
    assert scripted_latency(store) == 0
    items = [{"id": f"m{k}", "turns": [f"first {k}", f"second {k}"]} for k in range(3)]
    write(tmp_path / "t.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    suite = write(tmp_path / "chat.yaml", """
        name: chat
        tasks:
          - name: talk
            type: generation
            data: {format: jsonl, path: t.jsonl}
            id_field: id
            multi_turn: {turns_field: turns, references_field: null}
            prompt: {template: "{{ turn }}"}
            generation: {max_new_tokens: 4}
            scorers: [exact_match]
        """)
    assert main(["run", str(suite), "--models", str(tmp_path / "m.yaml"), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    turns = con.execute("SELECT sample_id, item_id, turn FROM samples s JOIN runs USING (run_id) "
                        "WHERE task = 'talk' ORDER BY sample_id").fetchall()
    assert turns[:2] == [("m0#t1", "m0", 1), ("m0#t2", "m0", 2)] and len(turns) == 6
    requests = con.execute("SELECT item_id, concurrency, count(*) FROM samples JOIN runs USING (run_id) "
                           "WHERE task = 'serving' GROUP BY ALL ORDER BY ALL").fetchall()
    assert requests[:2] == [("i0", 1, 1), ("i0", 5, 1)] and len(requests) == 20
    figures = {r[0]: r[1:] for r in con.execute("SELECT metric, family, concurrency, percentile, bucket FROM run_stats").fetchall()}
    con.close()
    assert figures["throughput_tokens_per_s_c5"] == ("throughput_tokens_per_s_c{c}", 5, None, None)
    assert figures["latency_s_p95_long"] == ("latency_s_p{q}_{bucket}", None, 95.0, "long")
    assert figures["peak_memory_mb"] == ("peak_memory_mb", None, None, None)


def test_the_migration_fills_the_columns_of_older_rows(tmp_path):
    """A store written before migration 008 keeps composite ids and figure names; migrating
    splits the ids harness wrote (turns of multi-turn runs and the judge runs over them, latency
    requests), leaves a user's own id alone, and files old figures under their declarations
    (lm-eval's figures are its own names and keep none)."""
    path = tmp_path / "h.duckdb"
    open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM schema_migrations WHERE name = '008_structured_item_and_figure_keys'")
    for column in ("item_id", "turn", "concurrency"):
        con.execute(f"ALTER TABLE samples DROP COLUMN {column}")
    for column in ("family", "concurrency", "percentile", "bucket", "label", "dimension"):
        con.execute(f"ALTER TABLE run_stats DROP COLUMN {column}")
    runs = [("chat", "generation", '{"multi_turn": {"turns_field": "turns"}}', None),
            ("plain", "generation", '{"multi_turn": null}', None),
            ("judged", "judge_single", "{}", '{"judged_run": "chat"}'),
            ("serve", "latency", "{}", None), ("emo", "classification", "{}", None), ("lm", "lm_eval", "{}", None)]
    for run_id, task_type, config, judge in runs:
        con.execute("INSERT INTO runs (run_id, run_key, suite, suite_hash, task, task_type, metrics, variant, variant_key, backend, "
                    "data_hash, prompt_hash, seed, harness_version, started_at, last_used_at, wall_s, n_samples, task_config, judge) "
                    "VALUES (?, ?, 's', 'h', ?, ?, '[]', 'v', 'k', 'fake', 'd', 'p', 0, '0.4.0', now(), now(), 0, 1, ?, ?)",
                    [run_id, run_id, run_id, task_type, config, judge])
    con.execute("INSERT INTO samples (run_id, sample_id, prompt, details) VALUES ('chat', 'q7#t2', 'p', '{}'), "
                "('judged', 'q7#t2', 'p', '{}'), ('plain', 'mine#t2', 'p', '{}'), ('serve', 'q8@c4', 'p', '{}')")
    con.execute("INSERT INTO run_stats (run_id, metric, value, n) VALUES ('serve', 'requests_per_s_c4', 1, 1), "
                "('serve', 'latency_s_p50_short', 1, 1), ('emo', 'f1_neg', 1, 1), ('lm', 'f1_strict', 1, 1), ('emo', 'macro_f1', 1, 1)")
    con.close()
    with open_store(path, read_only=True) as store:
        samples = store.query("SELECT run_id, sample_id, item_id, turn, concurrency FROM samples ORDER BY run_id")
        stats = store.query("SELECT metric, family, concurrency, percentile, bucket, label FROM run_stats ORDER BY metric")
    assert [tuple(r.values()) for r in samples] == [("chat", "q7#t2", "q7", 2, None), ("judged", "q7#t2", "q7", 2, None),
                                                    ("plain", "mine#t2", "mine#t2", None, None), ("serve", "q8@c4", "q8", None, 4)]
    assert [tuple(r.values()) for r in stats] == [
        ("f1_neg", "f1_{label}", None, None, None, "neg"), ("f1_strict", None, None, None, None, None),
        ("latency_s_p50_short", "latency_s_p{q}_{bucket}", None, 50.0, "short", None), ("macro_f1", "macro_f1", None, None, None, None),
        ("requests_per_s_c4", "requests_per_s_c{c}", 4, None, None, None)]
