"""`harness noise`: how far a variant's figures move when nothing about its weights changes.

Some variants move without any change to the weights: int8 kernels accumulate in a different
order for another batch composition, thread count or library release, and a small sample turns
that into whole items flipping. A gate margin inside that band certifies noise. This re-runs a
seeded slice of a suite's tasks for one variant under changed serving settings (batch size,
thread count, sampling seed and, where the variant has a GGUF and llama.cpp is installed, the
other backend), and stores each item-level metric's mean under every setting and the band: the
largest distance of any setting's mean from the declared one. Gates mark a rule whose margin or
observed difference lies inside the band of a variant it names (harness.report.gate), and the
report shows the band beside the comparison.

Nothing here writes a run: the perturbed evaluations are computed, summarised and dropped, so
reports and gates keep reading the variant's real runs."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__
from harness.errors import ConfigError
from harness.models import serving
from harness.run.plan import PlannedTask, check_capabilities, check_plan, plan_run
from harness.stats.metricspec import TaskRun
from harness.store.db import NoiseRow, Store
from harness.tasks.chat import apply as apply_chat
from harness.tasks.checkpoint import Checkpoint

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 40
"""Items per task in the slice when `--limit` is not given."""


@dataclass(frozen=True)
class Setting:
    """One way of serving the variant that should not change its figures."""

    label: str
    options: dict = field(default_factory=dict)
    """Backend options over the declared ones."""
    threads: int | None = None
    """torch's intra-op thread count while it runs (None: as is)."""
    seed_offset: int = 0
    """Added to the suite's seed for sampling (the items stay the same)."""
    backend: str | None = None
    """Another backend that serves the same model (None: the declared one)."""
    generation_batch: int | None = None
    """The generation tasks' batch size (None: as declared)."""


def settings(backend: str, options: dict, gguf: Path | None, samples: bool = True) -> list[Setting]:
    """The declared setting first, then each change that must not matter for `backend` (a
    sampling seed only when a task samples: `samples`)."""
    out = [Setting("as declared")]
    if backend == "hf":
        size = int(options.get("batch_size", 8))
        out += [Setting("batch size 1", {"batch_size": 1}, generation_batch=1),
                Setting(f"batch size {size * 2}", {"batch_size": size * 2}, generation_batch=size * 2),
                Setting("1 thread", threads=1)]
    elif backend == "llama_cpp":
        out += [Setting("n_batch 32", {"n_batch": 32}), Setting("1 thread", {"n_threads": 1})]
    elif backend == "vllm":
        out += [Setting("generation batch 1", generation_batch=1)]
    if samples:
        out.append(Setting("seed + 1", seed_offset=1))
    if backend in ("hf", "vllm") and gguf is not None and _installed("llama_cpp"):
        out.append(Setting("llama.cpp", backend="llama_cpp"))
    return out


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class NoiseResult:
    rows: list[NoiseRow]
    settings: list[str]


def measure_noise(suite_paths: list[Path], models_path: Path, store_path: Path, variant: str,
                  limit: int | None = DEFAULT_LIMIT, on_setting: Callable[[str], None] | None = None) -> NoiseResult:
    """Evaluate `variant` on a seeded slice of every task under each setting; store and return
    the band per (task, metric)."""
    plan = plan_run(suite_paths, models_path, [variant], limit)
    with Store(store_path, hold=False) as store:
        plan = check_plan(plan, store)
        catalogue = plan.catalogue
        model = catalogue.resolve(variant)
        backend, options = catalogue.backend_name(variant), catalogue.options(variant)
        chat = catalogue.chat(variant)
        tasks = [t for t in plan.tasks if t.kind.metrics or t.task.scorers]
        tasks = [t for t in tasks if t.task.spec.type != "latency"]  # timings are another kind of noise
        if not tasks:
            raise ConfigError(f"{', '.join(map(str, suite_paths))}: no task with item-level metrics to measure noise on")
        means: dict[tuple[str, str, str], dict[str, float]] = {}
        n_items: dict[tuple[str, str, str], int] = {}
        chosen = settings(backend, options, model.gguf, samples=any(_samples(t.task) for t in tasks))
        for setting in chosen:
            if on_setting is not None:
                on_setting(setting.label)
            for (key, metric_mean, n) in _evaluate(store, catalogue, variant, backend, options, setting, tasks, chat):
                means.setdefault(key, {})[setting.label] = metric_mean
                n_items[key] = n
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = []
        for (suite, task, metric), by_setting in sorted(means.items()):
            ref = by_setting.get(chosen[0].label, math.nan)
            band = max((abs(v - ref) for v in by_setting.values() if not math.isnan(v)), default=0.0)
            planned = next(t for t in tasks if t.task.spec.name == task and t.task.suite == suite)
            rows.append(NoiseRow(variant=variant, variant_key=model.key, suite=suite, task=task, metric=metric,
                                 data_hash=planned.task.data_hash, prompt_hash=planned.task.prompt_hash,
                                 n_items=n_items[(suite, task, metric)], reference=ref, band=band,
                                 by_setting=json.dumps(by_setting), created_at=now, harness_version=__version__))
        store.write_noise(rows)
    return NoiseResult(rows, [s.label for s in chosen])


def _evaluate(store: Store, catalogue, variant: str, backend_name: str, options: dict, setting: Setting,
              tasks: list[PlannedTask], chat):
    """(suite, task, metric), mean, n per item-level metric of each task under `setting`."""
    name = setting.backend or backend_name
    opened = serving.factory(name).open(catalogue.resolve(variant), {**options, **setting.options}
                                        if name == backend_name else {})
    torch = None
    if setting.threads is not None:
        import torch
        threads = torch.get_num_threads()
    try:
        if torch is not None:
            torch.set_num_threads(setting.threads)
        for planned in tasks:
            check_capabilities(planned, opened, variant)
            task = _with_generation_batch(planned.task, setting.generation_batch)
            if chat.template is not None:
                task = apply_chat(task, chat.template, chat.fewshot_as_multiturn)
            key = f"noise:{variant}:{setting.label}:{planned.task.suite}:{planned.task.spec.name}"
            ckpt = Checkpoint(store, key, fresh=True)
            out = planned.kind.rows(opened, task, TaskRun(key, planned.seed + setting.seed_offset, ckpt, list(task.scorers)))
            store.checkpoint_clear(key)
            values: dict[str, list[float]] = {}
            for s in out.scores:
                if s.value is not None and not math.isnan(s.value):
                    values.setdefault(s.metric, []).append(float(s.value))
            for metric, vs in values.items():
                yield (planned.task.suite, planned.task.spec.name, metric), sum(vs) / len(vs), len(vs)
    finally:
        if torch is not None:
            torch.set_num_threads(threads)
        opened.close()


def _samples(task) -> bool:
    """Whether the task draws its outputs at random (a generation temperature above 0)."""
    gen = getattr(task.spec, "generation", None)
    return gen is not None and gen.temperature > 0


def _with_generation_batch(task, size: int | None):
    gen = getattr(task.spec, "generation", None)
    if size is None or gen is None:
        return task
    return replace(task, spec=task.spec.model_copy(update={"generation": gen.model_copy(update={"batch_size": size})}))
