"""Supervised fine-tuning with a LoRA adapter (peft + trl's SFTTrainer).

Reads top to bottom: config -> data -> model -> trainer -> save. The training data is
JSONL; two jinja2 templates turn each row into a (prompt, completion) pair, and the loss is
computed on the completion only (trl's prompt-completion format, EOS appended)."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict
from harness.data.loaders import LoadRequest, load_jsonl
from harness.data.textprep import TextPrepSpec, prep_fields
from harness.diagnostics.lora_rank import adapter_rank_report
from harness.errors import ConfigError, require
from harness.models.tokenizers import load_tokenizer
from harness.progress import progress_enabled
from harness.recipes import BuildContext, BuildResult, Recipe, resolve_data_path
from harness.recipes.common import LossLogger, load_parent_for_training
from harness.tasks.prompts import render

log = logging.getLogger(__name__)


class LoraSpec(Strict):
    """The adapter's shape."""

    r: int = Field(default=8, ge=1)
    """Rank of the update BA. 8 is a common default that trains fast and rarely underfits small tasks."""
    alpha: int = Field(default=16, ge=1)
    """Scaling numerator: the update is scaled by alpha / r (2 with the defaults)."""
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = ["q_proj", "v_proj"]
    """Which linear layers get adapters; `all-linear` adapts every one (slower, more capacity)."""


class SFTDataSpec(Strict):
    """Training data: JSONL rows rendered into prompt and completion."""

    path: str
    """JSONL file, relative to the models file."""
    prep: TextPrepSpec | None = None
    """Social-text cleaning and filtering applied to `prep_fields` before rendering."""
    prep_fields: list[str] = []
    """Row fields that `prep` cleans (and filters on)."""
    prompt: str
    """jinja2 template for the prompt (no loss on these tokens)."""
    completion: str
    """jinja2 template for the completion the model learns to produce."""
    validation_path: str | None = None
    """Separate validation JSONL; when absent, `validation_fraction` of the rows is held out."""
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    split_seed: int = 0
    """Seed of the train/validation split, so the split is the same on every build."""
    chat_template: bool = False
    """Wrap prompt/completion as user/assistant messages and apply the tokenizer's chat template."""


class QLoRASpec(Strict):
    """Load the frozen parent in 4-bit (bitsandbytes) and train LoRA on top (QLoRA)."""

    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    """Quantize the quantization constants too (saves ~0.4 bits per parameter)."""
    compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    cpu_fallback: Literal["error", "nf4_cpu", "lora"] = "error"
    """Without CUDA: `error` (default) refuses; `nf4_cpu` runs the same 4-bit loading on the CPU
    (bitsandbytes supports it, slowly, with float32 compute); `lora` trains plain LoRA on the
    unquantized parent. The fallback taken is recorded on the variant."""


class SFTTrainingSpec(Strict):
    """Optimisation settings."""

    learning_rate: float = Field(default=2e-4, gt=0)
    """LoRA tolerates learning rates ~10x higher than full fine-tuning."""
    max_steps: int = Field(default=60, ge=1)
    batch_size: int = Field(default=4, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int = Field(default=128, ge=8)
    """Tokens per example after truncation (prompt + completion)."""
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    logging_steps: int = Field(default=5, ge=1)
    eval_steps: int | None = None
    """Validation loss every N steps (default: at the end only)."""
    gradient_checkpointing: bool = False
    """Trades compute for memory; off by default since small models fit easily on CPU."""
    early_stopping_patience: int | None = Field(default=None, ge=1)
    """Stop when validation loss has not improved for this many evaluations (needs eval_steps)."""
    packing: bool = False
    """Pack several short examples into one max_length sequence (fewer pad tokens)."""
    seed: int = 42


class SFTLoraConfig(Strict):
    """Config of the `sft_lora` recipe."""

    data: SFTDataSpec
    lora: LoraSpec = LoraSpec()
    training: SFTTrainingSpec = SFTTrainingSpec()
    qlora: QLoRASpec | None = None
    """Set to train QLoRA (4-bit frozen parent) instead of LoRA over a full-precision parent."""

    @model_validator(mode="after")
    def _early_stopping_needs_eval(self):
        if self.training.early_stopping_patience and not self.training.eval_steps:
            raise ValueError("training.early_stopping_patience needs training.eval_steps")
        return self


def data_files(config: SFTLoraConfig, models_path: Path) -> list[Path]:
    files = [resolve_data_path(config.data.path, models_path)]
    if config.data.validation_path:
        files.append(resolve_data_path(config.data.validation_path, models_path))
    return files


def load_pairs(path: Path, config: SFTDataSpec, where: str, dropped: dict | None = None) -> list[dict]:
    """Rows -> {'prompt', 'completion'} via the templates (errors name file and line).
    With `prep`, the `prep_fields` are cleaned first and filtered rows counted in `dropped`."""

    pairs = []
    for r in load_jsonl(LoadRequest(path)):
        fields, reason = prep_fields(r.fields, config.prep, config.prep_fields)
        if reason:
            if dropped is not None:
                dropped[reason] = dropped.get(reason, 0) + 1
            continue
        line = int(r.id) + 1
        pairs.append({"prompt": render(config.prompt, fields, f"{where}: data.prompt (line {line})"),
                      "completion": render(config.completion, fields, f"{where}: data.completion (line {line})")})
    return pairs


def as_conversation(pair: dict) -> dict:
    """trl's conversational prompt-completion format (the tokenizer's chat template applies)."""
    return {"prompt": [{"role": "user", "content": pair["prompt"]}],
            "completion": [{"role": "assistant", "content": pair["completion"].strip()}]}


def split_pairs(pairs: list[dict], config: SFTDataSpec, validation: list[dict] | None) -> tuple[list[dict], list[dict]]:
    if validation is not None:
        return pairs, validation
    shuffled = pairs[:]
    random.Random(config.split_seed).shuffle(shuffled)
    n_val = int(round(len(shuffled) * config.validation_fraction))
    return shuffled[n_val:], shuffled[:n_val]


def build(ctx: BuildContext) -> BuildResult:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    cfg: SFTLoraConfig = ctx.config
    tcfg = cfg.training
    where = f"{ctx.models_path}: {ctx.variant}.config"
    dropped: dict[str, int] = {}
    pairs = load_pairs(resolve_data_path(cfg.data.path, ctx.models_path), cfg.data, where, dropped)
    val = (load_pairs(resolve_data_path(cfg.data.validation_path, ctx.models_path), cfg.data, where, dropped)
           if cfg.data.validation_path else None)
    train_pairs, val_pairs = split_pairs(pairs, cfg.data, val)
    log.info("%s: %d training pairs, %d validation pairs%s", ctx.variant, len(train_pairs), len(val_pairs),
             f" (dropped by text prep: {dropped})" if dropped else "")

    tokenizer = load_tokenizer(ctx.parent.base_dir)
    if cfg.data.chat_template:
        if not tokenizer.chat_template:
            raise ConfigError(f"{where}: data.chat_template is true but the parent's tokenizer has no chat template")
        train_pairs, val_pairs = [as_conversation(p) for p in train_pairs], [as_conversation(p) for p in val_pairs]
    use_cpu = not torch.cuda.is_available()
    quantization, fallback = qlora_plan(cfg.qlora, use_cpu, where)
    model = load_parent_for_training(ctx.parent, quantization)
    args = SFTConfig(
        output_dir=str(ctx.output_dir / "trainer"),
        max_steps=tcfg.max_steps,
        per_device_train_batch_size=tcfg.batch_size,
        per_device_eval_batch_size=tcfg.batch_size,
        gradient_accumulation_steps=tcfg.gradient_accumulation_steps,
        learning_rate=tcfg.learning_rate,
        lr_scheduler_type=tcfg.lr_scheduler,
        warmup_steps=tcfg.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of total steps
        logging_steps=tcfg.logging_steps,
        eval_strategy="steps" if (val_pairs and tcfg.eval_steps) else "no",
        eval_steps=tcfg.eval_steps,
        max_length=tcfg.max_length,
        gradient_checkpointing=tcfg.gradient_checkpointing,
        packing=tcfg.packing,
        seed=tcfg.seed,
        data_seed=tcfg.seed,
        use_cpu=use_cpu,
        bf16=False,  # trl defaults to bf16, which raises on CPU; fp32 is also the faster choice here
        report_to="none",
        save_strategy="no",
        disable_tqdm=not progress_enabled(),
        dataloader_num_workers=0,
    )
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    logger = LossLogger(tcfg.max_steps, ctx.variant, tcfg.early_stopping_patience)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_pairs),
        eval_dataset=Dataset.from_list(val_pairs) if val_pairs else None,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[logger],
    )
    # The Trainer prints raw log dicts to stdout (PrinterCallback when its bar is off, the bar's
    # own write-out when on); LossLogger logs them instead.
    trainer.remove_callback(PrinterCallback)
    train_out = trainer.train()
    metrics = {"train_loss": float(train_out.training_loss), "train_pairs": len(train_pairs), "validation_pairs": len(val_pairs),
               "steps": int(trainer.state.global_step), "text_prep_dropped": dropped, "stopped_early": logger.stopped_early}
    if val_pairs:
        metrics.update({k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, (int, float))})
    trainer.model.save_pretrained(str(ctx.output_dir))
    trainable, total = trainer.model.get_nb_trainable_parameters()

    metrics["lora_rank"] = adapter_rank_report(ctx.output_dir)
    return BuildResult(artifact="adapter", trainable_params=int(trainable), total_params=int(total),
                       train_curve=logger.curve, metrics=metrics, device="cpu" if use_cpu else "cuda", fallback=fallback)


def qlora_plan(spec: QLoRASpec | None, use_cpu: bool, where: str):
    """(BitsAndBytesConfig or None, fallback description or None) for this machine."""
    if spec is None:
        return None, None

    if use_cpu and spec.cpu_fallback == "error":
        raise ConfigError(f"{where}: QLoRA needs CUDA and this machine has none",
                          hint="set qlora.cpu_fallback to 'nf4_cpu' (4-bit on CPU, slow) or 'lora' (plain LoRA), or drop qlora")
    if use_cpu and spec.cpu_fallback == "lora":
        return None, "qlora -> lora: no CUDA, trained plain LoRA over the full-precision parent"
    require("bitsandbytes", "QLoRA", "quant")
    import torch
    from transformers import BitsAndBytesConfig

    # bf16/fp16 compute is what QLoRA uses on GPUs; on the CPU fp32 is the only fast, safe choice.
    compute = torch.float32 if use_cpu else getattr(torch, spec.compute_dtype)
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=spec.quant_type,
                                bnb_4bit_use_double_quant=spec.double_quant, bnb_4bit_compute_dtype=compute)
    return config, ("qlora on cpu: bitsandbytes 4-bit with float32 compute" if use_cpu else None)


def training_files(config: SFTLoraConfig, models_path: Path) -> list[Path]:
    return [resolve_data_path(config.data.path, models_path)]


RECIPE = Recipe(name="sft_lora", config_model=SFTLoraConfig, build=build, data_files=data_files, training_files=training_files)
