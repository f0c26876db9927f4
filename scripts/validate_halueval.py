"""Validate the hallucination verifiers on HaluEval (../shared/data/halueval): for each set (QA,
dialogue, summarization), every item's right and hallucinated answer is audited against its
knowledge; an answer is called hallucinated when any of its claims is unsupported. Accuracy at
telling right from hallucinated is reported on the second half of each set, with the support
threshold fitted on the first half (a dev split), beside the HaluEval paper's ChatGPT figures.
Not a unit test: it needs ../shared/data.

    python scripts/validate_halueval.py [--limit N] [--verifiers lexical,embedding,hybrid]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "halueval"
CHATGPT = {"qa": 0.626, "dialogue": 0.724, "summarization": 0.585}
OVERLAP = {"qa": 0.87, "dialogue": 0.53, "summarization": 0.68}  # trivial word overlap (shared/data/README)
THRESHOLDS = [x / 20 for x in range(2, 20)]


def load_sets(limit: int | None) -> dict[str, list[tuple[list[str], str, str]]]:
    """HaluEval's three formats -> (sources, right answer, hallucinated answer)."""
    def rows(name):
        lines = (DATA / name).read_text().splitlines()
        return [json.loads(line) for line in lines[:limit] if line.strip()]
    return {
        "qa": [([r["knowledge"], r["question"]], r["right_answer"], r["hallucinated_answer"]) for r in rows("qa_first1000.jsonl")],
        "dialogue": [([r["knowledge"], r["dialogue_history"]], r["right_response"], r["hallucinated_response"])
                     for r in rows("dialogue_first500.jsonl")],
        "summarization": [([r["document"]], r["right_summary"], r["hallucinated_summary"]) for r in rows("summarization_first500.jsonl")],
    }


def supports(verifier, items):
    """Per answer: (label 1 = hallucinated, min claim support, any novel entity/number)."""
    from harness.scorers.claims import split_claims

    out = []
    for sources, right, hallucinated in items:
        for text, label in ((right, 0), (hallucinated, 1)):
            claims = split_claims(text) or [text]
            checks = verifier.check(claims, sources)
            out.append((label, min(c.support for c in checks), any(c.novel for c in checks)))
    return out


def accuracy(rows, threshold: float, strict: bool) -> float:
    right = sum((1 if (s < threshold or (strict and novel)) else 0) == label for label, s, novel in rows)
    return right / len(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, help="first N items of each set")
    ap.add_argument("--verifiers", default="lexical,embedding,hybrid")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skip: {DATA} not found (the shared validation data is not part of a clone)")
        return 0
    from harness.scorers.claims import EmbeddingVerifier, HybridVerifier, LexicalVerifier

    sets = load_sets(args.limit)
    print(f"{'set':14} {'verifier':10} {'strict':6} {'threshold':>9} {'dev acc':>8} {'test acc':>9} {'ChatGPT':>8} {'overlap':>8} {'n test':>7} {'s':>5}")
    for name, items in sets.items():
        half = len(items) // 2
        for vname in args.verifiers.split(","):
            t0 = time.perf_counter()
            # threshold 0 / strict off: raw supports, so one pass serves every threshold
            if vname == "lexical":
                rows = supports(LexicalVerifier(0.0, strict=True), items)
            elif vname == "embedding":
                rows = supports(EmbeddingVerifier(0.0, strict=True), items)
            else:
                rows = supports(HybridVerifier(0.0, strict=True), items)
            wall = time.perf_counter() - t0
            dev, test = rows[: 2 * half], rows[2 * half:]
            for strict in (False, True):
                best = max(THRESHOLDS, key=lambda t: accuracy(dev, t, strict))
                print(f"{name:14} {vname:10} {str(strict):6} {best:9.2f} {accuracy(dev, best, strict):8.3f} {accuracy(test, best, strict):9.3f} "
                      f"{CHATGPT[name]:8.3f} {OVERLAP[name]:8.2f} {len(test):7d} {wall:5.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
