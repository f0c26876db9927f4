"""Reinforcement learning from the brand rubric: trl's GRPOTrainer (group-relative policy
optimisation) with a LoRA adapter on the parent, rewarded by exactly what the rubric measures.

For each prompt the policy samples `num_generations` completions; each is rewarded with the share
of the rubric's observable checks it passes (`run_check`, as the `rubric` scorer scores them:
optionally only the checks named in `reward.checks`), plus, with `reward.reward_model`, a built
reward model's score as a second reward. A completion's advantage is its reward against its
group's; the loss carries beta x KL(policy || parent), and the mean reward and the KL per logged
step go into the training curve (reward rising while KL explodes is reward hacking). Evaluate the
result along the lineage like any step, diversity and safety included: RL is known to move both."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field

from harness.config.loader import Strict
from harness.diagnostics.lora_rank import adapter_rank_report
from harness.errors import ConfigError
from harness.recipes import BuildContext, BuildResult, Recipe, resolve_data_path
from harness.recipes.rloo import RlooDataSpec, RlooTrainingSpec, _device, _prompts, reward_model_reward, train_online
from harness.recipes.sft_lora import LoraSpec
from harness.scorers.rubric import load_rubric, run_check

log = logging.getLogger(__name__)


class GrpoRewardSpec(Strict):
    """What the completions are rewarded for."""

    rubric: str
    """The brand rubric file (relative to the models file): the reward is the share of its checks passed."""
    checks: list[str] | None = None
    """Only these checks of the rubric (default: all)."""
    reward_model: str | None = None
    """A `reward_model` variant of this models file, added as a second reward."""


class GrpoConfig(Strict):
    """Config of the grpo recipe."""

    data: RlooDataSpec
    reward: GrpoRewardSpec
    lora: LoraSpec = LoraSpec()
    training: RlooTrainingSpec = RlooTrainingSpec()
    max_grad_norm: float = Field(default=1.0, gt=0)
    """Gradient clipping."""


def _rubric_checks(cfg: GrpoConfig, ctx: BuildContext, where: str):
    path = resolve_data_path(cfg.reward.rubric, ctx.models_path)
    spec = load_rubric({"path": str(path)}, f"{where}.reward.rubric", ctx.models_path.parent)
    checks = [c for c in spec.checks if cfg.reward.checks is None or c.name in cfg.reward.checks]
    missing = sorted(set(cfg.reward.checks or []) - {c.name for c in spec.checks})
    if missing:
        raise ConfigError(f"{where}.reward.checks: {', '.join(missing)} not in {path} (checks: {', '.join(c.name for c in spec.checks)})")
    return checks


def _build(ctx: BuildContext) -> BuildResult:
    cfg: GrpoConfig = ctx.config
    tcfg = cfg.training
    where = f"{ctx.models_path}: {ctx.variant}.config"
    checks = _rubric_checks(cfg, ctx, where)
    prompts = _prompts(cfg, ctx, where)  # type: ignore[arg-type]  # the same data spec as rloo
    if not prompts:
        raise ConfigError(f"{where}.data.path: no prompts")

    def rubric_reward(prompts, completions, **_):
        return [sum(run_check(c, text) for c in checks) / len(checks) for text in completions]

    rubric_reward.__name__ = "rubric"
    rewards = [rubric_reward]
    rm = None
    if cfg.reward.reward_model:
        rm, model_reward = reward_model_reward(ctx, cfg.reward.reward_model, f"{where}.reward.reward_model")
        rewards.append(model_reward)
    try:
        trainer, out, logger = train_online(ctx, cfg.lora, tcfg, rewards, prompts, "grpo", max_grad_norm=cfg.max_grad_norm)
    finally:
        if rm is not None:
            rm.close()
    trainer.model.save_pretrained(str(ctx.output_dir))
    trainable, total = trainer.model.get_nb_trainable_parameters()
    logged = [p["reward"] for p in logger.curve if "reward" in p]
    kls = [p["kl"] for p in logger.curve if "kl" in p]
    metrics = {"loss_type": "grpo", "train_loss": float(out.training_loss), "steps": int(trainer.state.global_step),
               "rubric": Path(cfg.reward.rubric).name, "reward_checks": [c.name for c in checks],
               "reward_model": cfg.reward.reward_model, "prompts": len(prompts), "beta": tcfg.beta,
               "reward_first": logged[0] if logged else None, "reward_last": logged[-1] if logged else None,
               "kl_last": kls[-1] if kls else None}
    metrics["lora_rank"] = adapter_rank_report(ctx.output_dir)
    return BuildResult(artifact="adapter", trainable_params=int(trainable), total_params=int(total),
                       train_curve=logger.curve, metrics=metrics, device=_device())


RECIPE = Recipe(name="grpo", config_model=GrpoConfig, build=_build,
                data_files=lambda config, models_path: [resolve_data_path(config.data.path, models_path),
                                                        resolve_data_path(config.reward.rubric, models_path)],
                training_files=lambda config, models_path: [resolve_data_path(config.data.path, models_path)],
                dependencies=lambda config: [config.reward.reward_model] if config.reward.reward_model else [])
