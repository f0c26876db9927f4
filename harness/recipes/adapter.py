"""A PEFT adapter trained elsewhere, as a variant: the directory (adapter_config.json and its
weights) is checked to load on the parent, copied into the store's artifacts under a key that
hashes its files, and evaluated like any variant built here. Its training data is unknown
unless the config names it (then the contamination check uses it)."""

from __future__ import annotations

from pathlib import Path

from harness.config.loader import Strict
from harness.errors import ConfigError
from harness.models.loading import load_causal_lm
from harness.recipes import BuildContext, BuildResult, Recipe, resolve_data_path


class AdapterConfig(Strict):
    """Config of the `adapter` recipe."""

    path: str
    """The adapter directory (PEFT's save_pretrained output), relative to the models file."""
    training_data: list[str] = []
    """The files it was trained on, if known (relative to the models file): checked for contamination."""


def _adapter_dir(config: AdapterConfig, models_path: Path) -> Path:
    path = resolve_data_path(config.path, models_path)
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(f"{models_path}: adapter path {path}: no adapter_config.json (expected a PEFT adapter directory)",
                          hint="point config.path at the folder PEFT's save_pretrained wrote")
    return path


def data_files(config: AdapterConfig, models_path: Path) -> list[Path]:
    """The adapter's own files (so its key changes when they do), and any declared training data."""
    folder = _adapter_dir(config, models_path)
    return sorted(p for p in folder.rglob("*") if p.is_file()) + training_files(config, models_path)


def training_files(config: AdapterConfig, models_path: Path) -> list[Path]:
    return [resolve_data_path(p, models_path) for p in config.training_data]


def build(ctx: BuildContext) -> BuildResult:
    import json
    import shutil

    cfg: AdapterConfig = ctx.config
    source = _adapter_dir(cfg, ctx.models_path)
    shutil.copytree(source, ctx.output_dir, dirs_exist_ok=True)
    try:  # it must load on the parent (shapes, target modules) before it is recorded as a variant
        model = load_causal_lm(ctx.parent.base_dir, list(ctx.parent.adapters) + [ctx.output_dir], ctx.parent.dtype, merge_all=False)
    except Exception as exc:  # any loading failure here is the adapter not fitting this parent
        raise ConfigError(f"{ctx.variant}: the adapter at {source} does not load on {ctx.parent.name}: {exc}") from None
    total = sum(p.numel() for p in model.parameters())
    meta = json.loads((source / "adapter_config.json").read_text())
    return BuildResult(artifact="adapter", trainable_params=None, total_params=int(total),
                       metrics={"source": str(source), "peft_type": meta.get("peft_type"), "r": meta.get("r"),
                                "base_model_name_or_path": meta.get("base_model_name_or_path"),
                                "training_data_known": bool(cfg.training_data)})


RECIPE = Recipe(name="adapter", config_model=AdapterConfig, build=build, data_files=data_files, training_files=training_files)
