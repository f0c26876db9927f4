"""Item-level resume: a run killed mid-task continues from its checkpoint, asking the backend
only for the work not yet stored, and reports never see a task until all of it is stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, write

N_ITEMS = 24

SUITES = {
    "generation": """
        name: resume
        tasks:
          - name: work
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "Brief: {{ topic }}", reference: "{{ topic }}"}
            generation: {max_new_tokens: 8, batch_size: 2}
            scorers: [exact_match, rouge]
        """,
    "multiple_choice": """
        name: resume
        tasks:
          - name: work
            type: multiple_choice
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "Q: {{ topic }}\\nA:"}
            multiple_choice: {choices_field: options, answer_field: gold, continuation: text}
            scorers: [acc]
        """,
    "latency": """
        name: resume
        tasks:
          - name: work
            type: latency
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ topic }}"}
            generation: {max_new_tokens: 4}
            latency: {concurrency: [1, 3], warmup: 0}
        """,
}


def _workspace(tmp_path: Path, kind: str, delay: float) -> tuple[Path, Path, Path]:
    items = [{"id": f"i{k:02d}", "topic": f"topic {k} " + "word " * (k % 5), "options": ["yes", "no", "maybe"], "gold": k % 3}
             for k in range(N_ITEMS)]
    write(tmp_path / "d.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    log = tmp_path / "calls.log"
    models = write(tmp_path / "m.yaml", f"base: {{name: fake-r, source: fake, options: {{delay_s: {delay}, call_log: '{log}'}}}}\n")
    suite = write(tmp_path / "s.yaml", SUITES[kind])
    return suite, models, log


def _units_asked(log: Path) -> int:
    """Prompts or continuations the backend was asked for, over every process so far."""
    if not log.exists():
        return 0
    return sum(int(line.split()[1]) for line in log.read_text().splitlines())


def _journaled(store: Path) -> set[str]:
    """The units a killed run journaled (whole lines only: a line cut short was in flight)."""
    journal = store.with_name(store.name + ".journal")
    if not journal.exists():
        return set()
    from harness.store.journal import Journal

    return {r["unit"] for r in Journal(store).records() if "unit" in r}


def _table_counts(store: Path) -> dict[str, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "samples", "scores", "checkpoints")}
    finally:
        con.close()


# The work a task asks of the backend: one prompt per item (generation), three continuations per
# item (multiple choice), every item at each of two concurrency levels (latency)
WORK = {"generation": N_ITEMS, "multiple_choice": 3 * N_ITEMS, "latency": 2 * N_ITEMS}
# Checkpoint units: an item (generation, multiple choice) or a group of requests served together
# (latency: each item alone at concurrency 1, then groups of 3)
UNITS = {"generation": N_ITEMS, "multiple_choice": N_ITEMS, "latency": N_ITEMS + N_ITEMS // 3}


@pytest.mark.parametrize("kind", ["generation", "multiple_choice", "latency"])
def test_kill_9_mid_task_then_resume_asks_only_the_rest(tmp_path, kind):
    suite, models, log = _workspace(tmp_path, kind, delay=0.04)
    store = tmp_path / "h.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0", "HARNESS_CHECKPOINT_ITEMS": "2", "HARNESS_CHECKPOINT_MIN_SECONDS": "0"}
    args = [sys.executable, "-m", "harness", "run", str(suite), "--models", str(models), "--store", str(store)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    # Multiple choice asks for every option in one call (batched across items, as lm-eval
    # does) and checkpoints items as their options are scored: kill half-way through that call
    target = 1 if kind == "multiple_choice" else WORK[kind] // 2
    while _units_asked(log) < target and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    if kind == "multiple_choice":
        time.sleep(0.04 * WORK[kind] / 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    before = _units_asked(log)
    counts = _table_counts(store)
    assert counts["runs"] == counts["samples"] == counts["scores"] == 0  # no report sees a half task
    con = duckdb.connect(str(store), read_only=True)
    committed = {u for (u,) in con.execute("SELECT unit FROM checkpoints WHERE unit <> '__wall_s__'").fetchall()}
    con.close()
    stored = sorted(committed | _journaled(store))  # committed, or journaled and not committed yet
    assert committed <= set(stored)
    assert 0 < len(stored) < UNITS[kind], "the kill was not mid-task"

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resuming from a checkpoint" in done.stderr
    per_unit = {"generation": 1, "multiple_choice": 3, "latency": None}[kind]
    if per_unit is not None:
        assert _units_asked(log) - before == WORK[kind] - per_unit * len(stored)  # exactly the work not yet done
    else:  # a latency unit is a group of requests served together (1 at concurrency 1, 3 at 3)
        sizes = sum(1 if u.startswith("c1:") else 3 for u in stored)
        assert _units_asked(log) - before == WORK[kind] - sizes
    counts = _table_counts(store)
    assert counts["runs"] == 1 and counts["checkpoints"] == 0
    assert counts["samples"] == WORK[kind] // (3 if kind == "multiple_choice" else 1)
    con = duckdb.connect(str(store), read_only=True)
    dup = con.execute("SELECT count(*) FROM (SELECT sample_id FROM samples GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    resumed = con.execute("SELECT sample_id, output FROM samples ORDER BY sample_id").fetchall()
    con.close()
    assert dup == 0
    if kind != "latency":  # the same outputs as a run never interrupted (the fake backend is deterministic)
        fresh = tmp_path / "fresh.duckdb"
        subprocess.run([*args[:-1], str(fresh)], env=env, check=True, capture_output=True, timeout=120)
        con = duckdb.connect(str(fresh), read_only=True)
        assert con.execute("SELECT sample_id, output FROM samples ORDER BY sample_id").fetchall() == resumed
        con.close()


def test_multi_turn_resume_and_force_start_over(tmp_path, monkeypatch):
    """A crash in turn 2 of a multi-turn task: the rerun keeps turn 1 and the finished part of
    turn 2; --force discards the checkpoint and generates everything."""
    from harness.backends.fake import FakeBackend
    from harness.cli import main

    items = [{"id": f"m{k}", "turns": [f"first {k}", f"second {k}"]} for k in range(6)]
    write(tmp_path / "d.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    models = write(tmp_path / "m.yaml", "base: {name: fake-t, source: fake}\n")
    suite = write(tmp_path / "s.yaml", """
        name: chat
        tasks:
          - name: talk
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            multi_turn: {turns_field: turns, references_field: null}
            prompt: {template: "{{ turn }}"}
            generation: {max_new_tokens: 4, batch_size: 2}
            scorers: [exact_match]
        """)
    store = tmp_path / "h.duckdb"
    asked: list[int] = []
    real = FakeBackend.generate

    def crashing(self, prompts, config):
        if len(asked) == 4:  # turn 1 (3 batches) and one batch of turn 2 are done
            raise RuntimeError("power cut")
        asked.append(len(prompts))
        return real(self, prompts, config)

    monkeypatch.setenv("HARNESS_CHECKPOINT_ITEMS", "1")
    monkeypatch.setenv("HARNESS_CHECKPOINT_MIN_SECONDS", "0")
    monkeypatch.setattr(FakeBackend, "generate", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        main(["run", str(suite), "--models", str(models), "--store", str(store)])
    assert sum(asked) == 8 and _table_counts(store)["checkpoints"] == 8 + 1  # + the wall-time unit
    asked.clear()
    monkeypatch.setattr(FakeBackend, "generate", lambda self, prompts, config: asked.append(len(prompts)) or real(self, prompts, config))
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    assert sum(asked) == 4  # the rest of turn 2 only
    counts = _table_counts(store)
    assert counts["samples"] == 12 and counts["checkpoints"] == 0
    asked.clear()
    assert main(["run", str(suite), "--models", str(models), "--store", str(store), "--force"]) == 0
    assert sum(asked) == 12


def test_a_commit_blocked_by_a_reader_is_retried_with_the_next_one(tmp_path, monkeypatch):
    """A store held past the lock wait delays a checkpoint (the units stay pending) instead of
    stopping a long run; any other store error stops it."""
    from harness.errors import StoreError
    from harness.store.db import LOCKED, Store
    from harness.tasks.checkpoint import Checkpoint

    monkeypatch.setenv("HARNESS_CHECKPOINT_ITEMS", "2")
    monkeypatch.setenv("HARNESS_CHECKPOINT_MIN_SECONDS", "0")
    with Store(tmp_path / "h.duckdb", hold=False) as store:
        ckpt = Checkpoint(store, "key")
        put = store.checkpoint_put
        failures = [StoreError(f"h.duckdb: {LOCKED} (process 1)")]

        def flaky_put(run_key, units):
            if failures:
                raise failures.pop()
            put(run_key, units)

        monkeypatch.setattr(store, "checkpoint_put", flaky_put)
        ckpt.add("a", 1)
        ckpt.add("b", 2)  # this commit meets the lock: kept pending
        assert store.checkpoint_get("key") == {}
        ckpt.add("c", 3)  # and goes with the next one
        assert sorted(store.checkpoint_get("key")) == ["__wall_s__", "a", "b", "c"]
        failures.append(StoreError("h.duckdb: the disk is full"))
        ckpt.add("d", 4)
        with pytest.raises(StoreError, match="disk is full"):
            ckpt.add("e", 5)


def test_resume_on_the_hf_backend_gives_an_uninterrupted_runs_outputs(tiny_model_dir, tmp_path, monkeypatch):
    """The real transformers backend (CPU here; CUDA where there is one): a run that crashes
    after two batches and resumes stores exactly the outputs and scores of a run never
    interrupted. Commits fall on batch boundaries (HARNESS_CHECKPOINT_ITEMS = batch size), so the
    resumed batches are the ones a fresh run forms."""
    from harness.backends.hf import HFBackend
    from harness.cli import main

    items = [{"id": f"i{k}", "topic": "coffee " * (1 + k % 5) + f"number {k}"} for k in range(10)]
    write(tmp_path / "d.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    models = write(tmp_path / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}\n")
    suite = write(tmp_path / "s.yaml", """
        name: hfresume
        tasks:
          - name: work
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "Brief: {{ topic }}\\nTweet:", reference: "{{ topic }}"}
            generation: {max_new_tokens: 6, batch_size: 3}
            scorers: [rouge, exact_match]
        """)
    monkeypatch.setenv("HARNESS_CHECKPOINT_ITEMS", "3")
    monkeypatch.setenv("HARNESS_CHECKPOINT_MIN_SECONDS", "0")
    real = HFBackend.generate
    batches: list[int] = []

    def crash_after_two(self, prompts, config):
        if len(batches) == 2:
            raise RuntimeError("killed")
        batches.append(len(prompts))
        return real(self, prompts, config)

    monkeypatch.setattr(HFBackend, "generate", crash_after_two)
    resumed = tmp_path / "resumed.duckdb"
    with pytest.raises(RuntimeError, match="killed"):
        main(["run", str(suite), "--models", str(models), "--store", str(resumed)])
    assert _table_counts(resumed)["checkpoints"] == 6 + 1
    batches.clear()
    monkeypatch.setattr(HFBackend, "generate", lambda self, prompts, config: batches.append(len(prompts)) or real(self, prompts, config))
    assert main(["run", str(suite), "--models", str(models), "--store", str(resumed)]) == 0
    assert batches == [3, 1]  # the 4 outputs not done, in the batches a fresh run ends with
    fresh = tmp_path / "fresh.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(fresh)]) == 0

    def rows(store):
        con = duckdb.connect(str(store), read_only=True)
        try:
            return (con.execute("SELECT sample_id, output FROM samples ORDER BY sample_id").fetchall(),
                    con.execute("SELECT sample_id, metric, value FROM scores ORDER BY ALL").fetchall())
        finally:
            con.close()

    assert rows(resumed) == rows(fresh)


def test_list_runs_names_interrupted_runs(tmp_path, capsys):
    from harness.cli import main
    from harness.store.db import Store

    with Store(tmp_path / "h.duckdb", hold=False) as store:
        store.checkpoint_put("somekey", [("i1", "{}"), ("i2", "{}"), ("__wall_s__", "3.0")])
    assert main(["list", "runs", "--store", str(tmp_path / "h.duckdb")]) == 0
    assert "1 task run(s) in progress or interrupted: 2 finished unit(s) checkpointed" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["generation", "multiple_choice"])
def test_kills_at_random_moments_redo_at_most_the_items_in_flight(tmp_path, kind):
    """Kill -9 probes at seeded random moments, with the default commit settings: of the work the
    backend finished before the kill, at most what was in flight is done again (one batch of 2
    prompts; one item's 3 options), because every finished item was journaled the moment it
    finished; the rerun asks for exactly the items not kept, and the run has every item once."""
    import random

    rng = random.Random(31 if kind == "generation" else 32)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0"}
    per_item, in_flight = {"generation": (1, 2), "multiple_choice": (3, 3)}[kind]
    redone = []
    for probe in range(4):
        root = tmp_path / f"p{probe}"
        suite, models, log = _workspace(root, kind, delay=0.03)
        finished = root / "finished.log"
        models.write_text(models.read_text().replace("call_log:", f"progress_log: '{finished}', call_log:"))
        store = root / "h.duckdb"
        args = [sys.executable, "-m", "harness", "run", str(suite), "--models", str(models), "--store", str(store)]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while _units_asked(log) == 0 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.05, 0.03 * WORK[kind] * 0.8))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done_before = len(finished.read_text().splitlines()) if finished.exists() else 0
        journal = store.with_name(store.name + ".journal")
        kept = _journaled(store)
        asked_before = _units_asked(log)
        rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert _units_asked(log) - asked_before == WORK[kind] - per_item * len(kept)  # every kept item reused
        redone.append(done_before - per_item * len(kept))
        counts = _table_counts(store)
        assert counts["runs"] == 1 and counts["checkpoints"] == 0 and not journal.exists()
        assert counts["samples"] == N_ITEMS
    assert all(0 <= r <= in_flight for r in redone), redone
