"""ROUGE (rouge-score) and BLEU/chrF (sacrebleu) against a reference, per sample.

The `evaluate` library's metric scripts live on the hub and fail offline, so the underlying
packages are used directly. BLEU and chrF are sacrebleu's sentence-level scores on its 0-100
scale; the corpus-level figures are computed from the stored rows by harness.metrics."""

from __future__ import annotations

from functools import lru_cache

from harness.backends.base import Generation
from harness.errors import require
from harness.scorers import scorer
from harness.tasks import Sample


@lru_cache(maxsize=1)
def _rouge_scorer():
    rs = require("rouge_score.rouge_scorer", "ROUGE scoring", "metrics")
    return rs.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


@scorer(task_types=("generation",), metrics=("rouge1", "rouge2", "rougeL"))
def rouge(sample: Sample, output: Generation) -> dict[str, float]:
    """ROUGE-1/2/L F-measure (0-1) with Porter stemming, as the rouge-score package computes it."""
    result = _rouge_scorer().score(sample.reference or "", output.text)
    return {name: float(s.fmeasure) for name, s in result.items()}


@scorer(task_types=("generation",), metrics=("bleu",))
def bleu(sample: Sample, output: Generation) -> dict[str, float]:
    """sacrebleu sentence BLEU (0-100, exponential smoothing)."""
    sacrebleu = require("sacrebleu", "BLEU scoring", "metrics")
    return {"bleu": float(sacrebleu.sentence_bleu(output.text, [sample.reference or ""]).score)}


@scorer(task_types=("generation",), metrics=("chrf",))
def chrf(sample: Sample, output: Generation) -> dict[str, float]:
    """sacrebleu sentence chrF (0-100)."""
    sacrebleu = require("sacrebleu", "chrF scoring", "metrics")
    return {"chrf": float(sacrebleu.sentence_chrf(output.text, [sample.reference or ""]).score)}
