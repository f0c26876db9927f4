"""`harness run`: evaluate variants on suites and store every sample x scorer as a row.

Order of work: parse and render every task (no model yet), resolve every variant, then load
each model once and run its tasks, writing one transaction per task. A task whose run key
(task spec, data, prompt, variant, seed, harness version, backend) is already in the store is
reused, not recomputed, unless --force."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__, registry
from harness.backends.base import GenerationConfig
from harness.config.models import load_models, model_names
from harness.config.suite import load_suite
from harness.errors import UnknownNameError
from harness.hashing import git_commit, stable_hash
from harness.progress import progress
from harness.store.db import RunRow, SampleRow, ScoreRow, Store
from harness.tasks import PreparedTask, prepare_suite
from harness.variants import open_backend, plan_variants, prepare_base, resolve_built

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskOutcome:
    variant: str
    suite: str
    task: str
    run_id: str
    reused: bool
    n_samples: int
    wall_s: float


def run_suites(suite_paths: list[Path], models_path: Path, store_path: Path, variants: list[str] | None = None,
               force: bool = False, limit: int | None = None) -> list[TaskOutcome]:
    """Evaluate `variants` (default: every model in the file) on every task of the suites."""
    prepared: list[tuple[str, int, PreparedTask]] = []
    for path in suite_paths:
        suite = load_suite(path)
        suite_hash = stable_hash(suite.model_dump())
        prepared += [(suite_hash, suite.seed, t) for t in prepare_suite(suite, path, limit)]
    spec = load_models(models_path)
    names = variants or model_names(spec)
    for name in names:
        if name not in model_names(spec):
            raise UnknownNameError("variant", name, model_names(spec), where=str(models_path))

    outcomes = []
    with Store(store_path) as store:
        base = prepare_base(spec.base, models_path, store)  # once: it verifies the GGUF's sha256
        plans = plan_variants(spec, models_path, base.key)
        resolved = {name: resolve_built(spec, models_path, name, store, base, plans) for name in names}
        for name in names:
            model = resolved[name]
            backend_name = "fake" if spec.base.source == "fake" else "hf"
            todo = []
            for suite_hash, seed, task in prepared:
                key = stable_hash({"task": task.spec.model_dump(), "data": task.data_hash, "prompt": task.prompt_hash,
                                   "variant": model.key, "seed": seed, "harness": __version__, "backend": backend_name,
                                   "dtype": model.dtype, "n": len(task.samples)})
                cached = None if force else store.find_run(key)
                if cached:
                    log.info("%s / %s: unchanged, reusing run %s", name, task.spec.name, cached["run_id"])
                    store.mark_reused(cached["run_id"])
                    outcomes.append(TaskOutcome(name, task.suite, task.spec.name, cached["run_id"], True, cached["n_samples"], 0.0))
                else:
                    todo.append((suite_hash, seed, task, key))
            if not todo:
                continue
            backend = open_backend(spec, model)
            try:
                for suite_hash, seed, task, key in todo:
                    outcomes.append(_run_task(store, backend, name, model.key, suite_hash, task, key, seed))
            finally:
                backend.close()
    return outcomes


def _run_task(store: Store, backend, variant: str, variant_key: str, suite_hash: str, task: PreparedTask,
              run_key: str, seed: int) -> TaskOutcome:
    spec = task.spec
    log.info("%s / %s: %d samples (%s)", variant, spec.name, len(task.samples), spec.type)
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    t0 = time.perf_counter()
    run_id = uuid.uuid4().hex[:16]
    scorers = [(name, registry.resolve("scorer", name)) for name in spec.scorers]
    samples: list[SampleRow] = []
    scores: list[ScoreRow] = []
    gen_config = None
    if spec.type == "multiple_choice":
        requests = [(s.prompt, c) for s in task.samples for c in s.continuations]
        results = backend.loglikelihood(requests)
        pos = 0
        for s in progress(task.samples, desc=f"score {spec.name}"):
            out = results[pos:pos + len(s.continuations)]
            pos += len(s.continuations)
            best = max(range(len(out)), key=lambda i: (out[i].logprob, -i))
            details = {"options": list(s.options), "continuations": list(s.continuations), "gold": s.gold,
                       "loglikelihoods": [o.logprob for o in out], "is_greedy": [o.is_greedy for o in out],
                       "tokens": [o.n_tokens for o in out]}
            samples.append(SampleRow(run_id, s.id, s.prompt, s.continuations[s.gold].strip(), s.continuations[best].strip(), json.dumps(details)))
            scores += _score(run_id, s, out, scorers)
    else:
        g = spec.generation
        gen_config = GenerationConfig(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), g.batch_size, seed)
        results = backend.generate([s.prompt for s in task.samples], gen_config)
        for s, out in zip(task.samples, results):
            details = {"prompt_tokens": out.prompt_tokens, "output_tokens": out.output_tokens, "latency_s": out.latency_s}
            samples.append(SampleRow(run_id, s.id, s.prompt, s.reference, out.text, json.dumps(details)))
            scores += _score(run_id, s, out, scorers)
    wall = time.perf_counter() - t0
    info = backend.info
    metric_order = [m for _, fn in scorers for m in getattr(fn, "metrics", ())]
    run = RunRow(run_id=run_id, run_key=run_key, suite=task.suite, suite_hash=suite_hash, task=spec.name, task_type=spec.type,
                 metrics=json.dumps(metric_order),
                 variant=variant, variant_key=variant_key, backend=info.name, device=info.device, dtype=info.dtype,
                 data_hash=task.data_hash, prompt_hash=task.prompt_hash,
                 generation_config=json.dumps(asdict(gen_config)) if gen_config else None, seed=seed,
                 harness_version=__version__, git_commit=git_commit(), started_at=started, last_used_at=started, wall_s=wall,
                 n_samples=len(task.samples))
    store.write_task_run(run, samples, scores)
    log.info("%s / %s: done in %.1fs", variant, spec.name, wall)
    return TaskOutcome(variant, task.suite, spec.name, run_id, False, len(task.samples), wall)


def _score(run_id: str, sample, output, scorers) -> list[ScoreRow]:
    rows = []
    for name, fn in scorers:
        for metric, value in fn(sample, output).items():
            rows.append(ScoreRow(run_id, sample.id, name, metric, None if value is None else float(value)))
    return rows
