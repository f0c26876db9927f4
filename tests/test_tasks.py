"""Loading data and rendering prompts: MMLU layout, few-shot, JSONL/CSV errors with line numbers."""

from __future__ import annotations

import re

import pytest

from harness.config.suite import load_suite
from harness.errors import ConfigError, UnknownNameError
from harness.tasks.prepare import prepare_suite
from tests.conftest import REPO, write


def test_mmlu_prompt_matches_lm_eval_layout(workspace):
    suite_path = workspace / "suites" / "mc.yaml"
    (task,) = prepare_suite(load_suite(suite_path), suite_path)
    sample = task.samples[0]
    assert re.fullmatch(r"arithmetic/h[0-9a-f]{12}", sample.id)  # named by content, not position
    assert sample.continuations == (" A", " B", " C", " D")
    assert sample.gold == 2  # "What is 12 + 15?" -> C
    # description once, then k=2 dev examples of the same subject with their answers, then the item.
    assert sample.prompt.startswith("The following are multiple choice questions (with answers) about arithmetic.\n\nWhat is 7 + 8?")
    assert "Answer: C\n\nWhat is 9 x 3?" in sample.prompt
    assert sample.prompt.endswith("What is 12 + 15?\nA. 25\nB. 26\nC. 27\nD. 28\nAnswer:")
    assert sample.prompt.count("Answer:") == 3
    geo = [s for s in task.samples if s.id.startswith("world_geography")][0]
    assert "about world geography" in geo.prompt and "What is 7 + 8?" not in geo.prompt


def test_undefined_template_field_is_an_error(tmp_path):
    data = write(tmp_path / "d.jsonl", '{"q": "hi", "a": "yo"}\n')
    path = write(tmp_path / "s.yaml", f"""
        name: s
        tasks:
          - name: t
            type: generation
            data: {{format: jsonl, path: {data}}}
            prompt: {{template: "{{{{ question }}}}", reference: "{{{{ a }}}}"}}
            scorers: [rouge]
        """)
    with pytest.raises(ConfigError, match=r"prompt.template: 'question' is undefined \(item fields: a, q\)"):
        prepare_suite(load_suite(path), path)


def test_malformed_jsonl_line_is_named(tmp_path):
    data = write(tmp_path / "d.jsonl", '{"q": "hi", "a": "yo"}\n{"q": broken}\n')
    path = write(tmp_path / "s.yaml", f"""
        name: s
        tasks:
          - name: t
            type: generation
            data: {{format: jsonl, path: {data}}}
            prompt: {{template: "{{{{ q }}}}", reference: "{{{{ a }}}}"}}
            scorers: [rouge]
        """)
    with pytest.raises(ConfigError, match=r"d\.jsonl: line 2, column 7: malformed JSON"):
        prepare_suite(load_suite(path), path)


def test_missing_data_file(tmp_path):
    path = write(tmp_path / "s.yaml", """
        name: s
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: missing.jsonl}
            prompt: {template: "x", reference: "y"}
            scorers: [rouge]
        """)
    with pytest.raises(ConfigError, match="missing.jsonl: data file not found"):
        prepare_suite(load_suite(path), path)


def test_unknown_scorer_and_wrong_task_type(tmp_path):
    data = write(tmp_path / "d.jsonl", '{"q": "hi", "a": "yo"}\n')
    body = """
        name: s
        tasks:
          - name: t
            type: generation
            data: {{format: jsonl, path: {data}}}
            prompt: {{template: "{{{{ q }}}}", reference: "{{{{ a }}}}"}}
            scorers: [{scorer}]
        """
    path = write(tmp_path / "s.yaml", body.format(data=data, scorer="rogue"))
    with pytest.raises(UnknownNameError, match="unknown scorer 'rogue'. Did you mean 'rouge'"):
        prepare_suite(load_suite(path), path)
    path = write(tmp_path / "s.yaml", body.format(data=data, scorer="acc"))
    with pytest.raises(ConfigError, match="does not apply to generation tasks"):
        prepare_suite(load_suite(path), path)


def test_csv_and_mc_text_continuations(tmp_path):
    data = write(tmp_path / "d.csv", "id,question,opt_a,opt_b,label\nx1,Sky colour?,blue,green,0\nx2,Grass colour?,blue,green,1\n")
    path = write(tmp_path / "s.yaml", f"""
        name: s
        tasks:
          - name: t
            type: multiple_choice
            data: {{format: csv, path: {data}}}
            id_field: id
            prompt: {{template: "Q: {{{{ question }}}}\\nA:"}}
            multiple_choice: {{choices_field: opts, answer_field: label, continuation: text}}
            scorers: [acc]
        """)
    # The CSV has no list column: the error names the missing field.
    with pytest.raises(ConfigError, match="missing field 'opts'"):
        prepare_suite(load_suite(path), path)


def test_bad_mmlu_answer_letter(tmp_path):
    write(tmp_path / "mm" / "test" / "x_test.csv", "Q?,a,b,c,d,E\n")
    path = write(tmp_path / "s.yaml", f"""
        name: s
        tasks:
          - name: t
            type: multiple_choice
            data: {{format: mmlu_csv, path: {tmp_path / 'mm'}}}
            prompt: {{template: "{{{{ question }}}}"}}
            scorers: [acc]
        """)
    with pytest.raises(ConfigError, match=r"x_test\.csv: line 1, column 6: answer must be A, B, C or D"):
        prepare_suite(load_suite(path), path)


def test_unknown_mmlu_subject(tmp_path):
    path = write(tmp_path / "s.yaml", f"""
        name: s
        tasks:
          - name: t
            type: multiple_choice
            data: {{format: mmlu_csv, path: {REPO / 'data' / 'mmlu_sample'}, subjects: [arithmatic]}}
            prompt: {{template: "{{{{ question }}}}"}}
            scorers: [acc]
        """)
    with pytest.raises(UnknownNameError, match="Did you mean 'arithmetic'"):
        prepare_suite(load_suite(path), path)
