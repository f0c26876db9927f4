"""Distillation from a teacher variant into a student (the variant's parent).

response: the teacher generates on a prompt set and the student is SFT-trained (LoRA) on
          those outputs. The student may be any model.
token:    the student is trained to match the teacher's next-token distributions on the
          training texts, mixed with the hard-label loss:
              loss = (1 - lambda) * CE(student, labels) + lambda * T^2 * KL(teacher_T || student_T)
          at temperature T (Hinton et al.). Both must share the tokenizer; a cheap real student
          is the base with every k-th layer kept (recipe `shrink`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field

from harness.backends.base import GenerationConfig
from harness.backends.hf import open_model
from harness.config.loader import Strict
from harness.data.loaders import LoadRequest, load_jsonl
from harness.data.textprep import TextPrepSpec, prep_fields
from harness.diagnostics.lora_rank import adapter_rank_report, full_finetune_rank_report
from harness.errors import ConfigError
from harness.models.tokenizers import load_tokenizer
from harness.progress import progress_enabled
from harness.recipes import BuildContext, BuildResult, Recipe, resolve_data_path, sft_lora
from harness.recipes.common import LossLogger, load_parent_for_training
from harness.recipes.sft_lora import LoraSpec, SFTTrainingSpec
from harness.tasks.prompts import render

log = logging.getLogger(__name__)


class DistillDataSpec(Strict):
    """Prompts (and, for token-level, the texts whose distributions are matched)."""

    path: str
    """JSONL file, relative to the models file."""
    prompt: str
    """jinja2 template for the prompt."""
    completion: str | None = None
    """token: jinja2 template for the completion (labels and teacher distributions cover it)."""
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N rows (teacher generation is the slow part on CPU)."""
    prep: TextPrepSpec | None = None
    """Social-text cleaning and filtering applied to `prep_fields` before rendering."""
    prep_fields: list[str] = []


class DistillConfig(Strict):
    """Config of the `distill` recipe."""

    teacher: str
    """Name of the teacher model (declared earlier in the same models file)."""
    level: Literal["response", "token"] = "response"
    data: DistillDataSpec
    max_new_tokens: int = Field(default=48, ge=1)
    """response: teacher generation length."""
    stop: list[str] = ["\n"]
    """response: stop strings for the teacher's generation."""
    temperature: float = Field(default=2.0, gt=0)
    """token: softmax temperature T of both distributions (T^2 keeps gradient scale comparable)."""
    kl_weight: float = Field(default=0.5, ge=0, le=1)
    """token: lambda, the share of the KL term."""
    train: Literal["lora", "full"] = "lora"
    """Train a LoRA adapter on the student, or all its weights (a shrunk student needs `full`)."""
    lora: LoraSpec = LoraSpec()
    training: SFTTrainingSpec = SFTTrainingSpec()


def data_files(config: DistillConfig, models_path: Path) -> list[Path]:
    return [resolve_data_path(config.data.path, models_path)]


def dependencies(config: DistillConfig) -> list[str]:
    return [config.teacher]


def _rows(cfg: DistillConfig, ctx: BuildContext) -> list[dict]:
    where = f"{ctx.models_path}: {ctx.variant}.config.data"
    rows = load_jsonl(LoadRequest(resolve_data_path(cfg.data.path, ctx.models_path)))
    rows = rows[: cfg.data.limit] if cfg.data.limit else rows

    out = []
    for r in rows:
        fields, reason = prep_fields(r.fields, cfg.data.prep, cfg.data.prep_fields)
        if reason:
            continue
        item = {"prompt": render(cfg.data.prompt, fields, f"{where}.prompt (line {int(r.id) + 1})")}
        if cfg.data.completion is not None:
            item["completion"] = render(cfg.data.completion, fields, f"{where}.completion (line {int(r.id) + 1})")
        out.append(item)
    return out


def build(ctx: BuildContext) -> BuildResult:
    cfg: DistillConfig = ctx.config
    teacher = ctx.dependencies[cfg.teacher]
    if cfg.level == "response":
        return _response_level(ctx, cfg, teacher)
    return _token_level(ctx, cfg, teacher)


def _response_level(ctx: BuildContext, cfg: DistillConfig, teacher) -> BuildResult:
    """Teacher generates; the student learns its outputs with the SFT recipe."""
    import json

    rows = _rows(cfg, ctx)
    backend = open_model(teacher)
    try:
        outs = backend.generate([r["prompt"] for r in rows], GenerationConfig(max_new_tokens=cfg.max_new_tokens, stop=tuple(cfg.stop)))
    finally:
        backend.close()
    pairs = [{"prompt": r["prompt"], "completion": " " + o.text.strip()} for r, o in zip(rows, outs) if o.text.strip()]
    log.info("%s: teacher %s answered %d of %d prompts", ctx.variant, cfg.teacher, len(pairs), len(rows))
    generated = ctx.output_dir / "teacher_outputs.jsonl"
    generated.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    sft_cfg = sft_lora.SFTLoraConfig(
        data=sft_lora.SFTDataSpec(path=str(generated.resolve()), prompt="{{ prompt }}", completion="{{ completion }}",
                                  validation_fraction=0.1),
        lora=cfg.lora, training=cfg.training)
    result = sft_lora.build(BuildContext(ctx.variant, sft_cfg, ctx.parent, ctx.output_dir, ctx.models_path))
    metrics = {**result.metrics, "level": "response", "teacher": cfg.teacher, "teacher_outputs": len(pairs)}
    return BuildResult(**{**result.__dict__, "metrics": metrics})


def teacher_logits(teacher_model, inputs: dict):
    """The frozen teacher's logits for a batch. The trainer moves the batch (and the student) to
    the GPU when there is one; the teacher, loaded on the CPU, follows the batch on first use."""
    import torch

    device = inputs["input_ids"].device
    if next(teacher_model.parameters()).device != device:
        teacher_model.to(device)
    with torch.no_grad():
        return teacher_model(**inputs).logits


def _token_level(ctx: BuildContext, cfg: DistillConfig, teacher) -> BuildResult:
    import torch
    import torch.nn.functional as F
    from datasets import Dataset
    from transformers import (
        DataCollatorForSeq2Seq,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    where = f"{ctx.models_path}: {ctx.variant}.config"
    if cfg.data.completion is None:
        raise ConfigError(f"{where}: token-level distillation needs data.completion (the texts whose distributions are matched)")
    tok = load_tokenizer(ctx.parent.base_dir)
    teacher_tok = load_tokenizer(teacher.base_dir)
    if tok.get_vocab() != teacher_tok.get_vocab():
        raise ConfigError(f"{where}: token-level distillation needs the student and teacher '{cfg.teacher}' to share "
                          "a tokenizer; use level: response for different tokenizers")
    teacher_model = load_parent_for_training(teacher).eval()
    for p in teacher_model.parameters():
        p.requires_grad_(False)
    student = load_parent_for_training(ctx.parent)
    if cfg.train == "lora":
        from peft import LoraConfig, get_peft_model

        student = get_peft_model(student, LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                                     target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM"))

    def encode(row):
        prompt_ids = tok(row["prompt"]).input_ids
        ids = tok(row["prompt"] + row["completion"] + (tok.eos_token or "")).input_ids[: cfg.training.max_length]
        labels = [-100] * min(len(prompt_ids), len(ids)) + ids[len(prompt_ids):]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}

    rows = [encode(r) for r in _rows(cfg, ctx)]
    # For a full fine-tune the rank diagnostic needs the starting weights of each linear layer.
    initial = ({n: m.weight.detach().clone() for n, m in student.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n}
               if cfg.train == "full" else {})
    T, lam = cfg.temperature, cfg.kl_weight

    class DistillTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            out = model(**inputs)
            t_logits = teacher_logits(teacher_model, inputs)
            s = out.logits[:, :-1].float()
            t = t_logits[:, :-1].float()
            y = labels[:, 1:]
            mask = y != -100
            ce = F.cross_entropy(s[mask], y[mask])
            kl = F.kl_div(F.log_softmax(s[mask] / T, -1), F.log_softmax(t[mask] / T, -1), log_target=True,
                          reduction="batchmean")
            loss = (1 - lam) * ce + lam * T * T * kl
            self._last = {"ce": float(ce.detach()), "kl": float(kl.detach())}
            return (loss, out) if return_outputs else loss

    tcfg = cfg.training
    use_cpu = not torch.cuda.is_available()
    args = TrainingArguments(output_dir=str(ctx.output_dir / "trainer"), max_steps=tcfg.max_steps,
                             per_device_train_batch_size=tcfg.batch_size, gradient_accumulation_steps=tcfg.gradient_accumulation_steps,
                             learning_rate=tcfg.learning_rate, lr_scheduler_type=tcfg.lr_scheduler, warmup_steps=tcfg.warmup_ratio,
                             logging_steps=tcfg.logging_steps, seed=tcfg.seed, use_cpu=use_cpu, report_to="none",
                             save_strategy="no", disable_tqdm=not progress_enabled(), remove_unused_columns=False)
    logger = LossLogger(tcfg.max_steps, ctx.variant)
    trainer = DistillTrainer(model=student, args=args, train_dataset=Dataset.from_list(rows),
                             data_collator=DataCollatorForSeq2Seq(tok, padding=True), callbacks=[logger])
    trainer.remove_callback(PrinterCallback)
    out = trainer.train()
    student = trainer.model
    if cfg.train == "lora":
        student.save_pretrained(str(ctx.output_dir))
        trainable, total = student.get_nb_trainable_parameters()
        artifact = "adapter"
    else:
        student.save_pretrained(str(ctx.output_dir))
        tok.save_pretrained(str(ctx.output_dir))
        total = trainable = sum(p.numel() for p in student.parameters())
        artifact = "full"

    rank = (adapter_rank_report(ctx.output_dir) if cfg.train == "lora"
            else full_finetune_rank_report(initial, dict(student.named_modules())))
    metrics = {"lora_rank": rank, "level": "token", "teacher": cfg.teacher, "temperature": T, "kl_weight": lam, "train_loss": float(out.training_loss),
               "steps": int(trainer.state.global_step), "last_ce": trainer._last["ce"], "last_kl": trainer._last["kl"],
               "examples": len(rows)}
    return BuildResult(artifact=artifact, trainable_params=int(trainable), total_params=int(total), train_curve=logger.curve,
                       metrics=metrics, device="cpu" if use_cpu else "cuda")


RECIPE = Recipe(name="distill", config_model=DistillConfig, build=build, data_files=data_files, dependencies=dependencies)
