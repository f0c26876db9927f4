"""`harness run --until-decided`: a growing seeded sample, rules re-tested with anytime-valid
bounds after each step, stopping when decided or when the budget is spent."""

from __future__ import annotations

import json
import random

import duckdb

from harness.cli import main
from harness.stats.sequential import items_to_decide, sequential_bound, sequential_bounds
from tests.conftest import write

SUITE = """
name: s
tasks:
  - name: quiz
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Q: {{ topic }}\\nA:", reference: "{{ answer }}"}
    generation: {max_new_tokens: 4}
    scorers: [exact_match]
"""


def _setup(tmp_path, rate: float, n: int = 400):
    items = [{"id": f"q{k}", "topic": f"q{k}", "answer": f"a{k}"} for k in range(n)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    write(tmp_path / "s.yaml", SUITE)
    rng = random.Random(7)
    responses = {f"Q: {i['topic']}\n": i["answer"] if rng.random() < rate else "wrong" for i in items}
    return write(tmp_path / "m.yaml", "base: {name: f, source: fake, options: " + json.dumps({"responses": responses}) + "}\n")


def _report(tmp_path, rule: str):
    return write(tmp_path / "r.yaml", f"title: t\nvariants: [f]\ngate:\n  - {rule}\n")


def _run(tmp_path, models, report, *extra):
    return main(["run", str(tmp_path / "s.yaml"), "--models", str(models), "--store", str(tmp_path / "h.duckdb"),
                 "--until-decided", str(report), *extra])


def test_a_clear_pass_stops_early_and_a_clear_fail_too(tmp_path, capsys):
    models = _setup(tmp_path, 0.9)
    assert _run(tmp_path, models, _report(tmp_path, "{variant: f, task: quiz, metric: exact_match, min: 0.8}")) == 0
    out = capsys.readouterr().out
    steps = [int(line.split()[1]) for line in out.splitlines() if line.startswith("after ")]
    assert steps[:2] == [20, 30] and 1 < len(steps) and steps[-1] < 400, out  # decided before the data ran out
    assert "PASS" in out and f"after {steps[-1]} items" in out
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    assert con.execute("SELECT max(n_samples), bool_and(partial) FROM runs").fetchone() == (steps[-1], True)
    con.close()
    assert _run(tmp_path, models, _report(tmp_path, "{variant: f, task: quiz, metric: exact_match, max: 0.6}")) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_budget_that_cannot_decide_ends_inconclusive_with_the_items_needed(tmp_path, capsys):
    models = _setup(tmp_path, 0.9)
    report = _report(tmp_path, "{variant: f, task: quiz, metric: exact_match, min: 0.85}")
    assert _run(tmp_path, models, report, "--budget-items", "100") == 3
    out = capsys.readouterr().out
    assert "after 100 items per task" in out and "INCONCLUSIVE" in out and "budget spent" in out and "items would decide" in out
    assert _run(tmp_path, models, report, "--budget-items", "0") == 2
    assert "--budget-items must be at least 1" in capsys.readouterr().err
    latency = _report(tmp_path, "{variant: f, task: quiz, metric: latency_s_p95, max: 1.0}")
    assert _run(tmp_path, models, latency) == 2
    assert "not a per-item metric with a declared range" in capsys.readouterr().err


def test_the_bounds_hold_at_every_look_by_simulation():
    """Under the null (true rate exactly at the threshold), checking after every item up to 500,
    the lower bound ever crosses the threshold in at most alpha of 400 simulated sequences; and a
    clear difference is decided long before the fixed-n design's size."""
    rng = random.Random(3)
    crossed = 0
    for _ in range(400):
        values = [1.0 if rng.random() < 0.5 else 0.0 for _ in range(500)]
        crossed += any(low > 0.5 for low, _ in sequential_bounds(values, 0.0, 1.0, 0.05))
    assert crossed / 400 <= 0.05
    clear = [1.0 if rng.random() < 0.8 else 0.0 for _ in range(500)]
    first = next(i for i, (low, _) in enumerate(sequential_bounds(clear, 0.0, 1.0, 0.05), 1) if low > 0.6)
    assert first < 150 and sequential_bound(clear[:first], 0.0, 1.0, 0.05).low > 0.6
    assert items_to_decide(0.3, 0.5, 0.05) < items_to_decide(0.1, 0.5, 0.05) < items_to_decide(0.1, 1.0, 0.05)


def test_a_larger_limit_evaluates_only_the_items_a_smaller_one_did_not(tmp_path, capsys):
    """--limit 20 then --limit 40: the 40-item sample holds the 20, whose outputs come from the
    item pool (not generated again); the rows are the same either way."""
    models = _setup(tmp_path, 0.9)
    store = str(tmp_path / "h.duckdb")
    base = ["run", str(tmp_path / "s.yaml"), "--models", str(models), "--store", store]
    assert main(base + ["--limit", "20"]) == 0
    capsys.readouterr()
    assert main(base + ["--limit", "40"]) == 0
    assert "20 item(s) already evaluated by a smaller --limit run" in capsys.readouterr().err
    con = duckdb.connect(store, read_only=True)
    runs = dict(con.execute("SELECT n_samples, run_id FROM runs").fetchall())
    rows = {n: dict(con.execute("SELECT sample_id, output FROM samples WHERE run_id = ?", [rid]).fetchall()) for n, rid in runs.items()}
    assert con.execute("SELECT count(*) FROM checkpoints WHERE unit <> '__wall_s__'").fetchone()[0] == 40  # the pool
    con.close()
    assert set(rows[20]) < set(rows[40]) and all(rows[40][k] == v for k, v in rows[20].items())
