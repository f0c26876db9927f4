"""Run tags (`harness tag`, `harness gate --tag`) and gate rules `since: <tag>`: a release's runs
stay the baseline after newer runs of the same variant replace them as the latest."""

from __future__ import annotations

import json

import duckdb

from harness.cli import main
from tests.conftest import write

ITEMS = [{"id": f"i{k}", "topic": f"t{k}", "tweet": f"the best coffee in town number {k}"} for k in range(30)]

SUITE = """
name: s
tasks:
  - name: tweets
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Brief: {{ topic }}\\nTweet:", reference: "{{ tweet }}"}
    generation: {max_new_tokens: 12}
    scorers: [rouge]
"""

REPORT = """
title: releases
variants: [f]
statistics: {resamples: 300}
gate:
  - {name: no regression since v1, variant: f, task: tweets, metric: rougeL, kind: non_inferiority, margin: 0.1, since: v1}
"""


def _release(tmp_path, good: bool) -> None:
    """Evaluate variant f: the house tweets (good) or a fixed off-brand line (a regression)."""
    responses = {f"Brief: {i['topic']}\n": i["tweet"] for i in ITEMS} if good else {}
    models = write(tmp_path / "m.yaml", "base: {name: f, source: fake, options: "
                   + json.dumps({"responses": responses, "default_output": "tea is nice"}) + "}\n")
    assert main(["run", str(tmp_path / "s.yaml"), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 0


def test_a_release_is_tagged_and_a_later_run_is_gated_against_it(tmp_path, capsys):
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in ITEMS))
    write(tmp_path / "s.yaml", SUITE)
    store = str(tmp_path / "h.duckdb")
    report = write(tmp_path / "r.yaml", REPORT)
    _release(tmp_path, good=True)
    # before any tag: the rule is an error naming what is missing
    assert main(["gate", str(report), "--store", store]) == 2
    assert "since: no tag 'v1' in the store (tags: none yet)" in capsys.readouterr().out
    assert main(["tag", str(report), "v1", "--store", store]) == 0
    assert "tagged v1: 1 runs of f" in capsys.readouterr().out
    assert main(["tag", str(report), "v1", "--store", store]) == 2  # tags name releases: not moved silently
    assert "tag v1 already names 1 runs" in capsys.readouterr().err
    # the same model again: no regression against v1
    assert main(["gate", str(report), "--store", store]) == 0
    assert "PASS         no regression since v1" in capsys.readouterr().out
    # release 2 regresses: its latest run replaced the tagged one, and the rule still finds v1
    _release(tmp_path, good=False)
    capsys.readouterr()
    assert main(["gate", str(report), "--store", store, "--tag", "v2"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "not tagged v2: the gate did not pass" in out
    con = duckdb.connect(store, read_only=True)
    assert con.execute("SELECT count(DISTINCT run_id) FROM runs").fetchone()[0] == 2
    assert con.execute("SELECT DISTINCT tag FROM run_tags").fetchall() == [("v1",)]
    con.close()
    assert main(["tag", "--store", store]) == 0
    assert capsys.readouterr().out.startswith("v1 ")


def test_the_gate_tags_what_it_passed_and_bad_tags_are_refused(tmp_path, capsys):
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in ITEMS))
    write(tmp_path / "s.yaml", SUITE)
    store = str(tmp_path / "h.duckdb")
    _release(tmp_path, good=True)
    bound = write(tmp_path / "b.yaml", "title: t\nvariants: [f]\nstatistics: {resamples: 300}\n"
                  "gate:\n  - {variant: f, task: tweets, metric: rougeL, min: 0.5}\n")
    assert main(["gate", str(bound), "--store", store, "--tag", "v1.0"]) == 0
    assert "tagged v1.0: 1 runs of f" in capsys.readouterr().out
    capsys.readouterr()
    junit = tmp_path / "g.xml"
    assert main(["gate", str(bound), "--store", store, "--tag", "v1.0", "--junit", str(junit)]) == 2  # taken: nothing written
    assert "tag v1.0 already names 1 runs" in capsys.readouterr().err and not junit.exists()
    assert main(["tag", str(bound), "bad tag!", "--store", store]) == 2
    assert "use 1-64 letters" in capsys.readouterr().err
    other = write(tmp_path / "o.yaml", "title: t\nvariants: [g]\n")
    assert main(["tag", str(other), "v2", "--store", store]) == 2
    assert "tag v2: no runs of g in the store" in capsys.readouterr().err
    since_bound = write(tmp_path / "sb.yaml", "title: t\nvariants: [f]\ngate:\n  - {variant: f, task: tweets, metric: rougeL, min: 0.5, since: v1.0}\n")
    assert main(["gate", str(since_bound), "--store", store]) == 2
    assert "since: compares with a tagged run" in capsys.readouterr().err


def _monthly_runs(tmp_path, rates: list[float], tag: bool = False) -> str:
    """One run of variant f per month (dates set to the first of months 1..6), each answering
    items right with the month's rate (seeded), on 100 items of an exact-match task."""
    import random

    items = [{"id": f"q{k}", "topic": f"q{k}", "tweet": f"answer {k}"} for k in range(100)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    write(tmp_path / "s.yaml", SUITE.replace("scorers: [rouge]", "scorers: [exact_match]"))
    store = str(tmp_path / "h.duckdb")
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [f]\n")
    for month, rate in enumerate(rates, start=1):
        rng = random.Random(month)
        responses = {f"Brief: {i['topic']}\n": i["tweet"] if rng.random() < rate else "no idea" for i in items}
        models = write(tmp_path / "m.yaml", "base: {name: f, source: fake, options: "
                       + json.dumps({"responses": responses, "default_output": f"month {month}"}) + "}\n")
        assert main(["run", str(tmp_path / "s.yaml"), "--models", str(models), "--store", store]) == 0
        con = duckdb.connect(store)
        con.execute("UPDATE runs SET started_at = ? WHERE started_at = (SELECT max(started_at) FROM runs)",
                    [f"2026-{month:02d}-01 09:00:00"])
        con.close()
        if tag:
            assert main(["tag", str(report), f"m{month}", "--store", store]) == 0
    return store


TREND_REPORT = """
title: monthly
variants: [f]
statistics: {{resamples: 300}}
trends:
  - {{task: tweets, metric: exact_match, by: {by}}}
"""


def test_a_step_in_run_4_is_flagged_at_run_4_and_not_before(tmp_path, capsys):
    store = _monthly_runs(tmp_path, [0.30, 0.32, 0.29, 0.75, 0.74, 0.76], tag=True)
    for by, labels in (("run", [f"2026-{m:02d}-01" for m in range(1, 7)]), ("tag", [f"m{m}" for m in range(1, 7)])):
        report = write(tmp_path / f"t-{by}.yaml", TREND_REPORT.format(by=by))
        out = tmp_path / f"t-{by}.html"
        assert main(["report", str(report), "--store", store, "--out", str(out)]) == 0
        html = out.read_text()
        section = html.split("<h2>Trends</h2>")[1].split("<h2>")[0]
        assert f"change at {labels[3]}" in section and section.count("change at") == 1
        rows = section.split("<tr>")[2:]
        assert [("outside: change" in r) for r in rows] == [False, False, False, True, False, False]
        assert [r.split("<td>")[1].split("</td>")[0] for r in rows] == labels
        assert section.count('class="flagged"') == 1 and section.count('class="point"') == 5


def test_no_change_is_flagged_on_steady_runs_and_a_trend_needs_a_known_task(tmp_path, capsys):
    store = _monthly_runs(tmp_path, [0.5, 0.52, 0.48, 0.5, 0.51, 0.49])
    report = write(tmp_path / "t.yaml", TREND_REPORT.format(by="run"))
    assert main(["report", str(report), "--store", store, "--out", str(tmp_path / "t.html")]) == 0
    section = (tmp_path / "t.html").read_text().split("<h2>Trends</h2>")[1]
    assert "change at" not in section and 'class="flagged"' not in section
    bad = write(tmp_path / "b.yaml", "title: t\nvariants: [f]\ntrends:\n  - {task: tweetz, metric: exact_match}\n")
    assert main(["report", str(bad), "--store", store, "--out", str(tmp_path / "b.html")]) == 2
    assert "no task 'tweetz'" in capsys.readouterr().err and not (tmp_path / "b.html").exists()
