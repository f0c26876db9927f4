"""Word-level differences between two outputs, as segments a template marks up (it escapes them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKENS = re.compile(r"\s+|\w+|[^\w\s]")
"""Words, runs of whitespace and single punctuation marks: a changed comma is one change, and
whitespace is kept, so the joined segments are the text itself."""


@dataclass(frozen=True)
class Segment:
    op: str
    """equal, insert (only in the output) or delete (only in the baseline)."""
    text: str


def word_diff(baseline: str, output: str) -> list[Segment]:
    """`output` against `baseline`, word by word: joining the equal and insert segments gives
    `output`, the equal and delete segments `baseline` (a changed space or line break is a change too)."""
    from difflib import SequenceMatcher

    a, b = TOKENS.findall(baseline or ""), TOKENS.findall(output or "")
    # (deleted, inserted, equal) runs; a change, then only whitespace, then a change reads as one
    # change ("the cat" -> "a dog", not "the" -> "a", "cat" -> "dog")
    runs: list[list[str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            text = "".join(b[j1:j2])
            if runs and not text.strip() and runs[-1][2] == "" and j2 < len(b) and i2 < len(a) and _next_changes(i2, j2, a, b):
                runs[-1][0] += "".join(a[i1:i2])
                runs[-1][1] += text
                continue
            runs.append(["", "", text])
        else:
            if not runs or runs[-1][2]:
                runs.append(["", "", ""])
            runs[-1][0] += "".join(a[i1:i2])
            runs[-1][1] += "".join(b[j1:j2])
    out: list[Segment] = []
    for deleted, inserted, equal in runs:
        out += [Segment("delete", deleted), Segment("insert", inserted), Segment("equal", equal)]
    return [s for s in out if s.text]


def _next_changes(i: int, j: int, a: list[str], b: list[str]) -> bool:
    """Whether the tokens after a whitespace run differ (so the run sits between two changes)."""
    return a[i] != b[j]


def changed_words(segments: list[Segment]) -> tuple[int, int]:
    """(words inserted, words deleted): the size of a diff, shown beside it."""
    count = lambda op: sum(len(re.findall(r"\w+", s.text)) for s in segments if s.op == op)  # noqa: E731
    return count("insert"), count("delete")
