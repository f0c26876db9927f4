"""Perplexity tasks: the log-likelihood of each item's text (e.g. held-out brand tweets) under
the variant, from an empty context (lm-eval's convention: the model's prefix token)."""

from __future__ import annotations

import json
import math

from harness.stats import bootstrap_statistic


def perplexity_rows(backend, task, run_id: str, seed: int):
    """(samples, scores, run stats): per item `perplexity` and `nll_per_token`; per run
    `corpus_perplexity` = exp(total NLL / total tokens), not a mean of per-item perplexities."""
    from harness.store.db import SampleRow, ScoreRow, StatRow

    results = backend.loglikelihood([("", s.prompt) for s in task.samples])
    samples, scores, nll, ntok = [], [], [], []
    for s, out in zip(task.samples, results):
        nll.append(-out.logprob)
        ntok.append(out.n_tokens)
        per = -out.logprob / max(out.n_tokens, 1)
        samples.append(SampleRow(run_id, s.id, s.prompt, None, None, json.dumps({"nll": -out.logprob, "tokens": out.n_tokens})))
        scores += [ScoreRow(run_id, s.id, "perplexity", "nll_per_token", per),
                   ScoreRow(run_id, s.id, "perplexity", "perplexity", math.exp(per))]
    est = bootstrap_statistic(len(nll), lambda idx: math.exp(sum(nll[i] for i in idx) / max(1, sum(ntok[i] for i in idx))),
                              1000, 0.95, seed)
    return samples, scores, [StatRow(run_id, "corpus_perplexity", est.mean, est.low, est.high, est.n, None)]
