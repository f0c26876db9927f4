"""Answer extraction: the answer inside a generated text (a number, a letter, a regex group, a JSON
field), declared in the suite and applied the same way to every variant.

An extractor returns the extracted answer as text, or None when the output holds none: the
caller counts that as an extraction failure (its own metric), never as an answer.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict
from harness.stats.metricspec import Metric

EXTRACTION_FAILED = Metric("extraction_failed", "extraction failed", "lower", "binary", low=0, high=1,
                           description="no answer (or label) could be found in the output; scored as wrong, counted here")
"""Declared once, used by the answer_match scorer and classification tasks that generate."""

NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\$?\s?\.\d+")


class ExtractSpec(Strict):
    """How the answer is found in an output (and, with `reference: true`, in the reference)."""

    type: Literal["regex", "last_number", "first_number", "choice_letter", "json_field"]
    """regex: `pattern`'s `group`; last_number / first_number: a number (thousands separators,
    a currency sign and a trailing period dropped; 1,234.50 -> 1234.5); choice_letter: the first
    standalone option letter (`A`, `(B)`, `C.`, `answer is D`); json_field: a field of the first
    JSON object in the output (a dotted path: `answer` or `result.value`)."""
    pattern: str | None = None
    """regex: a Python regular expression."""
    group: int | str = 1
    """regex: the group holding the answer (number or name; 0 = the whole match)."""
    ignore_case: bool = False
    """regex: match case-insensitively."""
    letters: str = "ABCD"
    """choice_letter: the option letters."""
    field: str | None = None
    """json_field: the dotted path of the answer."""

    @model_validator(mode="after")
    def _fields(self):
        if self.type == "regex":
            if not self.pattern:
                raise ValueError("a regex extractor needs pattern")
            try:
                compiled = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regular expression: {exc}") from None
            groups = compiled.groups if isinstance(self.group, int) else None
            if isinstance(self.group, int) and self.group > groups:
                raise ValueError(f"group {self.group}: the pattern has {groups} group(s)")
            if isinstance(self.group, str) and self.group not in compiled.groupindex:
                raise ValueError(f"group {self.group!r}: the pattern has no group of that name")
        elif self.pattern is not None:
            raise ValueError("pattern applies to regex extractors only")
        if self.type == "json_field" and not self.field:
            raise ValueError("a json_field extractor needs field (e.g. answer)")
        if self.type == "choice_letter" and (not self.letters.isalpha() or len(set(self.letters)) != len(self.letters)):
            raise ValueError(f"letters {self.letters!r}: distinct letters expected, e.g. ABCD")
        return self


def extract(spec: ExtractSpec, text: str) -> str | None:
    """The answer `spec` finds in `text`, normalised, or None."""
    if spec.type == "regex":
        m = re.search(spec.pattern, text, re.IGNORECASE if spec.ignore_case else 0)
        if m is None or m.group(spec.group) is None:
            return None
        return m.group(spec.group).strip()
    if spec.type in ("last_number", "first_number"):
        found = [normalise_number(m.group(0)) for m in NUMBER.finditer(text)]
        found = [f for f in found if f is not None]
        return (found[-1] if spec.type == "last_number" else found[0]) if found else None
    if spec.type == "choice_letter":
        letters = re.escape(spec.letters)
        m = re.search(rf"(?<![A-Za-z0-9])\(?([{letters}])\)?(?![A-Za-z0-9])", text)
        return m.group(1) if m else None
    return _json_field(text, spec.field)


def normalise_number(raw: str) -> str | None:
    """A number's canonical text: sign kept, currency and separators dropped, no trailing zeros
    after the point (`$1,234.50` -> `1234.5`, `7.0` -> `7`); None when it is not a number."""
    cleaned = raw.replace("$", "").replace(",", "").replace(" ", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _json_field(text: str, path: str) -> str | None:
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        for part in path.split("."):
            if not isinstance(obj, dict) or part not in obj:
                return None
            obj = obj[part]
        if obj is None or isinstance(obj, (dict, list)):
            return None if obj is None else json.dumps(obj, sort_keys=True)
        return str(obj).strip()
    return None


class AnswerMatchSpec(Strict):
    """The `answer_match` scorer's config: extract, then compare with the reference."""

    extract: ExtractSpec
    compare: Literal["exact", "numeric", "ignore_case"] = "exact"
    """exact: the same text; ignore_case: the same text in any case; numeric: equal as numbers
    (within `tolerance`)."""
    tolerance: float = Field(default=1e-6, ge=0)
    """numeric: largest absolute difference counted as equal."""
    reference: bool = False
    """Apply the extractor to the reference too (e.g. GSM8K's `... #### 42`); otherwise the
    reference is the answer as it is (stripped)."""
