"""Parse judge replies in MT-Bench's conventions: `[[rating]]` for single grading, `[[A]]`,
`[[B]]` or `[[C]]` (tie) for pairwise. Anything else is a parse failure (None), counted in the
judge's health, never guessed."""

from __future__ import annotations

import re

_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_RATING_FALLBACK = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")  # FastChat's backup pattern: "[7]"
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_rating(text: str, low: float = 1.0, high: float = 10.0) -> float | None:
    """The last `[[x]]` in the reply (judges often restate the scale first), else the last
    `[x]`; None when absent or outside [low, high]."""
    found = _RATING.findall(text) or _RATING_FALLBACK.findall(text)
    if not found:
        return None
    value = float(found[-1])
    return value if low <= value <= high else None


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or 'tie'; None when no verdict, or when the reply gives conflicting verdicts."""
    found = set(_VERDICT.findall(text))
    if len(found) != 1:
        return None
    v = found.pop()
    return "tie" if v == "C" else v


def parse_dimensions(text: str, dimensions: tuple[str, ...]) -> dict[str, float | None]:
    """`name: [[x]]` per dimension (case-insensitive, one per line); None for a missing one."""
    out: dict[str, float | None] = {}
    for d in dimensions:
        m = re.findall(rf"(?im)^[\W_]*{re.escape(d)}[\W_]*:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", text)
        value = float(m[-1]) if m else None
        out[d] = value if value is not None and 1.0 <= value <= 10.0 else None
    return out
