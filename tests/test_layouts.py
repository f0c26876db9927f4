"""Real-world layouts load as they are: MMLU exports with a header and 0-3 answers, options from
several columns, nested (ARC-style) choices with their own labels."""

from __future__ import annotations

import json

import pytest

from harness.config.suite import load_suite
from harness.errors import ConfigError
from harness.tasks.prepare import prepare_suite
from tests.conftest import write


def _prepare(tmp_path, task: str):
    path = write(tmp_path / "s.yaml", "name: s\ntasks:\n" + task)
    (prepared,) = prepare_suite(load_suite(path), path)
    return prepared


def test_mmlu_export_with_header_and_numeric_answers(tmp_path):
    write(tmp_path / "mmlu" / "test" / "astro_test.csv",
          "question,A,B,C,D,answer\nWhat orbits Earth?,Moon,Sun,Mars,Venus,0\nHottest planet?,Mercury,Venus,Mars,Earth,B\n")
    t = _prepare(tmp_path, """
  - name: q
    type: multiple_choice
    data: {format: mmlu_csv, path: mmlu, split: test}
    prompt: {template: "{{ question }}"}
    scorers: [acc]
""")
    write(tmp_path / "plain" / "test" / "astro_test.csv",
          "What orbits Earth?,Moon,Sun,Mars,Venus,0\nHottest planet?,Mercury,Venus,Mars,Earth,B\n")
    plain = _prepare(tmp_path, """
  - name: q
    type: multiple_choice
    data: {format: mmlu_csv, path: plain, split: test}
    prompt: {template: "{{ question }}"}
    scorers: [acc]
""")
    ids = [s.id for s in t.samples]  # the header is no item; ids as without one
    assert ids == [s.id for s in plain.samples] and len(set(ids)) == 2 and all(i.startswith("astro/h") for i in ids)
    assert [s.gold for s in t.samples] == [0, 1] and t.samples[0].options == ("Moon", "Sun", "Mars", "Venus")


def test_options_from_columns_and_from_nested_labelled_choices(tmp_path):
    write(tmp_path / "c.csv", "q,A,B,C,answer\nPick two,one,two,three,B\n")
    t = _prepare(tmp_path, """
  - name: q
    type: multiple_choice
    data: {format: csv, path: c.csv}
    prompt: {template: "{{ q }}"}
    multiple_choice: {choices_fields: [A, B, C], answer_field: answer}
    scorers: [acc]
""")
    assert t.samples[0].options == ("one", "two", "three") and t.samples[0].gold == 1
    arc = {"id": "Mercury_1", "question": "Which is a gas?", "answerKey": "3",
           "choices": {"text": ["ice", "water", "steam", "rock"], "label": ["1", "2", "3", "4"]}}
    write(tmp_path / "arc.jsonl", json.dumps(arc) + "\n")
    t = _prepare(tmp_path, """
  - name: arc
    type: multiple_choice
    data: {format: jsonl, path: arc.jsonl}
    id_field: id
    prompt: {template: "Question: {{ question }}\\nAnswer:"}
    multiple_choice: {choices_field: choices.text, labels_field: choices.label, answer_field: answerKey, continuation: text}
    scorers: [acc]
""")
    assert t.samples[0].options == ("ice", "water", "steam", "rock") and t.samples[0].gold == 2
    assert t.samples[0].continuations[2] == " steam"


def test_an_answer_outside_the_labels_is_a_clear_error(tmp_path):
    arc = {"question": "q", "answerKey": "E", "choices": {"text": ["a", "b"], "label": ["A", "B"]}}
    write(tmp_path / "arc.jsonl", json.dumps(arc) + "\n")
    with pytest.raises(ConfigError, match=r"answer 'E' is not one of the option labels \['A', 'B'\]"):
        _prepare(tmp_path, """
  - name: arc
    type: multiple_choice
    data: {format: jsonl, path: arc.jsonl}
    prompt: {template: "{{ question }}"}
    multiple_choice: {choices_field: choices.text, labels_field: choices.label, answer_field: answerKey}
    scorers: [acc]
""")


def test_tweeteval_layout(tmp_path):
    write(tmp_path / "emo" / "mapping.txt", "0\tanger\n1\tjoy\n")
    write(tmp_path / "emo" / "test_text.txt", "so mad \nso glad \n")
    write(tmp_path / "emo" / "test_labels.txt", "0\n1\n")
    t = _prepare(tmp_path, """
  - name: emo
    type: classification
    data: {format: tweeteval, path: emo, split: test}
    prompt: {template: "{{ text }}"}
    classification: {labels: [anger, joy]}
""")
    assert [(s.fields["text"], s.reference) for s in t.samples] == [("so mad", "anger"), ("so glad", "joy")]
    write(tmp_path / "emo" / "test_labels.txt", "0\n")
    with pytest.raises(ConfigError, match="must be in step"):
        _prepare(tmp_path, """
  - name: emo
    type: classification
    data: {format: tweeteval, path: emo, split: test}
    prompt: {template: "{{ text }}"}
    classification: {labels: [anger, joy]}
""")
