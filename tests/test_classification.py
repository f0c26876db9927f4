"""Classification tasks: labels by log-likelihood or by generation plus extraction; per-class
figures equal scikit-learn's on the same predictions; gates and reports read them."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write

LABELS = ["anger", "joy", "optimism", "sadness"]
TEXTS = ["so angry at the delay", "best coffee ever", "tomorrow will be better", "I miss summer", "why is it cold",
         "love this place", "we can do it", "rainy and gray", "furious about prices", "happy Friday", "spring is near",
         "lonely morning", "angry again", "great latte", "hope it works", "sad song"]

SUITE = """
name: emo
seed: 7
tasks:
  - name: emotion
    type: classification
    data: {{format: jsonl, path: {data}}}
    id_field: id
    prompt: {{template: "Tweet: {{{{ text }}}}\\nEmotion:"}}
    classification: {{labels: {labels}, label_field: label, method: {method}{extra}}}
    generation: {{max_new_tokens: 8}}
"""


def _workspace(tmp_path, method: str, extra: str = "", options: str = "{}"):
    data = write(tmp_path / "d.jsonl", "".join(json.dumps({"id": f"t{k}", "text": t, "label": k % 4 if k % 3 else LABELS[k % 4]}) + "\n"
                                               for k, t in enumerate(TEXTS)))
    suite = write(tmp_path / "s.yaml", SUITE.format(data=data, labels=LABELS, method=method, extra=extra))
    models = write(tmp_path / "m.yaml", f"base: {{name: fake-a, source: fake, options: {options}}}\n")
    return suite, models, tmp_path / "h.duckdb"


def _predictions(store):
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("SELECT details FROM samples ORDER BY CAST(sample_id[2:] AS INTEGER)").fetchall()
    stats = dict(con.execute("SELECT metric, value FROM run_stats").fetchall())
    acc = con.execute("SELECT avg(value) FROM scores WHERE metric = 'acc'").fetchone()[0]
    failed = con.execute("SELECT sum(value) FROM scores WHERE metric = 'extraction_failed'").fetchone()[0]
    con.close()
    details = [json.loads(r[0]) for r in rows]
    return [d["gold"] for d in details], [d["predicted"] for d in details], stats, acc, failed


def _assert_sklearn(gold, predicted, stats, acc):
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    y_pred = [p if p is not None else "(none)" for p in predicted]
    assert acc == pytest.approx(accuracy_score(gold, y_pred))
    assert stats["macro_f1"] == pytest.approx(f1_score(gold, y_pred, labels=LABELS, average="macro", zero_division=0))
    p, r, f, _ = precision_recall_fscore_support(gold, y_pred, labels=LABELS, zero_division=0)
    for k, label in enumerate(LABELS):
        assert (stats[f"precision_{label}"], stats[f"recall_{label}"], stats[f"f1_{label}"]) == pytest.approx((p[k], r[k], f[k]))


def test_labels_by_loglikelihood_match_sklearn(tmp_path):
    suite, models, store = _workspace(tmp_path, "loglikelihood")
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    gold, predicted, stats, acc, failed = _predictions(store)
    assert gold == [LABELS[k % 4] for k in range(len(TEXTS))]  # label given as text or as index
    assert len(set(predicted)) >= 2 and None not in predicted and failed is None  # no extraction by log-likelihood
    _assert_sklearn(gold, predicted, stats, acc)


def test_labels_by_generation_count_extraction_failures(tmp_path):
    outputs = ["Joy, clearly.", "I'd say ANGER", "no idea", "sadness and joy", "optimism"]
    responses = {f"Tweet: {t}\n": outputs[k % 5] for k, t in enumerate(TEXTS)}
    suite, models, store = _workspace(tmp_path, "generate", options=json.dumps({"responses": responses}))
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    gold, predicted, stats, acc, failed = _predictions(store)
    expected = [["joy", "anger", None, "sadness", "optimism"][k % 5] for k in range(len(TEXTS))]
    assert predicted == expected
    assert failed == expected.count(None)  # counted, and scored as wrong
    _assert_sklearn(gold, predicted, stats, acc)


def test_a_regex_extractor_picks_the_label(tmp_path):
    responses = {f"Tweet: {TEXTS[0]}\n": "maybe joy. Emotion: sadness", f"Tweet: {TEXTS[1]}\n": "Emotion: Anger"}
    extra = ", extract: {type: regex, pattern: 'Emotion: (\\w+)'}"
    suite, models, store = _workspace(tmp_path, "generate", extra=extra, options=json.dumps({"responses": responses}))
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    _, predicted, _, _, _ = _predictions(store)
    assert predicted[:2] == ["sadness", "anger"]


@pytest.mark.parametrize("bad, message", [
    ("classification: {labels: [a, a], label_field: label}", "labels must be distinct"),
    ("classification: {labels: [a, b], extract: {type: last_number}}", "extract applies to method: generate"),
])
def test_bad_classification_blocks_are_refused(tmp_path, capsys, bad, message):
    write(tmp_path / "d.jsonl", '{"text": "x", "label": "a"}\n')
    suite = write(tmp_path / "s.yaml", f"""
name: s
tasks:
  - name: c
    type: classification
    data: {{format: jsonl, path: d.jsonl}}
    prompt: {{template: "{{{{ text }}}}"}}
    {bad}
""")
    models = write(tmp_path / "m.yaml", "base: {name: f, source: fake}\n")
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "h.duckdb").exists()


def test_report_shows_per_class_figures_and_confusion_and_gate_tests_macro_f1(tmp_path, capsys):
    suite, models, store = _workspace(tmp_path, "loglikelihood")
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    gold, predicted, stats, _, _ = _predictions(store)
    report = write(tmp_path / "r.yaml", """
        title: emotions
        variants: [fake-a]
        statistics: {resamples: 300}
        gate:
          - {variant: fake-a, task: emotion, metric: macro_f1, min: 0.0, name: any macro-F1}
          - {variant: fake-a, task: emotion, metric: f1_joy, max: 1.5, name: joy's F1 bounded}
    """)
    out = tmp_path / "r.html"
    assert main(["report", str(report), "--store", str(store), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Per-class figures" in html and "macro_f1" in html and "Confusion matrices" in html
    from harness.tasks.kinds.classification import confusion

    matrix = confusion(LABELS, [LABELS.index(g) for g in gold], [LABELS.index(p) for p in predicted])
    assert f'<td class="num diag">{matrix[1][1]}</td>' in html.split("Confusion matrices")[1].split("</table>")[0].split("<th>joy</th>")[2]
    capsys.readouterr()
    code = main(["gate", str(report), "--store", str(store)])
    text = capsys.readouterr().out
    assert "percentile bootstrap" in text and f"{stats['macro_f1']:.4g}" in text
    assert code in (0, 3)


def test_per_class_intervals_are_the_item_bootstrap():
    """class_stats draws every figure's resamples at once; they equal the generic bootstrap of
    the figure over items with the same seed."""
    import random

    from harness.stats.intervals import bootstrap_statistic
    from harness.tasks.kinds.classification import class_stats, per_class

    rng = random.Random(5)
    gold = [rng.randrange(4) for _ in range(300)]
    predicted = [rng.choice([0, 1, 2, 3, None]) for _ in range(300)]
    rows = {r.metric: r for r in class_stats("r", LABELS, gold, predicted, seed=11, resamples=400)}
    for name in ("macro_f1", "f1_joy", "recall_sadness"):
        ref = bootstrap_statistic(300, lambda idx, name=name: per_class(LABELS, [gold[i] for i in idx], [predicted[i] for i in idx])[name],
                                  400, 0.95, 11)
        assert (rows[name].value, rows[name].low, rows[name].high) == pytest.approx((ref.mean, ref.low, ref.high))
