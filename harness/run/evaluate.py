"""`harness run`: evaluate variants on suites and store every sample x scorer as a row.

Phases: plan (harness.run.plan: every file checked, every task rendered, every model resolved;
nothing loaded or written yet), evaluate (each model loaded once, its tasks run, one transaction
per task), after-run analyses (what each task kind declares: fidelity and KL to the parent),
judges (over the stored outputs). What a task computes is its kind's business (`TaskKind.rows`,
harness.tasks.kinds); this module is the loop around them. A task whose run key (task spec,
data, prompt, variant, seed, harness version, backend) is already in the store is reused, not
recomputed, unless --force."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__
from harness.analysis import fidelity
from harness.analysis.contamination import CONTAMINATION_METRICS, check_rows, index_for
from harness.analysis.diversity import DIVERSITY_METRICS
from harness.analysis.recitation import RECITATION_METRICS, RecitationIndex, recitation_index, recitation_rows
from harness.backends.replay import ReplayBackend
from harness.hashing import eval_libraries, git_commit, library_versions, stable_hash
from harness.judge.open import local_judge_model, open_judge
from harness.judge.task import run_judge_task
from harness.models.catalogue import Catalogue
from harness.models.chat_plan import OFF, ChatPlan
from harness.run import distributed
from harness.run.oneoff import Overrides
from harness.run.plan import PlannedJudge, PlannedTask, RunPlan, check_capabilities, check_plan, plan_run
from harness.stats.metricspec import KindRows, TaskRun
from harness.store.db import RunRow, Store
from harness.tasks import chat as chat_layout
from harness.tasks.checkpoint import Checkpoint
from harness.tasks.sample import PreparedTask

log = logging.getLogger(__name__)


def run_key(task: PreparedTask, seed: int, **identity) -> str:
    """The key under which a task run is reused: the task (spec, data, prompt, scorer configs,
    the items actually evaluated), the seed, harness and library versions, and whatever
    identifies the model side (variant key, backend, dtype and loading options; or an answer set)."""
    return stable_hash({"task": task.spec.model_dump(), "data": task.data_hash, "prompt": task.prompt_hash,
                        "scorers": task.scorers_hash, "items": stable_hash([s.id for s in task.samples]),
                        "n": len(task.samples), "seed": seed, "harness": __version__, "libraries": eval_libraries(), **identity})


POOLED_KINDS = frozenset({"generation", "multiple_choice"})
"""Task kinds whose checkpoint units are items with prompts that do not depend on which other
items are evaluated (few-shot examples never come from the evaluated items): a --limit run of
them keeps its finished items for a larger --limit run of the same task and model."""


def pool_key(task: PreparedTask, seed: int, **identity) -> str:
    """The key under which --limit runs of one task and model share their finished items: the
    run key without the item set."""
    return stable_hash({"pool": "limit-samples", "task": task.spec.model_dump(), "data": task.data_hash, "prompt": task.prompt_hash,
                        "scorers": task.scorers_hash, "seed": seed, "harness": __version__, "libraries": eval_libraries(), **identity})


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
               force: bool = False, limit: int | None = None, answers: dict[str, Path] | None = None,
               ray: distributed.RayOptions | None = None, overrides: Overrides | None = None) -> list[TaskOutcome]:
    """Evaluate `variants` (default: every model in the file, unless answer sets are given) and
    the pre-generated `answers` sets on every task of the suites; then run the suites' judge
    tasks over the stored outputs. With `ray`, each model's tasks are evaluated by its replicas on
    a Ray cluster (harness.run.distributed); this process stays the store's only writer."""
    plan = plan_run(suite_paths, models_path, variants, limit, answers, force, overrides)
    # The cluster (or this machine) must have what the models ask for: checked before the store
    # is opened or a model loaded
    joined = ray is not None and not distributed.joined()
    cluster = distributed.connect(ray) if ray is not None else None
    try:
        if plan.catalogue is not None:
            distributed.check_resources(plan.catalogue, [*plan.variants, *_judge_models(plan)], cluster)
        # A writer session: the store is opened for each read and commit only, so reports, gates
        # and listings can read it while this runs
        with Store(store_path, hold=False) as store:
            # Every check first (variants built, judges ready, baselines there): nothing is written
            # unless all of them pass
            plan = check_plan(plan, store)
            if plan.catalogue is not None and plan.catalogue.store is not None:
                plan.catalogue.record_base()
            outcomes = []
            for answer_set in plan.answer_sets:
                outcomes += _evaluate_answer_set(store, plan, answer_set)
            for name in plan.variants:
                outcomes += _evaluate_variant(store, plan, name, ray, cluster)
            _after_run(store, plan, outcomes)
            if plan.judges:
                outcomes += _run_judges(store, plan, ray, cluster)
    finally:
        if joined:
            distributed.shutdown()
    return outcomes


def reuse_or_run(store: Store, key: str, force: bool, variant: str, task: PreparedTask,
                 run: Callable[[], TaskOutcome]) -> TaskOutcome:
    """The stored run under `key` (marked reused), or `run()`: the one place a run is reused. A
    run stored under another name with the same content (two model names for one model) is
    recorded for this name too, so reports and gates find it under the name that asked."""
    cached = None if force else (store.find_run_for(key, variant) or store.find_run(key))
    if cached is None:
        return run()
    if cached["variant"] != variant:
        run_id = uuid.uuid4().hex[:16]
        store.attribute_run(cached["run_id"], variant, run_id)
        log.info("%s / %s: same content as %s's run %s, recorded for %s as run %s", variant, task.spec.name,
                 cached["variant"], cached["run_id"], variant, run_id)
        return TaskOutcome(variant, task.suite, task.spec.name, run_id, True, cached["n_samples"], 0.0)
    log.info("%s / %s: unchanged, reusing run %s", variant, task.spec.name, cached["run_id"])
    store.mark_reused(cached["run_id"])
    return TaskOutcome(variant, task.suite, task.spec.name, cached["run_id"], True, cached["n_samples"], 0.0)


class _OpenOnDemand:
    """A model opened on its first task that is not reused, closed once (so a fully reused
    variant is never loaded); the backend's capabilities are checked against the task's kind."""

    def __init__(self, catalogue: Catalogue, name: str):
        self.catalogue, self.name, self.backend = catalogue, name, None

    def for_task(self, task: PlannedTask):
        if self.backend is None:
            self.backend = self.catalogue.open(self.name)
        check_capabilities(task, self.backend, self.name)
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


def _evaluate_variant(store: Store, plan: RunPlan, name: str, ray: distributed.RayOptions | None = None,
                      cluster: dict | None = None) -> list[TaskOutcome]:
    """Phase two for one model: every planned task, reused or run with the model loaded once (or
    by its replicas on the Ray cluster, loaded once each)."""
    catalogue = plan.catalogue
    model = catalogue.resolve(name)
    trained_on = catalogue.training_sources(name)
    backend_name, options = catalogue.backend_name(name), catalogue.options(name)
    opened: _OpenOnDemand | distributed.Replicas
    if ray is not None and cluster is not None:
        opened = distributed.Replicas(catalogue, name, catalogue.resources(name), cluster, ray)
    else:
        opened = _OpenOnDemand(catalogue, name)
    out = []
    chat = catalogue.chat(name)
    log.info("%s: %s", name, chat.reason)
    # Only a templated run's key names its template: plain runs keep the keys they always had
    templated = {"chat_template": chat.identity()} if chat.on else {}
    try:
        for t in plan.tasks:
            identity = dict(variant=model.key, backend=backend_name, dtype=model.dtype, base_options=options,
                            quantization=model.quantization, contamination=t.contamination.identity, **templated)
            key = run_key(t.task, t.seed, **identity)
            if isinstance(opened, distributed.Replicas):
                out.append(reuse_or_run(store, key, plan.force, name, t.task, lambda t=t, key=key: _run_on_replicas(
                    store, opened, name, model.key, t, key, plan.force, _checker(t, trained_on), chat, _reciter(t, trained_on))))
            else:
                pool = pool_key(t.task, t.seed, **identity) if t.task.partial and t.task.spec.type in POOLED_KINDS else None
                out.append(reuse_or_run(store, key, plan.force, name, t.task, lambda t=t, key=key, pool=pool: _run_task(
                    store, opened.for_task(t), name, model.key, t, key, plan.force, _checker(t, trained_on), chat, pool=pool,
                    reciter=_reciter(t, trained_on))))
    finally:
        opened.close()
    return out


def _evaluate_answer_set(store: Store, plan: RunPlan, answer_set) -> list[TaskOutcome]:
    """Phase two for an answer set: its stored outputs replayed as the outputs of each task."""
    backend = ReplayBackend(answer_set.name, answer_set.answers)
    out = []
    for t in plan.tasks:
        key = run_key(t.task, t.seed, answers=backend.key, contamination=t.contamination.identity)
        out.append(reuse_or_run(store, key, plan.force, answer_set.name, t.task, lambda t=t, key=key: _run_task(
            store, backend, answer_set.name, backend.key, t, key, plan.force, _checker(t, []))))
    log.info("answer set %s (%s): %d task(s)", answer_set.name, answer_set.path, len(out))
    return out


def _reciter(task: PlannedTask, trained_on: list) -> RecitationIndex | None:
    """The training data a generation task's outputs are checked against for repeated text and
    leaked identifiers (the variant's lineage; none for a base model), unless the task's
    contamination check is off."""
    if task.task.spec.type != "generation" or not task.contamination.spec.enabled:
        return None
    return recitation_index(trained_on)


def _checker(task: PlannedTask, trained_on: list):
    """The contamination index of a task's run: the variant's training sets and the suite's corpora."""
    cspec = task.contamination.spec
    if not (cspec.enabled and task.kind.contamination):
        return None
    return index_for(trained_on + list(task.contamination.corpora), cspec.n, cspec.threshold)


def _after_run(store: Store, plan: RunPlan, outcomes: list[TaskOutcome]) -> None:
    """Phase three: fidelity rows of every run just evaluated, then each task kind's declared
    analyses (token-level KL on perplexity tasks, sequence KL on generation tasks)."""
    evaluated = set(plan.variants)
    mine = [o for o in outcomes if o.variant in evaluated]
    if not mine:
        return
    n = fidelity.store_rows(store, [o.run_id for o in mine])
    by_kind: dict[str, list[PlannedTask]] = {}
    for t in plan.tasks:
        by_kind.setdefault(t.task.spec.type, []).append(t)
    for planned in by_kind.values():
        tasks = {t.task.spec.name: t.task for t in planned}
        for analysis in planned[0].kind.after_run:
            n += analysis(plan.catalogue, evaluated, mine, tasks)
    if n:
        log.info("fidelity to the parent: %d per-item rows stored", n)


def _judge_models(plan: RunPlan) -> list[str]:
    """The models of the file that the run's local judges run on (not already variants of it)."""
    names = {local_judge_model(p.task.spec.judge, plan.catalogue, f"{p.where}: judge") for p in plan.judges}
    return sorted(n for n in names if n is not None and n not in plan.variants)


def _run_judges(store: Store, plan: RunPlan, ray: distributed.RayOptions | None = None,
                cluster: dict | None = None) -> list[TaskOutcome]:
    """Phase four: every judge task over the stored outputs of the variants just evaluated.
    Each judge is opened once and shared by the tasks that name it; with Ray, a local judge's
    calls are spread over its replicas."""
    outcomes = []
    judges: dict[str, object] = {}
    opener = None
    if ray is not None and cluster is not None and plan.catalogue is not None:
        catalogue = plan.catalogue

        def opener(name: str):
            return distributed.SpreadBackend(distributed.Replicas(catalogue, name, catalogue.resources(name), cluster, ray))
    try:
        for planned in plan.judges:
            outcomes += _run_judge(store, plan, planned, judges, opener)
    finally:
        for judge in judges.values():
            judge.close()
    return outcomes


def _run_judge(store: Store, plan: RunPlan, planned: PlannedJudge, judges: dict, opener=None) -> list[TaskOutcome]:
    jt = planned.task
    j = jt.spec.judge
    ident = stable_hash(j.model_dump(exclude={"thresholds", "anchors", "prompts", "prompt", "reference_prompt",
                                              "use_reference", "dimensions", "samples"}))
    if ident not in judges:
        judges[ident] = open_judge(j, plan.catalogue, store, planned.seed, opener)
    judge = judges[ident]
    baseline = jt.spec.baseline
    outcomes = []
    for candidate in [v for v in plan.evaluated if v != baseline]:
        t0 = time.perf_counter()
        res = run_judge_task(store, judge, jt, candidate, baseline, planned.seed, planned.suite_hash, plan.force)
        log.info("%s / %s: %d items judged (%d judge calls made, %d reused)", candidate, jt.spec.name,
                 res.n_items, res.calls, res.cached)
        outcomes.append(TaskOutcome(candidate, jt.suite, jt.spec.name, res.run_id, res.calls == 0 and res.cached == 0,
                                    res.n_items, time.perf_counter() - t0, res.failed))
    return outcomes


def with_content(samples: list, task: PreparedTask) -> list:
    """Sample rows with their item's content hash and cluster (a turn or a request has its item's)."""
    items = {s.id: s for s in task.samples}
    out = []
    for r in samples:
        item = items.get(r.item_id or r.sample_id)
        out.append(replace(r, content_hash=item.content_hash if item else None, cluster=item.cluster if item else None))
    return out


def with_categories(samples: list, task: PreparedTask) -> list:
    """Sample rows with their item's category (task.category_field) in the details; a turn
    belongs to its item (item_id)."""
    category = {s.id: str(s.fields[task.spec.category_field]) for s in task.samples}
    return [replace(r, details=json.dumps({**json.loads(r.details or "{}"), "category": category[r.item_id or r.sample_id]}))
            for r in samples]


def _served(task: PreparedTask, chat: ChatPlan) -> PreparedTask:
    """The task as the model is served it: laid out with its chat template, or as it is."""
    return chat_layout.apply(task, chat.template, chat.fewshot_as_multiturn) if chat.template is not None else task


def _run_on_replicas(store: Store, replicas: distributed.Replicas, variant: str, variant_key: str, planned: PlannedTask,
                     run_key: str, force: bool = False, checker=None, chat: ChatPlan = OFF,
                     reciter: RecitationIndex | None = None) -> TaskOutcome:
    """Run one task on a model's Ray replicas: its items in shards, committed to the checkpoint
    as each returns, then the run written from them exactly as a single process writes it (or,
    for a kind whose units are not items, the whole task on one replica)."""
    served, run_id = _served(planned.task, chat), uuid.uuid4().hex[:16]
    check_capabilities(planned, distributed.FromReplicas(replicas.for_task(distributed.n_shards(served, replicas.options))),
                       variant)
    if distributed.sharded(planned.task.spec.type):
        info, stats = replicas.fill(store, served, planned.seed, run_id, run_key, force)
        backend = distributed.FromReplicas(replace(info, details={**info.details, "ray": stats.record()}))
        return _run_task(store, backend, variant, variant_key, planned, run_key, False, checker, chat, run_id, reciter=reciter)
    info, rows = replicas.whole(store, served, planned.seed, run_id, run_key, force)
    return _run_task(store, distributed.FromReplicas(info), variant, variant_key, planned, run_key, False, checker, chat,
                     run_id, rows, reciter=reciter)


def _run_task(store: Store, backend, variant: str, variant_key: str, planned: PlannedTask, run_key: str,
              force: bool = False, checker=None, chat: ChatPlan = OFF, run_id: str | None = None,
              computed: KindRows | None = None, pool: str | None = None, reciter: RecitationIndex | None = None) -> TaskOutcome:
    """Run one task on an opened backend and store it in one transaction. With a chat template,
    the model is served the templated prompts (stored as each sample's prompt); the items'
    identity (content, data and prompt hashes) stays the plain task's. `computed`: the kind's
    rows, computed elsewhere (a Ray replica) under `run_id`. `pool`: a --limit run's shared
    item pool (pool_key): its finished items are taken from it and its new ones added to it."""
    task, seed, suite_hash, kind = planned.task, planned.seed, planned.suite_hash, planned.kind
    spec = task.spec
    log.info("%s / %s: %d samples (%s)", variant, spec.name, len(task.samples), spec.type)
    ckpt = Checkpoint(store, run_key, fresh=force, pool=pool)
    if run_id is None:  # (a Ray run's checkpoint is its replicas' work, said when they started)
        ckpt.said_resumed(f"{variant} / {spec.name}")
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    run_id = run_id or uuid.uuid4().hex[:16]
    scorers = list(task.scorers)
    out = computed if computed is not None else kind.rows(backend, _served(task, chat), TaskRun(run_id, seed, ckpt, scorers))
    samples, scores, stats, gen_config = list(out.samples), list(out.scores), list(out.stats), out.generation_config
    samples = with_content(samples, task)
    if spec.category_field is not None:
        samples = with_categories(samples, task)
    if checker is not None:
        samples, extra = check_rows(run_id, samples, task.samples, checker)
        scores += extra
    if reciter is not None:
        samples, extra = recitation_rows(run_id, samples, reciter)
        scores += extra
    wall = ckpt.wall_s()
    if pool is not None:
        ckpt.flush()  # every unit this run computed is a checkpoint row, so the pool can keep it
    info = backend.info
    last = {m.name for m in CONTAMINATION_METRICS + RECITATION_METRICS + DIVERSITY_METRICS}  # after the task's own metrics
    drafts = getattr(getattr(spec, "generation", None), "n", 1) > 1
    metric_order = ([m.name for m in kind.metrics if m.name not in last] + [m.name for _, s in scorers for m in s.metrics
                                                                            if m.level == "item"]
                    + ([m.name for m in CONTAMINATION_METRICS] if checker is not None else [])
                    + ([m.name for m in RECITATION_METRICS] if reciter is not None else [])
                    + ([m.name for m in DIVERSITY_METRICS if m.name != "draft_similarity" or spec.generation.draft_similarity]
                       if drafts else []))
    run = RunRow(run_id=run_id, run_key=run_key, suite=task.suite, suite_hash=suite_hash, task=spec.name, task_type=spec.type,
                 metrics=json.dumps(metric_order),
                 variant=variant, variant_key=variant_key, backend=info.name, device=info.device, dtype=info.dtype,
                 data_hash=task.data_hash, prompt_hash=task.prompt_hash,
                 generation_config=json.dumps(asdict(gen_config)) if gen_config else None, seed=seed,
                 harness_version=__version__, git_commit=git_commit(), started_at=started, last_used_at=started, wall_s=wall,
                 n_samples=len(task.samples), partial=task.partial, n_items_total=task.n_total,
                 task_config=json.dumps(spec.model_dump(), default=str), suite_tasks=task.suite_tasks,
                 libraries=json.dumps({**eval_libraries(), **(library_versions("lm-eval") if spec.type == "lm_eval" else {})}),
                 chat_template=json.dumps(chat.record()) if chat.on else None,
                 backend_details=json.dumps(info.details, default=str) if info.details else None)
    declared = kind.metrics + kind.run_metrics + tuple(m for _, s in scorers for m in s.metrics)
    store.write_task_run(run, samples, scores, stats=stats, checkpoint_key=run_key, declared=declared, pool_key=pool)
    log.info("%s / %s: done in %.1fs", variant, spec.name, wall)
    return TaskOutcome(variant, task.suite, spec.name, run_id, False, len(task.samples), wall)
