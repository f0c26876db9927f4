"""Fold the parent's LoRA adapter(s) into its weights (peft `merge_and_unload`) for serving.

The artifact is a standalone checkpoint; the adapter is kept too (copied under `adapter/`),
and the largest absolute logit difference between the adapter model and the merged model on a
probe prompt is stored, so a bad merge can't pass unnoticed."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import Field

from harness.backends.hf import open_model
from harness.config.loader import Strict
from harness.errors import ConfigError
from harness.models.tokenizers import load_tokenizer
from harness.recipes import BuildContext, BuildResult, Recipe


class MergeConfig(Strict):
    """Config of the `merge` recipe."""

    probe: str = "Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:"
    """Prompt on which adapter and merged logits are compared."""
    tolerance: float = Field(default=1e-3, gt=0)
    """Fail the build when the merged logits differ by more than this."""


def data_files(config: MergeConfig, models_path: Path) -> list[Path]:
    return []


def build(ctx: BuildContext) -> BuildResult:
    import torch

    cfg: MergeConfig = ctx.config
    if not ctx.parent.adapters:
        raise ConfigError(f"{ctx.models_path}: {ctx.variant}: merge needs a parent with a LoRA adapter; '{ctx.parent.name}' has none")
    adapter_model = open_model(ctx.parent)
    tok = load_tokenizer(ctx.parent.base_dir)
    ids = tok(cfg.probe, return_tensors="pt").input_ids.to(adapter_model.device)  # the model sits on the GPU when there is one
    with torch.no_grad():
        before = adapter_model.model(ids).logits
        merged = adapter_model.model.merge_and_unload()
        after = merged(ids).logits
    diff = float((before - after).abs().max())
    if diff > cfg.tolerance:
        raise ConfigError(f"{ctx.variant}: merged logits differ from the adapter's by {diff:.2e} (> {cfg.tolerance:g})")
    merged.save_pretrained(ctx.output_dir)
    tok.save_pretrained(ctx.output_dir)
    shutil.copytree(ctx.parent.adapters[-1], ctx.output_dir / "adapter")
    total = sum(p.numel() for p in merged.parameters())
    return BuildResult(artifact="full", trainable_params=0, total_params=int(total),
                       metrics={"merge_max_abs_logit_diff": diff, "adapters_merged": len(ctx.parent.adapters)},
                       device=adapter_model.device)


RECIPE = Recipe(name="merge", config_model=MergeConfig, build=build, data_files=data_files)
