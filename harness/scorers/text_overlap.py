"""ROUGE (rouge-score) and BLEU/chrF (sacrebleu) against a reference, per sample.

The `evaluate` library's metric scripts live on the hub and fail offline, so the underlying
packages are used directly. BLEU and chrF are sacrebleu's sentence-level scores on its 0-100
scale. Corpus-level BLEU and chrF (what papers report) are computed from the stored outputs and
references by `corpus_score`, exactly as sacrebleu computes them."""

from __future__ import annotations

from functools import lru_cache

from harness.backends.base import Generation
from harness.errors import require
from harness.scorers import scorer
from harness.stats.hypothesis import ItemStatistic
from harness.stats.metricspec import Metric, RunValues
from harness.tasks.sample import Sample

CORPUS_BLEU = Metric("corpus_bleu", "corpus BLEU", "higher", level="run", low=0, high=100,
                     description="sacrebleu's corpus BLEU over the run's outputs (the figure papers report)",
                     statistic="harness.scorers.text_overlap:corpus_statistic")
CORPUS_CHRF = Metric("corpus_chrf", "corpus chrF", "higher", level="run", low=0, high=100,
                     description="sacrebleu's corpus chrF over the run's outputs",
                     statistic="harness.scorers.text_overlap:corpus_statistic")


@lru_cache(maxsize=1)
def _rouge_scorer():
    rs = require("rouge_score.rouge_scorer", "ROUGE scoring", "metrics")
    return rs.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


@scorer(task_types=("generation",), needs_reference=True, metrics=tuple(
    Metric(m, f"ROUGE-{m[5:]}", "higher", low=0, high=1, description=f"ROUGE-{m[5:]} F-measure, stemmed")
    for m in ("rouge1", "rouge2", "rougeL")))
def rouge(sample: Sample, output: Generation) -> dict[str, float]:
    """ROUGE-1/2/L F-measure (0-1) with Porter stemming, as the rouge-score package computes it."""
    result = _rouge_scorer().score(sample.reference or "", output.text)
    return {name: float(s.fmeasure) for name, s in result.items()}


@scorer(task_types=("generation",), needs_reference=True, metrics=(
    Metric("bleu", "sentence BLEU", "higher", low=0, high=100), CORPUS_BLEU))
def bleu(sample: Sample, output: Generation) -> dict[str, float]:
    """sacrebleu sentence BLEU (0-100, exponential smoothing)."""
    sacrebleu = require("sacrebleu", "BLEU scoring", "metrics")
    return {"bleu": float(sacrebleu.sentence_bleu(output.text, [sample.reference or ""]).score)}


@scorer(task_types=("generation",), needs_reference=True, metrics=(
    Metric("chrf", "sentence chrF", "higher", low=0, high=100), CORPUS_CHRF))
def chrf(sample: Sample, output: Generation) -> dict[str, float]:
    """sacrebleu sentence chrF (0-100)."""
    sacrebleu = require("sacrebleu", "chrF scoring", "metrics")
    return {"chrf": float(sacrebleu.sentence_chrf(output.text, [sample.reference or ""]).score)}


CORPUS_METRICS = {"bleu": CORPUS_BLEU.name, "chrf": CORPUS_CHRF.name}
"""Per-sample metric -> the corpus-level metric reported beside it."""


def corpus_statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """Corpus BLEU/chrF of a run as a function of any multiset of its items (gate resampling)."""

    rows = store.query("SELECT sample_id, output, reference FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id])
    _, score = corpus_scorer(metric, [r["output"] or "" for r in rows], [r["reference"] or "" for r in rows])
    return RunValues(ItemStatistic(tuple(r["sample_id"] for r in rows), score))


def corpus_scorer(metric: str, outputs: list[str], references: list[str]):
    """(n, score(indices)) for a corpus metric: sentence statistics are extracted once, and a
    score of any subset (a bootstrap resample) is the metric of the summed statistics. This is
    how sacrebleu's own significance tests resample (its `_extract_corpus_statistics` /
    `_compute_score_from_stats`); a test checks equality with the public `corpus_bleu`/`corpus_chrf`."""
    import numpy as np

    sacrebleu = require("sacrebleu", "BLEU scoring", "metrics")
    if metric not in ("corpus_bleu", "corpus_chrf"):
        raise ValueError(f"unknown corpus metric {metric!r}")
    scorer = sacrebleu.metrics.BLEU() if metric == "corpus_bleu" else sacrebleu.metrics.CHRF()
    stats = np.asarray(scorer._extract_corpus_statistics(outputs, [references]))

    def score(indices) -> float:
        return float(scorer._compute_score_from_stats(stats[list(indices)].sum(axis=0)).score)

    return len(outputs), score
