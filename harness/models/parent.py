"""A resolved model: how to load it (base checkpoint, adapters in lineage order, dtype,
quantization, GGUF file, reward head). What the catalogue hands to backends and recipes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ParentModel:
    """How to load the model a recipe starts from: a base checkpoint plus adapters, in order."""

    name: str
    key: str
    base_dir: Path
    adapters: tuple[Path, ...] = ()
    dtype: str = "float32"
    quantization: dict | None = None
    """Set for quantized variants: the bitsandbytes settings applied when loading base_dir."""
    gguf: Path | None = None
    """The GGUF file that serves exactly this model with llama.cpp: a GGUF base as it ships, or a
    `gguf` export. None for models that exist only as transformers weights (and adapters)."""
    gguf_lora: Path | None = None
    """A GGUF LoRA file llama.cpp applies over `gguf` at load (a `gguf_lora` variant)."""
    reward_head: Path | None = None
    """Set for reward models: the sequence-classification adapter (LoRA plus the scalar `score`
    head) applied over the chain above (harness.models.reward_model). Such a model scores outputs; it is
    never a candidate or a parent."""
