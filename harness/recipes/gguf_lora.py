"""The `gguf_lora` recipe: ship a LoRA fine-tune on a quantized base without rounding the
fine-tune into the base's grid. The parent is a LoRA adapter variant. The lineage's base model is
exported to GGUF and quantized (Q4_K_M, ...) as the `gguf` recipe does, and the parent's adapters
(SFT, then DPO on top, ...) become one LoRA: their low-rank deltas add up, so they are stacked
along the rank (rank r1 + r2 + ..., each adapter's scale folded into its B), and that LoRA is
converted to a GGUF LoRA file with llama.cpp's own convert_lora_to_gguf.py (f16). llama.cpp applies the adapter at
load time over the quantized base (the llama_cpp backend, the recipe's default), so the deltas
keep their 16-bit precision while the base ships at 4 bits. The artifact is the two files."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Literal

from harness.config.loader import Strict
from harness.errors import ConfigError
from harness.models.gguf import convert_lora, lora_converter_path
from harness.models.parent import ParentModel
from harness.recipes import BuildContext, BuildResult, Recipe
from harness.recipes.gguf_export import check as check_export
from harness.recipes.gguf_export import export, merged

log = logging.getLogger(__name__)

LORA_FILE = "adapter.gguf"


class GGUFLoraConfig(Strict):
    """Config of the `gguf_lora` recipe."""

    quantization: Literal["f32", "f16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"] = "Q4_K_M"
    """The base's weights in the exported file (the adapter stays f16)."""
    adapter_type: Literal["f16", "f32"] = "f16"
    """The LoRA file's weights."""
    tokenizer_pre: str | None = None
    """As for the `gguf` recipe: llama.cpp's pre-tokenizer name for a BPE tokenizer its converter
    does not recognise (e.g. gpt-2); published models need none."""


def data_files(config: GGUFLoraConfig, models_path: Path) -> list[Path]:
    return []


def build(ctx: BuildContext) -> BuildResult:
    cfg: GGUFLoraConfig = ctx.config
    parent = ctx.parent
    if not parent.adapters:
        raise ConfigError(f"variant '{ctx.variant}': gguf_lora ships a LoRA adapter on a GGUF base, and its parent "
                          f"'{parent.name}' has none", hint="make its parent an adapter variant (sft_lora, dpo, adapter, ...), "
                                                             "or export the parent whole with method: gguf")
    base = ParentModel(f"{parent.name}'s base", parent.key, parent.base_dir, (), parent.dtype)
    source, merged_bytes, params = merged(ctx, base)
    metrics = export(ctx, source, merged_bytes, params, cfg.quantization, cfg.tokenizer_pre)
    adapter = parent.adapters[0] if len(parent.adapters) == 1 else stack_adapters(parent.adapters, ctx.output_dir / "stacked")
    log.info("%s: converting %d adapter(s) to one GGUF LoRA file (%s)", ctx.variant, len(parent.adapters), cfg.adapter_type)
    metrics["lora_convert_s"] = round(convert_lora(adapter, source, ctx.output_dir / LORA_FILE, cfg.adapter_type), 2)
    metrics["adapters_stacked"] = len(parent.adapters)
    metrics["lora_bytes"] = (ctx.output_dir / LORA_FILE).stat().st_size
    metrics["shipped_bytes"] = metrics["gguf_bytes"] + metrics["lora_bytes"]
    shutil.rmtree(ctx.output_dir / "merged", ignore_errors=True)
    shutil.rmtree(ctx.output_dir / "stacked", ignore_errors=True)
    log.info("%s: base %s %.1f MB + adapter %.1f MB", ctx.variant, cfg.quantization, metrics["gguf_bytes"] / 1e6, metrics["lora_bytes"] / 1e6)
    return BuildResult("gguf_lora", total_params=params, metrics=metrics)


def stack_adapters(adapters: tuple[Path, ...], out: Path) -> Path:
    """PEFT LoRA adapters applied one after another, as one adapter: each module's delta is
    sum_i s_i * B_i A_i (s_i = lora_alpha_i / r_i), which is B A with A the A_i stacked along the
    rank and B the s_i * B_i side by side, at scale 1 (lora_alpha = r). A module an adapter does
    not touch gets zeros there. Returns the directory written (adapter_config.json and
    adapter_model.safetensors)."""
    import json

    import torch
    from safetensors.torch import load_file, save_file

    configs = [json.loads((a / "adapter_config.json").read_text()) for a in adapters]
    for a, c in zip(adapters, configs):
        if c.get("use_dora") or c.get("use_rslora") or c.get("rank_pattern") or c.get("alpha_pattern"):
            raise ConfigError(f"{a}: gguf_lora stacks plain LoRA adapters (no DoRA, rsLoRA or per-module ranks)")
    weights = [load_file(str(a / "adapter_model.safetensors")) for a in adapters]
    modules = sorted({k.rsplit(".lora_", 1)[0] for w in weights for k in w if ".lora_A." in k})
    stacked: dict[str, torch.Tensor] = {}
    for module in modules:
        shapes = next((w[f"{module}.lora_A.weight"].shape[1], w[f"{module}.lora_B.weight"].shape[0]) for w in weights
                      if f"{module}.lora_A.weight" in w)
        parts_a, parts_b = [], []
        for c, w in zip(configs, weights):
            scale = c["lora_alpha"] / c["r"]
            a_key, b_key = f"{module}.lora_A.weight", f"{module}.lora_B.weight"
            if a_key in w:
                parts_a.append(w[a_key].float())
                parts_b.append(w[b_key].float() * scale)
            else:
                parts_a.append(torch.zeros(c["r"], shapes[0]))
                parts_b.append(torch.zeros(shapes[1], c["r"]))
        stacked[f"{module}.lora_A.weight"] = torch.cat(parts_a, dim=0).contiguous()
        stacked[f"{module}.lora_B.weight"] = torch.cat(parts_b, dim=1).contiguous()
    rank = sum(c["r"] for c in configs)
    targets = sorted({m for c in configs for m in (c.get("target_modules") or [])})
    config = {**configs[-1], "r": rank, "lora_alpha": rank, "target_modules": targets, "lora_dropout": 0.0}
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2))
    save_file(stacked, str(out / "adapter_model.safetensors"))
    return out


def check(config: GGUFLoraConfig) -> None:
    """What the `gguf` export needs (its converter and quantizer), and the LoRA converter."""
    check_export(config)  # duck-typed: the same quantization key
    lora_converter_path()


RECIPE = Recipe("gguf_lora", GGUFLoraConfig, build, data_files, default_backend="llama_cpp", check=check)
