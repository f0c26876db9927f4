"""A written constitution for AI feedback: the principles a judge applies, one at a time, when it
labels preference pairs (RLAIF), and the check of its labels against a small human-labelled set
before any training step (the chapter's hybrid approach).

A principles file (YAML):

    name: lumen-brand
    principles:
      - {name: warm, text: "Prefer the reply that greets people warmly and sounds like a neighbour."}
      - {name: factual, text: "Prefer the reply that promises nothing the brief does not state."}

Each pair is judged once per principle (both orders, the judge's samples), so every pair carries
a verdict per principle; the pair's label is the side more principles prefer (a tie across
principles drops the pair, counted). The file is a data file of the recipe, so its content is
part of the variant's key and its hash is stored in the lineage.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from harness.config.loader import Strict, load_model_file
from harness.errors import ConfigError


class Principle(Strict):
    """One principle of the constitution."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Short name, used in the stored per-principle verdicts."""
    text: str = Field(min_length=1)
    """What the judge is asked to prefer, in words."""


class Constitution(Strict):
    """A principles file."""

    name: str
    """The constitution's name (stored with every variant trained on its labels)."""
    principles: list[Principle] = Field(min_length=1)
    """Applied one at a time; the pair's label is the side most principles prefer."""


def load_constitution(path: Path) -> Constitution:
    """Parse a principles file; ConfigError naming the file and field otherwise."""
    spec = load_model_file(Constitution, path)
    names = [p.name for p in spec.principles]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: principle names must be distinct: {names}")
    return spec


def framed(question: str, principle: Principle | None) -> str:
    """The question as the judge sees it under one principle (the principle stated first, so
    the verdict, the cache entry and any human reading the prompt see which principle applied)."""
    if principle is None:
        return question
    return f"[Judge by this principle only -- {principle.name}: {principle.text}]\n\n{question}"


def agreement(ai: list[str | None], human: list[str]) -> dict:
    """Agreement of AI verdicts ('a', 'b', 'tie', or None when the judge gave none) with human
    labels on the same pairs, and Cohen's kappa over the items both labelled; an item the judge
    could not label counts as a disagreement."""
    n = len(human)
    agree = sum(1 for x, h in zip(ai, human) if x == h)
    labelled = [(x, h) for x, h in zip(ai, human) if x is not None]
    kappa = None
    if labelled:
        cats = sorted({c for pair in labelled for c in pair})
        m = len(labelled)
        po = sum(1 for x, h in labelled if x == h) / m
        pe = sum((sum(1 for x, _ in labelled if x == c) / m) * (sum(1 for _, h in labelled if h == c) / m) for c in cats)
        kappa = (po - pe) / (1 - pe) if pe < 1 else None
    return {"n": n, "agreement": agree / n if n else None, "unlabelled_by_ai": n - len(labelled), "kappa": kappa}
