"""A smaller student built from its parent by keeping every k-th decoder layer (a real and
cheap student for token-level distillation: same tokenizer, same width, fewer layers)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from harness.config.loader import Strict
from harness.errors import ConfigError
from harness.models.tokenizers import load_tokenizer
from harness.recipes import BuildContext, BuildResult, Recipe
from harness.recipes.common import load_parent_for_training


class ShrinkConfig(Strict):
    """Config of the `shrink` recipe."""

    keep_every: int = Field(default=2, ge=2)
    """Keep layers 0, k, 2k, ... (and always the last one, which feeds the final norm)."""


def data_files(config: ShrinkConfig, models_path: Path) -> list[Path]:
    return []


def kept_layers(n: int, k: int) -> list[int]:
    keep = list(range(0, n, k))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return keep


def build(ctx: BuildContext) -> BuildResult:
    import torch

    cfg: ShrinkConfig = ctx.config
    model = load_parent_for_training(ctx.parent)
    decoder = getattr(model, "model", None)
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ConfigError(f"{ctx.variant}: shrink supports decoder models with model.layers (Llama, Gemma, Qwen, Mistral ...)")
    before = sum(p.numel() for p in model.parameters())
    keep = kept_layers(len(layers), cfg.keep_every)
    decoder.layers = torch.nn.ModuleList([layers[i] for i in keep])
    text_config = model.config.get_text_config()
    if getattr(text_config, "layer_types", None):  # per-layer attention kinds (Gemma 3: sliding/full)
        text_config.layer_types = [text_config.layer_types[i] for i in keep]
    text_config.num_hidden_layers = len(keep)
    for new_index, layer in enumerate(decoder.layers):
        # The KV cache is indexed by layer_idx; renumber so generation keeps working.
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    model.save_pretrained(ctx.output_dir)
    load_tokenizer(ctx.parent.base_dir).save_pretrained(ctx.output_dir)
    after = sum(p.numel() for p in model.parameters())
    return BuildResult(artifact="full", trainable_params=0, total_params=int(after),
                       metrics={"layers_kept": keep, "parameters_before": int(before), "parameters_after": int(after)})


RECIPE = Recipe(name="shrink", config_model=ShrinkConfig, build=build, data_files=data_files)
