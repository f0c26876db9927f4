"""`harness run`, phase one: the plan. Every file is loaded and checked and every task rendered
before any model is loaded or anything is written: a planned task per (suite, task), a planned
judge task per judge task, the catalogue of the models file, the variants and answer sets to
evaluate. `check_plan` then resolves every model against the store (variants built, judges
ready, baselines there). A backend's capabilities depend on its options (an endpoint on the chat
API has no log-likelihoods), so they are checked against each task kind's needs when the model is
opened, before its first task runs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import registry
from harness.analysis.contamination import suite_corpora
from harness.backends.base import LOGLIKELIHOOD
from harness.config.suite import load_suite
from harness.data.answers import load_answer_file
from harness.errors import ConfigError, UnknownNameError
from harness.hashing import stable_hash
from harness.judge.open import check_judge_task
from harness.judge.task import prepare_judge_task
from harness.models.catalogue import Catalogue
from harness.models.variants import hash_files
from harness.run.oneoff import Overrides
from harness.scorers import reward as reward_scorer
from harness.stats.metricspec import TaskKind
from harness.store.db import Store
from harness.tasks.prepare import prepare_suite, suite_tasks_json
from harness.tasks.sample import PreparedTask


@dataclass(frozen=True)
class Contamination:
    """A suite's contamination check: its settings, the corpora it reads, and their identity
    (part of every run key of the suite, so a changed corpus is a new run)."""

    spec: Any
    corpora: tuple[tuple[str, Path], ...]
    identity: str


@dataclass(frozen=True)
class PlannedTask:
    """One task of one suite, rendered, with what its runs are keyed and checked by."""

    task: PreparedTask
    suite_hash: str
    seed: int
    contamination: Contamination

    @property
    def kind(self) -> TaskKind:
        """The task's kind (registry kind `task_kind`): what it computes and needs."""
        return registry.resolve("task_kind", self.task.spec.type)


@dataclass(frozen=True)
class PlannedJudge:
    """A judge task over stored outputs (phase three)."""

    task: Any
    """The prepared judge task (harness.judge.task)."""
    suite_hash: str
    seed: int
    where: str


@dataclass(frozen=True)
class AnswerSet:
    """Pre-generated outputs evaluated under a name (`--answers NAME=FILE`)."""

    name: str
    path: Path
    answers: dict


@dataclass(frozen=True)
class RunPlan:
    """Everything `harness run` will do, checked."""

    tasks: tuple[PlannedTask, ...]
    judges: tuple[PlannedJudge, ...]
    catalogue: Catalogue | None
    variants: tuple[str, ...]
    """Models of the catalogue to evaluate, in order."""
    answer_sets: tuple[AnswerSet, ...]
    """Answer sets to evaluate (those --variant selects, or all)."""
    reward_models: tuple[str, ...]
    """Reward models the tasks' scorers name (resolved and bound by check_plan)."""
    force: bool = False

    @property
    def evaluated(self) -> list[str]:
        """Names whose outputs this run stores: answer sets first, then variants."""
        return [a.name for a in self.answer_sets] + list(self.variants)


def plan_run(suite_paths: list[Path], models_path: Path | None, variants: list[str] | None = None,
             limit: int | None = None, answers: dict[str, Path] | None = None, force: bool = False,
             overrides: Overrides | None = None) -> RunPlan:
    """Load and check the suites, the models file and the answer files; render every task.
    ConfigError on anything wrong; nothing is loaded or written."""
    tasks: list[PlannedTask] = []
    judges: list[PlannedJudge] = []
    for path in suite_paths:
        suite = load_suite(path)
        if overrides:  # --seed, --num-fewshot, --gen-kwargs, --batch-size: part of the suite as run
            suite = overrides.apply(suite, str(path))
        suite_hash = stable_hash(suite.model_dump())
        corpora = tuple(suite_corpora(suite.contamination, path))
        check = Contamination(suite.contamination, corpora,
                              stable_hash([suite.contamination.model_dump(), [hash_files([p]) for _, p in corpora]]))
        tasks += [PlannedTask(t, suite_hash, suite.seed, check) for t in prepare_suite(suite, path, limit)]
        judges += [PlannedJudge(prepare_judge_task(t, suite.name, path, suite_tasks_json(suite)), suite_hash, suite.seed,
                                f"{path}: task '{t.name}'") for t in suite.tasks if t.type == "judge"]
    answer_sets = [AnswerSet(name, p, load_answer_file(p)) for name, p in (answers or {}).items()]
    if models_path is None and not answer_sets:
        raise ConfigError("nothing to evaluate: give --models (variants to run) and/or --answers NAME=FILE")
    catalogue = Catalogue.load(models_path) if models_path else None
    names = _variants(catalogue, models_path, variants, answer_sets)
    reward_models = reward_scorer.needs_models([t.task for t in tasks])
    if reward_models and catalogue is None:
        raise ConfigError(f"the reward scorer names {', '.join(reward_models)}: give --models with the file that declares it")
    replayed = [a for a in answer_sets if not variants or a.name in variants]
    if answer_sets and any(t.task.spec.type != "generation" for t in tasks):
        other = [f"{t.task.spec.name} ({t.task.spec.type})" for t in tasks if t.task.spec.type != "generation"]
        raise ConfigError(f"answer sets replay stored text, so only generation tasks can be evaluated with --answers; "
                          f"not {', '.join(other)}")
    for answer_set in replayed:  # every file checked before any run is written
        check_answer_set(answer_set, [t.task for t in tasks], partial=limit is not None)
    return RunPlan(tuple(tasks), tuple(judges), catalogue, tuple(names), tuple(replayed), tuple(reward_models), force)


def check_answer_set(answer_set: AnswerSet, tasks: list, partial: bool = False) -> None:
    """ConfigError unless the answer file answers every turn of every item of the tasks, and
    answers nothing else (with --limit, answers outside the sample are expected and not counted)."""
    where = f"answer set '{answer_set.name}' ({answer_set.path})"
    answers = answer_set.answers
    known: set[str] = set()
    for task in tasks:
        ids = [s.id for s in task.samples]
        known.update(ids)
        missing = [i for i in ids if i not in answers]
        if missing and len(missing) == len(ids):
            raise ConfigError(f"{where}: none of its {len(answers)} answer ids ({', '.join(list(answers)[:3])}, ...) is an item "
                              f"id of task '{task.spec.name}' ({', '.join(ids[:3])}, ...)",
                              hint="set the task's id_field to the item field that holds these ids (MT-Bench: question_id)")
        if missing:
            raise ConfigError(f"{where}: no answer for {len(missing)} of task '{task.spec.name}''s {len(ids)} items "
                              f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
                              hint="answer every item of the task, or evaluate a --limit sample")
        short = [(s.id, len(answers[s.id]), len(s.turns) or 1) for s in task.samples if len(answers[s.id]) < (len(s.turns) or 1)]
        if short:
            sid, have, need = short[0]
            raise ConfigError(f"{where}: item {sid} has {have} answer turn(s); task '{task.spec.name}' asks {need}"
                              + (f" (and {len(short) - 1} more items are short)" if len(short) > 1 else ""),
                              hint="a multi-turn answer lists one answer per turn (MT-Bench: choices[0].turns)")
    unknown = [i for i in answers if i not in known]
    if unknown and not partial:
        raise ConfigError(f"{where}: {len(unknown)} answer(s) for items the suite's tasks don't have "
                          f"({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''})",
                          hint="this file may belong to another question set; remove those lines to evaluate the rest")


def _variants(catalogue: Catalogue | None, models_path: Path | None, variants: list[str] | None,
              answer_sets: list[AnswerSet]) -> list[str]:
    """The models to evaluate: those named (default: every generating model, unless answer sets
    are given), checked against the file."""
    known = catalogue.names if catalogue else []
    answer_names = [a.name for a in answer_sets]
    for name in answer_names:
        if name in known:
            raise ConfigError(f"--answers {name}: the name is already a model of {models_path}; pick another")
    scorers_only = catalogue.evaluators if catalogue else []  # reward models: they score outputs
    default = [] if answer_sets else [k for k in known if k not in scorers_only]
    names = [v for v in variants or default if v not in answer_names]
    for name in names:
        if name not in known:
            raise UnknownNameError("variant", name, known + answer_names, where=str(models_path or "--variant"))
        if name in scorers_only:
            raise ConfigError(f"--variant {name}: a reward model scores outputs, it does not generate them",
                              hint=f"use it in a generation task's scorers: `- reward: {{model: {name}}}`")
    return names


def check_plan(plan: RunPlan, store: Store) -> RunPlan:
    """Every check that needs the store, before anything is written: each variant is built and its
    backend can serve it, reward scorers are bound to their built models, local judges are built
    and pairwise baselines have outputs. Returns the plan with the reward scorers bound."""
    catalogue = plan.catalogue
    local_judge = any(j.task.spec.judge.backend != "openai" for j in plan.judges)
    if catalogue is not None and (plan.variants or local_judge or plan.reward_models):
        catalogue.attach(store)
        for name in plan.variants:
            catalogue.check_servable(name)
            catalogue.chat(name)  # a chat_template: true without a template fails here, before any write
        bound = reward_scorer.bind([t.task for t in plan.tasks], catalogue.resolve)
        plan = replace(plan, tasks=tuple(replace(t, task=b) for t, b in zip(plan.tasks, bound)))
    for j in plan.judges:
        check_judge_task(j.task, j.where, catalogue, store, plan.evaluated)
    return plan


def check_capabilities(task: PlannedTask, backend, variant: str) -> None:
    """The opened backend can do what the task's kind needs (log-likelihood for multiple choice
    and perplexity; generation for latency): a clear error before the task starts instead of a
    failure half-way through."""
    needs = task.kind.needs
    missing = sorted(needs - backend.info.capabilities)
    if missing:
        hint = ("set options.api: completions (vLLM, llama_cpp.server), or evaluate it with generation tasks"
                if LOGLIKELIHOOD in missing else None)
        raise ConfigError(f"{variant} / {task.task.spec.name}: a {task.task.spec.type} task needs {', '.join(missing)}, "
                          f"which the {backend.info.name} backend serving '{variant}' does not offer", hint=hint)
