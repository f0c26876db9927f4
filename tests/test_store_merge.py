"""`harness store merge` and `harness store import`: several machines' stores into one report.
Overlapping runs are deduplicated by run key, distinct ones kept, a conflicting copy reported and
left out, and nothing is ever overwritten."""

from __future__ import annotations

import duckdb
import numpy as np

from harness.cli import main
from harness.store.db import Store
from tests.conftest import write
from tests.test_pairing import SUITE, items
from tests.test_report_and_gate import plant


def _run(ws, variant: str, store: str) -> None:
    assert main(["run", str(ws / "s.yaml"), "--models", str(ws / f"{variant}.yaml"), "--store", str(ws / store)]) == 0


def _runs(path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("SELECT variant, run_key, n_samples FROM runs ORDER BY variant").fetchall()
    con.close()
    return rows


def test_two_machines_stores_merge_into_one_that_gates(tmp_path, capsys):
    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 20)
    write(tmp_path / "a.yaml", "base: {name: a, source: fake, options: {favour: [A]}}\n")
    write(tmp_path / "b.yaml", "base: {name: b, source: fake, options: {favour: [B]}}\n")
    _run(tmp_path, "a", "m1.duckdb")  # machine 1: the baseline
    _run(tmp_path, "a", "m2.duckdb")  # machine 2: the baseline again (the same content) and the candidate
    _run(tmp_path, "b", "m2.duckdb")
    capsys.readouterr()
    merged = tmp_path / "all.duckdb"
    assert main(["store", "merge", str(tmp_path / "m1.duckdb"), str(tmp_path / "m2.duckdb"), "--into", str(merged)]) == 0
    out = capsys.readouterr().out
    assert "m1.duckdb: 1 run(s) added, 0 duplicate(s)" in out and "m2.duckdb: 1 run(s) added, 1 duplicate(s) left out" in out
    assert [r[0] for r in _runs(merged)] == ["a", "b"]
    con = duckdb.connect(str(merged), read_only=True)
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == sum(
        duckdb.connect(str(tmp_path / p), read_only=True).execute("SELECT count(*) FROM scores WHERE run_id IN "
                                                                  "(SELECT run_id FROM runs WHERE variant = ?)", [v]).fetchone()[0]
        for p, v in (("m1.duckdb", "a"), ("m2.duckdb", "b")))
    con.close()
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [a, b]\nstatistics: {resamples: 200}\ngate:\n"
                                        "  - {variant: b, baseline: a, task: quiz, metric: acc, max_drop: 0.1}\n")
    # b always answers B where the gold answer is A: the union has both runs, paired, and fails b
    assert main(["gate", str(report), "--store", str(merged)]) == 1
    assert capsys.readouterr().out.startswith("FAIL")
    # the sources are untouched and the target is never overwritten
    assert main(["store", "merge", str(tmp_path / "m1.duckdb"), "--into", str(merged)]) == 2
    assert "exists; a merge writes a new store and overwrites nothing" in capsys.readouterr().err


def test_a_conflicting_copy_is_reported_and_left_out(tmp_path, capsys):
    rng = np.random.default_rng(0)
    with Store(tmp_path / "a.duckdb") as store:
        plant(store, "v", "serving", {"latency_s": list(rng.uniform(0.1, 0.2, 10))})
    with Store(tmp_path / "b.duckdb") as store:  # the same run (key and variant), timed again: other numbers
        plant(store, "v", "serving", {"latency_s": list(rng.uniform(0.1, 0.2, 10))})
        plant(store, "w", "serving", {"latency_s": list(rng.uniform(0.1, 0.2, 10))})
    capsys.readouterr()
    assert main(["store", "merge", str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb"), "--into", str(tmp_path / "c.duckdb")]) == 0
    captured = capsys.readouterr()
    assert "b.duckdb: 1 run(s) added, 0 duplicate(s) left out, 1 conflict(s)" in captured.out
    assert "conflict: v: run v-serving has the same key as run v-serving of an earlier store but different scores" in captured.err
    con = duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True)
    kept = sorted(r[0] for r in con.execute("SELECT value FROM scores WHERE run_id = 'v-serving'").fetchall())
    con.close()
    original = duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True)
    assert kept == sorted(r[0] for r in original.execute("SELECT value FROM scores WHERE run_id = 'v-serving'").fetchall())
    original.close()


def test_bad_merges_are_clear_errors_and_write_nothing(tmp_path, capsys):
    with Store(tmp_path / "a.duckdb") as store:
        plant(store, "v", "t", {"acc": [1.0, 0.0]})
    target = tmp_path / "c.duckdb"
    for args, message in [([str(tmp_path / "nope.duckdb")], "no such store"),
                          ([str(tmp_path / "a.duckdb"), str(tmp_path / "a.duckdb")], "named twice")]:
        assert main(["store", "merge", *args, "--into", str(target)]) == 2
        assert message in capsys.readouterr().err and not target.exists()


def test_a_snapshot_rebuilds_the_store(tmp_path, capsys):
    with Store(tmp_path / "a.duckdb") as store:
        plant(store, "v", "t", {"acc": [1.0, 0.0, 1.0]})
    assert main(["export", str(tmp_path / "snap"), "--store", str(tmp_path / "a.duckdb")]) == 0
    assert main(["store", "import", str(tmp_path / "snap"), "--into", str(tmp_path / "b.duckdb")]) == 0
    assert _runs(tmp_path / "b.duckdb") == _runs(tmp_path / "a.duckdb")
    assert main(["store", "import", str(tmp_path), "--into", str(tmp_path / "c.duckdb")]) == 2
    assert "not a snapshot" in capsys.readouterr().err


def test_a_judge_run_over_a_duplicate_names_the_copy_kept(tmp_path):
    """Machine 2 judged its own copy of a run that machine 1 also has: in the merged store the
    judge run points at machine 1's copy, which is the one kept."""
    import json

    with Store(tmp_path / "a.duckdb") as store:
        plant(store, "v", "t", {"acc": [1.0, 0.0, 1.0]})
        store.con.execute("UPDATE runs SET run_id = 'machine1-run' WHERE run_id = 'v-t'")
        store.con.execute("UPDATE scores SET run_id = 'machine1-run' WHERE run_id = 'v-t'")
    with Store(tmp_path / "b.duckdb") as store:
        plant(store, "v", "t", {"acc": [1.0, 0.0, 1.0]})
        plant(store, "v", "rating", {"judge_rating": [7.0, 6.0, 8.0]})
        store.con.execute("UPDATE runs SET judge = ? WHERE run_id = 'v-rating'",
                          [json.dumps({"backend": "local", "judged_run": "v-t", "baseline_run": None})])
    assert main(["store", "merge", str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb"), "--into", str(tmp_path / "c.duckdb")]) == 0
    con = duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True)
    judged = con.execute("SELECT judge->>'$.judged_run' FROM runs WHERE run_id = 'v-rating'").fetchone()[0]
    con.close()
    assert judged == "machine1-run"
