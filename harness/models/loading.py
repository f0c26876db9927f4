"""Loading a causal LM from a local checkpoint: full precision with LoRA adapters folded in
lineage order, or quantized by bitsandbytes at load time. Backends, recipes and analyses all
load models through here, so a model is loaded one way everywhere."""

from __future__ import annotations

from harness.errors import require


def load_causal_lm(model_path, adapters=(), dtype: str = "float32", merge_all: bool = True, device_map=None,
                   max_memory: dict | None = None):
    """A causal LM with LoRA adapters applied in lineage order. Every adapter but the last is
    merged into the weights first: a PeftModel wrapped in another PeftModel does not stack
    (the outer one silently replaces the inner), so a chain base -> SFT -> DPO must be folded
    step by step. `merge_all` also folds the last one (for training a new adapter on top).
    `device_map` / `max_memory` (accelerate's) place a model too large for one device."""
    import torch
    from transformers import AutoModelForCausalLM

    placement = {"device_map": device_map, "max_memory": max_memory} if device_map is not None else {}
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=getattr(torch, dtype), **placement)
    adapters = list(adapters)
    if adapters:
        peft = require("peft", "LoRA adapters", "train")
        for i, adapter in enumerate(adapters):
            model = peft.PeftModel.from_pretrained(model, str(adapter))
            if merge_all or i < len(adapters) - 1:
                model = model.merge_and_unload()
    return model


def bnb_config(spec: dict):
    """A transformers BitsAndBytesConfig from the stored quantization.json content."""
    import torch
    from transformers import BitsAndBytesConfig

    if spec["scheme"] == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=spec["scheme"],
                              bnb_4bit_use_double_quant=spec["double_quant"],
                              bnb_4bit_compute_dtype=getattr(torch, spec["compute_dtype"]))


def load_quantized(model_path, spec: dict):
    """The checkpoint at `model_path` quantized by bitsandbytes while loading (`spec`: the stored
    quantization.json content)."""
    from transformers import AutoModelForCausalLM

    require("bitsandbytes", "quantized variants", "quant")
    return AutoModelForCausalLM.from_pretrained(str(model_path), quantization_config=bnb_config(spec))


def right_padded(sequences: list[list[int]], pad_token_id: int | None):
    """(input_ids, attention_mask) long tensors of token sequences padded on the right: what
    sequence scoring (rewards, per-token log-probabilities) passes to a model."""
    import torch

    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_token_id if pad_token_id is not None else 0, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for r, seq in enumerate(sequences):
        ids[r, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[r, :len(seq)] = 1
    return ids, mask
