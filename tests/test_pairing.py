"""Comparisons that cannot silently mismatch: items are named by their content, runs over
different data or prompts are never paired by position, and a run reused by content counts for
every name that resolves to it."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write

SUITE = """
name: pairs
tasks:
  - name: quiz
    type: multiple_choice
    data: {format: jsonl, path: items.jsonl}
    prompt: {template: "{{ q }}\\nA. {{ options[0] }}\\nB. {{ options[1] }}\\nAnswer:"}
    multiple_choice: {choices_field: options, answer_field: gold}
    scorers: [acc]
"""


def items(path, start: int, n: int, gold: int = 0):
    path.write_text("".join(json.dumps({"q": f"Question {i}?", "options": [f"yes {i}", f"no {i}"], "gold": gold}) + "\n"
                            for i in range(start, start + n)))


@pytest.fixture
def ws(tmp_path):
    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 40)
    write(tmp_path / "a.yaml", "base: {name: a, source: fake, options: {favour: [A]}}\n")
    write(tmp_path / "b.yaml", "base: {name: b, source: fake, options: {favour: [B]}}\n")
    return tmp_path


def run(ws, variant: str, models: str | None = None) -> int:
    return main(["run", str(ws / "s.yaml"), "--models", str(ws / (models or f"{variant}.yaml")), "--store", str(ws / "h.duckdb")])


def gate(ws, capsys, pairing: str = "same_data") -> tuple[int, str]:
    report = write(ws / "r.yaml", f"""
        title: t
        variants: [a, b]
        statistics: {{resamples: 200, pairing: {pairing}}}
        gate:
          - {{variant: b, baseline: a, task: quiz, metric: acc, max_drop: 0.1}}
        """)
    capsys.readouterr()
    code = main(["gate", str(report), "--store", str(ws / "h.duckdb")])
    return code, capsys.readouterr().out


def test_items_are_named_by_content_so_reordering_keeps_ids(ws):
    assert run(ws, "a") == 0
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    before = dict(con.execute("SELECT prompt, sample_id FROM samples").fetchall())
    con.close()
    lines = (ws / "items.jsonl").read_text().splitlines()
    (ws / "items.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    assert run(ws, "a") == 0
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    runs = con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()
    assert len(runs) == 2  # reordered data: a new run (its data hash changed) ...
    after = dict(con.execute("SELECT prompt, sample_id FROM samples WHERE run_id = ?", [runs[1][0]]).fetchall())
    assert after == before  # ... whose items keep their ids: an id names the content, not the position
    hashes = con.execute("SELECT DISTINCT content_hash IS NOT NULL FROM samples").fetchall()
    assert hashes == [(True,)]


def test_duplicate_items_are_told_apart_by_occurrence(ws):
    (ws / "items.jsonl").write_text('{"q": "Same?", "options": ["x", "y"], "gold": 0}\n' * 2)
    assert run(ws, "a") == 0
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    ids = sorted(r[0] for r in con.execute("SELECT sample_id FROM samples").fetchall())
    assert len(ids) == 2 and ids[1] == ids[0] + "~2"


def test_a_changed_data_file_is_an_error_not_a_positional_pairing(ws, capsys):
    assert run(ws, "a") == 0 and run(ws, "b") == 0
    code, out = gate(ws, capsys)
    assert code == 1 and out.startswith("FAIL")  # b (always B) loses 1.0 to a (always A) on the same items
    # The file is replaced by 40 other items whose answer is B; only b is run again.
    items(ws / "items.jsonl", 100, 40, gold=1)
    assert run(ws, "b") == 0
    code, out = gate(ws, capsys)
    assert code == 2 and out.startswith("ERROR"), out
    assert "can't compare" in out and "saw different data" in out and "b's run" in out and "a's run" in out
    # The report withholds the comparison and says why, instead of a side-by-side of different items
    report = ws / "r.yaml"
    html = ws / "r.html"
    assert main(["report", str(report), "--store", str(ws / "h.duckdb"), "--out", str(html)]) == 0
    text = html.read_text()
    assert "b is not compared with a" in text and "saw different data" in text
    # Opting into shared items: none has identical content, so still an error
    code, out = gate(ws, capsys, "shared_items")
    assert code == 2 and "no item has identical content" in out
    # Both variants on the current data: a verdict again (b now always right, a always wrong)
    assert run(ws, "a") == 0
    code, out = gate(ws, capsys)
    assert code == 0 and out.startswith("PASS"), out


def test_shared_items_pairs_on_identical_content_and_counts_the_dropped(ws, capsys):
    assert run(ws, "a") == 0
    items(ws / "items.jsonl", 20, 40)  # items 20-39 kept, 40-59 new
    assert run(ws, "b") == 0
    code, out = gate(ws, capsys)
    assert code == 2 and "saw different data" in out
    code, out = gate(ws, capsys, "shared_items")
    assert code == 1, out  # b still loses on the 20 items both saw
    assert "paired on the 20 items with identical content in both runs (dropped: b 20, a 20" in out
    assert "(n=20" in out


def test_a_reused_run_counts_for_every_name_with_that_content(ws, capsys):
    write(ws / "a2.yaml", "base: {name: a2, source: fake, options: {favour: [A]}}\n")  # a under another name
    assert run(ws, "a") == 0
    capsys.readouterr()
    assert run(ws, "a2") == 0
    assert "a2" in capsys.readouterr().out
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    runs = dict(con.execute("SELECT variant, run_id FROM latest_runs").fetchall())
    assert set(runs) == {"a", "a2"} and runs["a"] != runs["a2"]
    counts = [con.execute("SELECT count(*) FROM scores WHERE run_id = ? AND metric = 'acc'", [runs[v]]).fetchone()[0]
              for v in ("a", "a2")]
    assert counts == [40, 40]
    con.close()
    report = write(ws / "r2.yaml", """
        title: t
        variants: [a, a2]
        statistics: {resamples: 200}
        gate:
          - {variant: a2, baseline: a, task: quiz, metric: acc, max_drop: 0.1}
        """)
    assert main(["gate", str(report), "--store", str(ws / "h.duckdb")]) == 0
    # Running it again reuses a2's own run, without another copy
    assert run(ws, "a2") == 0
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs WHERE variant = 'a2'").fetchone()[0] == 1
