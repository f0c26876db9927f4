"""Reward models: a scalar head on a causal LM, trained on preference pairs (Bradley-Terry) and
used to score outputs.

One tokenisation is shared by training, the held-out accuracy and the `reward` scorer: prompt +
completion, cut from the left (keeping the first token, BOS on most tokenizers) when longer than
`max_length`, so the end of the text, where two responses differ, is always what is scored. The
model reads the last token of the right-padded sequence (transformers' sequence classification)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from harness.models.loading import load_causal_lm, right_padded
from harness.models.tokenizers import load_tokenizer
from harness.stats.intervals import bootstrap_mean

log = logging.getLogger(__name__)

META_FILE = "reward_model.json"
"""Beside the adapter: how texts were tokenised for training (max_length), so scoring matches."""


def encode(tokenizer, text: str, max_length: int) -> list[int]:
    """Token ids of `text` cut from the left to `max_length` (the first token kept when the
    tokenizer adds one, e.g. BOS): two responses to one conversation differ at the end."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if len(ids) <= max_length:
        return ids
    head = ids[:1] if tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id else []
    return head + ids[len(ids) - (max_length - len(head)):]


def sequence_classifier(causal, pad_token_id: int, seed: int):
    """A one-output sequence classifier on `causal`'s backbone (its weights copied, the LM head
    dropped), with a fresh seeded `score` head. Works for any architecture transformers has a
    ForSequenceClassification class for (Llama, Gemma 3 text, ...)."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(causal.config)
    config.num_labels = 1
    config.pad_token_id = pad_token_id
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config, dtype=causal.dtype)
    model.base_model.load_state_dict(causal.base_model.state_dict(), strict=True)
    return model


def scores(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 8) -> list[float]:
    """The model's reward for each text (no gradients; longest first, so batches pad little)."""
    import torch

    encoded = [encode(tokenizer, t, max_length) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
    out = [0.0] * len(texts)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                ids, mask = right_padded([encoded[i] for i in idx], model.config.pad_token_id)
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
                for row, i in enumerate(idx):
                    out[i] = float(logits[row, 0])
    finally:
        model.train(was_training)
    return out


@dataclass(frozen=True)
class PairwiseAccuracy:
    """How often the chosen response gets the higher reward (ties count half)."""

    accuracy: float
    low: float
    high: float
    """95% bootstrap interval over pairs."""
    n: int
    margin: float
    """Mean reward(chosen) - reward(rejected)."""

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "ci95": [self.low, self.high], "n": self.n, "margin": self.margin}


def wins(chosen: list[float], rejected: list[float]) -> list[float]:
    """Per pair: 1 when the chosen response scores higher, 0.5 on a tie, else 0."""
    return [1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected)]


def pairwise_accuracy(chosen: list[float], rejected: list[float]) -> PairwiseAccuracy:
    """Held-out accuracy of a scoring of pairs, with its interval."""

    est = bootstrap_mean(wins(chosen, rejected))
    margin = sum(c - r for c, r in zip(chosen, rejected)) / len(chosen) if chosen else float("nan")
    return PairwiseAccuracy(est.mean, est.low, est.high, est.n, margin)


def length_baseline(chosen: list[str], rejected: list[str]) -> PairwiseAccuracy:
    """The trivial reward "longer is better" (characters), on the same pairs: what a reward
    model must beat before its accuracy means anything."""
    return pairwise_accuracy([float(len(c)) for c in chosen], [float(len(r)) for r in rejected])


def versus_length(rewards: tuple[list[float], list[float]], texts: tuple[list[str], list[str]]) -> dict:
    """The reward model's accuracy minus the length baseline's, paired on the same pairs, with its
    95% bootstrap interval: whether it beats "longer is better", or the data can't tell."""

    mine = wins(*rewards)
    length = wins([float(len(c)) for c in texts[0]], [float(len(r)) for r in texts[1]])
    e = bootstrap_mean([a - b for a, b in zip(mine, length)])
    return {"difference": e.mean, "ci95": [e.low, e.high], "n": e.n}


@dataclass
class LoadedRewardModel:
    """A built reward model, loaded for scoring."""

    model: object
    tokenizer: object
    max_length: int
    key: str

    def score(self, texts: list[str], batch_size: int = 8) -> list[float]:
        return scores(self.model, self.tokenizer, texts, self.max_length, batch_size)

    def close(self) -> None:
        import gc

        self.model = None
        gc.collect()


def load_reward_model(model) -> LoadedRewardModel:
    """A reward-model variant (a ParentModel with `reward_head`) ready to score: its parent chain
    folded, the backbone moved under a sequence-classification head, the trained adapter and
    score head applied."""
    import torch
    from peft import PeftModel

    if model.reward_head is None:
        raise ValueError(f"{model.name} is not a reward model")
    meta = json.loads((Path(model.reward_head) / META_FILE).read_text())
    tokenizer = load_tokenizer(model.base_dir)
    causal = load_causal_lm(model.base_dir, model.adapters, model.dtype, merge_all=True)
    classifier = sequence_classifier(causal, meta["pad_token_id"], seed=0)
    del causal
    classifier = PeftModel.from_pretrained(classifier, str(model.reward_head)).merge_and_unload()
    classifier.eval()
    if torch.cuda.is_available():
        classifier = classifier.to("cuda")
    log.info("reward model %s loaded (max_length %d)", model.name, meta["max_length"])
    return LoadedRewardModel(classifier, tokenizer, int(meta["max_length"]), model.key)
