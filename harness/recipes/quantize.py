"""Quantization for inference through bitsandbytes: LLM.int8 (8-bit) and 4-bit NF4 / FP4.

bitsandbytes quantizes while loading, so the artifact is the quantization config plus the
full-precision source it applies to (the parent's checkpoint, or the parent merged with its
adapters). The build also measures, per linear layer, the relative weight error of the
quantize -> dequantize round trip and the bytes before and after, and the real memory
footprint of the quantized model; all of it is stored with the variant."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from harness.config.loader import Strict
from harness.errors import require
from harness.models.loading import bnb_config
from harness.models.tokenizers import load_tokenizer
from harness.recipes import BuildContext, BuildResult, Recipe
from harness.recipes.common import load_parent_for_training

log = logging.getLogger(__name__)

QUANT_FILE = "quantization.json"


class QuantizeConfig(Strict):
    """Config of the `quantize` recipe."""

    scheme: Literal["int8", "nf4", "fp4"] = "int8"
    """int8: LLM.int8 row-wise absmax; nf4/fp4: 4-bit blockwise (blocks of 64)."""
    double_quant: bool = True
    """4-bit: also quantize the per-block scales (saves ~0.4 bits per parameter)."""
    compute_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """4-bit: dtype of the matmuls after dequantization. float32 on CPUs; bfloat16 on GPUs."""
    layer_report_limit: int | None = None
    """Measure only the first N linear layers (the report on a large model takes a while)."""


def data_files(config: QuantizeConfig, models_path: Path) -> list[Path]:
    return []


def layer_errors(model, scheme: str, double_quant: bool, limit: int | None = None) -> list[dict]:
    """Round-trip every decoder linear weight through bitsandbytes and measure the damage."""
    import bitsandbytes.functional as F
    import torch

    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or "lm_head" in name:
            continue  # transformers keeps lm_head (tied to the embedding here) in full precision
        w = module.weight.detach().float()
        if scheme == "int8":
            q, scales, _ = F.int8_vectorwise_quant(w.half() if w.is_cuda else w)
            restored = F.int8_vectorwise_dequant(q, scales).float()
            after = q.numel() * q.element_size() + scales.numel() * scales.element_size()
        else:
            packed, state = F.quantize_4bit(w, quant_type=scheme, compress_statistics=double_quant)
            restored = F.dequantize_4bit(packed, state).float()
            after = packed.numel() * packed.element_size() + _state_bytes(state)
        err = float(torch.linalg.norm(restored - w) / torch.linalg.norm(w))
        rows.append({"layer": name, "shape": list(w.shape), "relative_error": err,
                     "bytes_before": w.numel() * module.weight.element_size(), "bytes_after": int(after)})
        if limit and len(rows) >= limit:
            break
    return rows


def _state_bytes(state) -> int:
    total = state.absmax.numel() * state.absmax.element_size()
    if getattr(state, "state2", None) is not None:  # double quantization: scales of the scales
        total += state.state2.absmax.numel() * state.state2.absmax.element_size() + state.state2.code.numel() * 4
    return total


def build(ctx: BuildContext) -> BuildResult:
    import torch

    require("bitsandbytes", "quantization", "quant")
    from transformers import AutoModelForCausalLM

    cfg: QuantizeConfig = ctx.config
    model = load_parent_for_training(ctx.parent)  # adapters merged: quantize what the parent computes
    if ctx.parent.adapters:
        source = ctx.output_dir / "merged"
        model.save_pretrained(source)

        load_tokenizer(ctx.parent.base_dir).save_pretrained(source)
    else:
        source = ctx.parent.base_dir
    fp_bytes = model.get_memory_footprint()
    layers = layer_errors(model, cfg.scheme, cfg.double_quant, cfg.layer_report_limit)
    total_params = sum(p.numel() for p in model.parameters())
    del model
    # `source` is relative to the artifact when it lives inside it (the builder moves the
    # artifact into place after the build), else the parent's absolute checkpoint path.
    spec = {"scheme": cfg.scheme, "double_quant": cfg.double_quant, "compute_dtype": cfg.compute_dtype,
            "source": "merged" if ctx.parent.adapters else str(Path(source).resolve())}
    # Load it quantized once, for the real footprint and to prove the artifact loads.
    quantized = AutoModelForCausalLM.from_pretrained(str(source), quantization_config=bnb_config(spec))
    q_bytes = quantized.get_memory_footprint()
    del quantized
    (ctx.output_dir / QUANT_FILE).write_text(json.dumps(spec, indent=2))
    before = sum(r["bytes_before"] for r in layers)
    after = sum(r["bytes_after"] for r in layers)
    errors = [r["relative_error"] for r in layers]
    metrics = {
        "scheme": cfg.scheme, "layers_measured": len(layers),
        "relative_error_mean": sum(errors) / len(errors) if errors else None,
        "relative_error_max": max(errors) if errors else None,
        "linear_bytes_before": before, "linear_bytes_after": after,
        "footprint_bytes_full_precision": int(fp_bytes), "footprint_bytes_quantized": int(q_bytes),
        "per_layer": layers,
    }
    log.info("%s: %s, linear layers %.1f MB -> %.1f MB, mean relative weight error %.4f; footprint %.0f -> %.0f MB",
             ctx.variant, cfg.scheme, before / 1e6, after / 1e6, metrics["relative_error_mean"] or 0, fp_bytes / 1e6, q_bytes / 1e6)
    return BuildResult(artifact="quantized", trainable_params=0, total_params=int(total_params), metrics=metrics,
                       device="cuda" if torch.cuda.is_available() else "cpu")


RECIPE = Recipe(name="quantize", config_model=QuantizeConfig, build=build, data_files=data_files)
