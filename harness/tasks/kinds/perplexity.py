"""Perplexity tasks: the log-likelihood of each item's text (e.g. held-out brand tweets) under
the variant, from an empty context (lm-eval's convention: the model's prefix token)."""

from __future__ import annotations

import json
import math

from harness.analysis import fidelity
from harness.analysis.contamination import CONTAMINATION_METRICS
from harness.analysis.fidelity import TOKEN_KL
from harness.backends.base import LOGLIKELIHOOD
from harness.stats.hypothesis import ItemStatistic, Ratio
from harness.stats.intervals import bootstrap_statistic
from harness.stats.metricspec import KindRows, Metric, RunValues, TaskKind, TaskRun
from harness.store.db import SampleRow, ScoreRow, StatRow


def corpus_perplexity(nll: list[float], tokens: list[int]):
    """exp(total NLL / total tokens) over items at the given positions (repeats allowed)."""
    return lambda idx: math.exp(sum(nll[i] for i in idx) / max(1, sum(tokens[i] for i in idx)))


def corpus_statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """Corpus perplexity of a stored run as a function of its items (gate resampling): exp of a
    ratio of sums, so a bound is tested exactly as a mean (harness.stats.hypothesis.ratio_test)."""

    rows = store.query("SELECT sample_id, details FROM samples WHERE run_id = ? ORDER BY sample_id", [run_id])
    details = [json.loads(r["details"]) for r in rows]
    ratio = Ratio(tuple(d["nll"] for d in details), tuple(max(d["tokens"], 1) for d in details), exp=True)
    return RunValues(ItemStatistic(tuple(r["sample_id"] for r in rows), ratio.value), ratio=ratio)


def perplexity_rows(backend, task, run_id: str, seed: int):
    """(samples, scores, run stats): per item `perplexity` and `nll_per_token`; per run
    `corpus_perplexity` = exp(total NLL / total tokens), not a mean of per-item perplexities."""

    results = backend.loglikelihood([("", s.prompt) for s in task.samples])
    samples, scores, nll, ntok = [], [], [], []
    for s, out in zip(task.samples, results):
        nll.append(-out.logprob)
        ntok.append(out.n_tokens)
        per = -out.logprob / max(out.n_tokens, 1)
        samples.append(SampleRow(run_id, s.id, s.prompt, None, None, json.dumps({"nll": -out.logprob, "tokens": out.n_tokens})))
        scores += [ScoreRow(run_id, s.id, "perplexity", "nll_per_token", per),
                   ScoreRow(run_id, s.id, "perplexity", "perplexity", math.exp(per))]
    est = bootstrap_statistic(len(nll), corpus_perplexity(nll, ntok), 1000, 0.95, seed)
    return samples, scores, [StatRow(run_id, "corpus_perplexity", est.mean, est.low, est.high, est.n, None)]


def rows(backend, task, run: TaskRun) -> KindRows:
    """The task kind's entry point (harness.stats.metricspec.TaskKind.rows)."""
    samples, scores, stats = perplexity_rows(backend, task, run.run_id, run.seed)
    return KindRows(samples, scores, stats)


KIND = TaskKind(
    "perplexity", "log-likelihood of each item's text under the variant",
    metrics=(Metric("perplexity", "perplexity", "lower", low=1, description="exp(NLL per token) of the item"),
             Metric("nll_per_token", "NLL per token", "lower", low=0, unit="nats")) + CONTAMINATION_METRICS,
    run_metrics=(Metric("corpus_perplexity", "corpus perplexity", "lower", level="run", low=1,
                        description="exp(total NLL / total tokens) over the run's items",
                        statistic="harness.tasks.kinds.perplexity:corpus_statistic"), TOKEN_KL), rows=rows,
    needs=frozenset({LOGLIKELIHOOD}), contamination=True, after_run=(fidelity.store_token_kl,))
