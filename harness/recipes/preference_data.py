"""Preference data for the DPO family: build (prompt, chosen, rejected) pairs, then check them
before any training step.

Four sources:
  pairs  - given JSONL rows, fields rendered by templates;
  rule   - chosen = the reference text, rejected = the parent model's own generation
           (the model learns to prefer the house answer over what it says today);
  judge  - AI annotation: a judge picks the better of `response_a` / `response_b` in both orders,
           with a majority vote over its samples (3 by default); ties, order flips and
           unparseable verdicts are dropped and counted;
  unpaired - (KTO only) single completions labelled desirable or undesirable (thumbs up/down),
           in any ratio: the ratio is reported and trl's desirable/undesirable weights are set
           from it, as trl's KTO documentation prescribes.

Checks (stored with the variant): pairs with chosen == rejected are dropped, duplicates are
removed, length balance is measured (warning when mean or median lengths of chosen and rejected
differ by more than 20%: DPO then learns length, not quality), coverage by category is counted,
and a random audit sample is exported for people to read."""

from __future__ import annotations

import json
import logging
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict
from harness.config.suite import JudgeSpec
from harness.data.loaders import LoadRequest, load_jsonl, read_jsonl_objects
from harness.data.textprep import TextPrepSpec, prep_fields
from harness.errors import ConfigError
from harness.judge.annotate import annotate
from harness.judge.constitution import agreement
from harness.tasks.prompts import render

log = logging.getLogger(__name__)

LENGTH_IMBALANCE = 0.20


class PreferenceDataSpec(Strict):
    """Where preference pairs come from and how they are checked."""

    source: Literal["pairs", "rule", "judge", "unpaired"] = "pairs"
    path: str
    """JSONL file, relative to the models file."""
    prompt: str = "{{ prompt }}"
    """jinja2 template for the prompt."""
    chosen: str = "{{ chosen }}"
    """jinja2 template for the preferred response (`rule`: the reference response)."""
    rejected: str = "{{ rejected }}"
    """jinja2 template for the dispreferred response (`pairs` only)."""
    completion: str = "{{ completion }}"
    """`unpaired`: jinja2 template for the labelled completion."""
    label_field: str = "label"
    """`unpaired`: the row field saying whether the completion is desirable: true/false, 1/0,
    desirable/undesirable, up/down, good/bad, thumbs_up/thumbs_down."""
    response_a: str = "{{ response_a }}"
    """`judge`: template for the first candidate response."""
    response_b: str = "{{ response_b }}"
    """`judge`: template for the second candidate response."""
    judge: JudgeSpec | None = None
    """`judge`: who annotates. A local judge names its model (`judge.variant`, declared before this
    variant in the models file); an endpoint uses backend: openai. `judge.samples` defaults to 3 here."""
    principles: str | None = None
    """`judge`: a principles file (harness.judge.constitution: the brand's constitution). Each pair is
    judged once per principle and labelled by the side more principles prefer; the verdicts are
    stored per pair, and the file's content is part of the variant's key."""
    human_labels: str | None = None
    """`judge`: a small human-labelled validation set (JSONL: prompt, response_a, response_b,
    human: A, B or tie), judged first the same way; agreement and Cohen's kappa are stored."""
    min_agreement: float = Field(default=0.6, ge=0, le=1)
    """With human_labels: the build stops (before any training) when the AI labels agree with the
    human ones on fewer than this share of the validation pairs."""
    category_field: str | None = None
    """Row field used for the coverage-by-category check."""
    max_new_tokens: int = Field(default=48, ge=1)
    """`rule`: generation length of the parent's own (rejected) answer."""
    stop: list[str] = ["\n"]
    """`rule`: stop strings for the parent's generation."""
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N rows (keeps `rule` generation short on CPU)."""
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    split_seed: int = 0
    audit_sample: int = Field(default=100, ge=0)
    """Pairs exported to audit_pairs.jsonl beside the artifact for human review."""
    prep: TextPrepSpec | None = None
    """Social-text cleaning and filtering applied to `prep_fields` before rendering."""
    prep_fields: list[str] = []

    @model_validator(mode="after")
    def _rejected_only_for_pairs(self):
        if self.source == "rule" and "rejected" in self.model_fields_set:
            raise ValueError("source 'rule' generates the rejected response; remove `rejected`")
        paired_only = {"chosen", "rejected", "response_a", "response_b"} & self.model_fields_set
        if self.source == "unpaired" and paired_only:
            raise ValueError(f"source 'unpaired' takes `completion` and `label_field`, not {sorted(paired_only)}")
        if self.source != "unpaired" and {"completion", "label_field"} & self.model_fields_set:
            raise ValueError("`completion` and `label_field` apply to source 'unpaired' (KTO)")
        if (self.source == "judge") != (self.judge is not None):
            raise ValueError("source 'judge' needs a `judge:` block (and only it takes one)")
        if self.source != "judge" and (self.principles or self.human_labels):
            raise ValueError("principles and human_labels apply to source 'judge' (AI feedback)")
        if self.judge is not None:
            # Pairwise annotation uses the judge's client settings, samples and prompt file; these
            # others would be silently meaningless here, so they are refused.
            unused = sorted({"dimensions", "anchors", "reference_prompt", "use_reference", "thresholds"} & self.judge.model_fields_set)
            if unused:
                raise ValueError(f"judge.{', judge.'.join(unused)}: not used by preference annotation (pairwise, no "
                                 "references; agreement comes from human_labels)")
        if self.judge is not None and self.judge.backend == "local" and not self.judge.variant:
            raise ValueError("a local preference judge names its model: judge.variant (a model declared earlier in this file)")
        return self


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    category: str | None = None


@dataclass
class QualityReport:
    """What the checks found; stored on the variant under metrics['preference_data']."""

    input_pairs: int = 0
    identical_dropped: int = 0
    duplicates_dropped: int = 0
    kept: int = 0
    chosen_len_mean: float = 0.0
    rejected_len_mean: float = 0.0
    chosen_len_median: float = 0.0
    rejected_len_median: float = 0.0
    length_imbalance: float = 0.0
    """max(relative difference of means, of medians) between chosen and rejected lengths."""
    warnings: list[str] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)


def check_pairs(pairs: list[Pair]) -> tuple[list[Pair], QualityReport]:
    """Drop chosen == rejected and duplicate pairs; measure length balance and coverage."""
    report = QualityReport(input_pairs=len(pairs))
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for p in pairs:
        if p.chosen.strip() == p.rejected.strip():
            report.identical_dropped += 1
            continue
        key = (p.prompt, p.chosen, p.rejected)
        if key in seen:
            report.duplicates_dropped += 1
            continue
        seen.add(key)
        kept.append(p)
    report.kept = len(kept)
    if not kept:
        report.warnings.append("no usable pairs left after the checks")
        return kept, report
    chosen = [len(p.chosen) for p in kept]
    rejected = [len(p.rejected) for p in kept]
    report.chosen_len_mean, report.rejected_len_mean = statistics.fmean(chosen), statistics.fmean(rejected)
    report.chosen_len_median, report.rejected_len_median = statistics.median(chosen), statistics.median(rejected)
    report.length_imbalance = max(_rel_diff(report.chosen_len_mean, report.rejected_len_mean),
                                  _rel_diff(report.chosen_len_median, report.rejected_len_median))
    if report.length_imbalance > LENGTH_IMBALANCE:
        report.warnings.append(
            f"length imbalance {report.length_imbalance:.0%} (> {LENGTH_IMBALANCE:.0%}): chosen mean/median "
            f"{report.chosen_len_mean:.0f}/{report.chosen_len_median:.0f} chars vs rejected "
            f"{report.rejected_len_mean:.0f}/{report.rejected_len_median:.0f}; the model may learn length instead of quality")
    for p in kept:
        key = p.category or "(none)"
        report.categories[key] = report.categories.get(key, 0) + 1
    for w in report.warnings:
        log.warning("preference data: %s", w)
    return kept, report


def _rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(a, b) if max(a, b) > 0 else 0.0


def export_audit_sample(pairs: list[Pair], out: Path, n: int, seed: int = 0) -> int:
    """Write a seeded random sample of pairs as JSONL for human review; returns how many."""
    sample = random.Random(seed).sample(pairs, min(n, len(pairs)))
    with out.open("w", encoding="utf-8") as fh:
        for p in sample:
            fh.write(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "category": p.category,
                                 "human_label": None}, ensure_ascii=False) + "\n")
    return len(sample)


def load_rows(spec: PreferenceDataSpec, path: Path) -> list:
    rows = load_jsonl(LoadRequest(path))
    return rows[: spec.limit] if spec.limit else rows


def build_pairs(spec: PreferenceDataSpec, path: Path, where: str, generate=None, judge=None, report=None,
                constitution=None, prompts_path: Path | None = None, verdicts: list | None = None) -> list[Pair]:
    """Render (or, for `rule`, generate; for `judge`, annotate) the pairs. `generate(prompts) ->
    texts` is the parent model; `judge` a judge client; `report` receives the annotation counts;
    `constitution` (harness.judge.constitution) the principles the judge applies, `verdicts` each
    annotated pair's verdict per principle."""

    rows = []
    for r in load_rows(spec, path):
        fields, reason = prep_fields(r.fields, spec.prep, spec.prep_fields)
        if not reason:
            rows.append(type(r)(r.id, fields))
    if spec.source == "judge":
        return _judged_pairs(spec, rows, where, judge, report, constitution, prompts_path, verdicts)
    prompts = [render(spec.prompt, r.fields, f"{where}: data.prompt (line {int(r.id) + 1})") for r in rows]
    chosen = [render(spec.chosen, r.fields, f"{where}: data.chosen (line {int(r.id) + 1})") for r in rows]
    if spec.source == "rule":
        if generate is None:
            raise ConfigError(f"{where}: source 'rule' needs the parent model to generate rejected responses")
        rejected = generate(prompts)
        # Completions are scored after the prompt, so keep the leading space convention of `chosen`.
        lead = " " if chosen and chosen[0].startswith(" ") else ""
        rejected = [lead + r.strip() for r in rejected]
    else:
        rejected = [render(spec.rejected, r.fields, f"{where}: data.rejected (line {int(r.id) + 1})") for r in rows]
    categories = [str(r.fields.get(spec.category_field)) if spec.category_field else None for r in rows]
    return [Pair(p, c, x, k) for p, c, x, k in zip(prompts, chosen, rejected, categories)]


def _judged_pairs(spec: PreferenceDataSpec, rows: list, where: str, judge, report, constitution=None, prompts_path=None,
                  verdicts=None) -> list[Pair]:
    if judge is None:
        raise ConfigError(f"{where}: source 'judge' needs a judge client")
    def rendered(template: str, field: str) -> list[str]:
        return [render(template, r.fields, f"{where}: data.{field} (line {int(r.id) + 1})") for r in rows]

    prompts, a, b = rendered(spec.prompt, "prompt"), rendered(spec.response_a, "response_a"), rendered(spec.response_b, "response_b")
    per_pair: list = []
    picked, counts = annotate(judge, prompts, a, b, judge_samples(spec), spec.judge.prompt or "pair",
                              constitution.principles if constitution else None, prompts_path, per_pair)
    if report is not None:
        report.update(counts.__dict__)
    if verdicts is not None and constitution:
        verdicts += [{"prompt": p, "response_a": x, "response_b": y, "label": None if c is None else ("a" if c[0] == x else "b"),
                      "principles": v} for p, x, y, c, v in zip(prompts, a, b, picked, per_pair)]
    categories = [str(r.fields.get(spec.category_field)) if spec.category_field else None for r in rows]
    return [Pair(p, c[0], c[1], k) for p, c, k in zip(prompts, picked, categories) if c is not None]


def judge_samples(spec: PreferenceDataSpec) -> int:
    """The seed's advice for AI annotation: a majority over 3 samples (a deterministic judge gets 1)."""
    return spec.judge.samples or (1 if spec.judge.deterministic else 3)


def human_agreement(spec: PreferenceDataSpec, path: Path, where: str, judge, constitution=None, prompts_path=None) -> dict:
    """Judge the human-labelled validation pairs exactly as the training pairs will be judged,
    and measure agreement with the people (harness.judge.constitution.agreement)."""

    rows = read_jsonl_objects(path)
    missing = [n for n, r in rows if not all(k in r for k in ("prompt", "response_a", "response_b", "human"))]
    if missing:
        raise ConfigError(f"{where}: data.human_labels ({path}, line {missing[0]}): expected prompt, response_a, response_b, human")
    human = []
    for n, r in rows:
        h = str(r["human"]).strip().lower()
        if h not in ("a", "b", "tie"):
            raise ConfigError(f"{where}: data.human_labels ({path}, line {n}): human must be A, B or tie, got {r['human']!r}")
        human.append(h)
    labels: list[str] = []
    annotate(judge, [str(r["prompt"]) for _, r in rows], [str(r["response_a"]) for _, r in rows],
             [str(r["response_b"]) for _, r in rows], judge_samples(spec), spec.judge.prompt or "pair",
             constitution.principles if constitution else None, prompts_path, labels=labels)
    ai = [lab if lab in ("a", "b", "tie") else None for lab in labels]
    return {**agreement(ai, human), "min_agreement": spec.min_agreement}


@dataclass(frozen=True)
class Example:
    """One unpaired, labelled completion (KTO's data)."""

    prompt: str
    completion: str
    desirable: bool
    category: str | None = None


DESIRABLE = {"true", "1", "desirable", "up", "good", "thumbs_up", "yes"}
UNDESIRABLE = {"false", "0", "undesirable", "down", "bad", "thumbs_down", "no"}


def build_unpaired(spec: PreferenceDataSpec, path: Path, where: str) -> list[Example]:
    """Render the labelled completions of an `unpaired` source; a label that is neither
    desirable nor undesirable is an error naming the line."""

    out = []
    for r in load_rows(spec, path):
        fields, reason = prep_fields(r.fields, spec.prep, spec.prep_fields)
        if reason:
            continue
        line = f"line {int(r.id) + 1}"
        if spec.label_field not in fields:
            raise ConfigError(f"{where}: data ({path}, {line}): no field '{spec.label_field}' (data.label_field)")
        label = str(fields[spec.label_field]).strip().lower()
        if label not in DESIRABLE | UNDESIRABLE:
            raise ConfigError(f"{where}: data ({path}, {line}): label {fields[spec.label_field]!r} is neither desirable "
                              f"({', '.join(sorted(DESIRABLE))}) nor undesirable ({', '.join(sorted(UNDESIRABLE))})")
        out.append(Example(render(spec.prompt, fields, f"{where}: data.prompt ({line})"),
                           render(spec.completion, fields, f"{where}: data.completion ({line})"), label in DESIRABLE,
                           str(fields.get(spec.category_field)) if spec.category_field else None))
    return out


@dataclass
class UnpairedReport:
    """What the checks of unpaired data found, and the KTO weights set from its balance."""

    input_examples: int = 0
    empty_dropped: int = 0
    duplicates_dropped: int = 0
    kept: int = 0
    desirable: int = 0
    undesirable: int = 0
    desirable_share: float = 0.0
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    weighted_ratio: float = 1.0
    """(desirable_weight x desirable) / (undesirable_weight x undesirable): trl asks for [1, 4/3]."""
    warnings: list[str] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)


def kto_weights(desirable: int, undesirable: int) -> tuple[float, float]:
    """trl's KTO documentation: choose the weights so that (desirable_weight x desirable) /
    (undesirable_weight x undesirable) lies in [1, 4/3]. The scarcer side is up-weighted to
    balance exactly (ratio 1), the other keeps weight 1."""
    if desirable >= undesirable:
        return 1.0, desirable / undesirable
    return undesirable / desirable, 1.0


def check_unpaired(examples: list[Example], where: str) -> tuple[list[Example], UnpairedReport]:
    """Drop empty completions and duplicates, count each side and set the KTO weights; both
    sides must be present (KTO compares them)."""
    report = UnpairedReport(input_examples=len(examples))
    seen: set[tuple[str, str, bool]] = set()
    kept = []
    for e in examples:
        if not e.completion.strip():
            report.empty_dropped += 1
            continue
        key = (e.prompt, e.completion, e.desirable)
        if key in seen:
            report.duplicates_dropped += 1
            continue
        seen.add(key)
        kept.append(e)
    report.kept = len(kept)
    report.desirable = sum(e.desirable for e in kept)
    report.undesirable = report.kept - report.desirable
    if not report.desirable or not report.undesirable:
        raise ConfigError(f"{where}: unpaired KTO data needs desirable and undesirable examples; after the checks it has "
                          f"{report.desirable} desirable and {report.undesirable} undesirable")
    report.desirable_share = report.desirable / report.kept
    report.desirable_weight, report.undesirable_weight = kto_weights(report.desirable, report.undesirable)
    report.weighted_ratio = (report.desirable_weight * report.desirable) / (report.undesirable_weight * report.undesirable)
    if not 0.1 <= report.desirable_share <= 0.9:
        report.warnings.append(f"{report.desirable} desirable vs {report.undesirable} undesirable: the scarce side is "
                               f"weighted {max(report.desirable_weight, report.undesirable_weight):.1f}x, so its few examples "
                               "dominate their half of the loss")
    for e in kept:
        key = e.category or "(none)"
        report.categories[key] = report.categories.get(key, 0) + 1
    for w in report.warnings:
        log.warning("preference data: %s", w)
    return kept, report


def split_pairs(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    shuffled = pairs[:]
    random.Random(seed).shuffle(shuffled)
    n_val = int(round(len(shuffled) * fraction))
    return shuffled[n_val:], shuffled[:n_val]
