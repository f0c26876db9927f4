"""Run a judge task: grade the stored outputs of a generation task, single (1-10) or pairwise
against a baseline (both orders by default), with k-sample voting, human anchors, and the
judge's health computed and stored with the run.

Conventions (FastChat's): a pairwise verdict that changes when the order is swapped is a tie and
counts as inconsistent; a reply without a parseable verdict is a parse failure, never a guess."""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__, registry
from harness.config.suite import JudgeTaskSpec
from harness.data.loaders import read_jsonl_objects
from harness.errors import ConfigError, StoreError, UnknownNameError
from harness.hashing import eval_libraries, git_commit, stable_hash
from harness.judge.clients import JudgeCall, JudgeReply
from harness.judge.health import (
    HealthFigure,
    PairCall,
    pairwise_health,
    single_health,
    warnings_for,
)
from harness.judge.parse import parse_dimensions, parse_rating, parse_verdict
from harness.judge.prompts import (
    JudgePrompt,
    dimension_instructions,
    load_judge_prompts,
)
from harness.store.db import (
    JudgmentRow,
    RunRow,
    SampleRow,
    ScoreRow,
    StatRow,
    Store,
    nan_to_null,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """One stored output of the judged task, with what the judge prompt needs."""

    sample_id: str
    questions: tuple[str, ...]
    """The user turns up to this one (one for single-turn tasks: the prompt)."""
    answers: tuple[str, ...]
    """The model's answers to those turns; the last is the one judged."""
    references: tuple[str | None, ...]
    item_id: str | None = None
    """The item the judged sample belongs to (its samples.item_id; None for anchors)."""
    turn: int | None = None
    """The judged sample's turn (multi-turn tasks)."""


@dataclass(frozen=True)
class PreparedJudgeTask:
    spec: JudgeTaskSpec
    suite: str
    prompts: dict[str, JudgePrompt]
    anchors: tuple[dict, ...]
    prompts_hash: str
    anchors_hash: str
    suite_tasks: str = "[]"
    """The suite's tasks as JSON, recorded with the run (see harness.tasks.prepare.suite_tasks_json)."""


def prepare_judge_task(spec: JudgeTaskSpec, suite: str, suite_path: Path, suite_tasks: str = "[]") -> PreparedJudgeTask:
    """Load prompts and anchors and check names before any model is loaded."""
    where = f"{suite_path}: task '{spec.name}'"
    j = spec.judge
    prompts_path = None
    if j.prompts:
        prompts_path = Path(j.prompts) if Path(j.prompts).is_absolute() else suite_path.parent / j.prompts
    prompts = load_judge_prompts(prompts_path)
    want = "pairwise" if spec.grading == "pairwise" else "single"
    needed = [("prompt", _base_name(spec))] + ([("reference_prompt", _ref_name(spec))] if j.use_reference else [])
    for key, name in needed:
        if name not in prompts:
            raise UnknownNameError("judge prompt", name, prompts, where=f"{where}: judge.{key}")
        if prompts[name].type != want:
            raise ConfigError(f"{where}: judge.{key}: prompt '{name}' is a {prompts[name].type} prompt; {spec.grading} grading needs a {want} one")
    anchors: list[dict] = []
    if j.anchors:
        path = Path(j.anchors) if Path(j.anchors).is_absolute() else suite_path.parent / j.anchors
        anchors = _load_anchors(path, spec.grading)
    return PreparedJudgeTask(spec, suite, prompts, tuple(anchors),
                             stable_hash([p.__dict__ for p in prompts.values()]), stable_hash(anchors), suite_tasks)


def _base_name(spec: JudgeTaskSpec) -> str:
    return spec.judge.prompt or ("pair" if spec.grading == "pairwise" else "single")


def _ref_name(spec: JudgeTaskSpec) -> str:
    return spec.judge.reference_prompt or ("pair-ref" if spec.grading == "pairwise" else "single-ref")


def _load_anchors(path: Path, grading: str) -> list[dict]:
    if not path.is_file():
        raise ConfigError(f"{path}: anchor file not found (judge.anchors)")
    need = ("question", "answer_a", "answer_b", "human") if grading == "pairwise" else ("question", "answer", "human")

    out = []
    for n, row in read_jsonl_objects(path):
        missing = [k for k in need if k not in row]
        if missing:
            raise ConfigError(f"{path}: line {n}: missing {', '.join(missing)} (a {grading} anchor needs {', '.join(need)})")
        if grading == "pairwise" and row["human"] not in ("A", "B", "tie"):
            raise ConfigError(f"{path}: line {n}: human must be A, B or tie (got {row['human']!r})")
        if grading == "single" and not (isinstance(row["human"], (int, float)) and 1 <= row["human"] <= 10):
            raise ConfigError(f"{path}: line {n}: human must be a rating from 1 to 10 (got {row['human']!r})")
        out.append({**row, "id": str(row.get("id", n))})
    return out


# -- reading the judged outputs -----------------------------------------------------------------

def stored_answers(store: Store, variant: str, task: str) -> tuple[str, str, dict[str, Answer]]:
    """(run_id, variant_key, sample_id -> Answer) of the variant's latest run of the generation task."""
    runs = store.query("SELECT run_id, variant_key, partial FROM latest_runs WHERE variant = ? AND task = ?", [variant, task])
    if not runs:
        raise StoreError(f"no stored outputs of task '{task}' for '{variant}' to judge",
                         hint=f"run the suite for '{variant}' first (`harness run ... --variant {variant}`)")
    run_id = runs[0]["run_id"]
    out = {}
    for r in store.query("SELECT sample_id, prompt, reference, output, details, item_id, turn FROM samples WHERE run_id = ? "
                         "ORDER BY sample_id", [run_id]):
        d = json.loads(r["details"]) if r["details"] else {}
        if "user_turns" in d:
            k = d["turn"]
            out[r["sample_id"]] = Answer(r["sample_id"], tuple(d["user_turns"][:k]), tuple(d["answers"][:k]),
                                         tuple(d.get("references", [None] * k)[:k]), r["item_id"], r["turn"])
        else:
            out[r["sample_id"]] = Answer(r["sample_id"], (r["prompt"],), (r["output"] or "",), (r["reference"],), r["item_id"],
                                         r["turn"])
    return run_id, runs[0]["variant_key"], out


# -- building calls --------------------------------------------------------------------------------

def _prompt_for(task: PreparedJudgeTask, answer: Answer) -> JudgePrompt:
    spec = task.spec
    turn = len(answer.questions)
    if turn > 2:
        raise ConfigError(f"task '{spec.name}': item {answer.sample_id}: judge prompts cover two turns, this is turn {turn}")
    with_ref = spec.judge.use_reference and all(r for r in answer.references)
    name = (_ref_name(spec) if with_ref else _base_name(spec)) + ("-multi-turn" if turn == 2 else "")
    if name not in task.prompts:
        raise ConfigError(f"task '{spec.name}': no judge prompt '{name}' for item {answer.sample_id}",
                          hint="judge prompt files need '<name>-multi-turn' variants for two-turn items")
    return task.prompts[name]


def _values(answer: Answer, first: Answer | None = None, second: Answer | None = None) -> dict[str, str]:
    """Template fields in MT-Bench's names. Single: `answer`; pairwise: `first` is shown as A."""
    v = {"question": answer.questions[-1]}
    for i, q in enumerate(answer.questions, start=1):
        v[f"question_{i}"] = q
    for i, r in enumerate(answer.references, start=1):
        v[f"ref_answer_{i}"] = r or ""
    if first is None:
        v["answer"] = answer.answers[-1]
        for i, a in enumerate(answer.answers, start=1):
            v[f"answer_{i}"] = a
    else:
        v["answer_a"], v["answer_b"] = first.answers[-1], second.answers[-1]
        for i, (a, b) in enumerate(zip(first.answers, second.answers), start=1):
            v[f"answer_a_{i}"], v[f"answer_b_{i}"] = a, b
    return v


@dataclass(frozen=True)
class _Planned:
    sample_id: str
    role: str
    position: str | None
    prompt: JudgePrompt
    call: JudgeCall
    len_candidate: int | None
    len_other: int | None
    human: str | None = None


def _plan_single(task: PreparedJudgeTask, answers: dict[str, Answer]) -> list[_Planned]:
    j = task.spec.judge
    dims = tuple(j.dimensions)
    plans = []
    items = [(sid, "item", a, None) for sid, a in answers.items()]
    items += [(f"anchor:{a['id']}", "anchor", Answer(a["id"], (a["question"],), (a["answer"],), (a.get("reference"),)), str(a["human"]))
              for a in task.anchors]
    for sid, role, answer, human in items:
        prompt = _prompt_for(task, answer)
        user = prompt.fill(_values(answer)) + (dimension_instructions(dims) if dims else "")
        for k in range(j.n_samples):
            plans.append(_Planned(sid, role, None, prompt, JudgeCall(prompt.system_prompt, user, "rating", dims, k),
                                  len(answer.answers[-1]), None, human))
    return plans


def _plan_pairwise(task: PreparedJudgeTask, cand: dict[str, Answer], base: dict[str, Answer], seed: int) -> list[_Planned]:
    spec = task.spec
    pairs = [(sid, "item", cand[sid], base[sid], None) for sid in cand if sid in base]
    for a in task.anchors:
        ref = (a.get("reference"),)
        pairs.append((f"anchor:{a['id']}", "anchor", Answer(a["id"], (a["question"],), (a["answer_a"],), ref),
                      Answer(a["id"], (a["question"],), (a["answer_b"],), ref), a["human"]))
    plans = []
    for sid, role, c, b, human in pairs:
        prompt = _prompt_for(task, c)
        if spec.order == "swap":
            positions = ["candidate_first", "candidate_second"]
        else:
            positions = [random.Random(f"{seed}:{sid}").choice(["candidate_first", "candidate_second"])]
        for position in positions:
            first, second = (c, b) if position == "candidate_first" else (b, c)
            user = prompt.fill(_values(c, first, second))
            for k in range(spec.judge.n_samples):
                plans.append(_Planned(sid, role, position, prompt, JudgeCall(prompt.system_prompt, user, "verdict", (), k),
                                      len(c.answers[-1]), len(b.answers[-1]), human))
    return plans


# -- combining replies -----------------------------------------------------------------------------

def _winner(verdict: str | None, position: str) -> str | None:
    if verdict is None or verdict == "tie":
        return verdict
    candidate_is_a = position == "candidate_first"
    return "candidate" if (verdict == "A") == candidate_is_a else "baseline"


def majority(labels: list[str]) -> str | None:
    """The most frequent label; a tie between the top labels is 'tie'."""
    if not labels:
        return None
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return "tie"
    return counts[0][0]


def combine_orders(by_position: dict[str, str | None], both: bool = True) -> tuple[str | None, float | None]:
    """(final winner, inconsistent flag) from the per-order winners of one item. With `both`
    (order swap), an item whose other order has no verdict (the call failed, or the reply did
    not parse) is unjudged: deciding it from one order alone would let position bias in."""
    got = [w for w in by_position.values() if w is not None]
    if not got or (both and len(got) < 2):
        return None, None
    if len(got) == 1:
        return got[0], None
    if len(set(got)) == 1:
        return got[0], 0.0
    return "tie", 1.0


@dataclass(frozen=True)
class JudgeOutcome:
    run_id: str
    n_items: int
    calls: int
    cached: int
    health: list[HealthFigure]
    failed: dict[str, int] = field(default_factory=dict)
    """Calls that still failed after their retries, by kind of failure (e.g. 'HTTP 500')."""


def failure_kind(error: str) -> str:
    """'HTTP 500: ...' -> 'HTTP 500'; 'TimeoutError: ...' -> 'TimeoutError'."""
    return error.split(":", 1)[0].strip() or "error"


def run_judge_task(store: Store, judge, task: PreparedJudgeTask, candidate: str, baseline: str | None, seed: int,
                   suite_hash: str, force: bool = False) -> JudgeOutcome:
    """Judge `candidate`'s stored outputs (against `baseline`'s, pairwise) and write one run."""
    spec = task.spec
    cand_run, cand_key, cand = stored_answers(store, candidate, spec.of)
    base_run, _, base = stored_answers(store, baseline, spec.of) if baseline else (None, None, {})
    libraries = eval_libraries()
    key = stable_hash({"task": spec.model_dump(), "judged": [cand_run, base_run], "judge": judge.identity,
                       "prompts": task.prompts_hash, "anchors": task.anchors_hash, "seed": seed, "harness": __version__,
                       "libraries": libraries})
    cached = None if force else store.find_run(key)
    failed_before = store.query("SELECT count(*) AS n FROM judgments WHERE run_id = ? AND error IS NOT NULL",
                                [cached["run_id"]])[0]["n"] if cached else 0
    if cached and not failed_before:
        store.mark_reused(cached["run_id"])
        log.info("%s / %s: unchanged, reusing run %s", candidate, spec.name, cached["run_id"])
        return JudgeOutcome(cached["run_id"], cached["n_samples"], 0, 0, [])
    if cached:
        # A run with failed calls is never complete: judge again; the answered calls come from
        # the cache, so exactly the failed ones are asked again.
        log.info("%s / %s: run %s had %d failed judge calls: retrying them", candidate, spec.name, cached["run_id"], failed_before)
    if baseline and not set(cand) & set(base):
        raise StoreError(f"task '{spec.name}': '{candidate}' and '{baseline}' share no items of '{spec.of}' to compare")

    started = datetime.now(timezone.utc).replace(tzinfo=None)
    t0 = time.perf_counter()
    plans = _plan_pairwise(task, cand, base, seed) if baseline else _plan_single(task, cand)
    before = judge.calls_made
    replies = judge.judge_many([p.call for p in plans], desc=f"judge {spec.name} {candidate}")
    made = judge.calls_made - before
    run_id = uuid.uuid4().hex[:16]
    judgments = [_judgment_row(run_id, i, p, r, spec) for i, (p, r) in enumerate(zip(plans, replies))]
    if baseline:
        samples, scores, health = _pairwise_results(run_id, task, cand, base, judgments, seed)
        metrics = ["win_rate", "inconsistent", "unjudged"]
    else:
        samples, scores, health = _single_results(run_id, task, cand, judgments, seed)
        metrics = ["judge_rating"] + [f"judge_{d}" for d in spec.judge.dimensions] + ["unjudged"]
    health = warnings_for(health, spec.judge.thresholds)
    for f in health:
        if f.warning:
            log.warning("%s / %s: judge health: %s", candidate, spec.name, f.warning)
    run = RunRow(run_id=run_id, run_key=key, suite=task.suite, suite_hash=suite_hash, task=spec.name,
                 task_type=f"judge_{spec.grading}", metrics=json.dumps(metrics), variant=candidate, variant_key=cand_key,
                 backend=judge.identity["backend"], device=None, dtype=None,
                 data_hash=stable_hash([cand_run, base_run]), prompt_hash=task.prompts_hash,
                 generation_config=None, seed=seed, harness_version=__version__, git_commit=git_commit(),
                 started_at=started, last_used_at=started, wall_s=time.perf_counter() - t0, n_samples=len(samples),
                 judge=json.dumps({**judge.identity, "baseline": baseline, "order": spec.order if baseline else None,
                                   "samples": spec.judge.n_samples, "judged_run": cand_run, "baseline_run": base_run}),
                 partial=bool(store.query("SELECT count(*) AS n FROM runs WHERE list_contains(?, run_id) AND coalesce(partial, false)",
                                          [[r for r in (cand_run, base_run) if r]])[0]["n"]),
                 n_items_total=len(samples), task_config=spec.model_dump_json(), suite_tasks=task.suite_tasks,
                 libraries=json.dumps(libraries))
    health_rows = [StatRow(run_id, f.metric, nan_to_null(f.estimate.mean), nan_to_null(f.estimate.low), nan_to_null(f.estimate.high),
                           f.estimate.n, f.warning)
                   for f in health]
    kind = registry.resolve("task_kind", run.task_type)  # judge_pairwise / judge_single: its declared figures
    store.write_task_run(run, samples, scores, judgments, health_rows, declared=kind.metrics + kind.run_metrics)
    failed = Counter(failure_kind(j.error) for j in judgments if j.error is not None)
    return JudgeOutcome(run_id, len(samples), made, len(plans) - made, health, dict(failed))


def _judgment_row(run_id: str, i: int, p: _Planned, r: JudgeReply, spec: JudgeTaskSpec) -> JudgmentRow:
    verdict = rating = ratings = None
    parsed = False
    if r.text is not None:
        if p.call.expect == "verdict":
            verdict = parse_verdict(r.text)
            parsed = verdict is not None
        elif p.call.dimensions:
            dims = parse_dimensions(r.text, p.call.dimensions)
            ratings = json.dumps(dims)
            parsed = all(v is not None for v in dims.values())
            rating = statistics.fmean(dims.values()) if parsed else None
        else:
            rating = parse_rating(r.text)
            parsed = rating is not None
    return JudgmentRow(run_id, p.sample_id, i, p.role, p.position, p.call.sample_index, p.prompt.name, verdict,
                       _winner(verdict, p.position) if p.position else None, rating, ratings, p.human, parsed, r.error,
                       r.text, p.len_candidate, p.len_other, r.cached, r.latency_s, r.attempts)


@dataclass(frozen=True)
class PairwiseOutcome:
    """A pairwise run's judge calls combined: per item the vote of each order, the final winner
    and whether the orders disagreed; the anchors' labels; every item call for health figures."""

    voted: dict[str, dict[str, str | None]]
    final: dict[str, str | None]
    inconsistent: dict[str, float | None]
    anchors: list[tuple[str | None, str]]
    calls: list[PairCall]


def combine_pairwise(rows, swap: bool = True) -> PairwiseOutcome:
    """Combine judgment rows (JudgmentRow objects, or rows read back from the `judgments` table);
    `swap`: every item was judged in both orders, and needs a verdict in both."""
    by_item: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        slot = by_item.setdefault(r.sample_id, {})
        slot.setdefault(r.position, [])
        if r.winner is not None:
            slot[r.position].append(r.winner)
    voted_all, final, inconsistent, anchors = {}, {}, {}, []
    for sid, positions in by_item.items():
        voted = {pos: majority(ws) for pos, ws in positions.items()}
        winner, flag = combine_orders(voted, both=swap)
        if sid.startswith("anchor:"):
            human = next(r.human for r in rows if r.sample_id == sid)
            anchors.append(({"candidate": "A", "baseline": "B", "tie": "tie", None: None}[winner], human))
            continue
        voted_all[sid], final[sid], inconsistent[sid] = voted, winner, flag
    calls = [PairCall(r.sample_id, r.position, r.winner, r.len_candidate or 0, r.len_other or 0, r.error is not None)
             for r in rows if r.role == "item"]
    return PairwiseOutcome(voted_all, final, inconsistent, anchors, calls)


def _pairwise_results(run_id, task, cand, base, rows: list[JudgmentRow], seed: int):
    outcome = combine_pairwise(rows, swap=task.spec.order == "swap")
    samples, scores = [], []
    for sid, winner in outcome.final.items():
        c, b = cand[sid], base[sid]
        samples.append(SampleRow(run_id, sid, c.questions[-1], b.answers[-1], c.answers[-1],
                                 json.dumps({"verdicts_by_order": outcome.voted[sid], "winner": winner,
                                             "inconsistent": outcome.inconsistent[sid]}), item_id=c.item_id, turn=c.turn))
        win = None if winner is None else {"candidate": 1.0, "tie": 0.5, "baseline": 0.0}[winner]
        scores += [ScoreRow(run_id, sid, "judge", "win_rate", win),
                   ScoreRow(run_id, sid, "judge", "inconsistent", outcome.inconsistent[sid]),
                   ScoreRow(run_id, sid, "judge", "unjudged", float(winner is None))]
    return samples, scores, pairwise_health(outcome.calls, outcome.final, outcome.anchors, seed=seed)


def combine_single(rows) -> tuple[dict[str, list], dict[str, float | None], list[tuple[float | None, float]]]:
    """Judgment rows of a single-grading run: (item -> its rows, item -> median rating, anchors
    as (judge rating, human rating))."""
    by_item: dict[str, list] = {}
    for r in rows:
        by_item.setdefault(r.sample_id, []).append(r)
    ratings, anchors = {}, []
    for sid, item_rows in by_item.items():
        got = [r.rating for r in item_rows if r.rating is not None]
        rating = statistics.median(got) if got else None
        if sid.startswith("anchor:"):
            anchors.append((rating, float(item_rows[0].human)))
        else:
            ratings[sid] = rating
    return {k: v for k, v in by_item.items() if not k.startswith("anchor:")}, ratings, anchors


def _single_results(run_id, task, cand, rows: list[JudgmentRow], seed: int):
    dims = task.spec.judge.dimensions
    by_item, medians, anchors = combine_single(rows)
    samples, scores, ratings = [], [], []
    for sid, item_rows in by_item.items():
        got = [r for r in item_rows if r.rating is not None]
        rating = medians[sid]
        a = cand[sid]
        failed = all(r.error is not None for r in item_rows)
        ratings.append((rating, len(a.answers[-1]), failed))
        samples.append(SampleRow(run_id, sid, a.questions[-1], a.references[-1], a.answers[-1],
                                 json.dumps({"ratings": [r.rating for r in item_rows], "prompt": item_rows[0].prompt_name}),
                                 item_id=a.item_id, turn=a.turn))
        scores.append(ScoreRow(run_id, sid, "judge", "judge_rating", rating))
        for d in dims:
            values = [json.loads(r.ratings)[d] for r in got if r.ratings]
            values = [v for v in values if v is not None]
            scores.append(ScoreRow(run_id, sid, "judge", f"judge_{d}", statistics.median(values) if values else None))
        scores.append(ScoreRow(run_id, sid, "judge", "unjudged", float(rating is None)))
    return samples, scores, single_health(ratings, anchors, seed=seed)
