"""Faults of the store's file and disk: damaged stores are recognised (`harness store check`), a
backup is consistent while readers read, a full disk fails cleanly and a rerun completes, and
people's own SQL (`harness sql`) never fails while a run commits."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from harness.cli import main
from tests.conftest import REPO, write

N_ITEMS = 600


def _workspace(tmp_path: Path, n: int = N_ITEMS, delay: float = 0.0, words: int = 30) -> tuple[Path, Path, Path]:
    write(tmp_path / "d.jsonl", "".join(json.dumps({"id": f"i{k:04d}", "topic": f"topic {k} " + "word " * words}) + "\n"
                                        for k in range(n)))
    suite = write(tmp_path / "s.yaml", """
        name: faults
        tasks:
          - name: work
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "Brief: {{ topic }}", reference: "{{ topic }}"}
            generation: {max_new_tokens: 8, batch_size: 4}
            scorers: [exact_match]
        """)
    models = write(tmp_path / "m.yaml", f"base: {{name: f, source: fake, options: {{delay_s: {delay}}}}}\n")
    return suite, models, tmp_path / "h.duckdb"


def _rows(store: Path) -> dict[str, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "samples", "scores")}
    finally:
        con.close()


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A store holding one finished run (a smaller one than the full-disk test's)."""
    suite, models, store = _workspace(tmp_path_factory.mktemp("stored"), n=40)
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    return store


DAMAGE = {
    "truncated to half": lambda data: data[:len(data) // 2],
    "zero-filled": lambda data: bytes(len(data)),
    "blocks zeroed": lambda data: data[:12288] + bytes(len(data) - 12288),
    "a foreign file": lambda data: b"PK\x03\x04" + bytes(range(256)) * 64,
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_store_check_finds_each_kind_of_damage_and_passes_a_whole_store(stored, tmp_path, capsys, kind):
    """`harness store check` reads every table: exit 0 with the row counts on a whole store, exit
    2 "store is damaged" with what to do on each kind of damaged copy, never a traceback."""
    assert main(["store", "check", "--store", str(stored)]) == 0
    out = capsys.readouterr().out
    assert "whole (" in out and "samples" in out and "40 rows" in out
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(DAMAGE[kind](stored.read_bytes()))
    assert main(["store", "check", "--store", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: store is damaged" in err and "harness store backup" in err and "Traceback" not in err
    # and every other command says the same, before doing anything
    assert main(["list", "runs", "--store", str(bad)]) == 2
    assert "store is damaged" in capsys.readouterr().err


def test_backup_is_consistent_while_readers_read_and_refuses_what_it_cannot_do(stored, tmp_path, capsys):
    """Readers (plain read-only DuckDB connections and `harness sql`) go on during the backup; the
    copy reads back whole with the same rows; an existing target and a damaged source are exit 2,
    and no temporary file is left anywhere."""
    # Readers in another process, as people's notebooks are: plain read-only connections in a loop
    reader = subprocess.Popen([sys.executable, "-c", READER, str(stored)], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    out = tmp_path / "backup.duckdb"
    assert main(["store", "backup", str(out), "--store", str(stored)]) == 0
    reads, errors = json.loads(reader.communicate(timeout=30)[0])
    assert errors == [] and reads > 0
    assert "read back whole" in capsys.readouterr().out
    assert _rows(out) == _rows(stored)
    assert main(["sql", "SELECT count(*) AS n FROM samples", "--store", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 40}]

    assert main(["store", "backup", str(out), "--store", str(stored)]) == 2
    assert "already exists" in capsys.readouterr().err
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(DAMAGE["blocks zeroed"](stored.read_bytes()))
    assert main(["store", "backup", str(tmp_path / "b2.duckdb"), "--store", str(bad)]) == 2
    assert "store is damaged" in capsys.readouterr().err
    assert not (tmp_path / "b2.duckdb").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


READER = """
import duckdb, json, sys, time
path, reads, errors = sys.argv[1], 0, []
print("ready", flush=True)
end = time.time() + 1.5
while time.time() < end:
    try:
        con = duckdb.connect(path, read_only=True)
        con.execute("SELECT count(*) FROM samples").fetchone()
        con.close()
        reads += 1
    except duckdb.Error as exc:
        errors.append(str(exc))
print(json.dumps([reads, errors]))
"""


def _limited(limit: int):
    """A child process whose files can't grow past `limit` bytes (a full disk, as the process
    sees it): writes fail with EFBIG instead of the default SIGXFSZ kill."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("where, n, words, limit", [
    ("journal", 4000, 2, 1_000_000),   # many small items: the journal of finished items fills up first
    ("commit", 300, 400, 400_000),     # long prompts: the task's final transaction does
])
def test_a_full_disk_fails_cleanly_leaves_the_store_as_it_was_and_a_rerun_completes(tmp_path, where, n, words, limit):
    """A run whose files can't grow past a limit (RLIMIT_FSIZE: the test machine can't mount a
    small filesystem) fails with exit 2 naming the store and "disk is full", no traceback; the
    store holds what it held before; a rerun with space completes with every item once."""
    suite, models, store = _workspace(tmp_path, n=n, words=words)
    small = write(tmp_path / "small.jsonl", "".join(json.dumps({"id": f"s{k}", "topic": f"t{k}"}) + "\n" for k in range(4)))
    first = write(tmp_path / "first.yaml", (tmp_path / "s.yaml").read_text().replace("d.jsonl", small.name).replace("faults", "first"))
    assert main(["run", str(first), "--models", str(models), "--store", str(store)]) == 0
    before = _rows(store)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0"}
    args = [sys.executable, "-m", "harness", "run", str(suite), "--models", str(models), "--store", str(store)]
    full = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited(limit))
    assert full.returncode == 2, full.stderr[-2000:]
    assert f"{store}: the disk is full" in full.stderr and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert _rows(store) == before  # nothing of the failed task reached what reports read
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    con = duckdb.connect(str(store), read_only=True)
    got, distinct = con.execute("""SELECT count(*), count(DISTINCT sample_id) FROM samples JOIN runs USING (run_id)
                                 WHERE task = 'work' AND suite = 'faults'""").fetchone()
    con.close()
    assert got == distinct == len((tmp_path / "d.jsonl").read_text().splitlines())
    assert not store.with_name(store.name + ".journal").exists()


def test_harness_sql_never_fails_while_a_run_commits(tmp_path, capsys):
    """A run commits about once a second while `harness sql` queries the store in a loop: every
    query answers (it waits out a commit instead of failing with a lock conflict)."""
    suite, models, store = _workspace(tmp_path, n=120, delay=0.01)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0", "HARNESS_CHECKPOINT_SECONDS": "0.1",
           "HARNESS_CHECKPOINT_MIN_SECONDS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(suite), "--models", str(models), "--store", str(store)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    codes = []
    try:
        while proc.poll() is None or not codes:
            if store.exists():
                codes.append(main(["sql", "SELECT count(*) FROM checkpoints", "--store", str(store), "--format", "csv"]))
            time.sleep(0.01)
    finally:
        proc.wait(timeout=120)
    capsys.readouterr()
    assert proc.returncode == 0
    assert len(codes) >= 5 and set(codes) == {0}, codes


def test_harness_sql_prints_rows_and_refuses_writes_and_bad_sql(stored, capsys):
    """Rows as a table, CSV or JSON; a statement that would write and SQL that does not parse or
    bind are exit 2 naming the query, and the store is unchanged."""
    before = _rows(stored)
    assert main(["sql", "SELECT task, count(*) AS n FROM samples JOIN runs USING (run_id) GROUP BY task", "--store", str(stored)]) == 0
    out = capsys.readouterr().out
    assert "work" in out and "40" in out and "(1 row)" in out
    assert main(["sql", "SELECT 1 AS one, 'x,y' AS two", "--store", str(stored), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["one,two", '1,"x,y"']
    for query, said in (("DELETE FROM samples", "read-only"), ("SELEKT 1", "syntax error"),
                        ("SELECT checksum FROM runs", "checksum")):
        assert main(["sql", query, "--store", str(stored)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("Error: query: ") and said in err and "damaged" not in err, err
    assert _rows(stored) == before
