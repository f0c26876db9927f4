"""File-boundary validation: unknown keys, wrong types, unknown names, did-you-mean, exit 2."""

from __future__ import annotations

import pytest

from harness.config.models import load_models
from harness.config.report import load_report
from harness.config.suite import load_suite
from harness.errors import ConfigError, UnknownNameError
from tests.conftest import write


def test_unknown_key_names_file_path_and_suggestion(tmp_path):
    path = write(tmp_path / "s.yaml", """
        name: s
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: x.jsonl}
            prompt: {template: "{{ a }}", refrence: "{{ b }}"}
            scorers: [rouge]
        """)
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "tasks[0].prompt.refrence: unknown key; did you mean 'reference'?" in msg


def test_wrong_type_reports_field_and_value(tmp_path):
    path = write(tmp_path / "s.yaml", """
        name: s
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: x.jsonl}
            prompt: {template: "x", reference: "y"}
            generation: {max_new_tokens: lots}
            scorers: [rouge]
        """)
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.generation\.max_new_tokens: .*lots"):
        load_suite(path)


def test_yaml_syntax_error_gives_line(tmp_path):
    path = write(tmp_path / "s.yaml", "name: s\ntasks: [\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_suite(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_suite(tmp_path / "nope.yaml")


def test_models_unknown_recipe_suggests(tmp_path):
    path = write(tmp_path / "m.yaml", """
        base: {name: b, source: fake}
        variants:
          - {name: v, parent: b, method: sft_lor}
        """)
    with pytest.raises(UnknownNameError) as err:
        load_models(path)
    assert "Did you mean 'sft_lora'" in str(err.value)  # the closest first
    assert "variants[0].method" in str(err.value)


def test_models_recipe_config_is_strict(tmp_path):
    path = write(tmp_path / "m.yaml", """
        base: {name: b, source: fake}
        variants:
          - name: v
            parent: b
            method: sft_lora
            config:
              data: {path: d.jsonl, prompt: p, completion: c}
              training: {learning_rat: 0.1}
        """)
    with pytest.raises(ConfigError, match=r"training\.learning_rat: unknown key; did you mean 'learning_rate'"):
        load_models(path)


def test_models_parent_must_exist(tmp_path):
    path = write(tmp_path / "m.yaml", """
        base: {name: b, source: fake}
        variants:
          - {name: v, parent: bb, method: sft_lora}
        """)
    with pytest.raises(UnknownNameError, match="unknown parent 'bb'"):
        load_models(path)


@pytest.mark.parametrize("rule, message", [
    ("{variant: b, task: t, metric: acc, min: 0.5, baseline: a, max_drop: 0.1}", "min/max belong to bound rules"),
    ("{variant: b, task: t, metric: acc}", "say what the rule checks"),
    ("{kind: non_inferiority, variant: b, baseline: a, task: t, metric: acc}", "needs a margin"),
    ("{kind: superiority, variant: b, task: t, metric: acc}", "needs a baseline"),
    ("{kind: superiority, variant: b, baseline: a, task: t, metric: acc, max_drop: 0.1}", "max_drop is shorthand"),
    ("{kind: bound, variant: b, task: t, metric: acc, min: 0.6, max: 0.5}", "min 0.6 is above max 0.5"),
    ("{variant: b, task: t, metric: acc, min: 0.5, alpha: 0.7}", "alpha"),
])
def test_report_rule_kinds_are_checked(tmp_path, rule, message):
    path = write(tmp_path / "r.yaml", f"""
        title: r
        variants: [a, b]
        gate:
          - {rule}
        """)
    with pytest.raises(ConfigError, match=message):
        load_report(path)


def test_report_rule_shorthands_resolve_to_kinds(tmp_path):
    path = write(tmp_path / "r.yaml", """
        title: r
        variants: [a, b]
        gate:
          - {variant: b, baseline: a, task: t, metric: acc, max_drop: 0.1}
          - {variant: b, task: t, metric: acc, min: 0.5}
          - {kind: superiority, variant: b, baseline: a, task: t, metric: acc}
        """)
    rules = load_report(path).gate
    assert [r.rule_kind for r in rules] == ["non_inferiority", "bound", "superiority"]
    assert [r.effective_margin for r in rules] == [0.1, 0.0, 0.0]


def test_report_baseline_listed(tmp_path):
    path = write(tmp_path / "r.yaml", "title: r\nvariants: [a]\nbaseline: z\n")
    with pytest.raises(ConfigError, match="baseline 'z' is not in variants"):
        load_report(path)
