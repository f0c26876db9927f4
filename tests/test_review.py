"""`harness review`: a person scores sampled outputs on the rubric's checks; the report shows
per-check agreement with the automatic checks."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write


def read_sheet(path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_sheet(path, rows: list[dict]) -> None:
    """What a person's spreadsheet saves: the same columns, filled in."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


RUBRIC = """
name: house
checks:
  - {name: hashtag, type: hashtags, min: 1}
  - {name: short, type: length, max: 40}
"""


@pytest.fixture
def rubric_run(tmp_path):
    items = [{"id": f"b{k}", "topic": f"topic {k}", "tweet": "ref"} for k in range(12)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    write(tmp_path / "rubric.yaml", RUBRIC)
    replies = {f"topic {k}\n": ("=HYPERLINK(\"x\") morning #Lumen" if k == 0 else f"a long answer number {k} without any tag at all"
                                if k % 3 else f"short #tag{k}") for k in range(12)}
    suite = write(tmp_path / "s.yaml", """
        name: brand
        tasks:
          - name: tweets
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ topic }}\\n", reference: "{{ tweet }}"}
            scorers:
              - rubric: {path: rubric.yaml}
    """)
    models = write(tmp_path / "m.yaml", f"base: {{name: f, source: fake, options: {{responses: {json.dumps(replies)}}}}}\n")
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    return tmp_path, store


def test_review_round_trip_and_agreement_in_the_report(rubric_run, capsys):
    tmp_path, store = rubric_run
    sheet = tmp_path / "review.csv"
    assert main(["review", "export", "--task", "tweets", "-n", "8", "--seed", "3", "--out", str(sheet), "--store", str(store)]) == 0
    rows = read_sheet(sheet)
    assert len(rows) == 8 and {"auto_hashtag", "human_hashtag", "auto_short", "human_short"} <= set(rows[0])
    again = tmp_path / "again.csv"
    main(["review", "export", "--task", "tweets", "-n", "8", "--seed", "3", "--out", str(again), "--store", str(store)])
    assert again.read_text() == sheet.read_text()  # seeded
    assert all(not r["output"].startswith("=") for r in rows)  # formula injection neutralised
    # The person agrees on `hashtag` everywhere and disagrees on `short` for the first two rows;
    # one cell is left blank.
    for k, r in enumerate(rows):
        r["human_hashtag"] = r["auto_hashtag"]
        r["human_short"] = ("no" if r["auto_short"] == "yes" else "yes") if k < 2 else r["auto_short"]
    rows[7]["human_short"] = ""
    write_sheet(sheet, rows)
    assert main(["review", "import", str(sheet), "--store", str(store)]) == 0
    assert "15 human verdicts and ratings stored (1 blank cells skipped)" in capsys.readouterr().out
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM review_labels").fetchone()[0] == 15
    con.close()
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [f]\nstatistics: {resamples: 200}\n")
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    section = html.split("Human rubric review")[1].split("</table>")[0]
    assert "<td>hashtag</td>" in section and "1.000" in section
    assert f"{5 / 7:.3f}" in section  # short: 5 of the 7 reviewed agree


def test_a_bad_review_sheet_writes_nothing(rubric_run, capsys):
    tmp_path, store = rubric_run
    sheet = tmp_path / "review.csv"
    assert main(["review", "export", "--task", "tweets", "-n", "3", "--out", str(sheet), "--store", str(store)]) == 0
    rows = read_sheet(sheet)
    rows[0]["human_hashtag"] = "yes"
    rows[2]["human_short"] = "maybe"
    write_sheet(sheet, rows)
    assert main(["review", "import", str(sheet), "--store", str(store)]) == 2
    assert "column human_short: expected yes or no, got 'maybe'" in capsys.readouterr().err
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM review_labels").fetchone()[0] == 0
    con.close()
    assert main(["review", "export", "--task", "nope", "--out", str(sheet), "--store", str(store)]) == 2


def test_judged_dimensions_are_rated_by_the_person_and_compared_with_the_judge(tmp_path, capsys):
    """The rubric's `judged:` dimensions become rating columns of the sheet; the report sets the
    person's ratings beside an LLM judge's ratings of the same outputs."""
    import re

    store = _judged(tmp_path, 8)
    sheet = tmp_path / "review.csv"
    assert main(["review", "export", "--task", "tweets", "-n", "6", "--out", str(sheet), "--store", str(store)]) == 0
    rows = read_sheet(sheet)
    assert "rating_tone" in rows[0] and all(r["rating_tone"] == "" for r in rows)
    for r in rows:  # the person agrees with the judge's ordering, a point lower
        r["rating_tone"] = str(r["output"].count("warm"))
    rows[0]["rating_tone"] = "11"
    write_sheet(sheet, rows)
    assert main(["review", "import", str(sheet), "--store", str(store)]) == 2
    assert "column rating_tone: expected a rating from 1 to 10, got '11'" in capsys.readouterr().err
    rows[0]["rating_tone"] = str(rows[0]["output"].count("warm"))
    write_sheet(sheet, rows)
    assert main(["review", "import", str(sheet), "--store", str(store)]) == 0
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [f]\nstatistics: {resamples: 200}\n")
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    section = (tmp_path / "r.html").read_text().split("judged dimensions, rated 1-10")[1].split("</table>")[0]
    assert "<td>tone</td>" in section
    assert "1.00 <span" in section  # |person - judge| is exactly one point, and Spearman's rho is 1
    assert re.search(r"1\.00 <span class=\"ci\">\[1\.00, 1\.00\]</span></td>\s*</tr>", section), section


def _judged(tmp_path, n_items: int):
    """A fake model's tweets ("warm" 1-8 times) scored by the rubric, and a judge task that rates
    their tone one point above the number of "warm"s. Returns the store."""
    import re

    from tests.fake_judge_server import FakeJudgeServer

    items = [{"id": f"b{k}", "topic": f"topic {k}", "tweet": "ref"} for k in range(n_items)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    write(tmp_path / "rubric.yaml", RUBRIC + "judged: [tone]\n")
    replies = {f"topic {k}\n": "warm " * (k % 8 + 1) + "#tag" for k in range(n_items)}

    def rate(user: str) -> str:
        answer = re.search(r"### Assistant's answer\n(.*?)\n###", user, re.DOTALL | re.IGNORECASE)
        return f"tone: [[{min(10, (answer.group(1) if answer else '').count('warm') + 1)}]]"

    models = write(tmp_path / "m.yaml", f"base: {{name: f, source: fake, options: {{responses: {json.dumps(replies)}}}}}\n")
    store = tmp_path / "h.duckdb"
    with FakeJudgeServer(rate) as srv:
        suite = write(tmp_path / "s.yaml", f"""
            name: brand
            tasks:
              - name: tweets
                type: generation
                data: {{format: jsonl, path: d.jsonl}}
                id_field: id
                prompt: {{template: "{{{{ topic }}}}\\n", reference: "{{{{ tweet }}}}"}}
                scorers:
                  - rubric: {{path: rubric.yaml}}
              - name: tone
                type: judge
                grading: single
                of: tweets
                judge: {{backend: openai, base_url: "{srv.url}", model: fake, dimensions: [tone], backoff_s: 0.01}}
        """)
        assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    return store


def _judged_and_reviewed(tmp_path, n_items: int, n_rated: int):
    """_judged, and a person who rates tone exactly the number of "warm"s (the judge is a point
    high) on `n_rated` sampled outputs, in a sheet not yet imported. Returns (store, sheet, the
    person's mean over all outputs)."""
    store = _judged(tmp_path, n_items)
    sheet = tmp_path / "review.csv"
    assert main(["review", "export", "--task", "tweets", "-n", str(n_rated), "--out", str(sheet), "--store", str(store)]) == 0
    rows = read_sheet(sheet)
    for r in rows:
        r["rating_tone"] = str(r["output"].count("warm"))
    write_sheet(sheet, rows)
    return store, sheet, sum(k % 8 + 1 for k in range(n_items)) / n_items


GATE = """
title: t
variants: [f]
statistics: {{resamples: 300}}
gate:
  - {{name: raw, variant: f, task: tone, metric: judge_tone, max: {limit}, require_healthy_judge: false}}
  - {{name: corrected, variant: f, task: tone, metric: judge_tone, max: {limit}, calibrated: true}}
"""


def test_a_calibrated_rule_decides_on_the_judge_corrected_by_people(tmp_path, capsys):
    """The judge rates a point high. People rated 80 of 160 outputs: the corrected mean is the
    people's scale (4.5), so "tone at most 5.0" passes calibrated while the raw judge (5.5) fails
    it; the report shows both. Before any rating is imported the calibrated rule is an error and
    `harness plan` says how many outputs people should rate."""
    import re

    store, sheet, truth = _judged_and_reviewed(tmp_path, 160, 80)
    report = write(tmp_path / "r.yaml", GATE.format(limit=5.0))
    assert main(["gate", str(report), "--store", str(store)]) == 2
    out = capsys.readouterr().out
    assert "no person rated tone on f's outputs judged in tone" in out and "harness review import" in out
    assert main(["plan", str(report), "--store", str(store)]) == 0
    plan = capsys.readouterr().out
    planned = re.search(r"people's ratings: about (\d+) of the 160 judged outputs rated on tone \(now 0\)", plan)
    assert planned, plan
    assert 2 < int(planned.group(1)) < 160
    assert main(["review", "import", str(sheet), "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["gate", str(report), "--store", str(store), "--json", str(tmp_path / "g.json")]) == 1
    verdicts = {v["rule"]: v for v in json.loads((tmp_path / "g.json").read_text())["rules"]}
    assert verdicts["raw"]["status"] == "fail" and verdicts["corrected"]["status"] == "pass"
    assert abs(verdicts["corrected"]["estimate"] - truth) < 0.3 and abs(verdicts["raw"]["estimate"] - truth - 1) < 0.01
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) in (0, 1)
    section = (tmp_path / "r.html").read_text().split("corrected by people's ratings")[1].split("</table>")[0]
    assert "80 / 160" in section and "5.50" in section and "+1.00" in section  # raw mean, and the bias on the slice


def test_a_calibrated_rule_on_a_metric_no_judge_rates_is_an_error(rubric_run, capsys):
    tmp_path, store = rubric_run
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [f]\ngate:\n"
                   "  - {variant: f, task: tweets, metric: rubric, min: 0.5, calibrated: true}\n")
    assert main(["gate", str(report), "--store", str(store)]) == 2
    assert "calibrated: true applies to a judge's rating of a dimension (judge_<dimension>); 'rubric' is not one" in capsys.readouterr().out
