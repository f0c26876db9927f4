"""Hallucination audit: split an output into claims (sentences) and check each against the
source documents it was given. A claim is unsupported when too few of its content words occur in
its best-matching source passage, or (strict mode) when it names an entity or a number that no
source contains. Abstentions ("I don't know") are counted, never scored as claims.

Verifiers: `lexical` (no model), `embedding` (cosine similarity to the best source sentence with
the offline MiniLM sentence encoder, harness[embed]), `hybrid` (the mean of both supports), and
`judge` (a claim-verification prompt sent to an OpenAI-compatible endpoint). A judge-based verifier (claim-verification
prompt) runs as a judge task; see harness.judge."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.judge.clients import JudgeCall
from harness.judge.prompts import JudgePrompt
from harness.models.embeddings import SentenceEncoder

STOPWORDS = frozenset("""a an the and or but if then else of to in on at by for with from as is are was were be been being am
it its it's this that these those there here he she they them his her their we us our you your i me my mine do does did
done have has had not no so too very can could would should will shall may might must just also about into over under
than such what which who whom whose when where why how all any both each few more most other some own same only again
further once up down out off yes yeah oh well really think know like get got one two s t
sure thanks thank hello hi hey great ok okay please absolutely course glad happy help""".split())
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")
NUMBER = re.compile(r"\b\d[\d,.:]*\b")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+|(?<=[a-z)\]])\.(?=[A-Z])")
ENTITY = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z'\-]+(?:\s+[A-Z][a-zA-Z'\-]+)*)")
ABSTAIN = re.compile(r"\b(i (?:do not|don't|dont) know|i'?m not sure|i am not sure|(?:cannot|can't|unable to) (?:answer|say|determine|tell)|"
                     r"not (?:mentioned|stated|provided|given|specified) in|no information|the (?:sources?|documents?|context) (?:do|does) not)\b",
                     re.IGNORECASE)


@dataclass(frozen=True)
class ClaimCheck:
    claim: str
    support: float
    """Lexical: share of the claim's content words found in the best source passage; embedding: cosine."""
    supported: bool
    evidence: str
    """The best-matching source passage."""
    novel: tuple[str, ...] = ()
    """Entities and numbers in the claim that no source contains (strict mode)."""
    failed: bool = False
    """The verifier gave no usable verdict (judge call failed or unparseable): coverage, not a verdict."""


def split_claims(text: str) -> list[str]:
    """Sentences with at least one content word (greetings and fillers are not claims)."""
    parts = [p.strip() for p in SENTENCE.split(text or "") if p and p.strip()]
    return [p for p in parts if content_words(p)]


def split_sources(sources: list[str]) -> list[str]:
    return [s for doc in sources for s in (p.strip() for p in SENTENCE.split(doc)) if s]


def content_words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower().strip("'-") for m in WORD.finditer(text)) if w and w not in STOPWORDS]


def is_abstention(text: str) -> bool:
    """The output declines to answer (checked on its first sentence)."""
    first = (split_claims(text) or [text or ""])[0]
    return bool(ABSTAIN.search(first))


def _novel(claim: str, source_text: str) -> tuple[str, ...]:
    src = source_text.lower()
    src_words = set(content_words(source_text))
    novel = []
    for m in ENTITY.finditer(claim):
        ent = m.group(1)
        words = [w for w in content_words(ent)]
        if words and not all(w in src_words for w in words) and ent.lower() not in src:
            novel.append(ent)
    novel += [n.rstrip(".,:") for n in NUMBER.findall(claim) if n.rstrip(".,:") not in src]
    return tuple(novel)


class LexicalVerifier:
    """Support = share of the claim's content words present in the best window of `window`
    consecutive source sentences."""

    name = "lexical"

    def __init__(self, threshold: float = 0.6, strict: bool = True, window: int = 2):
        self.threshold, self.strict, self.window = threshold, strict, window

    def check(self, claims: list[str], sources: list[str]) -> list[ClaimCheck]:
        sents = split_sources(sources) or [""]
        windows = [" ".join(sents[i:i + self.window]) for i in range(max(1, len(sents) - self.window + 1))]
        vocab = [set(content_words(w)) for w in windows]
        all_text = " ".join(sources)
        out = []
        for claim in claims:
            words = content_words(claim)
            scores = [sum(w in v for w in words) / len(words) if words else 1.0 for v in vocab]
            best = max(range(len(windows)), key=lambda i: scores[i])
            novel = _novel(claim, all_text) if self.strict else ()
            out.append(ClaimCheck(claim, scores[best], scores[best] >= self.threshold and not novel, windows[best], novel))
        return out


class EmbeddingVerifier:
    """Support = cosine similarity of the claim to its nearest source sentence (MiniLM)."""

    name = "embedding"

    def __init__(self, threshold: float = 0.6, strict: bool = True, encoder=None):
        self.threshold, self.strict = threshold, strict
        self.encoder = encoder or SentenceEncoder.default()

    def check(self, claims: list[str], sources: list[str]) -> list[ClaimCheck]:
        if not claims:
            return []
        sents = split_sources(sources) or [""]
        sims = self.encoder.encode(claims) @ self.encoder.encode(sents).T
        all_text = " ".join(sources)
        out = []
        for i, claim in enumerate(claims):
            j = int(sims[i].argmax())
            novel = _novel(claim, all_text) if self.strict else ()
            out.append(ClaimCheck(claim, float(sims[i, j]), float(sims[i, j]) >= self.threshold and not novel, sents[j], novel))
        return out


class HybridVerifier:
    """Support = the mean of the lexical and the embedding support (words and meaning both
    count), against one threshold; novel entities and numbers still fail a claim (strict)."""

    name = "hybrid"

    def __init__(self, threshold: float = 0.6, strict: bool = True, encoder=None):
        self.threshold = threshold
        self.lexical = LexicalVerifier(0.0, strict)
        self.embedding = EmbeddingVerifier(0.0, strict, encoder)

    def check(self, claims: list[str], sources: list[str]) -> list[ClaimCheck]:
        out = []
        for a, b in zip(self.lexical.check(claims, sources), self.embedding.check(claims, sources)):
            support = (a.support + b.support) / 2
            out.append(ClaimCheck(a.claim, support, support >= self.threshold and not a.novel, a.evidence, a.novel))
        return out


CLAIM_PROMPT = """Below are source documents and one claim taken from an answer based on them. Decide whether the
sources support the claim: every fact in it must be stated in or directly implied by the sources.
Write one sentence of reasoning, then your verdict in exactly one of these forms: "[[SUPPORTED]]" or
"[[UNSUPPORTED]]".

### Sources
{sources}

### Claim
{claim}"""
_CLAIM_VERDICT = re.compile(r"\[\[\s*(SUPPORTED|UNSUPPORTED)\s*\]\]", re.IGNORECASE)


class JudgeVerifier:
    """A claim-verification prompt sent to an LLM judge (an OpenAI-compatible endpoint); a
    failed call or an unparseable reply marks the claim as not verified (coverage)."""

    name = "judge"

    def __init__(self, client):
        self.client = client

    def check(self, claims: list[str], sources: list[str]) -> list[ClaimCheck]:
        prompt = JudgePrompt("claim-verification", "single", "You check claims against sources, strictly and fairly.",
                             CLAIM_PROMPT, "[[SUPPORTED]]")
        text = "\n\n".join(sources)
        calls = [JudgeCall(prompt.system_prompt, prompt.fill({"sources": text, "claim": c}), "verdict") for c in claims]
        out = []
        for claim, reply in zip(claims, self.client.judge_many(calls, desc="verify claims")):
            found = {m.upper() for m in _CLAIM_VERDICT.findall(reply.text or "")}
            if len(found) != 1:
                out.append(ClaimCheck(claim, float("nan"), True, reply.error or (reply.text or "")[:200], (), True))
            else:
                ok = found.pop() == "SUPPORTED"
                out.append(ClaimCheck(claim, 1.0 if ok else 0.0, ok, (reply.text or "")[:200]))
        return out


@dataclass(frozen=True)
class AuditResult:
    abstained: bool
    claims: tuple[ClaimCheck, ...]

    @property
    def verified(self) -> tuple[ClaimCheck, ...]:
        return tuple(c for c in self.claims if not c.failed)

    @property
    def unsupported(self) -> int:
        return sum(not c.supported for c in self.verified)

    @property
    def failures(self) -> int:
        return len(self.claims) - len(self.verified)

    @property
    def rate(self) -> float | None:
        """Unsupported claims / verified claims; None when there is nothing to rate (abstention,
        no claims, or no verdict on any claim)."""
        return self.unsupported / len(self.verified) if self.verified else None


def audit(output: str, sources: list[str], verifier) -> AuditResult:
    """Check one output against its sources."""
    if is_abstention(output):
        return AuditResult(True, ())
    return AuditResult(False, tuple(verifier.check(split_claims(output), sources)))
