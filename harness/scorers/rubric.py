"""A declarative brand-voice rubric: observable conventions, each a pass/fail check per output.
The item's score `rubric` is the share of checks passed; each check is also stored as
`rubric_<name>` (1 pass, 0 fail), so per-check pass rates are plain means over rows.

Dimensions no rule can check (tone, warmth) are listed under `judged:` and scored by a judge
task (single grading with `dimensions`), never guessed by a rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict, load_model_file, parse_model
from harness.data.textprep import EMOJI, MENTION, URL
from harness.hashing import stable_hash
from harness.scorers import Scored, needs_config, scorer
from harness.stats.metricspec import Metric

HASHTAG = re.compile(r"(?<!\w)#\w+")
SENTENCE_END = re.compile(r"[.!?]+(?:\s+|$)")
CAPS_WORD = re.compile(r"(?<![#@\w])[A-Z]{3,}(?!\w)")

CHECK_FIELDS = {
    "hashtags": {"min", "max"}, "emoji": {"min", "max"}, "length": {"min", "max"}, "sentences": {"min", "max"},
    "required_words": {"words"}, "forbidden_words": {"words"}, "lexicon": {"words", "min"},
    "urls": {"allowed"}, "mentions": {"allowed"}, "punctuation": {"repeated"}, "casing": {"max"},
}


class RubricCheck(Strict):
    """One observable convention. Which fields apply depends on `type`:
    hashtags / emoji / sentences / length (characters): `min` and/or `max` (inclusive);
    required_words: at least one of `words` appears; forbidden_words: none of `words` appears;
    lexicon: at least `min` (default 1) hits from `words` (e.g. the brand's cultural references);
    urls / mentions: `allowed: false` forbids them; punctuation: none of the characters in
    `repeated` appears twice in a row (e.g. "!?" forbids "!!" and "??"); casing: at most `max`
    ALL-CAPS words (3+ letters; hashtags excluded). Word matches are case-insensitive, on word
    boundaries (a word may start with # for hashtags)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    type: Literal["hashtags", "emoji", "length", "sentences", "required_words", "forbidden_words", "lexicon",
                  "urls", "mentions", "punctuation", "casing"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    words: list[str] = []
    allowed: bool | None = None
    repeated: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _fields_for_type(self):
        allowed = CHECK_FIELDS[self.type]
        given = {f for f in ("min", "max", "words", "allowed", "repeated") if getattr(self, f) not in (None, [])}
        extra = given - allowed
        if extra:
            raise ValueError(f"check '{self.name}' ({self.type}) does not take {', '.join(sorted(extra))}; it takes {', '.join(sorted(allowed))}")
        if self.type in ("hashtags", "emoji", "length", "sentences") and self.min is None and self.max is None:
            raise ValueError(f"check '{self.name}' ({self.type}) needs min and/or max")
        if self.type in ("required_words", "forbidden_words", "lexicon") and not self.words:
            raise ValueError(f"check '{self.name}' ({self.type}) needs words")
        if self.type in ("urls", "mentions") and self.allowed is None:
            raise ValueError(f"check '{self.name}' ({self.type}) needs allowed: true or false")
        if self.type == "punctuation" and not self.repeated:
            raise ValueError(f"check '{self.name}' (punctuation) needs repeated, e.g. '!?'")
        if self.type == "casing" and self.max is None:
            raise ValueError(f"check '{self.name}' (casing) needs max")
        return self


class RubricSpec(Strict):
    """A rubric file (or the inline `rubric:` scorer config)."""

    name: str = "rubric"
    description: str = ""
    checks: list[RubricCheck] = Field(min_length=1)
    judged: list[str] = []
    """Dimensions no rule can check (e.g. tone, warmth): an LLM judge rates them (a judge task with
    `dimensions:`), and `harness review export` asks the person for a 1-10 rating of each, which
    the report compares with the judge's ratings of the same outputs."""

    @model_validator(mode="after")
    def _unique(self):
        names = [c.name for c in self.checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"check names must be unique; repeated: {', '.join(dupes)}")
        return self


def _word_hits(text: str, words: list[str]) -> int:
    lower = text.lower()
    return sum(1 for w in words if re.search(rf"(?<![\w#]){re.escape(w.lower())}(?!\w)", lower))


def _count(check: RubricCheck, text: str) -> int:
    if check.type == "hashtags":
        return len(HASHTAG.findall(text))
    if check.type == "emoji":
        return sum(len(m) for m in EMOJI.findall(text.replace("\ufe0f", "").replace("\u200d", "")))
    if check.type == "length":
        return len(text.strip())
    return len([s for s in SENTENCE_END.split(text.strip()) if s.strip()])


def run_check(check: RubricCheck, text: str) -> bool:
    """Whether `text` passes one check."""
    t = check.type
    if t in ("hashtags", "emoji", "length", "sentences"):
        n = _count(check, text)
        return (check.min is None or n >= check.min) and (check.max is None or n <= check.max)
    if t == "required_words":
        return _word_hits(text, check.words) > 0
    if t == "forbidden_words":
        return _word_hits(text, check.words) == 0
    if t == "lexicon":
        return _word_hits(text, check.words) >= (check.min if check.min is not None else 1)
    if t == "urls":
        return check.allowed or not URL.search(text)
    if t == "mentions":
        return check.allowed or not MENTION.search(text)
    if t == "punctuation":
        return not any(c * 2 in text for c in check.repeated or "")  # set: the validator requires it
    return len(CAPS_WORD.findall(text)) <= (check.max or 0)  # casing (max set: the validator requires it)


def load_rubric(config: dict, where: str, base_dir: Path) -> RubricSpec:
    """The scorer config is either {path: rubric file} or the rubric itself (inline)."""
    if set(config) == {"path"}:
        path = Path(config["path"])
        return load_model_file(RubricSpec, path if path.is_absolute() else base_dir / path)
    return parse_model(RubricSpec, config, where)


RUBRIC = Metric("rubric", "rubric (share of checks passed)", "higher", low=0, high=1)
CHECK = Metric("rubric_{check}", "rubric check {check}", "higher", "binary", low=0, high=1,
               description="1 when the output passes this rubric check")


def configure(config: dict, where: str, base_dir: Path):
    """A rubric scorer for this config."""
    spec = load_rubric(config, where, base_dir)

    def score(sample, output) -> Scored:
        text = output.text
        passed = {f"rubric_{c.name}": float(run_check(c, text)) for c in spec.checks}
        # The dimensions no rule checks go with the sample, so a review sheet asks a person for them
        return Scored({"rubric": sum(passed.values()) / len(passed), **passed}, {"judged": spec.judged} if spec.judged else None)

    metrics = (RUBRIC,) + tuple(CHECK.named(f"rubric_{c.name}", check=c.name) for c in spec.checks)
    return rubric.configured(score, metrics, stable_hash(spec.model_dump()), rubric=spec)


rubric = scorer(task_types=("generation",), metrics=(RUBRIC, CHECK), configure=configure, name="rubric",
                description="brand rubric checks; needs a config: `- rubric: {path: rubric.yaml}` or the checks inline")(
    needs_config("rubric"))
