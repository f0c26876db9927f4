"""`harness build`: produce variants from a models file, in lineage order, content-addressed.

A variant's key hashes its recipe config, its training data, its parent's key and the versions
of the libraries that train it; an unchanged variant is reused, never retrained."""

from __future__ import annotations

import json
import logging
import resource
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness.config.models import lineage, load_models
from harness.errors import ConfigError, UnknownNameError
from harness.models.parent import ParentModel
from harness.models.variants import child_model, plan_variants, prepare_base, record_base
from harness.recipes import BuildContext
from harness.store.db import Store, VariantRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOutcome:
    name: str
    key: str
    reused: bool
    artifact_path: str
    wall_s: float


def artifacts_dir(store_path: Path) -> Path:
    """Artifacts live beside the store, so one directory holds a workspace's state."""
    return store_path.parent / "artifacts"


def build_models(models_path: Path, store_path: Path, only: list[str] | None = None, force: bool = False) -> list[BuildOutcome]:
    """Build the named variants (default: all) and every missing ancestor, parents first."""
    spec = load_models(models_path)
    by_name = {v.name: v for v in spec.variants}
    wanted = only or list(by_name)
    for name in wanted:
        if name not in by_name and name != spec.base.name:
            raise UnknownNameError("variant", name, [spec.base.name, *by_name], where=str(models_path))
    plan_variants(spec, models_path, base_key="-")  # validate configs and data before loading anything
    if spec.variants and spec.base.source in ("fake", "endpoint"):
        raise ConfigError(f"{models_path}: base.source is '{spec.base.source}', which can't be trained or exported; "
                          "use embedded, hf_dir, gguf or hub")

    outcomes = []
    with Store(store_path, hold=False) as store:  # its session lock: no other build or run is writing now
        for stale in sorted(artifacts_dir(store_path).glob("*.tmp")):
            log.info("removing %s, left by a build that was killed", stale)
            shutil.rmtree(stale, ignore_errors=True)
        base = prepare_base(spec.base, models_path)
        plans = plan_variants(spec, models_path, base.key)
        needed: set[str] = set()
        todo = list(wanted)
        while todo:  # the lineage of each wanted variant, plus its dependencies' lineages
            name = todo.pop()
            for n in lineage(spec, name):
                if n not in needed:
                    needed.add(n)
                    todo += list(plans[n].dependencies) if n in plans else []
        # What a recipe needs beyond its config (a tool installed) is checked for every variant
        # that will be built, before anything is stored.
        for plan in (p for p in plans.values() if p.spec.name in needed and p.recipe.check is not None):
            reusable = store.variant_by_key(plan.key) is not None and (artifacts_dir(store_path) / f"{plan.spec.name}-{plan.key}").is_dir()
            if force or not reusable:
                plan.recipe.check(plan.config)
        record_base(store, spec.base, base)
        parents: dict[str, ParentModel] = {spec.base.name: base}
        kinds: dict[str, str] = {}  # variant -> artifact kind
        for plan in (p for p in plans.values() if p.spec.name in needed):
            variant, recipe, config, key = plan.spec, plan.recipe, plan.config, plan.key
            parent = parents[variant.parent]
            if parent.quantization is not None or kinds.get(variant.parent) == "gguf":
                raise ConfigError(f"{models_path}: variant '{variant.name}': its parent '{parent.name}' is a quantized "
                                  "inference artifact; build from the full-precision variant instead")
            out_dir = artifacts_dir(store_path) / f"{variant.name}-{key}"
            row = store.variant_by_key(key)
            start = time.perf_counter()
            if row is not None and out_dir.is_dir() and not force:
                log.info("%s: unchanged (key %s), reusing %s", variant.name, key, out_dir)
                kind = row["artifact_kind"]
                reused = True
            else:
                log.info("%s: building with %s on top of %s (key %s)", variant.name, variant.method, parent.name, key)
                tmp = out_dir.with_name(out_dir.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                try:
                    result = recipe.build(BuildContext(variant.name, config, parent, tmp, models_path,
                                                       {d: parents[d] for d in plan.dependencies}))
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)  # nothing half-built stays behind
                    raise
                shutil.rmtree(tmp / "trainer", ignore_errors=True)  # trainer scratch, not part of the artifact
                shutil.rmtree(out_dir, ignore_errors=True)
                tmp.rename(out_dir)  # only a finished build appears under its key
                wall = time.perf_counter() - start
                kind = result.artifact
                store.upsert_variant(VariantRow(
                    variant_key=key, name=variant.name, parent_key=parent.key, parent_name=parent.name,
                    method=variant.method, recipe_hash=plan.recipe_hash, data_hash=plan.data_hash, artifact_kind=kind,
                    artifact_path=str(out_dir.resolve()), artifact_bytes=sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file()),
                    trainable_params=result.trainable_params, total_params=result.total_params,
                    train_curve=json.dumps(result.train_curve), metrics=json.dumps(result.metrics), wall_s=wall,
                    peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, device=result.device,
                    fallback=result.fallback, config=json.dumps(config.model_dump(), sort_keys=True),
                    created_at=datetime.now(timezone.utc).replace(tzinfo=None)))
                log.info("%s: built in %.0fs -> %s", variant.name, wall, out_dir)
                reused = False
            parents[variant.name] = child_model(parent, variant.name, key, kind, out_dir)
            kinds[variant.name] = kind
            outcomes.append(BuildOutcome(variant.name, key, reused, str(out_dir), time.perf_counter() - start))
    return outcomes
