"""Small helpers shared by recipes: loading the parent for training, a loss-curve callback."""

from __future__ import annotations

import functools
import logging

from harness.models.loading import load_causal_lm
from harness.models.parent import ParentModel

log = logging.getLogger(__name__)


def load_parent_for_training(parent: ParentModel, quantization=None):
    """The parent as a plain (merged) model: earlier adapters are folded in, so a new adapter
    trains on top of exactly what the parent variant computes. With `quantization` (a
    BitsAndBytesConfig) the merged weights are loaded in 4-bit for QLoRA."""
    import torch
    from transformers import AutoModelForCausalLM

    if quantization is not None and parent.adapters:
        # bitsandbytes quantizes at load time, so the merged parent goes through a temporary checkpoint.
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            merged = load_parent_for_training(parent)
            merged.save_pretrained(tmp)
            del merged
            model = AutoModelForCausalLM.from_pretrained(tmp, quantization_config=quantization)
        return _prepare_kbit(model)
    if quantization is not None:
        model = AutoModelForCausalLM.from_pretrained(str(parent.base_dir), dtype=getattr(torch, parent.dtype),
                                                     quantization_config=quantization)
        return _prepare_kbit(model)

    return load_causal_lm(parent.base_dir, parent.adapters, parent.dtype, merge_all=True)


def _prepare_kbit(model):
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def LossLogger(max_steps: int, name: str, patience: int | None = None):  # noqa: N802 (used as a class)
    """A transformers TrainerCallback that keeps every logged step (loss, learning rate, eval
    loss), logs progress, and stops training when eval loss has not improved for `patience`
    evaluations. Built on first use, so importing a recipe does not import transformers."""
    return _loss_logger_class()(max_steps, name, patience)


@functools.lru_cache(maxsize=1)
def _loss_logger_class() -> type:
    from transformers import TrainerCallback

    return type("LossLogger", (_LossLogging, TrainerCallback), {})


class _LossLogging:
    """LossLogger's behaviour (mixed in before transformers' TrainerCallback)."""

    def __init__(self, max_steps: int, name: str, patience: int | None = None):
        self.curve: list[dict] = []
        self.max_steps = max_steps
        self.name = name
        self.patience = patience
        self.best = float("inf")
        self.bad_evals = 0
        self.stopped_early = False

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        if self.patience is None or loss is None:
            return
        if loss < self.best - 1e-6:
            self.best, self.bad_evals = loss, 0
        else:
            self.bad_evals += 1
            if self.bad_evals >= self.patience:
                log.info("%s: validation loss has not improved for %d evaluations; stopping at step %d",
                         self.name, self.patience, state.global_step)
                self.stopped_early = True
                control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        entry = {"step": int(state.global_step)}
        entry.update({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
        self.curve.append(entry)
        shown = {k: float(f"{v:.4g}") for k, v in entry.items() if k in ("loss", "eval_loss", "learning_rate")}
        if shown:
            log.info("%s: step %d/%d %s", self.name, state.global_step, self.max_steps, shown)
