"""A reward model: a scalar head on the parent, LoRA-trained on preference pairs with trl's
RewardTrainer (Bradley-Terry: -log sigmoid(r(chosen) - r(rejected))).

The pairs come from the same sources as DPO's (given pairs, rule-built, or judge-annotated with a
constitution, checked against human labels first). Before and after training the held-out pairs
are scored with the same tokenisation the `reward` scorer uses; their accuracy (with its interval)
is stored beside the trivial "longer is better" baseline on the same pairs. The artifact scores
outputs (`- reward: {model: NAME}` in a suite); it is not evaluated as a candidate."""

from __future__ import annotations

import json
import logging

from pydantic import Field, model_validator

from harness.config.loader import Strict
from harness.models.reward_model import (
    META_FILE,
    encode,
    length_baseline,
    pairwise_accuracy,
    scores,
    sequence_classifier,
    versus_length,
)
from harness.models.tokenizers import load_tokenizer
from harness.recipes import BuildContext, BuildResult, Recipe
from harness.recipes.common import LossLogger, load_parent_for_training
from harness.recipes.preference import collect_pairs, data_files, dependencies, trainer_settings
from harness.recipes.preference_data import PreferenceDataSpec
from harness.recipes.sft_lora import LoraSpec

log = logging.getLogger(__name__)


class RewardTrainingSpec(Strict):
    """Optimisation settings of the reward model."""

    learning_rate: float = Field(default=1e-4, gt=0)
    max_steps: int = Field(default=20, ge=1)
    batch_size: int = Field(default=4, ge=1)
    """Pairs per step."""
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int = Field(default=256, ge=8)
    """Tokens of prompt + response; longer texts are cut from the left (the end is kept)."""
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    lr_scheduler: str = "linear"
    logging_steps: int = Field(default=5, ge=1)
    center_rewards_coefficient: float | None = Field(default=None, ge=0)
    """trl's incentive for rewards centred on zero (the paper of Eisenstein et al. uses 0.01)."""
    seed: int = 42


class RewardModelConfig(Strict):
    """Config of the reward_model recipe."""

    data: PreferenceDataSpec
    lora: LoraSpec = LoraSpec()
    training: RewardTrainingSpec = RewardTrainingSpec()
    score_batch_size: int = Field(default=8, ge=1)
    """Batch size when scoring the held-out pairs."""

    @model_validator(mode="after")
    def _pairs_only(self):
        if self.data.source == "unpaired":
            raise ValueError("a reward model learns from pairs (Bradley-Terry); source 'unpaired' trains KTO")
        return self


def _build(ctx: BuildContext) -> BuildResult:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback
    from trl import RewardConfig, RewardTrainer

    cfg: RewardModelConfig = ctx.config
    tcfg = cfg.training
    where = f"{ctx.models_path}: {ctx.variant}.config"
    collected = collect_pairs(ctx, cfg.data, where)
    train, val = collected.train, collected.validation
    log.info("%s: reward model on %d pairs (%d held out)", ctx.variant, len(train), len(val))

    tokenizer = load_tokenizer(ctx.parent.base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = sequence_classifier(load_parent_for_training(ctx.parent), tokenizer.pad_token_id, tcfg.seed)
    # The score head is new and must train in full; the backbone learns through LoRA.
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="SEQ_CLS", modules_to_save=["score"])
    model = get_peft_model(model, lora)

    def rows(pairs) -> list[dict]:
        # Tokenised here, as the scorer tokenises: trl would drop (not cut) texts over max_length.
        return [{"chosen_ids": encode(tokenizer, p.prompt + p.chosen, tcfg.max_length),
                 "rejected_ids": encode(tokenizer, p.prompt + p.rejected, tcfg.max_length)} for p in pairs]

    texts = ([p.prompt + p.chosen for p in val], [p.prompt + p.rejected for p in val])

    def held_out() -> tuple[dict, tuple]:
        if not val:
            return {}, ()
        rewards = tuple(scores(model, tokenizer, side, tcfg.max_length, cfg.score_batch_size) for side in texts)
        return pairwise_accuracy(*rewards).as_dict(), rewards

    before, _ = held_out()
    settings = trainer_settings(ctx, tcfg)
    args = RewardConfig(**settings, center_rewards_coefficient=tcfg.center_rewards_coefficient)
    logger = LossLogger(tcfg.max_steps, ctx.variant)
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows(train)),
                            processing_class=tokenizer, callbacks=[logger])
    trainer.remove_callback(PrinterCallback)
    out = trainer.train()
    after, rewards = held_out()
    baseline = length_baseline(*texts).as_dict() if val else {}
    trainer.model.save_pretrained(str(ctx.output_dir))
    (ctx.output_dir / META_FILE).write_text(json.dumps({"max_length": tcfg.max_length, "pad_token_id": tokenizer.pad_token_id}))
    trainable, total = trainer.model.get_nb_trainable_parameters()
    if after:
        log.info("%s: held-out pairwise accuracy %.3f [%.3f, %.3f] (n=%d; before training %.3f; 'longer is better' %.3f)",
                 ctx.variant, after["accuracy"], *after["ci95"], after["n"], before["accuracy"], baseline["accuracy"])
    metrics = {"loss_type": "bradley_terry", "train_loss": float(out.training_loss), "steps": int(trainer.state.global_step),
               "heldout_before": before, "heldout_after": after, "length_baseline": baseline,
               "versus_length": versus_length(rewards, texts) if val else {},
               **({"reward_accuracies": after["accuracy"], "reward_margins": after["margin"]} if after else {}),
               **collected.metrics}
    return BuildResult(artifact="reward_model", trainable_params=int(trainable), total_params=int(total),
                               train_curve=logger.curve, metrics=metrics, device="cpu" if not torch.cuda.is_available() else "cuda")


RECIPE = Recipe(name="reward_model", config_model=RewardModelConfig, build=_build, data_files=data_files,
                dependencies=dependencies, evaluator=True)
