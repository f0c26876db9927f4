"""`harness noise`: a variant re-run on a seeded slice under serving settings that should not
matter; the band per metric is stored, nothing is written as a run, and gates mark a rule whose
margin or observed difference lies inside it."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from harness.cli import main
from harness.store.db import NoiseRow, Store
from tests.conftest import write
from tests.test_pairing import items, run

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


def test_noise_on_the_tiny_model_stores_a_band_per_metric_and_no_run(tmp_path, tiny_model_dir, capsys):
    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 12)
    models = write(tmp_path / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}, options: {{batch_size: 2}}}}\n")
    store = tmp_path / "h.duckdb"
    assert main(["noise", str(tmp_path / "s.yaml"), "--models", str(models), "--variant", "tiny", "--limit", "10",
                 "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "evaluating with batch size 1" in out and "evaluating with 1 thread" in out
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("SELECT task, metric, n_items, reference, band, by_setting FROM noise_bands").fetchall()
    runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    left = con.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    con.close()
    assert runs == 0 and left == 0
    (task, metric, n, ref, band, by_setting), = rows
    by_setting = json.loads(by_setting)
    assert (task, metric, n) == ("quiz", "acc", 10)
    assert set(by_setting) == {"as declared", "batch size 1", "batch size 4", "1 thread"}  # no sampling: no seed
    assert by_setting["as declared"] == ref
    assert band == max(abs(v - ref) for v in by_setting.values())


def _plant_band(ws, variant: str, band: float):
    with Store(ws / "h.duckdb") as store:
        key = store.query("SELECT variant_key FROM latest_runs WHERE variant = ?", [variant])[0]["variant_key"]
        store.write_noise([NoiseRow(variant, key, "pairs", "quiz", "acc", "d", "p", 40, 0.5, band, json.dumps({}),
                                    datetime(2026, 1, 1), "test")])


def _gate(ws, capsys, max_drop: float) -> dict:
    report = write(ws / "r.yaml", f"""
        title: t
        variants: [a, b]
        statistics: {{resamples: 200}}
        gate:
          - {{variant: b, baseline: a, task: quiz, metric: acc, max_drop: {max_drop}}}
        """)
    capsys.readouterr()
    main(["gate", str(report), "--store", str(ws / "h.duckdb"), "--json", str(ws / "g.json")])
    print(capsys.readouterr().out)
    return json.loads((ws / "g.json").read_text())["rules"][0]


def test_the_gate_marks_a_margin_inside_the_noise_band(tmp_path, capsys):
    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 40)
    write(tmp_path / "a.yaml", "base: {name: a, source: fake, options: {favour: [A]}}\n")
    write(tmp_path / "b.yaml", "base: {name: b, source: fake, options: {favour: [A]}}\n")
    assert run(tmp_path, "a") == 0 and run(tmp_path, "b") == 0
    rule = _gate(tmp_path, capsys, 0.05)
    assert rule["noise_band"] is None and not rule["inside_noise"]  # nothing measured: nothing said
    _plant_band(tmp_path, "b", 0.1)
    rule = _gate(tmp_path, capsys, 0.05)
    assert rule["inside_noise"] and rule["noise_band"] == 0.1
    assert "INSIDE NOISE BAND: the margin 0.05 is within b's noise band ±0.1" in rule["reason"]
    rule = _gate(tmp_path, capsys, 0.2)  # the margin clears the band, but the observed difference (0) is inside it
    assert rule["inside_noise"] and "the observed difference (+0)" in rule["reason"]


def test_a_band_measured_on_other_weights_does_not_apply(tmp_path, capsys):
    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 40)
    write(tmp_path / "a.yaml", "base: {name: a, source: fake, options: {favour: [A]}}\n")
    write(tmp_path / "b.yaml", "base: {name: b, source: fake, options: {favour: [B]}}\n")
    assert run(tmp_path, "a") == 0 and run(tmp_path, "b") == 0
    with Store(tmp_path / "h.duckdb") as store:
        store.write_noise([NoiseRow("b", "other-weights", "pairs", "quiz", "acc", "d", "p", 40, 0.5, 0.9, "{}",
                                    datetime(2026, 1, 1), "test")])
    rule = _gate(tmp_path, capsys, 0.05)
    assert rule["noise_band"] is None


def test_the_report_shows_the_band_beside_the_comparison(tmp_path, capsys):
    write(tmp_path / "s.yaml", SUITE)
    items(tmp_path / "items.jsonl", 0, 40)
    write(tmp_path / "a.yaml", "base: {name: a, source: fake, options: {favour: [A]}}\n")
    write(tmp_path / "b.yaml", "base: {name: b, source: fake, options: {favour: [A]}}\n")
    assert run(tmp_path, "a") == 0 and run(tmp_path, "b") == 0
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [a, b]\nbaseline: a\nstatistics: {resamples: 200}\n")
    out = tmp_path / "r.html"
    assert main(["report", str(report), "--store", str(tmp_path / "h.duckdb"), "--out", str(out)]) == 0
    assert "noise band" not in out.read_text()
    _plant_band(tmp_path, "b", 0.1)
    assert main(["report", str(report), "--store", str(tmp_path / "h.duckdb"), "--out", str(out)]) == 0
    html = out.read_text()
    assert "<th>noise band</th>" in html and "±0.100 (difference inside it)" in html
