"""Classification tasks: one label of a closed set per item, chosen by log-likelihood (each label
scored after the prompt, the way multiple choice scores options) or by generation plus extraction.

Per item: `acc` (1 when the predicted label is the gold one), and for generated labels
`extraction_failed`. Per run, in `run_stats` with percentile-bootstrap intervals over items:
`macro_f1` and each label's `precision_<label>`, `recall_<label>`, `f1_<label>`, computed as
scikit-learn computes them (a label never predicted has precision 0, never present recall 0; a
test checks equality with sklearn). Gates recompute them from the stored predictions
(`statistic`), so a macro-F1 rule is tested by bootstrap like corpus BLEU.
"""

from __future__ import annotations

import json
import re

from harness.backends.base import GenerationConfig
from harness.contamination import CONTAMINATION_METRICS
from harness.extract import EXTRACTION_FAILED
from harness.scorers.multiple_choice import ACC
from harness.metricspec import KindRows, Metric, RunValues, TaskKind, TaskRun

_STAT = "harness.classification:statistic"


def metric_label(label: str) -> str:
    """A label as it appears in metric names (`f1_<label>`): word characters only."""
    return re.sub(r"\W+", "_", label.strip()).strip("_").lower() or "label"


def rows(backend, task, run: TaskRun) -> KindRows:
    """A sample row per item (output: the predicted label; details: gold, prediction, and the
    label log-likelihoods or the generated text), `acc` per item, and the run's per-class stats."""
    from harness.store.db import SampleRow, ScoreRow

    spec = task.spec.classification
    labels = list(spec.labels)
    samples, scores, predictions, golds = [], [], [], []
    generation_config = None
    if spec.method == "loglikelihood":
        from harness.multiple_choice import option_loglikelihoods

        by_id = option_loglikelihoods(backend, task.samples, run.ckpt)
        outcomes = []
        for s in task.samples:
            lls = [o.logprob for o in by_id[s.id]]
            best = max(range(len(lls)), key=lambda i: (lls[i], -i))
            outcomes.append((s, best, {"loglikelihoods": dict(zip(labels, lls))}, labels[best]))
    else:
        from harness.extract import ExtractSpec, extract
        from harness.generation import generate_samples

        g = task.spec.generation
        generation_config = GenerationConfig(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), g.batch_size, run.seed,
                                             g.top_k, g.repetition_penalty)
        extractor = ExtractSpec.model_validate(spec.extract) if spec.extract else None
        outcomes = []
        for s, out, _ in generate_samples(backend, task, generation_config, run.ckpt):
            found = extract(extractor, out.text) if extractor else out.text
            label = find_label(found, labels) if found is not None else None
            outcomes.append((s, labels.index(label) if label else None,
                             {"generated": out.text, "extracted": found, "output_tokens": out.output_tokens}, out.text))
    for s, predicted, extra, output in outcomes:
        correct = float(predicted == s.gold)
        details = {"gold": labels[s.gold], "predicted": labels[predicted] if predicted is not None else None, "labels": labels,
                   **extra}
        samples.append(SampleRow(run.run_id, s.id, s.prompt, labels[s.gold], output, json.dumps(details)))
        scores.append(ScoreRow(run.run_id, s.id, "classification", "acc", correct))
        if spec.method == "generate":
            scores.append(ScoreRow(run.run_id, s.id, "classification", "extraction_failed", float(predicted is None)))
        predictions.append(predicted)
        golds.append(s.gold)
    return KindRows(samples, scores, stats=class_stats(run.run_id, labels, golds, predictions, run.seed),
                    generation_config=generation_config)


def find_label(text: str, labels: list[str]) -> str | None:
    """The label named first in `text` (whole words, any case); None if none is."""
    best = None
    for label in labels:
        m = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.IGNORECASE)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), label)
    return best[1] if best else None


def per_class(labels: list[str], gold: list[int], predicted: list[int | None]) -> dict[str, float]:
    """macro_f1 and precision/recall/f1 per label, as sklearn's precision_recall_fscore_support
    with zero_division=0 (a prediction of no label counts against the gold label's recall)."""
    out, f1s = {}, []
    for k, label in enumerate(labels):
        tp = sum(1 for g, p in zip(gold, predicted) if g == k and p == k)
        fp = sum(1 for g, p in zip(gold, predicted) if g != k and p == k)
        fn = sum(1 for g, p in zip(gold, predicted) if g == k and p != k)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        name = metric_label(label)
        out.update({f"precision_{name}": precision, f"recall_{name}": recall, f"f1_{name}": f1})
        f1s.append(f1)
    out["macro_f1"] = sum(f1s) / len(f1s)
    return out


def confusion(labels: list[str], gold: list[int], predicted: list[int | None]) -> list[list[int]]:
    """counts[gold][predicted]; the last column counts outputs with no label."""
    counts = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, predicted):
        counts[g][len(labels) if p is None else p] += 1
    return counts


def class_stats(run_id: str, labels: list[str], gold: list[int], predicted: list[int | None], seed: int) -> list:
    """run_stats rows: each per-class figure with a percentile-bootstrap interval over items."""
    from harness.stats import bootstrap_statistic
    from harness.store.db import StatRow

    rows = []
    for name in per_class(labels, gold, predicted):
        def figure(idx, name=name):
            return per_class(labels, [gold[i] for i in idx], [predicted[i] for i in idx])[name]

        est = bootstrap_statistic(len(gold), figure, 1000, 0.95, seed)
        rows.append(StatRow(run_id, name, est.mean, est.low, est.high, est.n, None))
    return rows


def stored_predictions(store, run_id: str) -> tuple[list[str], list[str], list[int], list[int | None]]:
    """(labels, sample ids, gold and predicted label indices) of a classification run, from its samples."""
    rows = store.query("SELECT sample_id, details FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id])
    details = [json.loads(r["details"]) for r in rows]
    labels = details[0]["labels"] if details else []
    gold = [labels.index(d["gold"]) for d in details]
    predicted = [labels.index(d["predicted"]) if d["predicted"] is not None else None for d in details]
    return labels, [r["sample_id"] for r in rows], gold, predicted


def statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """A per-class figure of a run as a function of any multiset of its items (gate resampling)."""
    from harness.hypothesis import ItemStatistic
    from harness.metricspec import Unavailable

    labels, ids, g, p = stored_predictions(store, run_id)
    if metric not in per_class(labels, g[:1], p[:1]):
        raise Unavailable(f"{metric}: not a figure of this run's labels ({', '.join(labels)})")
    return RunValues(ItemStatistic(tuple(ids), lambda idx: per_class(labels, [g[i] for i in idx], [p[i] for i in idx])[metric]))


KIND = TaskKind(
    "classification", "one label of a closed set per item, by log-likelihood or by generation",
    metrics=(ACC, EXTRACTION_FAILED) + CONTAMINATION_METRICS,
    run_metrics=(
        Metric("macro_f1", "macro-F1", "higher", level="run", low=0, high=1, statistic=_STAT,
               description="unweighted mean of the labels' F1 (sklearn's average='macro')"),
        Metric("f1_{label}", "F1 of {label}", "higher", level="run", low=0, high=1, statistic=_STAT),
        Metric("precision_{label}", "precision of {label}", "higher", level="run", low=0, high=1, statistic=_STAT),
        Metric("recall_{label}", "recall of {label}", "higher", level="run", low=0, high=1, statistic=_STAT),
    ),
    rows=rows)
