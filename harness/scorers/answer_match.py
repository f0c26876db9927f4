"""`answer_match`: the answer extracted from an output (harness.tasks.extract) compared with the reference.

Per item: `answer_match` (1 when the extracted answer equals the reference's) and
`extraction_failed` (1 when the output holds no answer the extractor can find). A failed
extraction scores 0 on answer_match, as lm-eval scores "[invalid]", and is counted on its own
metric, so "wrong" and "answered in another format" are told apart in the report and the gate.
"""

from __future__ import annotations

from pathlib import Path

from harness.config.loader import parse_model
from harness.errors import ConfigError
from harness.hashing import stable_hash
from harness.scorers import Scored, needs_config, scorer
from harness.stats.metricspec import Metric
from harness.tasks.extract import EXTRACTION_FAILED, AnswerMatchSpec, extract

METRICS = (
    Metric("answer_match", "answer match", "higher", "binary", low=0, high=1,
           description="the answer extracted from the output equals the reference (0 when none was found)"),
    EXTRACTION_FAILED,
)


def configure(config: dict, where: str, base_dir: Path):
    spec = parse_model(AnswerMatchSpec, config, where)

    def gold_of(sample) -> str | None:
        raw = (sample.reference or "").strip()
        return extract(spec.extract, raw) if spec.reference else raw

    def same(got: str, gold: str) -> bool:
        if spec.compare == "numeric":
            try:
                return abs(float(got) - float(gold.replace(",", "").replace("$", ""))) <= spec.tolerance
            except ValueError:
                return False
        if spec.compare == "ignore_case":
            return got.casefold() == gold.casefold()
        return got == gold

    def answer_match(sample, output) -> Scored:
        gold = gold_of(sample)
        if not gold:
            raise ConfigError(f"{where}: item {sample.id}: no reference answer"
                              + (" found by the extractor in its reference" if spec.reference else ""),
                              hint="check prompt.reference, or set reference: false to take it as it is")
        got = extract(spec.extract, output.text)
        failed = got is None
        return Scored({"answer_match": 0.0 if got is None else float(same(got, gold)), "extraction_failed": float(failed)},
                      {"extracted": got, "gold": gold, "extractor": spec.extract.type})

    return answer_match_scorer.configured(answer_match, METRICS, stable_hash(spec.model_dump()))


answer_match_scorer = scorer(task_types=("generation",), metrics=METRICS, needs_reference=True, configure=configure,
                             name="answer_match", description="the answer extracted from the output (regex, number, letter, "
                             "JSON field) against the reference; needs a config: `- answer_match: {extract: {type: last_number}}`")(
    needs_config("answer_match"))
