"""Metric declarations: one place, read by the gate, the report and `harness list`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import registry
from harness.cli import main
from harness.stats.metricspec import declarations, direction, lookup, resolve

REPO = Path(__file__).resolve().parent.parent


def test_each_metric_is_declared_once_or_identically():
    seen = {}
    for d in declarations():
        if d.metric.name in seen:
            assert seen[d.metric.name] == d.metric, f"{d.metric.name} declared differently by {d.provider}"
        seen[d.metric.name] = d.metric


@pytest.mark.parametrize("name, direction_, values, level", [
    ("acc", "higher", "binary", "item"), ("rougeL", "higher", "continuous", "item"),
    ("hallucination_rate", "lower", "continuous", "item"), ("perplexity", "lower", "continuous", "item"),
    ("latency_s", "lower", "continuous", "item"), ("judge_rating", "higher", "ordinal", "item"),
    ("judge_warmth", "higher", "ordinal", "item"), ("rubric_hashtags", "higher", "binary", "item"),
    ("latency_s_p95", "lower", "continuous", "run"), ("latency_s_p99_long", "lower", "continuous", "run"),
    ("throughput_tokens_per_s_c4", "higher", "continuous", "run"), ("corpus_bleu", "higher", "continuous", "run"),
    ("lc_win_rate", "higher", "continuous", "run"), ("first_position_win_rate", "none", "continuous", "run"),
])
def test_stored_names_resolve_to_their_declaration(name, direction_, values, level):
    m = lookup(name)
    assert (m.direction, m.values, m.level) == (direction_, values, level)
    assert direction(name) == direction_


def test_families_fill_in_their_placeholders():
    m, params = resolve("latency_s_p95_short")
    assert params == {"q": "95", "bucket": "short"} and m.percentile and m.display == "p95 latency, short prompts"
    assert resolve("rubric_no_links")[1] == {"check": "no_links"}
    assert lookup("no_such_metric") is None and direction("no_such_metric") == "none"


def test_every_metric_of_the_shipped_suites_is_declared():
    from harness.config.suite import load_suite
    from harness.tasks.prepare import prepare_suite

    for path in sorted((REPO / "suites").glob("*.yaml")):
        for task in prepare_suite(load_suite(path), path):
            kind = registry.resolve("task_kind", task.spec.type)
            for m in [m.name for m in kind.metrics] + [m.name for _, s in task.scorers for m in s.metrics]:
                assert lookup(m) is not None, f"{path.name}: {task.spec.name}: {m} is not declared"


def test_a_scorer_that_declares_nothing_is_a_clear_error(workspace, monkeypatch, capsys):
    monkeypatch.setitem(registry.BUILTINS["scorer"], "legacy", "harness.scorers.text_overlap:corpus_scorer")
    suite = workspace / "suites" / "gen.yaml"
    suite.write_text(suite.read_text().replace("scorers: [rouge, bleu, chrf, exact_match]", "scorers: [legacy]"))
    assert main(["validate", str(suite)]) == 2
    out = capsys.readouterr().out
    assert "is not a harness.scorers.Scorer" in out and "declare it with the harness.scorers.scorer(...) decorator" in out


def test_list_scorers_and_metrics_read_the_declarations(capsys):
    assert main(["list", "scorers"]) == 0
    out = capsys.readouterr().out
    assert "hallucination_rate: hallucination rate; lower is better; continuous, per item" in out
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "latency_s_p{q}" in out and "task kind latency" in out and "exact McNemar" in out


def test_validate_rejects_a_gate_rule_on_an_undeclared_metric(tmp_path, capsys):
    path = tmp_path / "reports" / "r.yaml"
    path.parent.mkdir()
    path.write_text("title: r\nvariants: [a, b]\ngate:\n  - {variant: b, task: t, metric: acuracy, min: 0.5}\n")
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "gate[0].metric: unknown metric 'acuracy'." in out and "Did you mean 'acc'" in out
