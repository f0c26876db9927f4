"""Sequence-level KL(variant || parent) on a fixed prompt set, estimated from samples.

For each prompt x, `samples` completions y are drawn from the variant by plain ancestral sampling
(temperature 1, no top-k / top-p: the estimator needs the variant's own distribution), and

    KL(pi || pi_ref)(x) ~= mean over y of [log pi(y | x) - log pi_ref(y | x)],

the sum over the completion's tokens of the two models' log-probabilities (both loaded, the same
tokenizer). It is the KL penalty of RLHF (PPO keeps the policy near its reference with it) and the
drift a preference-trained variant shows against its parent: a reward gain that comes with a large
KL is the signature of reward hacking. Unbiased per prompt (a single sample's value can be
negative; the mean over prompts is reported with a bootstrap interval). A completion ends at EOS
or after max_new_tokens, so it is the KL of the first max_new_tokens tokens."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from harness.analysis.fidelity import model_pairs, same_tokenizer_texts
from harness.models.loading import right_padded

if TYPE_CHECKING:
    from harness.models.catalogue import Catalogue

log = logging.getLogger(__name__)


def sample_completions(backend, prompt_ids: list[int], samples: int, max_new_tokens: int, seed: int) -> list[list[int]]:
    """`samples` completions of one prompt from the backend's model (token ids, cut after EOS)."""
    import torch
    from transformers import GenerationConfig

    tok = backend.tokenizer
    eos = tok.eos_token_id
    config = GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                              eos_token_id=eos, pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos)
    ids = torch.tensor([prompt_ids] * samples, device=backend.device)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
    completions = []
    for row in out[:, len(prompt_ids):].tolist():
        completions.append(row[: row.index(eos) + 1] if eos is not None and eos in row else row)
    return completions


def completion_logprobs(backend, prompt_ids: list[int], completions: list[list[int]]) -> list[float]:
    """log p(completion | prompt) under the backend's model, summed over the completion's tokens."""
    import torch

    ids, mask = right_padded([prompt_ids + c for c in completions], backend.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = backend.model(input_ids=ids.to(backend.device), attention_mask=mask.to(backend.device)).logits.float().cpu()
    out = []
    start = len(prompt_ids)
    for r, c in enumerate(completions):
        if not c:
            out.append(0.0)
            continue
        lp = torch.log_softmax(logits[r, start - 1:start - 1 + len(c)], -1)  # position t predicts token t + 1
        out.append(float(lp.gather(1, torch.tensor(c).unsqueeze(1)).sum()))
    return out


def sequence_kl(parent, variant, prompts: list[str], samples: int, max_new_tokens: int, seed: int) -> list[float]:
    """Per prompt: the sampled estimate of KL(variant || parent) in nats (see the module doc)."""

    budget = max(1, variant.max_length - max_new_tokens)
    encoded = [ids[-budget:] for ids in same_tokenizer_texts(parent, variant, prompts)]
    out = []
    for i, prompt_ids in enumerate(encoded):
        completions = sample_completions(variant, prompt_ids, samples, max_new_tokens, seed + i)
        mine = completion_logprobs(variant, prompt_ids, completions)
        theirs = completion_logprobs(parent, prompt_ids, completions)
        out.append(sum(a - b for a, b in zip(mine, theirs)) / len(completions))
    return out


def store_sequence_kl(catalogue: Catalogue | None, evaluated: set[str], outcomes: list, tasks: dict) -> int:
    """For each evaluated variant whose parent has a run of the same generation task with
    `sequence_kl:`: the per-prompt estimate, stored in `fidelity` as parent_seq_kl (once per pair
    of runs). Returns the rows written."""
    from contextlib import closing

    tasks = {name: t for name, t in tasks.items() if t.spec.sequence_kl is not None}
    if catalogue is None or not tasks:
        return 0
    rows = []
    with closing(model_pairs(catalogue, evaluated, outcomes, tasks, "parent_seq_kl")) as pairs:
        for o, task, parent, variant, parent_run_row in pairs:
            cfg = task.spec.sequence_kl
            kls = sequence_kl(parent, variant, [s.prompt for s in task.samples], cfg.samples, cfg.max_new_tokens, cfg.seed)
            log.info("%s / %s: sequence KL to %s %.4f nats (mean of %d prompts x %d samples)", o.variant, o.task,
                     parent_run_row["variant"], sum(kls) / len(kls), len(kls), cfg.samples)
            rows += [(o.run_id, parent_run_row["run_id"], s.id, "parent_seq_kl", v) for s, v in zip(task.samples, kls)]
    catalogue.store.fidelity_put(rows)
    return len(rows)
