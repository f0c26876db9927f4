"""Training recipes. Each recipe is one self-contained module over a typed config (in the
style of TRL's scripts) exposing `RECIPE`; heavy libraries are imported inside `build`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import registry
from harness.config.loader import Strict, parse_model
from harness.errors import ConfigError
from harness.models.parent import ParentModel


@dataclass(frozen=True)
class BuildContext:
    """Everything a recipe's build step gets."""

    variant: str
    config: Any
    parent: ParentModel
    output_dir: Path
    """Write the artifact here (the builder moves it into place only on success)."""
    models_path: Path
    """The models file; relative data paths resolve against its directory."""
    dependencies: dict[str, ParentModel] = field(default_factory=dict)
    """Other built models the recipe reads (e.g. a distillation teacher), by name."""


@dataclass(frozen=True)
class BuildResult:
    """What a recipe reports back; the builder stores it on the variant row."""

    artifact: str
    """`adapter` (a LoRA directory applied over the parent), `full` (a standalone checkpoint) or
    `quantized` (quantization.json: bitsandbytes settings and the checkpoint they apply to)."""
    trainable_params: int | None = None
    total_params: int | None = None
    train_curve: list[dict] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    fallback: str | None = None


@dataclass(frozen=True)
class Recipe:
    """A named training method: its config model, the data files it reads, and its build step."""

    name: str
    config_model: type[Strict]
    build: Callable[[BuildContext], BuildResult]
    data_files: Callable[[Any, Path], list[Path]]
    """Files whose content goes into the variant's key (the recipe's training data)."""
    dependencies: Callable[[Any], list[str]] | None = None
    """Names of other models (besides the parent) that the build reads, e.g. a teacher."""
    training_files: Callable[[Any, Path], list[Path]] | None = None
    """Files the model is trained on, for the contamination check (default: data_files; SFT
    leaves out its validation file, which is only scored)."""
    default_backend: str | None = None
    """The backend that serves what it builds, when not the base's (a GGUF export: llama_cpp)."""
    check: Callable[[Any], None] | None = None
    """Checks what the build needs beyond its config (e.g. a tool installed), run before anything
    is stored; raises ConfigError or MissingDependencyError."""
    evaluator: bool = False
    """It builds a model that scores outputs (a reward model), not one that generates them: not
    evaluated as a candidate by `harness run`, not a parent of other variants."""

    def parse_config(self, raw: dict, where: str):
        """Validate a variant's `config:` mapping against this recipe's config model."""
        return parse_model(self.config_model, raw or {}, where)


def recipe_for(method: str, where: str | None = None) -> Recipe:
    """The Recipe registered under `method`."""
    recipe = registry.resolve("recipe", method, where=where)
    if not isinstance(recipe, Recipe):
        raise ConfigError(f"{where or method}: registered recipe '{method}' is not a harness Recipe")
    return recipe


def resolve_data_path(path: str, models_path: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else models_path.parent / p
