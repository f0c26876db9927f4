"""Answer extraction: each extractor, failures counted (not scored as wrong silently), and the
answer_match scorer in a run."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from harness.tasks.extract import ExtractSpec, extract, normalise_number
from tests.conftest import write


def spec(**kw) -> ExtractSpec:
    return ExtractSpec.model_validate(kw)


@pytest.mark.parametrize("kind, text, expected", [
    ("last_number", "She has 3 apples, buys 12 more: 15.", "15"),
    ("last_number", "Total: $1,234.50", "1234.5"),
    ("last_number", "It drops to -7.0 degrees", "-7"),
    ("last_number", "no digits here", None),
    ("first_number", "3 apples then 12", "3"),
    ("choice_letter", "The answer is (B).", "B"),
    ("choice_letter", "A. Paris is the capital", "A"),
    ("choice_letter", "Based on it, C", "C"),
    ("choice_letter", "I am not sure", None),  # "I" is no option letter; "a" inside words never counts
])
def test_number_and_letter_extractors(kind, text, expected):
    assert extract(spec(type=kind), text) == expected


def test_regex_and_json_extractors():
    assert extract(spec(type="regex", pattern=r"#### (\-?\d+)"), "so 5 + 7 = 12\n#### 12") == "12"
    assert extract(spec(type="regex", pattern=r"answer: (?P<a>\w+)", group="a", ignore_case=True), "ANSWER: yes") == "yes"
    assert extract(spec(type="regex", pattern=r"answer: (\w+)"), "nothing") is None
    assert extract(spec(type="json_field", field="result.value"), 'Sure! {"result": {"value": 42}} done') == "42"
    assert extract(spec(type="json_field", field="answer"), '{broken {"answer": "B"}') == "B"
    assert extract(spec(type="json_field", field="answer"), '{"other": 1}') is None
    assert extract(spec(type="json_field", field="answer"), "no json") is None
    assert normalise_number("1,000") == "1000" and normalise_number("0.50") == "0.5"


@pytest.mark.parametrize("bad, message", [
    ({"type": "regex"}, "needs pattern"),
    ({"type": "regex", "pattern": "(unclosed"}, "not a valid regular expression"),
    ({"type": "regex", "pattern": "(a)", "group": 2}, "has 1 group"),
    ({"type": "json_field"}, "needs field"),
    ({"type": "last_number", "pattern": "x"}, "regex extractors only"),
    ({"type": "choice_letter", "letters": "AAB"}, "distinct letters"),
])
def test_bad_extractor_specs_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        spec(**bad)


def test_answer_match_counts_extraction_failures(tmp_path):
    items = [{"id": f"q{k}", "question": f"What is {k} + {k}?", "answer": f"Working: {k}+{k}\n#### {2 * k}"} for k in range(6)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    replies = {"What is 0 + 0?": "It is 0.", "What is 1 + 1?": "1 + 1 = 2", "What is 2 + 2?": "maybe 5",
               "What is 3 + 3?": "I can't say", "What is 4 + 4?": "The total is $8.00", "What is 5 + 5?": "ten"}
    suite = write(tmp_path / "s.yaml", """
        name: math
        tasks:
          - name: sums
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ question }}", reference: "{{ answer }}"}
            generation: {max_new_tokens: 16}
            scorers:
              - answer_match: {extract: {type: last_number}, compare: numeric, reference: true}
    """)
    models = write(tmp_path / "m.yaml", f"base: {{name: f, source: fake, options: {{responses: {json.dumps(replies)}}}}}\n")
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 0
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    got = dict(con.execute("SELECT sample_id || ':' || metric, value FROM scores WHERE scorer = 'answer_match'").fetchall())
    assert [got[f"q{k}:answer_match"] for k in range(6)] == [1, 1, 0, 0, 1, 0]
    assert [got[f"q{k}:extraction_failed"] for k in range(6)] == [0, 0, 0, 1, 0, 1]
    details = json.loads(con.execute("SELECT details FROM samples WHERE sample_id = 'q4'").fetchone()[0])
    assert details["answer_match"] == {"extracted": "8", "gold": "8", "extractor": "last_number"}  # shown per sample


def test_the_report_shows_what_was_extracted(tmp_path):
    items = [{"id": f"q{k}", "question": f"What is {k} + {k}?", "answer": str(2 * k)} for k in range(3)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    replies = {"What is 0 + 0?": "zero", "What is 1 + 1?": "It is 2.", "What is 2 + 2?": "5, I think"}
    suite = write(tmp_path / "s.yaml", """
        name: math
        tasks:
          - name: sums
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ question }}", reference: "{{ answer }}"}
            scorers:
              - answer_match: {extract: {type: last_number}, compare: numeric}
    """)
    models = write(tmp_path / "m.yaml", f"base: {{name: f, source: fake, options: {{responses: {json.dumps(replies)}}}}}\n")
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [f]\nsamples_per_task: 3\nstatistics: {resamples: 200}\n")
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "extracted &#39;2&#39; (gold &#39;2&#39;)" in html and "no answer found (gold &#39;0&#39;)" in html
