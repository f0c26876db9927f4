"""Social-text preparation usable by any recipe's data step (and by suites' loaders).

Normalisation follows the common tweet-preprocessing conventions (TweetEval, BERTweet):
URLs -> [URL], @mentions -> [USER], a leading "RT @user:" stripped, optional emoji removal,
whitespace normalised, runs of repeated punctuation collapsed. Filters drop items that are too
short or too long, replies and retweets. Splits are deterministic (seeded hash of the id)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pydantic import Field

from harness.config.loader import Strict

URL = re.compile(r"(https?://\S+|www\.\S+)")
MENTION = re.compile(r"(?<![\w@])@\w{1,15}")
RETWEET_PREFIX = re.compile(r"^\s*RT\s+@\w{1,15}:?\s*")
REPEATED_PUNCT = re.compile(r"([!?.,])\1+")
WHITESPACE = re.compile(r"\s+")
# Emoji and pictographs: the main emoji blocks, dingbats, flags, variation selectors and ZWJ.
EMOJI = re.compile("[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF\U0000FE0F\U0000200D\U00002B50\U00002B55]+")


class TextPrepSpec(Strict):
    """Cleaning and filtering applied to each text field before it is used."""

    replace_urls: bool = True
    """URLs -> [URL]."""
    replace_mentions: bool = True
    """@user -> [USER]."""
    strip_retweet_prefix: bool = True
    """Remove a leading 'RT @user:'."""
    remove_emoji: bool = False
    normalise_whitespace: bool = True
    collapse_punctuation: bool = True
    """'!!!' -> '!' (and ?, ., ,)."""
    min_chars: int | None = Field(default=30, ge=0)
    """Drop items shorter than this after cleaning (the case study's 30)."""
    max_chars: int | None = Field(default=250, ge=1)
    """Drop items longer than this after cleaning (the case study's 250)."""
    drop_replies: bool = True
    """Drop items that start with an @mention (replies)."""
    drop_retweets: bool = True
    """Drop retweets ('RT @user:' prefix) instead of just stripping the prefix."""


def clean(text: str, spec: TextPrepSpec) -> str:
    """Apply the normalisations of `spec` to one text."""
    if spec.strip_retweet_prefix:
        text = RETWEET_PREFIX.sub("", text)
    if spec.replace_urls:
        text = URL.sub("[URL]", text)
    if spec.replace_mentions:
        text = MENTION.sub("[USER]", text)
    if spec.remove_emoji:
        text = EMOJI.sub("", text)
    if spec.collapse_punctuation:
        text = REPEATED_PUNCT.sub(r"\1", text)
    if spec.normalise_whitespace:
        text = WHITESPACE.sub(" ", text).strip()
    return text


def keep_reason(raw: str, cleaned: str, spec: TextPrepSpec) -> str | None:
    """None when the item is kept, else why it was dropped (recorded, never silent)."""
    if spec.drop_retweets and RETWEET_PREFIX.match(raw):
        return "retweet"
    if spec.drop_replies and raw.lstrip().startswith("@"):
        return "reply"
    if spec.min_chars is not None and len(cleaned) < spec.min_chars:
        return "too_short"
    if spec.max_chars is not None and len(cleaned) > spec.max_chars:
        return "too_long"
    return None


@dataclass(frozen=True)
class PrepResult:
    kept: list[dict]
    dropped: dict[str, int]
    """reason -> count."""


def prepare_rows(rows: list[dict], field: str, spec: TextPrepSpec) -> PrepResult:
    """Clean `field` of every row and filter; returns kept rows (copies) and drop counts."""
    kept, dropped = [], {}
    for row in rows:
        raw = str(row.get(field, ""))
        cleaned = clean(raw, spec)
        reason = keep_reason(raw, cleaned, spec)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            kept.append({**row, field: cleaned})
    return PrepResult(kept, dropped)


def prep_fields(fields: dict, spec: TextPrepSpec | None, names: list[str]) -> tuple[dict, str | None]:
    """Clean the named fields of one row; returns (new fields, drop reason or None).
    Recipes' data steps call this so every recipe shares one preparation."""
    if spec is None or not names:
        return fields, None
    out, reason = dict(fields), None
    for name in names:
        raw = str(out.get(name, ""))
        out[name] = clean(raw, spec)
        reason = reason or keep_reason(raw, out[name], spec)
    return out, reason


def split_of(key: str, fractions: dict[str, float], seed: int = 0) -> str:
    """Deterministic split assignment from a hash of (seed, key): stable under reordering and
    additions, unlike shuffling a list."""
    total = sum(fractions.values())
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64 * total
    acc = 0.0
    for name, frac in fractions.items():
        acc += frac
        if h < acc:
            return name
    return list(fractions)[-1]
