"""The store: migrations recorded once, one transaction per task, read-only readers."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from harness.errors import StoreError
from harness.store import open_store
from harness.store.db import RunRow, SampleRow, ScoreRow
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
