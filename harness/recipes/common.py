"""Small helpers shared by recipes: loading the parent for training, a loss-curve callback."""

from __future__ import annotations

import logging

from harness.recipes import ParentModel

log = logging.getLogger(__name__)


def load_parent_for_training(parent: ParentModel):
    """The parent as a plain (merged) model: earlier adapters are folded in, so a new adapter
    trains on top of exactly what the parent variant computes."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(parent.base_dir), dtype=getattr(torch, parent.dtype))
    for adapter in parent.adapters:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class LossLogger(_callback_base()):
    """Keeps every logged step (loss, learning rate, eval loss) and logs progress."""

    def __init__(self, max_steps: int, name: str):
        self.curve: list[dict] = []
        self.max_steps = max_steps
        self.name = name

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        entry = {"step": int(state.global_step)}
        entry.update({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
        self.curve.append(entry)
        shown = {k: round(v, 4) for k, v in entry.items() if k in ("loss", "eval_loss", "learning_rate")}
        if shown:
            log.info("%s: step %d/%d %s", self.name, state.global_step, self.max_steps, shown)
