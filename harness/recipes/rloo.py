"""Online RL from a reward model with a KL penalty (RLHF): trl's RLOOTrainer (REINFORCE
leave-one-out) with a LoRA adapter on the parent.

For each prompt the policy samples `num_generations` completions; a built reward model (`method:
reward_model` in the same models file, a build dependency) scores them, exactly as the `reward`
scorer does; each completion's advantage is its reward minus the mean of the others', and the loss
carries beta x KL(policy || parent), the penalty that keeps the policy near its reference. This is
the chapter's PPO path: trl (1.x) no longer ships a PPO trainer, and RLOO is its replacement for
reward-model RL (no value model; Ahmadian et al. 2024 report it matching or beating PPO).

The training curve keeps the mean reward and the KL per logged step: reward rising while KL
explodes is reward hacking, and `sequence_kl:` on an evaluation task measures the end state."""

from __future__ import annotations

import logging

from pydantic import Field, model_validator

from harness.config.loader import Strict
from harness.data.loaders import read_jsonl_objects
from harness.diagnostics.lora_rank import adapter_rank_report
from harness.errors import ConfigError
from harness.models.reward_model import load_reward_model
from harness.models.tokenizers import load_tokenizer
from harness.progress import progress_enabled
from harness.recipes import BuildContext, BuildResult, Recipe, resolve_data_path
from harness.recipes.common import LossLogger, load_parent_for_training
from harness.recipes.sft_lora import LoraSpec
from harness.tasks.prompts import render

log = logging.getLogger(__name__)


class RlooDataSpec(Strict):
    """The prompts the policy practises on."""

    path: str
    """JSONL file, relative to the models file."""
    prompt: str = "{{ prompt }}"
    """jinja2 template for the prompt."""
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N rows."""


class RlooRewardSpec(Strict):
    """Who scores the completions."""

    model: str
    """A `reward_model` variant declared earlier in this models file."""


class RlooTrainingSpec(Strict):
    """Optimisation settings."""

    beta: float = Field(default=0.05, ge=0)
    """Weight of the KL(policy || parent) penalty (0: no penalty, no reference model loaded)."""
    num_generations: int = Field(default=4, ge=2)
    """Completions sampled per prompt (the leave-one-out baseline needs at least 2)."""
    max_completion_length: int = Field(default=32, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=1e-5, gt=0)
    max_steps: int = Field(default=10, ge=1)
    batch_size: int = Field(default=4, ge=1)
    """Completions per step: a multiple of num_generations."""
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    seed: int = 42

    @model_validator(mode="after")
    def _whole_groups(self):
        if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise ValueError(f"batch_size x gradient_accumulation_steps ({self.batch_size * self.gradient_accumulation_steps}) "
                             f"must be a multiple of num_generations ({self.num_generations})")
        return self


class RlooConfig(Strict):
    """Config of the rloo recipe."""

    data: RlooDataSpec
    reward: RlooRewardSpec
    lora: LoraSpec = LoraSpec()
    training: RlooTrainingSpec = RlooTrainingSpec()


def _prompts(cfg: RlooConfig, ctx: BuildContext, where: str) -> list[str]:
    rows = read_jsonl_objects(resolve_data_path(cfg.data.path, ctx.models_path))
    rows = rows[: cfg.data.limit] if cfg.data.limit else rows
    return [render(cfg.data.prompt, row, f"{where}.data.prompt (line {n})") for n, row in rows]


def _build(ctx: BuildContext) -> BuildResult:
    cfg: RlooConfig = ctx.config
    tcfg = cfg.training
    where = f"{ctx.models_path}: {ctx.variant}.config"
    prompts = _prompts(cfg, ctx, where)
    if not prompts:
        raise ConfigError(f"{where}.data.path: no prompts")
    rm, brand_reward = reward_model_reward(ctx, cfg.reward.model, f"{where}.reward.model")
    try:
        trainer, out, logger = train_online(ctx, cfg.lora, tcfg, [brand_reward], prompts, "rloo")
    finally:
        rm.close()
    trainer.model.save_pretrained(str(ctx.output_dir))
    trainable, total = trainer.model.get_nb_trainable_parameters()
    rewards = [p["reward"] for p in logger.curve if "reward" in p]
    kls = [p["kl"] for p in logger.curve if "kl" in p]
    metrics = {"loss_type": "rloo", "train_loss": float(out.training_loss), "steps": int(trainer.state.global_step),
               "reward_model": cfg.reward.model, "prompts": len(prompts), "beta": tcfg.beta,
               "completions_per_step": tcfg.batch_size * tcfg.gradient_accumulation_steps * tcfg.logging_steps,
               "reward_first": rewards[0] if rewards else None, "reward_last": rewards[-1] if rewards else None,
               "kl_last": kls[-1] if kls else None}

    metrics["lora_rank"] = adapter_rank_report(ctx.output_dir)
    return BuildResult(artifact="adapter", trainable_params=int(trainable), total_params=int(total),
                       train_curve=logger.curve, metrics=metrics, device=_device())


def reward_model_reward(ctx: BuildContext, name: str, where: str):
    """(the loaded reward model, a trl reward function scoring prompt + completion with it, as
    the `reward` scorer tokenises them); a ConfigError when `name` is not a reward model."""
    model = ctx.dependencies[name]
    if model.reward_head is None:
        raise ConfigError(f"{where}: '{name}' is not a reward model (method: reward_model)")
    rm = load_reward_model(model)

    def reward(prompts, completions, **_):
        return rm.score([p + c for p, c in zip(prompts, completions)])

    reward.__name__ = f"reward_{name}"
    return rm, reward


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def train_online(ctx: BuildContext, lora_spec: LoraSpec, tcfg: RlooTrainingSpec, rewards: list, prompts: list[str], kind: str,
                 **extra):
    """Train a LoRA on the parent with trl's online trainer `kind` (rloo or grpo): sample
    `num_generations` completions per prompt, reward them with `rewards`, penalise beta x KL to
    the parent. Returns (trainer, train output, the loss logger with the curve)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback

    if kind == "rloo":
        from trl import RLOOConfig as TrainerConfig
        from trl import RLOOTrainer as Trainer
    else:
        from trl import GRPOConfig as TrainerConfig  # type: ignore[assignment]
        from trl import GRPOTrainer as Trainer  # type: ignore[assignment]
    tokenizer = load_tokenizer(ctx.parent.base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    args = TrainerConfig(
        output_dir=str(ctx.output_dir / "trainer"), max_steps=tcfg.max_steps, per_device_train_batch_size=tcfg.batch_size,
        gradient_accumulation_steps=tcfg.gradient_accumulation_steps, learning_rate=tcfg.learning_rate,
        logging_steps=tcfg.logging_steps, seed=tcfg.seed, data_seed=tcfg.seed, beta=tcfg.beta,
        num_generations=tcfg.num_generations, max_completion_length=tcfg.max_completion_length,
        temperature=tcfg.temperature, top_p=1.0, top_k=0, use_cpu=not torch.cuda.is_available(), bf16=False, report_to="none",
        save_strategy="no", disable_tqdm=not progress_enabled(), dataloader_num_workers=0, **extra)
    lora = LoraConfig(r=lora_spec.r, lora_alpha=lora_spec.alpha, lora_dropout=lora_spec.dropout,
                      target_modules=lora_spec.target_modules, task_type="CAUSAL_LM")
    logger = LossLogger(tcfg.max_steps, ctx.variant)
    trainer = Trainer(model=load_parent_for_training(ctx.parent), reward_funcs=rewards, args=args,
                      train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]), processing_class=tokenizer,
                      peft_config=lora, callbacks=[logger])
    trainer.remove_callback(PrinterCallback)
    return trainer, trainer.train(), logger


RECIPE = Recipe(name="rloo", config_model=RlooConfig, build=_build,
                data_files=lambda config, models_path: [resolve_data_path(config.data.path, models_path)],
                dependencies=lambda config: [config.reward.model])
