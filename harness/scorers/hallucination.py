"""The hallucination scorer: claims of an output checked against the item's source documents.

Per item: `hallucination_rate` (unsupported claims / claims; empty when the output abstains or
makes no claim), `unsupported_claims`, `claims`, `abstained` (1/0). Every claim with its verdict,
support and evidence goes into the sample's details, which `harness audit export` samples for
human review."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.config.loader import Strict, parse_model
from harness.config.suite import JudgeSpec
from harness.errors import ConfigError
from harness.hashing import stable_hash
from harness.judge.clients import OpenAIJudge
from harness.scorers import Scored, needs_config, scorer
from harness.scorers.claims import EmbeddingVerifier, HybridVerifier, JudgeVerifier, LexicalVerifier, audit
from harness.stats.metricspec import Metric
from harness.tasks.prompts import compile_template, render

METRICS = (
    Metric("hallucination_rate", "hallucination rate", "lower", low=0, high=1,
           description="unsupported claims / claims; empty when the output abstains or makes no claim"),
    Metric("unsupported_claims", "unsupported claims", "lower", low=0, unit="claims"),
    Metric("claims", "claims made", "none", low=0, unit="claims"),
    Metric("abstained", "abstained", "none", "binary", low=0, high=1, description="coverage, not quality: 1 when the output declines to answer"),
    Metric("verifier_failures", "verifier failures", "lower", low=0, unit="claims",
           description="claims the judge verifier could not decide (left out of the rate)"),
)
DETECTION = Metric("detection_correct", "hallucination detected correctly", "higher", "binary", low=0, high=1)


class HallucinationSpec(Strict):
    """Config of the hallucination scorer."""

    sources: list[str] = Field(min_length=1)
    """Jinja2 templates over the item's fields, one per source document (e.g. ['{{ document }}'])."""
    verifier: Literal["lexical", "embedding", "hybrid", "judge"] = "lexical"
    """lexical needs no model; embedding and hybrid use the offline MiniLM encoder (harness[embed]);
    judge sends each claim with a claim-verification prompt to `judge` (an endpoint)."""
    judge: JudgeSpec | None = None
    """verifier: judge: an OpenAI-compatible endpoint (backend: openai, base_url, model, ...)."""
    threshold: float = Field(default=0.6, ge=0, le=1)
    """lexical: least share of a claim's content words found in its best source passage;
    hybrid: least mean of that share and the embedding similarity."""
    embedding_threshold: float = Field(default=0.6, ge=-1, le=1)
    """Embedding: least cosine similarity to the nearest source sentence."""
    strict: bool = True
    """A claim naming an entity or a number that no source contains is unsupported."""
    @model_validator(mode="after")
    def _judge(self):
        if (self.verifier == "judge") != (self.judge is not None):
            raise ValueError("verifier: judge needs a judge: {backend: openai, ...} block, and only it takes one")
        if self.judge is not None and self.judge.backend != "openai":
            raise ValueError("the judge verifier runs against an endpoint (backend: openai); a local model judges through judge tasks")
        return self

    label_field: str | None = None
    """An item field saying whether the output is hallucinated (1/0, e.g. HaluEval's, via the
    `halueval` loader's `hallucinated`): adds `detection_correct`, 1 when the verifier's call
    (any unsupported claim) matches the label."""


def make_verifier(spec: HallucinationSpec):
    if spec.verifier == "judge":
        return JudgeVerifier(OpenAIJudge.from_spec(spec.judge))
    if spec.verifier == "lexical":
        return LexicalVerifier(spec.threshold, spec.strict)
    if spec.verifier == "embedding":
        return EmbeddingVerifier(spec.embedding_threshold, spec.strict)
    return HybridVerifier(spec.threshold, spec.strict)


def configure(config: dict, where: str, base_dir: Path):
    spec = parse_model(HallucinationSpec, config, where)
    for i, t in enumerate(spec.sources):
        compile_template(t, f"{where}.sources[{i}]")
    verifier = None

    def hallucination_scorer(sample, output) -> Scored:
        nonlocal verifier
        verifier = verifier or make_verifier(spec)  # loaded on first use: validation stays model-free
        sources = [render(t, sample.fields, f"{where}.sources") for t in spec.sources]
        result = audit(output.text, sources, verifier)
        extra = {}
        if spec.label_field is not None:
            if spec.label_field not in sample.fields:
                raise ConfigError(f"{where}.label_field: item {sample.id} has no field '{spec.label_field}'")
            extra["detection_correct"] = float((result.unsupported > 0) == bool(int(sample.fields[spec.label_field])))
        values = {**extra, "hallucination_rate": result.rate, "unsupported_claims": float(result.unsupported),
                  "claims": float(len(result.claims)), "abstained": float(result.abstained),
                  "verifier_failures": float(result.failures)}
        return Scored(values, {"verifier": spec.verifier, "sources": sources,
                               "claims": [{"claim": c.claim, "supported": None if c.failed else c.supported,
                                           "support": None if c.failed else round(c.support, 4),
                                           "evidence": c.evidence, "novel": list(c.novel)} for c in result.claims]})

    metrics = ((DETECTION,) if spec.label_field else ()) + METRICS
    return hallucination.configured(hallucination_scorer, metrics, stable_hash(spec.model_dump()))


hallucination = scorer(task_types=("generation",), metrics=METRICS + (DETECTION,), configure=configure,
                       name="hallucination", description="claims checked against source documents; needs a config: "
                       "`- hallucination: {sources: ['{{ document }}']}`")(needs_config("hallucination"))
