"""From names in a models file to loadable models: prepare the base, find built variants,
open a backend. Lineage lives in the store's `variants` table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness.config.models import (
    BaseSpec,
    ModelsFile,
    VariantSpec,
    lineage,
    resolve_relative,
)
from harness.errors import ConfigError, StoreError, UnknownNameError
from harness.hashing import library_versions, stable_hash
from harness.models import weights
from harness.models.parent import ParentModel
from harness.models.serving import backend_name, check_backends, open_model
from harness.models.weights import check_gguf, check_model_dir, hub_snapshot
from harness.recipes import Recipe, recipe_for
from harness.recipes.gguf_export import GGUF_FILE
from harness.recipes.gguf_lora import LORA_FILE
from harness.recipes.quantize import QUANT_FILE
from harness.store.db import Store, VariantRow

log = logging.getLogger(__name__)


def check_base(base: BaseSpec, models_path: Path, spec: ModelsFile | None = None) -> None:
    """Everything about the base that can be checked without loading it: its backend and the
    options it takes (with the whole file: every backend named), and that its path holds what the
    source says (a GGUF file by its magic bytes, a transformers directory by its config and
    weights). `validate` and `run` both call it."""

    spec = spec or ModelsFile(base=base)
    check_backends(spec, models_path)
    where = f"{models_path}: base"
    if base.source == "endpoint" and backend_name(spec, base.name) in ("hf", "llama_cpp", "vllm"):
        raise ConfigError(f"{where}.backend: a model behind an endpoint has no weights for the "
                          f"{backend_name(spec, base.name)} backend to load", hint="leave backend unset (openai) or name another endpoint backend")
    if base.source == "hub":
        check_model_dir(hub_snapshot(base.id, f"{where}.id"), f"{where}.id")
    elif base.source == "gguf":
        check_gguf(resolve_relative(base.path, models_path), f"{where}.path")
    elif base.source == "hf_dir":
        check_model_dir(resolve_relative(base.path, models_path), f"{where}.path")


def prepare_base(base: BaseSpec, models_path: Path, spec: ModelsFile | None = None) -> ParentModel:
    """Resolve the base to a safetensors directory (converting a GGUF once, unless `spec` is
    given and no model of it is served by transformers). Nothing is stored: `record_base` does
    that, once every check of the command has passed."""

    check_base(base, models_path)
    gguf = None
    if base.source == "fake":
        key = stable_hash({"source": "fake", "options": base.options})
        base_dir = Path("-")
    elif base.source == "endpoint":
        # Nothing to load: the model is whatever the server answers with under that name.
        key = stable_hash({"source": "endpoint", "base_url": base.options.get("base_url"), "model": base.options.get("model")})
        base_dir = Path("-")
    elif base.source in ("embedded", "gguf"):
        if base.source == "embedded":
            gguf, sha = weights.embedded_gguf()
        else:
            gguf = resolve_relative(base.path, models_path)
            sha = weights.sha256_file(gguf)
        key = stable_hash({"source": "gguf", "sha256": sha})
        # llama.cpp serves the file as it is; transformers and training need it dequantized.

        needs_hf = spec is None or any(backend_name(spec, n) != "llama_cpp" for n in [base.name, *(v.name for v in spec.variants)])
        base_dir = weights.convert_gguf(gguf, sha) if needs_hf else weights.converted_dir(sha)
    else:
        base_dir = weights.hub_snapshot(base.id, f"{models_path}: base.id") if base.source == "hub" \
            else resolve_relative(base.path, models_path)
        key = stable_hash({"source": "hf_dir", "content": weights.dir_fingerprint(base_dir)})  # by content, wherever it came from
    return ParentModel(base.name, key, base_dir, (), base.dtype, gguf=gguf)


def record_base(store: Store, base: BaseSpec, model: ParentModel) -> None:
    """The base's row in the lineage (`variants`), unless it is there already; with `runtime_of`,
    as the child of the variant whose weights it serves (method `runtime`)."""
    parent_key = parent_name = None
    if base.runtime_of is not None:
        reference = store.variant(base.runtime_of)
        if reference is None or base.runtime_of == base.name:
            known = [r["name"] for r in store.query("SELECT DISTINCT name FROM variants ORDER BY name")]
            raise ConfigError(f"base.runtime_of: '{base.runtime_of}' is not a variant in the store "
                              f"(it has: {', '.join(known) or 'none'})",
                              hint="build and run the reference variant into this store first (`harness run ... --store`)")
        parent_key, parent_name = reference["variant_key"], reference["name"]
    existing = store.variant_by_key(model.key)
    if existing is None or (existing["parent_key"], existing["parent_name"]) != (parent_key, parent_name):
        store.upsert_variant(VariantRow(
            variant_key=model.key, name=base.name, parent_key=parent_key, parent_name=parent_name,
            method="runtime" if parent_key else "base",
            recipe_hash=None, data_hash=None, artifact_kind="base", artifact_path=str(model.base_dir),
            artifact_bytes=weights.dir_size(model.base_dir) if model.base_dir.is_dir() else None,
            trainable_params=None, total_params=None, train_curve=None, metrics=None, wall_s=None,
            peak_rss_mb=None, device=None, fallback=None,
            config=stable_json(base.model_dump()), created_at=datetime.now(timezone.utc).replace(tzinfo=None)))


def stable_json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


TRAINING_LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes")


@dataclass(frozen=True)
class PlannedVariant:
    """A variant with its validated config and content key, before anything is built."""

    spec: VariantSpec
    recipe: Recipe
    config: object
    recipe_hash: str
    data_hash: str
    key: str
    dependencies: tuple[str, ...]
    """Other models the recipe reads (e.g. a distillation teacher), built before it."""


def hash_files(paths: list[Path]) -> str:
    """Content hash of training data files."""
    import hashlib

    h = hashlib.sha256()
    for p in paths:
        if not p.is_file():
            raise ConfigError(f"{p}: training data file not found", hint="data paths are relative to the models file's folder")
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def plan_variants(spec: ModelsFile, models_path: Path, base_key: str) -> dict[str, PlannedVariant]:
    """Validate every variant and compute its key, in file order. A key hashes the recipe
    config, its data, the parent's key, the keys of its dependencies and the versions of the
    libraries that train it: equal keys mean the stored artifact can be reused."""

    keys = {spec.base.name: base_key}
    plans: dict[str, PlannedVariant] = {}
    for i, v in enumerate(spec.variants):
        where = f"{models_path}: variants[{i}] ({v.name})"
        recipe = recipe_for(v.method, where=where + ".method")
        parent = next((p for p in spec.variants if p.name == v.parent), None)
        if parent is not None and recipe_for(parent.method).evaluator:
            raise ConfigError(f"{where}.parent: '{v.parent}' is a {parent.method} (it scores outputs); "
                              "a variant derives from a generating model", hint="name the reward model's own parent instead")
        config = recipe.parse_config(v.config, where + ".config")
        deps = tuple(recipe.dependencies(config)) if recipe.dependencies else ()
        for d in deps:
            if d not in keys:
                raise UnknownNameError("model", d, keys, where=where + " (a dependency must be declared before the variant that uses it)")
        data_hash = hash_files(recipe.data_files(config, models_path))
        recipe_hash = stable_hash({"method": v.method, "config": config.model_dump()})
        key = stable_hash({"recipe": recipe_hash, "data": data_hash, "parent": keys[v.parent],
                           "dependencies": {d: keys[d] for d in deps}, "libraries": library_versions(*TRAINING_LIBRARIES)})
        keys[v.name] = key
        plans[v.name] = PlannedVariant(v, recipe, config, recipe_hash, data_hash, key, deps)
    return plans


def resolve_built(spec: ModelsFile, models_path: Path, name: str, store: Store, base: ParentModel | None = None,
                  plans: dict[str, PlannedVariant] | None = None) -> ParentModel:
    """A loadable description of `name`: base dir plus the adapters of every ancestor, each
    looked up by the key its current recipe, data and parent give. The base is prepared on
    demand (pass `base` and `plans` to resolve many names with one preparation); variants must
    have been built (`harness build`)."""
    model = base or prepare_base(spec.base, models_path, spec)
    plans = plans or plan_variants(spec, models_path, model.key)
    for step in lineage(spec, name)[1:]:
        key = plans[step].key
        row = store.variant_by_key(key)
        if row is None or not Path(row["artifact_path"] or "").exists():
            raise StoreError(f"variant '{step}' is not built for its current recipe, data and parent",
                             hint=f"run `harness build {models_path}`")
        model = child_model(model, step, key, row["artifact_kind"], Path(row["artifact_path"]))
    return model


def child_model(parent: ParentModel, name: str, key: str, artifact_kind: str, artifact: Path) -> ParentModel:
    """An adapter stacks on its parent; a full checkpoint replaces it; a quantized variant
    loads its recorded source checkpoint with its bitsandbytes settings; a GGUF export is its file."""
    if artifact_kind == "gguf":
        return ParentModel(name, key, artifact, (), parent.dtype, gguf=artifact / GGUF_FILE)
    if artifact_kind == "gguf_lora":
        return ParentModel(name, key, artifact, (), parent.dtype, gguf=artifact / GGUF_FILE, gguf_lora=artifact / LORA_FILE)
    if artifact_kind == "adapter":
        return ParentModel(name, key, parent.base_dir, parent.adapters + (artifact,), parent.dtype)
    if artifact_kind == "reward_model":
        return ParentModel(name, key, parent.base_dir, parent.adapters, parent.dtype, reward_head=artifact)
    if artifact_kind == "quantized":
        import json

        spec = json.loads((artifact / QUANT_FILE).read_text())
        return ParentModel(name, key, artifact / spec["source"], (), parent.dtype, quantization=spec)  # "/" keeps absolute paths
    return ParentModel(name, key, artifact, (), parent.dtype)


def open_backend(spec: ModelsFile, model: ParentModel):
    """Load the model behind a resolved name with the backend that serves it (harness.models.catalogue)."""

    return open_model(spec, model)
