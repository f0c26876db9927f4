"""Fidelity to the parent: how far a variant drifted from the model it was built from, on the
same items, from the two runs' stored rows (no model is loaded).

Multiple choice: top-1 agreement, flips (right under the parent and wrong here, and the
reverse) and the mean KL(parent || variant) between the option distributions (a softmax over
each item's option log-likelihoods, as stored with every sample) and the largest difference of an
option's log-likelihood (runtime parity: a base with `runtime_of:` is the child of the variant whose
weights it serves, so the same figures compare two runtimes). Generation: exact match with
the parent's greedy output and ROUGE-L against it. The parent is the variant's parent in the
lineage (`variants.parent_key`); its latest full run of the same task is the reference. Each
figure is a run-level metric of the variant's run, so the gate tests it like any other
("int8 flips at most 2% of MMLU items": {metric: parent_flips_to_wrong, max: 0.02}), and
`harness run` stores the per-item values in the `fidelity` table."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from harness.models.loading import right_padded
from harness.stats.hypothesis import ItemStatistic
from harness.stats.metricspec import Metric, RunValues, Unavailable

if TYPE_CHECKING:
    from harness.models.catalogue import Catalogue

_STAT = "harness.analysis.fidelity:run_statistic"

MULTIPLE_CHOICE_METRICS = (
    Metric("parent_agreement", "top-1 agreement with the parent", "higher", level="run", low=0, high=1, statistic=_STAT,
           description="share of items where the variant picks the parent's option"),
    Metric("parent_flips_to_wrong", "flips right -> wrong vs the parent", "lower", level="run", low=0, high=1, statistic=_STAT,
           description="share of items the parent gets right and the variant wrong"),
    Metric("parent_flips_to_right", "flips wrong -> right vs the parent", "higher", level="run", low=0, high=1, statistic=_STAT,
           description="share of items the parent gets wrong and the variant right"),
    Metric("parent_kl", "KL(parent || variant) over the options", "lower", level="run", low=0, statistic=_STAT, unit="nats",
           description="mean over items of the KL divergence between the option distributions"),
    Metric("parent_loglik_diff", "option log-likelihood difference vs the parent", "lower", level="run", low=0, statistic=_STAT,
           unit="nats", description="mean over items of the largest absolute difference of an option's log-likelihood: "
                                    "runtime parity (the same weights served another way) is near 0"),
)
GENERATION_METRICS = (
    Metric("parent_exact_match", "same output as the parent", "higher", level="run", low=0, high=1, statistic=_STAT,
           description="share of items whose output equals the parent's (whitespace-trimmed)"),
    Metric("parent_rougeL", "ROUGE-L against the parent's output", "higher", level="run", low=0, high=1, statistic=_STAT),
)


TOKEN_KL = Metric("parent_token_kl", "per-token KL(parent || variant)", "lower", level="run", low=0, unit="nats",
                  statistic="harness.analysis.fidelity:kl_statistic",
                  description="mean over a perplexity task's texts of the mean next-token KL divergence, both models loaded")
SEQUENCE_KL = Metric("parent_seq_kl", "sequence-level KL(variant || parent)", "lower", level="run", unit="nats",
                     statistic="harness.analysis.fidelity:kl_statistic",
                     description="mean over a generation task's prompts of log p_variant(y) - log p_parent(y) for completions y "
                                 "sampled from the variant (`sequence_kl:` on the task): RLHF's KL penalty, the drift signal")
MODEL_KL_METRICS = ("parent_token_kl", "parent_seq_kl")
"""Fidelity rows computed with both models loaded (the rest are computed from stored samples)."""


class NoParentRun(Unavailable):
    """The variant has no parent, or the parent has no stored run of the task."""


def parent_run(store, run_id: str) -> tuple[dict, dict]:
    """(the variant's run, its parent's latest run of the same task)."""
    rows = store.query("SELECT run_id, variant, variant_key, task, task_type, suite FROM runs WHERE run_id = ?", [run_id])
    if not rows:
        raise NoParentRun(f"no run {run_id}")
    run = rows[0]
    built = store.query("SELECT parent_key, parent_name FROM variants WHERE variant_key = ?", [run["variant_key"]])
    if not built or not built[0]["parent_key"]:
        raise NoParentRun(f"'{run['variant']}' has no parent in the lineage (a base model, or not built by harness)")
    parent = store.query("""SELECT run_id, variant FROM runs WHERE variant_key = ? AND task = ? AND suite = ?
                            ORDER BY coalesce(partial, false), last_used_at DESC, started_at DESC LIMIT 1""",
                         [built[0]["parent_key"], run["task"], run["suite"]])
    if not parent:
        raise NoParentRun(f"the parent '{built[0]['parent_name']}' of '{run['variant']}' has no stored run of {run['task']} "
                          f"(`harness run ... --variant {built[0]['parent_name']}`)")
    return run, parent[0]


def _softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [x / s for x in e]


def _pick(lls: list[float]) -> int:
    """The option the run picked: the highest log-likelihood, the first on ties (as scored)."""
    return max(range(len(lls)), key=lambda i: (lls[i], -i))


def item_values(store, run_id: str) -> dict[str, dict[str, float]]:
    """metric -> {sample_id: per-item value} of every fidelity metric of this run's task type,
    on the items both runs have."""
    return _item_values(store, run_id)[1]


def store_rows(store, run_ids: list[str]) -> int:
    """Write the per-item fidelity of each run whose variant's parent has a run of the task to
    the `fidelity` table (runs without one are skipped). Returns the rows written."""
    rows = []
    for run_id in run_ids:
        try:
            if _stored(store, run_id, parent_run(store, run_id)[1]["run_id"], None):
                continue  # a reused run whose parent's run is unchanged: already there
            parent_id, values = _item_values(store, run_id)
        except Unavailable:
            continue
        rows += [(run_id, parent_id, sid, metric, v) for metric, by_item in values.items() for sid, v in by_item.items()]
    store.fidelity_put(rows)
    return len(rows)


def _stored(store, run_id: str, parent_run_id: str, metric: str | None) -> bool:
    """Whether `fidelity` already holds this pair of runs' rows of `metric` (one of
    MODEL_KL_METRICS), or with None its agreement rows (those computed from stored samples)."""
    if metric is None:
        sql, params = f"metric NOT IN ({', '.join('?' for _ in MODEL_KL_METRICS)})", list(MODEL_KL_METRICS)
    else:
        sql, params = "metric = ?", [metric]
    return bool(store.query(f"SELECT count(*) AS n FROM fidelity WHERE run_id = ? AND parent_run_id = ? AND {sql}",
                            [run_id, parent_run_id, *params])[0]["n"])


def _item_values(store, run_id: str) -> tuple[str, dict[str, dict[str, float]]]:
    run, parent = parent_run(store, run_id)
    if run["task_type"] not in ("multiple_choice", "generation"):
        raise NoParentRun(f"agreement with the parent applies to multiple-choice and generation tasks, not {run['task_type']}")
    mine = {r["sample_id"]: r for r in store.query("SELECT sample_id, output, details FROM samples WHERE run_id = ?", [run_id])}
    theirs = {r["sample_id"]: r for r in store.query("SELECT sample_id, output, details FROM samples WHERE run_id = ?",
                                                     [parent["run_id"]])}
    shared = sorted(set(mine) & set(theirs))
    out: dict[str, dict[str, float]] = {}
    if not shared:
        raise NoParentRun(f"'{run['variant']}' and its parent '{parent['variant']}' share no items of {run['task']}")
    first = json.loads(mine[shared[0]]["details"] or "{}")
    if "loglikelihoods" in first:
        for metric in ("parent_agreement", "parent_flips_to_wrong", "parent_flips_to_right", "parent_kl", "parent_loglik_diff"):
            out[metric] = {}
        for sid in shared:
            dv, dp = json.loads(mine[sid]["details"]), json.loads(theirs[sid]["details"])
            lv, lp = dv["loglikelihoods"], dp["loglikelihoods"]
            gold, pv, pp = dv["gold"], _pick(lv), _pick(lp)
            p, q = _softmax(lp), _softmax(lv)
            out["parent_agreement"][sid] = float(pv == pp)
            out["parent_flips_to_wrong"][sid] = float(pp == gold and pv != gold)
            out["parent_flips_to_right"][sid] = float(pp != gold and pv == gold)
            out["parent_kl"][sid] = sum(a * (math.log(a) - math.log(max(b, 1e-300))) for a, b in zip(p, q) if a > 0)
            out["parent_loglik_diff"][sid] = max(abs(a - b) for a, b in zip(lv, lp))
    else:
        from rouge_score import rouge_scorer

        rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        out["parent_exact_match"], out["parent_rougeL"] = {}, {}
        for sid in shared:
            a, b = (mine[sid]["output"] or "").strip(), (theirs[sid]["output"] or "").strip()
            out["parent_exact_match"][sid] = float(a == b)
            out["parent_rougeL"][sid] = rouge.score(b, a)["rougeL"].fmeasure if (a or b) else 1.0
    return parent["run_id"], out


def run_statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """A fidelity figure of a stored run as the mean of its per-item values (resampled over items)."""

    values = item_values(store, run_id).get(metric)
    if values is None:
        raise NoParentRun(f"'{metric}' does not apply to this task's type")
    ids = tuple(sorted(values))
    vals = [values[i] for i in ids]
    return RunValues(ItemStatistic(ids, lambda idx: sum(vals[i] for i in idx) / len(idx)))


def token_kl(parent, variant, texts: list[str], batch_size: int = 8) -> list[float]:
    """Per text: the mean over positions of KL(parent || variant) between the two models'
    full next-token distributions (both hf backends in memory, the same tokenizer)."""
    encoded = same_tokenizer_texts(parent, variant, texts)
    return kl_per_text(next_token_logprobs(parent, encoded, batch_size), next_token_logprobs(variant, encoded, batch_size))


def same_tokenizer_texts(parent, variant, texts: list[str]) -> list[list[int]]:
    if parent.tokenizer.get_vocab() != variant.tokenizer.get_vocab():
        raise Unavailable("the variant's tokenizer differs from its parent's: next-token distributions don't compare")
    return [parent._encode(text)[-parent.max_length:] for text in texts]


def next_token_logprobs(backend, encoded: list[list[int]], batch_size: int = 8) -> list:
    """Per text of two tokens or more: the model's log-probabilities over the whole vocabulary at
    each position that predicts a token of the text, as a (tokens - 1, vocab) float32 CPU tensor;
    None for shorter texts. Texts go through `batch_size` at a time, right-padded (one pass of the
    vocabulary projection per batch rather than per text)."""
    import torch

    out: list = [None] * len(encoded)
    todo = [i for i, ids in enumerate(encoded) if len(ids) >= 2]
    for start in range(0, len(todo), batch_size):
        rows = todo[start:start + batch_size]
        ids, mask = right_padded([encoded[i] for i in rows], backend.tokenizer.pad_token_id)
        with torch.no_grad():
            logits = backend.model(input_ids=ids.to(backend.device), attention_mask=mask.to(backend.device)).logits
            lp = torch.log_softmax(logits.float(), -1).cpu()
        for r, i in enumerate(rows):
            out[i] = lp[r, :len(encoded[i]) - 1].clone()  # a copy: the batch's tensor can go
    return out


def kl_per_text(parent_logprobs: list, variant_logprobs: list) -> list[float]:
    """Per text: mean over positions of KL(parent || variant) (0.0 for texts under two tokens)."""
    return [0.0 if p is None else float((p.exp() * (p - q)).sum(-1).mean()) for p, q in zip(parent_logprobs, variant_logprobs)]


CARRY_MAX_BYTES = 1 << 30
"""A variant's log-probabilities are kept for the next pair of its lineage (where it is the
parent) when they take at most this much memory; otherwise they are computed again."""


def model_pairs(catalogue: Catalogue, evaluated: set[str], outcomes: list, tasks: dict, metric: str):
    """(outcome, task, parent backend, variant backend, parent's run row) for each variant
    evaluated by this command (`evaluated`) served by transformers whose transformers-served parent has a run of one of `tasks`
    and whose `metric` rows are not stored yet. Pairs come in lineage order and at most two
    models are loaded at a time (a child is often the next pair's parent, so it stays). Use it
    with contextlib.closing: the models are closed when the iteration ends."""

    store = catalogue.store
    loaded: dict[str, object] = {}
    try:
        for o in sorted(outcomes, key=lambda o: len(catalogue.lineage(o.variant)) if o.variant in evaluated else 0):
            task = tasks.get(o.task)
            if task is None or o.variant not in evaluated:
                continue
            chain = catalogue.lineage(o.variant)
            if len(chain) < 2 or {catalogue.backend_name(chain[-2]), catalogue.backend_name(o.variant)} != {"hf"}:
                continue  # full distributions: transformers models on both sides
            try:
                _, parent_run_row = parent_run(store, o.run_id)
            except Unavailable:
                continue
            if _stored(store, o.run_id, parent_run_row["run_id"], metric):
                continue
            for name in [n for n in loaded if n not in (chain[-2], o.variant)]:
                loaded.pop(name).close()
            if chain[-2] not in loaded:
                loaded[chain[-2]] = catalogue.open(chain[-2])
            if o.variant not in loaded:
                loaded[o.variant] = catalogue.open(o.variant)
            yield o, task, loaded[chain[-2]], loaded[o.variant], parent_run_row
    finally:
        for backend in loaded.values():
            backend.close()


def store_token_kl(catalogue: Catalogue | None, evaluated: set[str], outcomes: list, perplexity_tasks: dict) -> int:
    """For each evaluated variant whose parent has a run of the same perplexity task: the
    per-token KL on that task's texts, stored in `fidelity` (once per pair of runs). Each model
    computes its next-token distributions once (model_pairs). Returns the rows written."""
    from contextlib import closing

    if catalogue is None:
        return 0
    store = catalogue.store
    rows = []
    carried = None  # (variant, task, its next-token log-probabilities) of the last pair
    with closing(model_pairs(catalogue, evaluated, outcomes, perplexity_tasks, "parent_token_kl")) as pairs:
        for o, task, parent, variant, parent_run_row in pairs:
            parent_name = parent_run_row["variant"]
            encoded = same_tokenizer_texts(parent, variant, [s.prompt for s in task.samples])
            # In lineage order the last pair's variant is often this pair's parent: its
            # log-probabilities on the same texts are already computed.
            parent_lp = carried[2] if carried and carried[:2] == (parent_name, o.task) else next_token_logprobs(parent, encoded)
            variant_lp = next_token_logprobs(variant, encoded)
            kls = kl_per_text(parent_lp, variant_lp)
            size = sum(t.numel() * t.element_size() for t in variant_lp if t is not None)
            carried = (o.variant, o.task, variant_lp) if size <= CARRY_MAX_BYTES else None
            rows += [(o.run_id, parent_run_row["run_id"], s.id, "parent_token_kl", v) for s, v in zip(task.samples, kls)]
    store.fidelity_put(rows)
    return len(rows)


def kl_statistic(store, run_id: str, metric: str, params: dict) -> RunValues:
    """A KL computed with both models loaded (per-token on a perplexity task, sequence-level on a
    generation task), as stored for this run against its parent's latest run of the task."""

    _, parent = parent_run(store, run_id)
    rows = store.query("SELECT sample_id, value FROM fidelity WHERE run_id = ? AND parent_run_id = ? AND metric = ? ORDER BY sample_id",
                       [run_id, parent["run_id"], metric])
    if not rows:
        raise Unavailable(f"no {metric} stored for this run and its parent's (computed by `harness run` with the parent "
                          "evaluated too: per-token KL on a perplexity task, sequence KL on a generation task with sequence_kl:)")
    ids, vals = tuple(r["sample_id"] for r in rows), [r["value"] for r in rows]
    return RunValues(ItemStatistic(ids, lambda idx: sum(vals[i] for i in idx) / len(idx)))
