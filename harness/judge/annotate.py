"""AI preference annotation: a judge picks the better of two responses per prompt, in both
orders and with a majority vote over its samples; a pair whose verdict is a tie, flips with the
order, or can't be parsed is dropped (and counted), never guessed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.judge.clients import JudgeCall
from harness.judge.constitution import framed
from harness.judge.parse import parse_verdict
from harness.judge.prompts import load_judge_prompts
from harness.judge.task import combine_orders, majority


@dataclass
class AnnotationReport:
    """Stored with the variant under metrics['preference_data']['judge']."""

    judged: int = 0
    kept: int = 0
    ties_dropped: int = 0
    inconsistent_dropped: int = 0
    unjudged_dropped: int = 0
    a_chosen: int = 0
    judge: dict = field(default_factory=dict)
    """The judge's identity (endpoint and model, or the local model's key; never an API key)."""
    principles: dict = field(default_factory=dict)
    """With a constitution: per principle, how many pairs it gave to a, b, tie, inconsistent, unjudged."""


def annotate(client, prompts: list[str], a: list[str], b: list[str], samples: int = 3, prompt_name: str = "pair",
             principles: list | None = None, prompts_path: Path | None = None,
             verdicts: list | None = None, labels: list | None = None) -> tuple[list[tuple[str, str] | None], AnnotationReport]:
    """(chosen, rejected) per prompt, or None where the judge gave no usable verdict. With
    `principles` (harness.judge.constitution), every pair is judged once per principle and labelled by
    the side more principles prefer; `verdicts` receives each pair's verdict per principle
    ('a', 'b', 'tie', 'inconsistent', 'unjudged'); `labels` each pair's overall label."""

    template = load_judge_prompts(prompts_path)[prompt_name]
    rules = list(principles) if principles else [None]
    calls, index = _judge_calls(template, prompts, a, b, rules, samples)
    replies = client.judge_many(calls, desc="annotate preference pairs")
    votes = _tally_votes(index, replies)
    report = AnnotationReport(judged=len(prompts), judge=dict(getattr(client, "identity", {})))
    if principles:
        report.principles = {p.name: {"a": 0, "b": 0, "tie": 0, "inconsistent": 0, "unjudged": 0} for p in principles}
    out: list[tuple[str, str] | None] = []
    for i in range(len(prompts)):
        per_rule = []
        for r, principle in enumerate(rules):
            winner, inconsistent = combine_orders({p: majority(w) for p, w in votes.get((i, r), {}).items()})
            label = "unjudged" if winner is None else "inconsistent" if inconsistent else winner
            per_rule.append(label)
            if principle is not None:
                report.principles[principle.name][label] += 1
        if verdicts is not None and principles:
            verdicts.append(dict(zip((p.name for p in principles), per_rule)))
        label = pair_label(per_rule)
        if labels is not None:
            labels.append(label)
        out.append(_record(report, label, a[i], b[i]))
    return out, report


def _judge_calls(template, prompts: list[str], a: list[str], b: list[str], rules: list,
                 samples: int) -> tuple[list[JudgeCall], list[tuple[int, int, str]]]:
    """Every judge call (per pair, principle, order and sample) and, beside each, which pair,
    principle and order it asks about."""
    calls, index = [], []
    for i, (q, x, y) in enumerate(zip(prompts, a, b)):
        for r, principle in enumerate(rules):
            for position, (first, second) in (("a_first", (x, y)), ("b_first", (y, x))):
                user = template.fill({"question": framed(q, principle), "answer_a": first, "answer_b": second})
                for k in range(samples):
                    calls.append(JudgeCall(template.system_prompt, user, "verdict", (), k))
                    index.append((i, r, position))
    return calls, index


def _tally_votes(index: list[tuple[int, int, str]], replies) -> dict[tuple[int, int], dict[str, list[str]]]:
    """Per (pair, principle), per order, the parsed verdicts ('a', 'b' or 'tie'); unparsable
    replies cast no vote."""
    votes: dict[tuple[int, int], dict[str, list[str]]] = {}
    for (i, r, position), reply in zip(index, replies):
        v = parse_verdict(reply.text or "")
        slot = votes.setdefault((i, r), {}).setdefault(position, [])
        if v is not None:
            # map the on-screen letter back to the response it named
            slot.append("tie" if v == "tie" else ("a" if (v == "A") == (position == "a_first") else "b"))
    return votes


def _record(report: AnnotationReport, label: str, a: str, b: str) -> tuple[str, str] | None:
    """Count a pair's label in `report`; (chosen, rejected), or None for a dropped pair."""
    if label == "unjudged":
        report.unjudged_dropped += 1
        return None
    if label == "inconsistent":
        report.inconsistent_dropped += 1
        return None
    if label == "tie":
        report.ties_dropped += 1
        return None
    report.kept += 1
    report.a_chosen += label == "a"
    return (a, b) if label == "a" else (b, a)


def pair_label(verdicts: list[str]) -> str:
    """A pair's label from its verdicts (one per principle): the side more principles prefer; an
    even split, or only ties, is a tie; with no decisive verdict, 'inconsistent' if any
    principle's verdict flipped with the order, else 'unjudged' (or 'tie')."""
    wins_a, wins_b = verdicts.count("a"), verdicts.count("b")
    if wins_a != wins_b:
        return "a" if wins_a > wins_b else "b"
    if wins_a or "tie" in verdicts:
        return "tie"
    return "inconsistent" if "inconsistent" in verdicts else "unjudged"
