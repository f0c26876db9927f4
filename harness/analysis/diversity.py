"""Did preference training collapse the drafts? For tasks with `generation.n` > 1 (several
drafts per brief), how different an item's drafts are from each other: distinct-1 and distinct-2
(unique word n-grams over all n-grams of the drafts; three copies of one draft score a third of
three different drafts), self-BLEU (each draft's BLEU against the others, averaged: 1.0 for
copies) and, with `generation.draft_similarity`, the mean pairwise cosine similarity of the drafts'
sentence embeddings (paraphrases of one draft score near 1.0 though their words differ). Per item, so a gate rule can hold a lineage step to its parent:
`{kind: non_inferiority, variant: dpo, baseline: sft, metric: distinct_2, margin: 0.05}`."""

from __future__ import annotations

from harness.analysis.contamination import words
from harness.models.embeddings import SentenceEncoder
from harness.stats.metricspec import Metric
from harness.store.db import ScoreRow

SCORER = "diversity"

DIVERSITY_METRICS = (
    Metric("distinct_1", "distinct-1 of the drafts", "higher", low=0, high=1,
           description="unique words over all words of an item's drafts (generation.n > 1)"),
    Metric("distinct_2", "distinct-2 of the drafts", "higher", low=0, high=1,
           description="unique word pairs over all word pairs of an item's drafts (generation.n > 1)"),
    Metric("self_bleu", "self-BLEU of the drafts", "lower", low=0, high=1,
           description="each draft's sentence BLEU (sacrebleu, /100) against the item's other drafts, averaged (generation.n > 1)"),
    Metric("draft_similarity", "embedding similarity of the drafts", "lower", low=-1, high=1,
           description="mean pairwise cosine similarity of an item's drafts (all-MiniLM-L6-v2; generation.draft_similarity)"),
)


def distinct(texts: list[str], n: int) -> float | None:
    """Unique word n-grams over all word n-grams of `texts` (None when they have none)."""
    grams = [tuple(ws[i:i + n]) for ws in (words(t) for t in texts) for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def self_bleu(texts: list[str]) -> float | None:
    """Mean sentence BLEU (0-1) of each text against the others (None for fewer than 2 non-empty)."""
    import sacrebleu

    kept = [t for t in texts if t.strip()]
    if len(kept) < 2:
        return None
    scores = [sacrebleu.sentence_bleu(t, [o for j, o in enumerate(kept) if j != i]).score / 100 for i, t in enumerate(kept)]
    return sum(scores) / len(scores)


def embedding_similarity(texts: list[str], encoder=None) -> float | None:
    """Mean cosine similarity over all pairs of the non-empty `texts` (None for fewer than 2)."""
    kept = [t for t in texts if t.strip()]
    if len(kept) < 2:
        return None
    v = (encoder or SentenceEncoder.default()).encode(kept)
    sims = v @ v.T
    n = len(kept)
    return float((sims.sum() - sims.trace()) / (n * (n - 1)))


def diversity_rows(run_id: str, sample_id: str, texts: list[str], similarity: bool = False) -> list[ScoreRow]:
    """One item's diversity score rows over its drafts (with the embedding similarity when asked)."""
    rows = [ScoreRow(run_id, sample_id, SCORER, "distinct_1", distinct(texts, 1)),
            ScoreRow(run_id, sample_id, SCORER, "distinct_2", distinct(texts, 2)),
            ScoreRow(run_id, sample_id, SCORER, "self_bleu", self_bleu(texts))]
    if similarity:
        rows.append(ScoreRow(run_id, sample_id, SCORER, "draft_similarity", embedding_similarity(texts)))
    return rows
