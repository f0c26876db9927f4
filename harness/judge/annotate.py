"""AI preference annotation: a judge picks the better of two responses per prompt, in both
orders and with a majority vote over its samples; a pair whose verdict is a tie, flips with the
order, or can't be parsed is dropped (and counted), never guessed."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.judge.clients import JudgeCall
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


def annotate(client, prompts: list[str], a: list[str], b: list[str], samples: int = 3,
             prompt_name: str = "pair") -> tuple[list[tuple[str, str] | None], AnnotationReport]:
    """(chosen, rejected) per prompt, or None where the judge gave no usable verdict."""
    template = load_judge_prompts()[prompt_name]
    calls, index = [], []
    for i, (q, x, y) in enumerate(zip(prompts, a, b)):
        for position, (first, second) in (("a_first", (x, y)), ("b_first", (y, x))):
            user = template.fill({"question": q, "answer_a": first, "answer_b": second})
            for k in range(samples):
                calls.append(JudgeCall(template.system_prompt, user, "verdict", (), k))
                index.append((i, position))
    replies = client.judge_many(calls, desc="annotate preference pairs")
    votes: dict[int, dict[str, list[str]]] = {}
    for (i, position), reply in zip(index, replies):
        v = parse_verdict(reply.text or "")
        slot = votes.setdefault(i, {}).setdefault(position, [])
        if v is not None:
            # map the on-screen letter back to the response it named
            slot.append("tie" if v == "tie" else ("a" if (v == "A") == (position == "a_first") else "b"))
    report = AnnotationReport(judged=len(prompts), judge=dict(getattr(client, "identity", {})))
    out: list[tuple[str, str] | None] = []
    for i in range(len(prompts)):
        winner, inconsistent = combine_orders({p: majority(w) for p, w in votes.get(i, {}).items()})
        if winner is None:
            report.unjudged_dropped += 1
            out.append(None)
        elif inconsistent:
            report.inconsistent_dropped += 1
            out.append(None)
        elif winner == "tie":
            report.ties_dropped += 1
            out.append(None)
        else:
            report.kept += 1
            report.a_chosen += winner == "a"
            out.append((a[i], b[i]) if winner == "a" else (b[i], a[i]))
    return out, report
