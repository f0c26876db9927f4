"""MT-Bench as FastChat runs it: answer files in its format (`choices[0].turns`) load and are
judged; reference answers come from a separate file for the categories FastChat gives them to;
every --answers file is checked before any run is written, with hints that say what is wrong.
And the report's flips section on a planted flip."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write

QUESTIONS = [{"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now make it rhyme."],
              "reference": ["a short note in question.jsonl"]},
             {"question_id": 111, "category": "math", "turns": ["What is 2+2?", "And 3+3?"], "reference": ["four"]},
             {"question_id": 121, "category": "coding", "turns": ["Reverse a list.", "In place?"]}]
GPT4_REFERENCES = [{"question_id": 111, "model_id": "gpt-4", "choices": [{"index": 0, "turns": ["4", "6"]}]},
                   {"question_id": 121, "model_id": "gpt-4", "choices": [{"index": 0, "turns": ["xs[::-1]", "xs.reverse()"]}]},
                   {"question_id": 999, "model_id": "gpt-4", "choices": [{"index": 0, "turns": ["not in this set"]}]}]

SUITE = """
name: mt
tasks:
  - name: chat
    type: generation
    data: {format: jsonl, path: question.jsonl}
    id_field: question_id
    category_field: category
    multi_turn: {turns_field: turns, reference_answers: reference_answer/gpt-4.jsonl}
    prompt: {template: "{{ turn }}"}
    generation: {max_new_tokens: 16}
  - name: rating
    type: judge
    grading: single
    of: chat
    judge: {backend: local, mode: generate}
"""
JUDGE = "base: {name: judge-m, source: fake, options: {default_output: 'Rating: [[7]]'}}\n"


def answer_file(path, turns_per_item: dict) -> str:
    """An answer file in FastChat's model_answer format."""
    path.write_text("".join(json.dumps({"question_id": qid, "answer_id": f"a{qid}", "model_id": "m",
                                        "choices": [{"index": 0, "turns": turns}], "tstamp": 0.0}) + "\n"
                            for qid, turns in turns_per_item.items()))
    return str(path)


@pytest.fixture
def mt(tmp_path):
    write(tmp_path / "question.jsonl", "".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (tmp_path / "reference_answer").mkdir()
    write(tmp_path / "reference_answer" / "gpt-4.jsonl", "".join(json.dumps(r) + "\n" for r in GPT4_REFERENCES))
    write(tmp_path / "s.yaml", SUITE)
    write(tmp_path / "judge.yaml", JUDGE)
    return tmp_path


def run(ws, *answers: str) -> int:
    args = ["run", str(ws / "s.yaml"), "--models", str(ws / "judge.yaml"), "--store", str(ws / "h.duckdb")]
    for a in answers:
        args += ["--answers", a]
    return main(args)


GOOD = {81: ["haiku", "rhyme"], 111: ["4", "6"], 121: ["r", "in place"]}


def test_mt_bench_answer_files_load_and_are_judged_with_fastchat_references(mt, capsys):
    assert run(mt, "vicuna=" + answer_file(mt / "vicuna.jsonl", GOOD), "llama=" + answer_file(mt / "llama.jsonl", GOOD)) == 0
    # a judge that rates everything 7 fails its health checks: the summary says so beside its figures
    out = capsys.readouterr().out
    rating = next(line for line in out.splitlines() if line.startswith("vicuna") and "judge_rating" in line)
    assert "! judge health" in rating and "vicuna / rating: ratings barely vary" in out
    con = duckdb.connect(str(mt / "h.duckdb"), read_only=True)
    details = {sid: json.loads(d) for sid, d in con.execute(
        "SELECT s.sample_id, s.details FROM samples s JOIN latest_runs r USING (run_id) WHERE r.task = 'chat' AND r.variant = 'vicuna'"
    ).fetchall()}
    prompts = dict(con.execute("""SELECT j.sample_id, j.prompt_name FROM judgments j JOIN latest_runs r USING (run_id)
                                  WHERE r.task = 'rating' AND r.variant = 'vicuna'""").fetchall())
    judged = con.execute("SELECT count(*) FROM judgments").fetchone()[0]
    con.close()
    assert details["111#t2"]["answers"] == ["4", "6"]  # the file's turns, replayed
    # math and coding take the GPT-4 reference file's answers; writing none (not question.jsonl's note)
    assert details["111#t2"]["references"] == ["4", "6"] and details["121#t2"]["references"] == ["xs[::-1]", "xs.reverse()"]
    assert details["81#t2"]["references"] == [None, None]
    assert prompts["81#t1"] == "single" and prompts["111#t1"] == "single-ref" and prompts["121#t2"] == "single-ref-multi-turn"
    assert judged == 2 * 6  # two answer sets x 3 questions x 2 turns


def test_a_reference_category_item_without_a_reference_answer_is_an_error(mt, capsys):
    write(mt / "reference_answer" / "gpt-4.jsonl", json.dumps(GPT4_REFERENCES[0]) + "\n")
    assert run(mt, "vicuna=" + answer_file(mt / "vicuna.jsonl", GOOD)) == 2
    err = capsys.readouterr().err
    assert "no reference answer for 1 of the 2 items in categories math, reasoning, coding" in err and "121" in err
    assert not (mt / "h.duckdb").exists()


@pytest.mark.parametrize("bad, message, hint", [
    ({81: ["h", "r"], 111: ["4", "6"]}, "no answer for 1 of task 'chat''s 3 items (121)", "answer every item"),
    ({**GOOD, 81: ["only one turn"]}, "item 81 has 1 answer turn(s); task 'chat' asks 2", "one answer per turn"),
    ({**GOOD, 404: ["?", "?"]}, "1 answer(s) for items the suite's tasks don't have (404)", "another question set"),
    ({1: ["a", "b"], 2: ["a", "b"]}, "none of its 2 answer ids (1, 2, ...) is an item id of task 'chat'", "id_field"),
])
def test_every_answer_file_is_checked_before_any_run_is_written(mt, capsys, bad, message, hint):
    """A good file first and a bad one second: exit 2 naming what is wrong, and no run of the
    good one either."""
    code = run(mt, "good=" + answer_file(mt / "good.jsonl", GOOD), "bad=" + answer_file(mt / "bad.jsonl", bad))
    err = capsys.readouterr().err
    assert code == 2 and message in err and hint in err and "answer set 'bad'" in err
    assert not (mt / "h.duckdb").exists()


def test_the_reports_flips_section_shows_a_planted_flip(tmp_path):
    """Variant b answers B everywhere, a answers A; on the item whose gold is B, b is right and a
    wrong: the report's flips section lists exactly that item as fail -> pass for b, and the others
    as pass -> fail."""
    write(tmp_path / "s.yaml", """
        name: flips
        tasks:
          - name: quiz
            type: multiple_choice
            data: {format: jsonl, path: items.jsonl}
            id_field: id
            prompt: {template: "{{ q }}\\nA. {{ options[0] }}\\nB. {{ options[1] }}\\nAnswer:"}
            multiple_choice: {choices_field: options, answer_field: gold}
            scorers: [acc]
        """)
    (tmp_path / "items.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "q": f"Question {i}?", "options": ["yes", "no"],
                                                              "gold": 1 if i == 3 else 0}) + "\n" for i in range(5)))
    store = str(tmp_path / "h.duckdb")
    for name, letter in (("a", "A"), ("b", "B")):
        models = write(tmp_path / f"{name}.yaml", f"base: {{name: {name}, source: fake, options: {{favour: [{letter}]}}}}\n")
        assert main(["run", str(tmp_path / "s.yaml"), "--models", str(models), "--store", store]) == 0
    report = write(tmp_path / "r.yaml", "title: flips\nvariants: [a, b]\nbaseline: a\n")
    assert main(["report", str(report), "--store", store, "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    section = html[html.index("Flips against a"):]
    section = section[:section.index("</table></details>")]
    assert "b 4 pass → fail, 1 fail → pass" in section
    assert 'fail → pass</div></td>\n<td><b>q3</b>' in section  # the planted flip, on its own side
    assert "<b>q3</b>" in section.split("fail → pass</div>")[1] and section.count("<b>q3</b>") == 1
    worse = [f"q{i}" for i in range(5) if f'pass → fail</div></td>\n<td><b>q{i}</b>' in section]
    assert worse and "q3" not in worse
