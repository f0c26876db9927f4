"""Preference optimisation with a LoRA adapter (trl): DPO (sigmoid loss), IPO, SimPO
(reference-free, length-normalised, target margin gamma) and KTO (unpaired desirable /
undesirable examples). Usually starts from an SFT variant.

Reads top to bottom: config -> pairs (built and checked) -> model -> trainer -> save. The
reward accuracy and margin on held-out pairs are stored with the variant."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pydantic import Field

from harness.backends.base import GenerationConfig
from harness.backends.hf import open_model
from harness.config.loader import Strict
from harness.diagnostics.lora_rank import adapter_rank_report
from harness.errors import ConfigError
from harness.judge.clients import LocalJudge, OpenAIJudge
from harness.judge.constitution import load_constitution
from harness.models.tokenizers import load_tokenizer
from harness.progress import progress_enabled
from harness.recipes import BuildContext, BuildResult, Recipe, resolve_data_path
from harness.recipes.common import LossLogger, load_parent_for_training
from harness.recipes.preference_data import (
    PreferenceDataSpec,
    build_pairs,
    build_unpaired,
    check_pairs,
    check_unpaired,
    export_audit_sample,
    human_agreement,
    split_pairs,
)
from harness.recipes.sft_lora import LoraSpec

log = logging.getLogger(__name__)


class PreferenceTrainingSpec(Strict):
    """Optimisation settings."""

    beta: float = Field(default=0.1, gt=0)
    """DPO/KTO: strength of the pull towards the reference model; IPO: the regulariser tau;
    SimPO: the reward scale (the SimPO paper uses 2.0-2.5)."""
    simpo_gamma: float = Field(default=0.5, ge=0)
    """SimPO's target reward margin."""
    learning_rate: float = Field(default=5e-5, gt=0)
    """trl's DPO default (1e-6) barely moves a short LoRA run; 5e-5 does."""
    max_steps: int = Field(default=10, ge=1)
    batch_size: int = Field(default=2, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int = Field(default=128, ge=8)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    lr_scheduler: str = "linear"
    logging_steps: int = Field(default=2, ge=1)
    seed: int = 42


class PreferenceConfig(Strict):
    """Config of the dpo / ipo / simpo / kto recipes."""

    data: PreferenceDataSpec
    lora: LoraSpec = LoraSpec()
    training: PreferenceTrainingSpec = PreferenceTrainingSpec()


def data_files(config: PreferenceConfig, models_path: Path) -> list[Path]:
    """What the build reads, hashed into the variant's key: the data, and for AI feedback the
    constitution, the human-labelled validation set and the judge-prompt file."""
    d = config.data
    extra = [d.principles, d.human_labels, d.judge.prompts if d.judge is not None else None]
    return [resolve_data_path(p, models_path) for p in [d.path, *extra] if p]


def _generate_with_parent(ctx: BuildContext, spec: PreferenceDataSpec):
    """For rule-based pairs: the parent's own greedy answers (a fresh model, freed afterwards)."""

    def generate(prompts: list[str]) -> list[str]:
        backend = open_model(ctx.parent)
        try:
            outs = backend.generate(prompts, GenerationConfig(max_new_tokens=spec.max_new_tokens, stop=tuple(spec.stop)))
        finally:
            backend.close()
        return [o.text for o in outs]

    return generate


def _open_judge(ctx: BuildContext, spec: PreferenceDataSpec):
    """The annotating judge: an endpoint, or a model of the models file (a build dependency)."""

    j = spec.judge
    if j.backend == "openai":
        return OpenAIJudge.from_spec(j)

    model = ctx.dependencies[j.variant]
    backend = open_model(model)
    return LocalJudge(backend, model.key, j.mode, j.temperature, j.max_tokens)


def dependencies(config: PreferenceConfig) -> list[str]:
    """A local annotating judge is a model the build reads."""
    j = config.data.judge
    return [j.variant] if j is not None and j.backend == "local" else []


def _build(ctx: BuildContext, loss: str) -> BuildResult:
    cfg: PreferenceConfig = ctx.config
    tcfg = cfg.training
    where = f"{ctx.models_path}: {ctx.variant}.config"
    if cfg.data.source == "unpaired" and loss != "kto":
        raise ConfigError(f"{where}.data.source: 'unpaired' data (single labelled completions) trains KTO only; {loss} needs pairs")
    if cfg.data.source == "unpaired":
        return _build_kto_unpaired(ctx, cfg, where, build_unpaired, check_unpaired, split_pairs)
    collected = collect_pairs(ctx, cfg.data, where)
    train, val = collected.train, collected.validation
    log.info("%s: %s on %d pairs (%d held out); quality %s", ctx.variant, loss, len(train), len(val),
             {k: v for k, v in asdict(collected.quality).items() if k in ("identical_dropped", "duplicates_dropped", "length_imbalance")})

    if loss in ("dpo", "ipo"):
        from trl import DPOConfig

        train_ds, val_ds, make_args = as_rows(train), as_rows(val), lambda common: DPOConfig(
            **common, beta=tcfg.beta, loss_type=["sigmoid" if loss == "dpo" else "ipo"])
    elif loss == "simpo":
        from trl.experimental.cpo import CPOConfig

        train_ds, val_ds, make_args = as_rows(train), as_rows(val), lambda common: CPOConfig(
            **common, beta=tcfg.beta, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=tcfg.simpo_gamma)
    else:
        from trl import KTOConfig

        train_ds, val_ds, make_args = unpaired(train), unpaired(val), lambda common: KTOConfig(**common, beta=tcfg.beta)
    result = _train(ctx, cfg, loss, make_args, train_ds, val_ds)
    return replace(result, metrics={**result.metrics, **collected.metrics})


@dataclass(frozen=True)
class CollectedPairs:
    """Checked preference pairs, split, with what is stored about them on the variant."""

    train: list
    validation: list
    quality: object
    metrics: dict
    """pairs_train/validation, audit_pairs, preference_data (quality and judge counts) and, for AI
    feedback, the constitution and the agreement with the human labels."""


def collect_pairs(ctx: BuildContext, spec: PreferenceDataSpec, where: str) -> CollectedPairs:
    """Pairs from the data's source (given, rule-built with the parent, or judge-annotated with
    the constitution and checked against the human labels first), checked, audited and split:
    what the DPO family and the reward model train on."""

    annotation: dict = {}
    constitution, prompts_path = _feedback_files(ctx, spec)
    verdicts: list = []  # each annotated pair's verdict per principle (with a constitution)
    human = None  # agreement with the human-labelled validation pairs (with human_labels)
    judge = _open_judge(ctx, spec) if spec.source == "judge" else None
    try:
        if judge is not None and spec.human_labels:
            human = human_agreement(spec, resolve_data_path(spec.human_labels, ctx.models_path), where, judge,
                                    constitution, prompts_path)
            kappa = "undefined" if human["kappa"] is None else f"{human['kappa']:.2f}"
            unlabelled = (f"; the judge gave no usable label on {human['unlabelled_by_ai']} of them (its verdict flipped with "
                          "the order of the responses, or could not be read)") if human["unlabelled_by_ai"] else ""
            log.info("%s: AI labels agree with the human ones on %s of %d validation pairs (kappa %s)%s", ctx.variant,
                     "n/a" if human["agreement"] is None else f"{human['agreement']:.0%}", human["n"], kappa, unlabelled)
            if human["agreement"] is None or human["agreement"] < spec.min_agreement:
                raise ConfigError(f"{where}: the judge's labels agree with the human labels on "
                                  f"{0 if human['agreement'] is None else human['agreement']:.0%} of {human['n']} validation pairs "
                                  f"(Cohen's kappa {kappa}){unlabelled}, below data.min_agreement {spec.min_agreement:.0%}: "
                                  "the build stops before training",
                                  hint="fix the judge or the principles, or lower min_agreement deliberately")
        raw = build_pairs(spec, resolve_data_path(spec.path, ctx.models_path), where,
                          generate=_generate_with_parent(ctx, spec) if spec.source == "rule" else None,
                          judge=judge, report=annotation, constitution=constitution, prompts_path=prompts_path, verdicts=verdicts)
    finally:
        if judge is not None and hasattr(judge, "backend"):
            judge.backend.close()
    pairs, quality = check_pairs(raw)
    if len(pairs) < 2:
        dropped = (f"; the judge dropped {annotation['ties_dropped']} ties, {annotation['inconsistent_dropped']} order flips and "
                   f"{annotation['unjudged_dropped']} unparsed of {annotation['judged']}") if annotation else ""
        raise ConfigError(f"{where}: only {len(pairs)} usable preference pairs after the quality checks{dropped}")
    audited = export_audit_sample(pairs, ctx.output_dir / "audit_pairs.jsonl", spec.audit_sample, spec.split_seed)
    train, val = split_pairs(pairs, spec.validation_fraction, spec.split_seed)
    metrics: dict = {"pairs_train": len(train), "pairs_validation": len(val), "audit_pairs": audited,
                     "preference_data": {**asdict(quality), **({"judge": annotation} if annotation else {})}}
    if constitution is not None:
        with (ctx.output_dir / "annotations.jsonl").open("w", encoding="utf-8") as fh:
            for v in verdicts:
                fh.write(json.dumps(v, ensure_ascii=False) + "\n")
        metrics["constitution"] = {"name": constitution.name, "principles": [p.name for p in constitution.principles],
                                   "sha256": _sha256(resolve_data_path(spec.principles, ctx.models_path))}
    if human is not None:
        metrics["human_agreement"] = human
    return CollectedPairs(train, val, quality, metrics)


def _feedback_files(ctx: BuildContext, spec):
    """The constitution (parsed) and the judge-prompt file (resolved) of AI-feedback pair building."""

    constitution = load_constitution(resolve_data_path(spec.principles, ctx.models_path)) if spec.principles else None
    prompts_path = resolve_data_path(spec.judge.prompts, ctx.models_path) if spec.judge is not None and spec.judge.prompts else None
    return constitution, prompts_path


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build_kto_unpaired(ctx: BuildContext, cfg, where: str, build_unpaired, check_unpaired, split) -> BuildResult:
    """KTO on single labelled completions: the balance is reported and trl's desirable /
    undesirable weights are set from it (harness.recipes.preference_data.kto_weights)."""
    from trl import KTOConfig

    examples, quality = check_unpaired(build_unpaired(cfg.data, resolve_data_path(cfg.data.path, ctx.models_path), where), where)
    train, val = split(examples, cfg.data.validation_fraction, cfg.data.split_seed)
    log.info("%s: kto on %d unpaired examples (%d desirable, %d undesirable; weights %.2f / %.2f), %d held out", ctx.variant,
             len(train), quality.desirable, quality.undesirable, quality.desirable_weight, quality.undesirable_weight, len(val))
    audited = min(cfg.data.audit_sample, len(examples))
    with (ctx.output_dir / "audit_examples.jsonl").open("w", encoding="utf-8") as fh:
        import random

        for e in random.Random(cfg.data.split_seed).sample(examples, audited):
            fh.write(json.dumps({"prompt": e.prompt, "completion": e.completion, "desirable": e.desirable,
                                 "category": e.category, "human_label": None}, ensure_ascii=False) + "\n")
    rows = [[{"prompt": e.prompt, "completion": e.completion, "label": e.desirable} for e in part] for part in (train, val)]
    result = _train(ctx, cfg, "kto", lambda common: KTOConfig(
        **common, beta=cfg.training.beta, desirable_weight=quality.desirable_weight,
        undesirable_weight=quality.undesirable_weight), rows[0], rows[1])
    return replace(result, metrics={**result.metrics, "examples_train": len(train), "examples_validation": len(val),
                                    "audit_examples": audited, "preference_data": {"source": "unpaired", **asdict(quality)}})


def _train(ctx: BuildContext, cfg, loss: str, make_args, train_ds: list[dict], val_ds: list[dict]) -> BuildResult:
    """LoRA on the parent with a trl preference trainer (`make_args(common settings)` gives its
    config); the caller adds what it knows about the data to the result's metrics."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback

    tcfg = cfg.training
    tokenizer = load_tokenizer(ctx.parent.base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_parent_for_training(ctx.parent)
    use_cpu = not torch.cuda.is_available()
    common = trainer_settings(ctx, tcfg)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    args = make_args(common)
    trainer_cls = _trainer(loss)
    logger = LossLogger(tcfg.max_steps, ctx.variant)
    trainer = trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(train_ds),
                          eval_dataset=Dataset.from_list(val_ds) if val_ds else None,
                          processing_class=tokenizer, peft_config=lora, callbacks=[logger])
    trainer.remove_callback(PrinterCallback)
    before = trainer.evaluate() if val_ds else {}
    out = trainer.train()
    after = trainer.evaluate() if val_ds else {}
    trainer.model.save_pretrained(str(ctx.output_dir))
    trainable, total = trainer.model.get_nb_trainable_parameters()
    metrics = {"loss_type": loss, "train_loss": float(out.training_loss), "steps": int(trainer.state.global_step),
               "validation_before": _numbers(before), "validation_after": _numbers(after)}
    for key in ("eval_rewards/accuracies", "eval_rewards/margins"):
        if key in after:
            metrics[key.replace("eval_rewards/", "reward_")] = float(after[key])

    metrics["lora_rank"] = adapter_rank_report(ctx.output_dir)
    return BuildResult(artifact="adapter", trainable_params=int(trainable), total_params=int(total),
                       train_curve=logger.curve, metrics=metrics, device="cpu" if use_cpu else "cuda")


def trainer_settings(ctx: BuildContext, tcfg) -> dict:
    """The trl config settings every preference-style trainer here shares (CPU unless CUDA is
    there, no checkpoints, no reporting, harness's own progress logging)."""
    import torch

    return dict(
        output_dir=str(ctx.output_dir / "trainer"), max_steps=tcfg.max_steps, per_device_train_batch_size=tcfg.batch_size,
        per_device_eval_batch_size=tcfg.batch_size, gradient_accumulation_steps=tcfg.gradient_accumulation_steps,
        learning_rate=tcfg.learning_rate, lr_scheduler_type=tcfg.lr_scheduler, warmup_steps=tcfg.warmup_ratio,
        logging_steps=tcfg.logging_steps, max_length=tcfg.max_length, seed=tcfg.seed, data_seed=tcfg.seed,
        use_cpu=not torch.cuda.is_available(), bf16=False, report_to="none", save_strategy="no", eval_strategy="no",
        disable_tqdm=not progress_enabled(), dataloader_num_workers=0, gradient_checkpointing=False)


def _trainer(loss: str):
    if loss in ("dpo", "ipo"):
        from trl import DPOTrainer

        return DPOTrainer
    if loss == "simpo":
        from trl.experimental.cpo import CPOTrainer

        return CPOTrainer
    from trl import KTOTrainer

    return KTOTrainer


def as_rows(pairs) -> list[dict]:
    """trl's paired preference format."""
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]


def unpaired(pairs) -> list[dict]:
    """KTO learns from unpaired examples: each pair gives one desirable and one undesirable."""
    return [row for p in pairs for row in ({"prompt": p.prompt, "completion": p.chosen, "label": True},
                                           {"prompt": p.prompt, "completion": p.rejected, "label": False})]


def _numbers(d: dict) -> dict:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float))}


DPO = Recipe(name="dpo", config_model=PreferenceConfig, build=lambda ctx: _build(ctx, "dpo"), data_files=data_files,
                 dependencies=dependencies)
IPO = Recipe(name="ipo", config_model=PreferenceConfig, build=lambda ctx: _build(ctx, "ipo"), data_files=data_files,
                 dependencies=dependencies)
SIMPO = Recipe(name="simpo", config_model=PreferenceConfig, build=lambda ctx: _build(ctx, "simpo"), data_files=data_files,
                 dependencies=dependencies)
KTO = Recipe(name="kto", config_model=PreferenceConfig, build=lambda ctx: _build(ctx, "kto"), data_files=data_files,
                 dependencies=dependencies)
