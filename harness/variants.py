"""From names in a models file to loadable models: prepare the base, find built variants,
open a backend. Lineage lives in the store's `variants` table."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from harness.config.models import BaseSpec, ModelsFile, lineage, resolve_relative
from harness.errors import ConfigError, StoreError
from harness.hashing import stable_hash
from harness.recipes import ParentModel
from harness.store.db import Store, VariantRow

log = logging.getLogger(__name__)


def prepare_base(base: BaseSpec, models_path: Path, store: Store) -> ParentModel:
    """Resolve the base to a safetensors directory (converting a GGUF once) and record it."""
    from harness import weights

    if base.source == "fake":
        key = stable_hash({"source": "fake", "options": base.options})
        base_dir = Path("-")
    elif base.source == "embedded":
        gguf, sha = weights.embedded_gguf()
        base_dir = weights.convert_gguf(gguf, sha)
        key = stable_hash({"source": "gguf", "sha256": sha})
    elif base.source == "gguf":
        gguf = resolve_relative(base.path, models_path)
        sha = weights.sha256_file(gguf) if gguf.is_file() else None
        base_dir = weights.convert_gguf(gguf, sha)
        key = stable_hash({"source": "gguf", "sha256": sha})
    else:
        base_dir = resolve_relative(base.path, models_path)
        key = stable_hash({"source": "hf_dir", "content": weights.dir_fingerprint(base_dir)})
    if store.variant_by_key(key) is None:
        store.upsert_variant(VariantRow(
            variant_key=key, name=base.name, parent_key=None, parent_name=None, method="base",
            recipe_hash=None, data_hash=None, artifact_kind="base", artifact_path=str(base_dir),
            artifact_bytes=weights.dir_size(base_dir) if base_dir.is_dir() else None,
            trainable_params=None, total_params=None, train_curve=None, metrics=None, wall_s=None,
            peak_rss_mb=None, device=None, fallback=None,
            config=stable_json(base.model_dump()), created_at=datetime.now(timezone.utc).replace(tzinfo=None)))
    return ParentModel(base.name, key, base_dir, (), base.dtype)


def stable_json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


TRAINING_LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes")


def variant_key(method: str, config, data_hash: str, parent_key: str) -> tuple[str, str]:
    """(recipe_hash, variant_key): the key hashes the recipe, its data, the parent's key and
    the versions of the libraries that train it."""
    from harness.hashing import library_versions

    recipe_hash = stable_hash({"method": method, "config": config.model_dump()})
    key = stable_hash({"recipe": recipe_hash, "data": data_hash, "parent": parent_key,
                       "libraries": library_versions(*TRAINING_LIBRARIES)})
    return recipe_hash, key


def hash_files(paths: list[Path]) -> str:
    """Content hash of training data files."""
    import hashlib

    h = hashlib.sha256()
    for p in paths:
        if not p.is_file():
            raise ConfigError(f"{p}: training data file not found")
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def resolve_built(spec: ModelsFile, models_path: Path, name: str, store: Store) -> ParentModel:
    """A loadable description of `name`: base dir plus the adapters of every ancestor, each
    looked up by the key its current recipe, data and parent give. The base is prepared on
    demand; variants must have been built (`harness build`)."""
    from harness.recipes import recipe_for

    model = prepare_base(spec.base, models_path, store)
    by_name = {v.name: v for v in spec.variants}
    for step in lineage(spec, name)[1:]:
        variant = by_name[step]
        recipe = recipe_for(variant.method)
        config = recipe.parse_config(variant.config, f"{models_path}: variants.{step}.config")
        _, key = variant_key(variant.method, config, hash_files(recipe.data_files(config, models_path)), model.key)
        row = store.variant_by_key(key)
        if row is None or not Path(row["artifact_path"] or "").exists():
            raise StoreError(f"variant '{step}' is not built for its current recipe, data and parent",
                             hint=f"run `harness build {models_path}`")
        model = child_model(model, step, key, row["artifact_kind"], Path(row["artifact_path"]))
    return model


def child_model(parent: ParentModel, name: str, key: str, artifact_kind: str, artifact: Path) -> ParentModel:
    """An adapter stacks on its parent; a full checkpoint replaces it."""
    if artifact_kind == "adapter":
        return ParentModel(name, key, parent.base_dir, parent.adapters + (artifact,), parent.dtype)
    return ParentModel(name, key, artifact, (), parent.dtype)


def open_backend(spec: ModelsFile, model: ParentModel):
    """Load the model behind a resolved name with the backend its base names."""
    from harness import registry

    if spec.base.source == "fake":
        cls = registry.resolve("backend", "fake")
        allowed = {"outputs", "responses", "default_output", "favour", "delay_s"}
        unknown = set(spec.base.options) - allowed
        if unknown:
            raise ConfigError(f"base.options: unknown fake-backend option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(name=model.name, **spec.base.options)
    cls = registry.resolve("backend", "hf")
    options = dict(spec.base.options)
    return cls(model.base_dir, adapters=list(model.adapters), dtype=model.dtype,
               max_length=options.pop("max_length", None), batch_size=options.pop("batch_size", 8))
