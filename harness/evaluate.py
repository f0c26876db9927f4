"""`harness run`: evaluate variants on suites and store every sample x scorer as a row.

Order of work: parse and render every task (no model yet), resolve every variant, then load
each model once and run its tasks, writing one transaction per task. What a task computes is
its kind's business (`TaskKind.rows`: harness.multiple_choice, harness.generation,
harness.perplexity, harness.latency); this module is the loop around them. A task whose run key
(task spec, data, prompt, variant, seed, harness version, backend) is already in the store is
reused, not recomputed, unless --force."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import harness.scorers.reward as reward_scorer
from harness import __version__, catalogue, fidelity, registry
from harness.config.models import load_models, model_names
from harness.config.suite import load_suite
from harness.contamination import CONTAMINATION_METRICS, training_sources
from harness.errors import ConfigError, UnknownNameError
from harness.hashing import eval_libraries, git_commit, stable_hash
from harness.metricspec import TaskRun
from harness.sequence_kl import store_sequence_kl
from harness.store.db import RunRow, Store
from harness.tasks import PreparedTask, prepare_suite, suite_tasks_json
from harness.variants import (
    open_backend,
    plan_variants,
    prepare_base,
    record_base,
    resolve_built,
)

log = logging.getLogger(__name__)

CHECKED = ("multiple_choice", "generation", "perplexity", "classification")
"""Task types whose items are checked for contamination."""


def run_key(task: PreparedTask, seed: int, **identity) -> str:
    """The key under which a task run is reused: the task (spec, data, prompt, scorer configs,
    the items actually evaluated), the seed, harness and library versions, and whatever
    identifies the model side (variant key, backend, dtype and loading options; or an answer set)."""
    return stable_hash({"task": task.spec.model_dump(), "data": task.data_hash, "prompt": task.prompt_hash,
                        "scorers": task.scorers_hash, "items": stable_hash([s.id for s in task.samples]),
                        "n": len(task.samples), "seed": seed, "harness": __version__, "libraries": eval_libraries(), **identity})


@dataclass(frozen=True)
class TaskOutcome:
    variant: str
    suite: str
    task: str
    run_id: str
    reused: bool
    n_samples: int
    wall_s: float
    failed_calls: dict = field(default_factory=dict)
    """Judge tasks: calls that still failed after their retries, by kind (stored as error rows;
    a plain rerun asks exactly these again)."""


def run_suites(suite_paths: list[Path], models_path: Path | None, store_path: Path, variants: list[str] | None = None,
               force: bool = False, limit: int | None = None, answers: dict[str, Path] | None = None) -> list[TaskOutcome]:
    """Evaluate `variants` (default: every model in the file, unless answer sets are given) and
    the pre-generated `answers` sets on every task of the suites; then run the suites' judge
    tasks over the stored outputs."""
    from harness.contamination import suite_corpora
    from harness.data.answers import load_answer_file
    from harness.judge.open import check_judge_task
    from harness.judge.task import prepare_judge_task
    from harness.variants import hash_files

    prepared: list[tuple[str, int, PreparedTask]] = []
    judge_tasks = []
    checks: dict[str, tuple] = {}  # suite name -> (contamination spec, its corpora, their identity)
    for path in suite_paths:
        suite = load_suite(path)
        suite_hash = stable_hash(suite.model_dump())
        corpora = suite_corpora(suite.contamination, path)
        checks[suite.name] = (suite.contamination, corpora,
                              stable_hash([suite.contamination.model_dump(), [hash_files([p]) for _, p in corpora]]))
        prepared += [(suite_hash, suite.seed, t) for t in prepare_suite(suite, path, limit)]
        judge_tasks += [(suite_hash, suite.seed, prepare_judge_task(t, suite.name, path, suite_tasks_json(suite)),
                         f"{path}: task '{t.name}'") for t in suite.tasks if t.type == "judge"]
    answer_sets = {name: load_answer_file(p) for name, p in (answers or {}).items()}
    if models_path is None and not answer_sets:
        raise ConfigError("nothing to evaluate: give --models (variants to run) and/or --answers NAME=FILE")
    spec = load_models(models_path) if models_path else None
    if spec is not None:
        catalogue.check_backends(spec, models_path)
    known = model_names(spec) if spec else []
    for name in answer_sets:
        if name in known:
            raise ConfigError(f"--answers {name}: the name is already a model of {models_path}; pick another")
    scorers_only = evaluator_models(spec) if spec else []  # reward models: they score outputs
    names = [v for v in variants or ([] if answer_sets else [k for k in known if k not in scorers_only]) if v not in answer_sets]
    for name in names:
        if name not in known:
            raise UnknownNameError("variant", name, known + list(answer_sets), where=str(models_path or "--variant"))
        if name in scorers_only:
            raise ConfigError(f"--variant {name}: a reward model scores outputs, it does not generate them",
                              hint=f"use it in a generation task's scorers: `- reward: {{model: {name}}}`")
    reward_models = reward_scorer.needs_models(prepared)
    if reward_models and spec is None:
        raise ConfigError(f"the reward scorer names {', '.join(reward_models)}: give --models with the file that declares it")
    replayed = [a for a in answer_sets if not variants or a in variants]
    if answer_sets and any(t.spec.type != "generation" for _, _, t in prepared):
        other = [f"{t.spec.name} ({t.spec.type})" for _, _, t in prepared if t.spec.type != "generation"]
        raise ConfigError(f"answer sets replay stored text, so only generation tasks can be evaluated with --answers; "
                          f"not {', '.join(other)}")

    outcomes = []
    # A writer session: the store is opened for each read and commit only, so reports, gates and
    # listings can read it while this runs
    with Store(store_path, hold=False) as store:
        # Every check first (variants built, judges ready, baselines there): nothing is written
        # unless all of them pass
        resolved, base, plans = {}, None, None
        local_judge = any(jt.spec.judge.backend != "openai" for _, _, jt, _ in judge_tasks)
        if spec is not None and (names or local_judge or reward_models):
            base = prepare_base(spec.base, models_path, spec)  # once: it verifies the GGUF's sha256
            plans = plan_variants(spec, models_path, base.key)
            resolved = {name: resolve_built(spec, models_path, name, store, base, plans) for name in names}
            prepared = reward_scorer.bind(prepared, lambda name, where: _resolve_named(spec, models_path, name, where, store,
                                                                                      base, plans))
            for model in resolved.values():
                catalogue.check_servable(spec, model)
        for _, _, jt, where in judge_tasks:
            check_judge_task(jt, where, spec, models_path, store, replayed + names, base, plans)
        if base is not None:
            record_base(store, spec.base, base)
        for name in replayed:
            outcomes += _run_answer_set(store, name, answers[name], answer_sets[name], prepared, force, checks)
        for name in names:
            model = resolved[name]
            trained_on = training_sources(spec, models_path, name, plans)
            backend_name = catalogue.backend_name(spec, name)
            todo = []
            for suite_hash, seed, task in prepared:
                key = run_key(task, seed, variant=model.key, backend=backend_name, dtype=model.dtype,
                              base_options=catalogue.model_options(spec, name), quantization=model.quantization,
                              contamination=checks[task.suite][2])
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
                    outcomes.append(_run_task(store, backend, name, model.key, suite_hash, task, key, seed, force,
                                              _checker(checks[task.suite], trained_on)))
            finally:
                backend.close()
        checked = [o.run_id for o in outcomes if o.variant in names]
        if checked:
            n = fidelity.store_rows(store, checked)
            perplexity = {t.spec.name: t for _, _, t in prepared if t.spec.type == "perplexity"}
            n += fidelity.store_token_kl(store, spec, models_path, resolved, [o for o in outcomes if o.variant in names], perplexity)
            sampled = {t.spec.name: t for _, _, t in prepared if t.spec.type == "generation" and t.spec.sequence_kl is not None}
            n += store_sequence_kl(store, spec, models_path, resolved, [o for o in outcomes if o.variant in names], sampled)
            if n:
                log.info("fidelity to the parent: %d per-item rows stored", n)
        if judge_tasks:
            outcomes += _run_judges(store, judge_tasks, spec, models_path, replayed + names, force, base, plans)
    return outcomes


def evaluator_models(spec) -> list[str]:
    """The models of the file that score outputs (reward models) rather than generate them."""
    from harness.recipes import recipe_for

    return [v.name for v in spec.variants if recipe_for(v.method).evaluator]


def _resolve_named(spec, models_path: Path, name: str, where: str, store, base, plans):
    """A model a scorer names, built: unknown names list the file's models."""
    if name not in model_names(spec):
        raise UnknownNameError("model", name, model_names(spec), where=where)
    return resolve_built(spec, models_path, name, store, base, plans)


def _checker(check: tuple, trained_on: list):
    """The contamination index of a task's run: the variant's training sets and the suite's corpora."""
    from harness.contamination import index_for

    cspec, corpora, _ = check
    return index_for(trained_on + corpora, cspec.n, cspec.threshold) if cspec.enabled else None


def _run_answer_set(store: Store, name: str, path: Path, answer_set: dict, prepared, force: bool,
                    checks: dict) -> list[TaskOutcome]:
    """Store a pre-generated answer set as the outputs of `name` on each generation task."""
    from harness.backends.replay import ReplayBackend

    backend = ReplayBackend(name, answer_set)
    out = []
    for suite_hash, seed, task in prepared:
        key = run_key(task, seed, answers=backend.key, contamination=checks[task.suite][2])
        cached = None if force else store.find_run(key)
        if cached:
            store.mark_reused(cached["run_id"])
            out.append(TaskOutcome(name, task.suite, task.spec.name, cached["run_id"], True, cached["n_samples"], 0.0))
        else:
            out.append(_run_task(store, backend, name, backend.key, suite_hash, task, key, seed, force,
                                 _checker(checks[task.suite], [])))
    log.info("answer set %s (%s): %d task(s)", name, path, len(out))
    return out


def _run_judges(store: Store, judge_tasks, spec, models_path: Path | None, evaluated: list[str], force: bool,
                base=None, plans=None) -> list[TaskOutcome]:
    """Phase two: every judge task over the stored outputs of the variants just evaluated.
    Each judge is opened once and shared by the tasks that name it."""
    from harness.judge.open import open_judge
    from harness.judge.task import run_judge_task

    outcomes = []
    judges: dict[str, object] = {}
    try:
        for suite_hash, seed, jt, _ in judge_tasks:
            j = jt.spec.judge
            ident = stable_hash(j.model_dump(exclude={"thresholds", "anchors", "prompts", "prompt", "reference_prompt",
                                                      "use_reference", "dimensions", "samples"}))
            if ident not in judges:
                judges[ident] = open_judge(j, spec, models_path, store, seed, base, plans)
            judge = judges[ident]
            baseline = jt.spec.baseline
            candidates = [v for v in evaluated if v != baseline]
            for candidate in candidates:
                t0 = time.perf_counter()
                res = run_judge_task(store, judge, jt, candidate, baseline, seed, suite_hash, force)
                log.info("%s / %s: %d items judged (%d judge calls made, %d reused)", candidate, jt.spec.name,
                         res.n_items, res.calls, res.cached)
                outcomes.append(TaskOutcome(candidate, jt.suite, jt.spec.name, res.run_id, res.calls == 0 and res.cached == 0,
                                            res.n_items, time.perf_counter() - t0, res.failed))
    finally:
        for judge in judges.values():
            judge.close()
    return outcomes


def with_categories(samples: list, task: PreparedTask) -> list:
    """Sample rows with their item's category (task.category_field) in the details; a turn
    `<id>#t<k>` belongs to item `<id>`."""
    from dataclasses import replace

    category = {s.id: str(s.fields[task.spec.category_field]) for s in task.samples}
    return [replace(r, details=json.dumps({**json.loads(r.details or "{}"), "category": category[r.sample_id.split("#")[0]]}))
            for r in samples]


def _run_task(store: Store, backend, variant: str, variant_key: str, suite_hash: str, task: PreparedTask,
              run_key: str, seed: int, force: bool = False, checker=None) -> TaskOutcome:
    from harness.checkpoint import Checkpoint

    spec = task.spec
    log.info("%s / %s: %d samples (%s)", variant, spec.name, len(task.samples), spec.type)
    ckpt = Checkpoint(store, run_key, fresh=force)
    ckpt.said_resumed(f"{variant} / {spec.name}")
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    run_id = uuid.uuid4().hex[:16]
    scorers = list(task.scorers)
    kind = registry.resolve("task_kind", spec.type)
    out = kind.rows(backend, task, TaskRun(run_id, seed, ckpt, scorers))
    samples, scores, stats, gen_config = list(out.samples), list(out.scores), list(out.stats), out.generation_config
    if spec.category_field is not None:
        samples = with_categories(samples, task)
    if checker is not None and spec.type in CHECKED:
        from harness.contamination import check_rows

        samples, extra = check_rows(run_id, samples, task.samples, checker)
        scores += extra
    wall = ckpt.wall_s()
    info = backend.info
    last = {m.name for m in CONTAMINATION_METRICS}  # listed after the task's own metrics
    metric_order = ([m.name for m in kind.metrics if m.name not in last] + [m.name for _, s in scorers for m in s.metrics
                                                                            if m.level == "item"]
                    + ([m.name for m in CONTAMINATION_METRICS] if checker is not None and spec.type in CHECKED else []))
    run = RunRow(run_id=run_id, run_key=run_key, suite=task.suite, suite_hash=suite_hash, task=spec.name, task_type=spec.type,
                 metrics=json.dumps(metric_order),
                 variant=variant, variant_key=variant_key, backend=info.name, device=info.device, dtype=info.dtype,
                 data_hash=task.data_hash, prompt_hash=task.prompt_hash,
                 generation_config=json.dumps(asdict(gen_config)) if gen_config else None, seed=seed,
                 harness_version=__version__, git_commit=git_commit(), started_at=started, last_used_at=started, wall_s=wall,
                 n_samples=len(task.samples), partial=task.partial, n_items_total=task.n_total,
                 task_config=json.dumps(spec.model_dump(), default=str), suite_tasks=task.suite_tasks,
                 libraries=json.dumps(eval_libraries()))
    store.write_task_run(run, samples, scores, stats=stats, checkpoint_key=run_key)
    log.info("%s / %s: done in %.1fs", variant, spec.name, wall)
    return TaskOutcome(variant, task.suite, spec.name, run_id, False, len(task.samples), wall)
