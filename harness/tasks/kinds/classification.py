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
from typing import Any

from harness.analysis.contamination import CONTAMINATION_METRICS
from harness.backends.base import GenerationConfig
from harness.config.suite import ClassificationTask
from harness.data.loaders import Record
from harness.errors import ConfigError
from harness.scorers.multiple_choice import ACC
from harness.stats.hypothesis import ItemStatistic, chunk_sizes
from harness.stats.metricspec import KindRows, Metric, RunValues, TaskKind, TaskRun, Unavailable
from harness.store.db import SampleRow, ScoreRow, StatRow
from harness.tasks.extract import EXTRACTION_FAILED, ExtractSpec, extract
from harness.tasks.kinds.generation import generate_outputs
from harness.tasks.kinds.multiple_choice import option_loglikelihoods
from harness.tasks.prepare import examples_for, with_examples
from harness.tasks.prompts import render as render_template
from harness.tasks.sample import Sample

_STAT = "harness.tasks.kinds.classification:statistic"


def metric_label(label: str) -> str:
    """A label as it appears in metric names (`f1_<label>`): word characters only."""
    return re.sub(r"\W+", "_", label.strip()).strip("_").lower() or "label"


def rows(backend, task, run: TaskRun) -> KindRows:
    """A sample row per item (output: the predicted label; details: gold, prediction, and the
    label log-likelihoods or the generated text), `acc` per item, and the run's per-class stats."""

    spec = task.spec.classification
    labels = list(spec.labels)
    samples, scores, golds = [], [], []
    predictions: list[int | None] = []
    outcomes: list[tuple[Any, int | None, dict[str, Any], str | None]] = []
    generation_config = None
    if spec.method == "loglikelihood":
        by_id = option_loglikelihoods(backend, task.samples, run.ckpt)
        for s in task.samples:
            lls = [o.logprob for o in by_id[s.id]]
            best = max(range(len(lls)), key=lambda i: (lls[i], -i))
            outcomes.append((s, best, {"loglikelihoods": dict(zip(labels, lls))}, labels[best]))
    else:

        g = task.spec.generation
        generation_config = GenerationConfig(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), g.batch_size, run.seed,
                                             g.top_k, g.repetition_penalty)
        extractor = ExtractSpec.model_validate(spec.extract) if spec.extract else None
        for s, out, _ in generate_outputs(backend, task, generation_config, run.ckpt):
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
    import numpy as np

    k = len(labels)
    g = np.asarray(gold, dtype=np.int64)
    p = np.asarray([k if x is None else x for x in predicted], dtype=np.int64)
    counts = np.bincount(g * (k + 1) + p, minlength=k * (k + 1)).reshape(1, k, k + 1)
    return {name: float(v[0]) for name, v in _figures(labels, counts).items()}


def _figures(labels: list[str], counts) -> dict:
    """Per-class figures from confusion counts of shape (resamples, gold label, predicted label or none)."""
    import numpy as np

    k = len(labels)
    tp = counts[:, np.arange(k), np.arange(k)].astype(float)
    predicted = counts[:, :, :k].sum(axis=1)  # per predicted label, over gold labels
    actual = counts.sum(axis=2)  # per gold label, over predictions (none included)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(actual > 0, tp / np.maximum(actual, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1), 0.0)
    out = {}
    for j, label in enumerate(labels):
        name = metric_label(label)
        out.update({f"precision_{name}": precision[:, j], f"recall_{name}": recall[:, j], f"f1_{name}": f1[:, j]})
    out["macro_f1"] = f1.mean(axis=1)
    return out


def confusion(labels: list[str], gold: list[int], predicted: list[int | None]) -> list[list[int]]:
    """counts[gold][predicted]; the last column counts outputs with no label."""
    counts = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, predicted):
        counts[g][len(labels) if p is None else p] += 1
    return counts


def class_stats(run_id: str, labels: list[str], gold: list[int], predicted: list[int | None], seed: int,
                resamples: int = 1000, confidence: float = 0.95) -> list:
    """run_stats rows: each per-class figure with a percentile-bootstrap interval over items (the
    same resampling as harness.stats.intervals.bootstrap_statistic, every figure from one set of resamples,
    confusion counts per resample in one bincount)."""
    import numpy as np

    k, n = len(labels), len(gold)
    point = per_class(labels, gold, predicted)
    g = np.asarray(gold, dtype=np.int64)
    p = np.asarray([k if x is None else x for x in predicted], dtype=np.int64)
    cells = k * (k + 1)
    rng = np.random.default_rng(seed)
    drawn: dict[str, list] = {name: [] for name in point}
    for size in chunk_sizes(resamples, n):
        idx = rng.integers(0, n, size=(size, n))
        codes = g[idx] * (k + 1) + p[idx] + (np.arange(size) * cells)[:, None]
        counts = np.bincount(codes.ravel(), minlength=size * cells).reshape(size, k, k + 1)
        for name, values in _figures(labels, counts).items():
            drawn[name].append(values)
    alpha = (1 - confidence) / 2
    rows = []
    for name, value in point.items():
        low, high = np.quantile(np.concatenate(drawn[name]), [alpha, 1 - alpha])
        rows.append(StatRow(run_id, name, value, float(low), float(high), n, None))
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

    labels, ids, g, p = stored_predictions(store, run_id)
    if metric not in per_class(labels, g[:1], p[:1]):
        raise Unavailable(f"{metric}: not a figure of this run's labels ({', '.join(labels)})")
    return RunValues(ItemStatistic(tuple(ids), lambda idx: per_class(labels, [g[i] for i in idx], [p[i] for i in idx])[metric]))


def gold_label(task: ClassificationTask, rec: Record, where: str) -> int:
    """The index of a classification item's gold label (its text, or its index in `labels`)."""
    spec = task.classification
    if spec.label_field not in rec.fields:
        raise ConfigError(f"{where}: missing field '{spec.label_field}' (classification.label_field)")
    value = rec.fields[spec.label_field]
    if isinstance(value, str) and value in spec.labels:
        return spec.labels.index(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        index = int(value)
        if 0 <= index < len(spec.labels):
            return index
    raise ConfigError(f"{where}: field '{spec.label_field}' is {value!r}: expected one of {spec.labels} or an index 0-{len(spec.labels) - 1}")


def render(task: ClassificationTask, rec: Record, sid: str, shots: list[Record], where: str) -> Sample:
    """Like a multiple-choice item whose options are the labels: continuations are the labels
    after the delimiter; few-shot examples show their gold label."""
    p, spec = task.prompt, task.classification
    item_where = f"{where}: item {rec.id}"
    conts = tuple(spec.target_delimiter + label for label in spec.labels)
    shown = [(render_template(p.template, ex.fields, f"{where}: prompt.template"),
              spec.labels[gold_label(task, ex, f"{where}: few-shot example {ex.id}")]) for ex in examples_for(task, rec, shots)]
    parts = with_examples(task, rec, shown, item_where, spec.target_delimiter)
    gold = gold_label(task, rec, item_where)
    return Sample(sid, parts.text, conts, tuple(spec.labels), gold, reference=spec.labels[gold], fields=dict(rec.fields), chat=parts)


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
    rows=rows, contamination=True, render=render, shardable=True)
