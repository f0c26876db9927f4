"""The `gguf` recipe: export a variant as the file a CPU or edge deployment ships. The parent's
weights (adapters merged) are converted to GGUF with llama.cpp's own converter (f16, or f32), then
quantized with llama.cpp's own quantizer (Q8_0, Q4_K_M, ...). The artifact is that one file;
the variant's metrics record the size at each step and the time each took. It is served by the
llama_cpp backend (the recipe's default), so what gets evaluated is what ships."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict
from harness.data.loaders import read_jsonl_objects
from harness.errors import ConfigError, require
from harness.models.gguf import convert_hf, converter_path, quantize
from harness.models.gguf_imatrix import compute_imatrix, quantize_with_imatrix, tool_path
from harness.models.tokenizers import load_tokenizer
from harness.models.weights import sha256_file
from harness.recipes import BuildContext, BuildResult, Recipe, resolve_data_path
from harness.recipes.common import load_parent_for_training
from harness.tasks.prompts import render

log = logging.getLogger(__name__)

GGUF_FILE = "model.gguf"


class ImatrixSpec(Strict):
    """Calibration text for importance-matrix quantization (llama.cpp's imatrix): best taken from
    the variant's own training or validation data, so the weights the fine-tune moved are the ones
    the quantization grid keeps."""

    path: str
    """JSONL file, relative to the models file."""
    text: str
    """jinja2 template turning a row into calibration text (e.g. a prompt and its completion)."""
    limit: int | None = Field(default=None, ge=1)
    """Use the first N rows (default: all)."""
    ctx: int = Field(default=128, ge=16)
    """Tokens per chunk the imatrix pass reads (llama-imatrix -c); the text must hold at least one chunk."""


class GGUFConfig(Strict):
    """Config of the `gguf` recipe."""

    quantization: Literal["f32", "f16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"] = "Q4_K_M"
    """The weights' type in the exported file: f32/f16 unquantized, else a llama.cpp quantization
    applied to the f16 file (Q4_K_M: the usual CPU deployment; Q8_0: near-lossless)."""
    tokenizer_pre: str | None = None
    """llama.cpp's name for the tokenizer's pre-tokenizer, for a BPE tokenizer the converter does
    not recognise (e.g. gpt-2 for a GPT-2 byte-level BPE); published models need none."""
    imatrix: ImatrixSpec | None = None
    """Quantize with an importance matrix computed on this calibration text (needs a quantized type)."""

    @model_validator(mode="after")
    def _imatrix_needs_quantization(self):
        if self.imatrix is not None and self.quantization in ("f32", "f16"):
            raise ValueError(f"imatrix applies to a quantized export; quantization is {self.quantization}")
        return self


def data_files(config: GGUFConfig, models_path: Path) -> list[Path]:
    return [resolve_data_path(config.imatrix.path, models_path)] if config.imatrix else []


def build(ctx: BuildContext) -> BuildResult:
    cfg: GGUFConfig = ctx.config
    source, merged_bytes, params = merged(ctx, ctx.parent)
    metrics = export(ctx, source, merged_bytes, params, cfg.quantization, cfg.tokenizer_pre, cfg.imatrix)
    shutil.rmtree(ctx.output_dir / "merged", ignore_errors=True)
    return BuildResult("gguf", total_params=params, metrics=metrics)


def export(ctx: BuildContext, source: Path, merged_bytes: int, params: int, quantization: str, tokenizer_pre: str | None,
           imatrix: ImatrixSpec | None = None) -> dict:
    """`source` (a transformers directory) as ctx.output_dir/model.gguf at `quantization` (with an
    importance matrix from `imatrix`'s text, when given); the sizes at each step, the seconds each
    took and the bits per weight."""
    out = ctx.output_dir
    unquantized = quantization in ("f32", "f16")
    first = out / (GGUF_FILE if unquantized else "model-f16.gguf")
    log.info("%s: converting %s to GGUF (%s) with llama.cpp's converter", ctx.variant, source.name, "f32" if quantization == "f32" else "f16")
    convert_s = convert_hf(source, first, "f32" if quantization == "f32" else "f16", tokenizer_pre)
    metrics = {"quantization": quantization, "source_bytes": merged_bytes, "gguf_f16_bytes" if not unquantized else "gguf_bytes":
               first.stat().st_size, "convert_s": round(convert_s, 2)}
    if imatrix is not None:
        matrix = out / "imatrix.gguf"
        metrics["imatrix"] = calibrate(ctx, first, imatrix, matrix)
        log.info("%s: quantizing to %s with llama.cpp's quantizer and the importance matrix", ctx.variant, quantization)
        metrics["quantize_s"] = round(quantize_with_imatrix(first, out / GGUF_FILE, quantization, matrix), 2)
    elif not unquantized:
        log.info("%s: quantizing to %s with llama.cpp's quantizer", ctx.variant, quantization)
        metrics["quantize_s"] = round(quantize(first, out / GGUF_FILE, quantization), 2)
    if not unquantized:
        metrics["gguf_bytes"] = (out / GGUF_FILE).stat().st_size
        first.unlink()
    metrics["bits_per_weight"] = round(8 * metrics["gguf_bytes"] / params, 3) if params else None
    log.info("%s: %s, %.1f MB (source %.1f MB)", ctx.variant, quantization, metrics["gguf_bytes"] / 1e6, merged_bytes / 1e6)
    return metrics


def calibrate(ctx: BuildContext, model: Path, spec: ImatrixSpec, out: Path) -> dict:
    """Render the calibration rows into ctx.output_dir/calibration.txt and compute the importance
    matrix of `model` over it into `out`; what was used, for the variant's metrics."""
    path = resolve_data_path(spec.path, ctx.models_path)
    where = f"{ctx.models_path}: variant {ctx.variant}: config.imatrix"
    if not path.is_file():
        raise ConfigError(f"{where}.path: {path} does not exist")
    rows = read_jsonl_objects(path)[:spec.limit]
    texts = [render(spec.text, row, f"{where}.text (line {line})") for line, row in rows]
    text = "\n\n".join(t for t in texts if t.strip())
    tokens = len(load_tokenizer(ctx.parent.base_dir)(text, add_special_tokens=False)["input_ids"])
    if tokens < spec.ctx:
        raise ConfigError(f"{where}: {len(rows)} rows of {path} render to {tokens} tokens, less than one chunk of "
                          f"{spec.ctx}", hint="use more rows, or a smaller imatrix.ctx")
    calibration = ctx.output_dir / "calibration.txt"
    calibration.write_text(text, encoding="utf-8")
    log.info("%s: importance matrix over %d rows (%d tokens, chunks of %d) with llama-imatrix", ctx.variant, len(rows),
             tokens, spec.ctx)
    seconds = compute_imatrix(model, calibration, out, spec.ctx)
    return {"rows": len(rows), "tokens": tokens, "chunks": tokens // spec.ctx, "ctx": spec.ctx, "seconds": round(seconds, 2),
            "data_sha256": sha256_file(path), "imatrix_sha256": sha256_file(out)}


def merged(ctx: BuildContext, parent) -> tuple[Path, int, int]:
    """A transformers directory with what `parent` (a ParentModel) computes: its own checkpoint
    when it has no adapters, else the base with every adapter merged (saved under the output,
    removed after). Returns (directory, bytes of its weights, parameter count)."""

    if not parent.adapters:
        source = parent.base_dir
    else:

        source = ctx.output_dir / "merged"
        model = load_parent_for_training(parent)
        model.save_pretrained(source)
        load_tokenizer(parent.base_dir).save_pretrained(source)
        del model
    files = list(source.glob("*.safetensors"))
    return source, sum(f.stat().st_size for f in files), _param_count(files)


def _param_count(files: list[Path]) -> int:
    from safetensors import safe_open

    total = 0
    for f in files:
        with safe_open(str(f), "np") as st:
            for name in st.keys():
                shape = st.get_slice(name).get_shape()
                n = 1
                for d in shape:
                    n *= d
                total += n
    return total


def check(config: GGUFConfig) -> None:
    """llama.cpp's converter, and its quantizer (llama-cpp-python) unless the export stays unquantized."""

    converter_path()
    if getattr(config, "imatrix", None) is not None:  # gguf_lora's config shares this check and has none
        tool_path("llama-imatrix")
        tool_path("llama-quantize")
    elif config.quantization not in ("f32", "f16"):
        require("llama_cpp", "quantizing GGUF files", "llama-cpp")


RECIPE = Recipe("gguf", GGUFConfig, build, data_files, default_backend="llama_cpp", check=check)
