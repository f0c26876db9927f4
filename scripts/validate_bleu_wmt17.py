"""Validation (not a unit test): harness's corpus BLEU/chrF on real WMT17 output equals sacrebleu's.

Replays the newstest2017 en-de system outputs through the whole pipeline (suite -> fake backend
scripted with the system's lines -> DuckDB rows -> corpus metric) and compares with sacrebleu run
directly on the same files. Needs ../shared/data/wmt17 (skips with a message when absent).

    python scripts/validate_bleu_wmt17.py [--data ../shared/data/wmt17]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "wmt17")
    args = parser.parse_args()
    ref_file = args.data / "newstest2017.ref.de"
    if not ref_file.is_file():
        print(f"skipped: {ref_file} not found")
        return 0
    import sacrebleu
    import yaml

    from harness.analysis.metrics import summarize
    from harness.run.evaluate import run_suites
    from harness.store.db import open_store

    refs = ref_file.read_text(encoding="utf-8").splitlines()
    print("system | metric | sacrebleu | harness | equal")
    for system in sorted(args.data.glob("newstest2017.*.en-de")):
        outputs = system.read_text(encoding="utf-8").splitlines()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "items.jsonl").write_text("".join(json.dumps({"id": f"{i:05d}", "ref": r}, ensure_ascii=False) + "\n"
                                                     for i, r in enumerate(refs)), encoding="utf-8")
            (tmp / "suite.yaml").write_text(yaml.safe_dump({"name": "wmt17", "tasks": [{
                "name": "en_de", "type": "generation", "id_field": "id",
                "data": {"format": "jsonl", "path": str(tmp / "items.jsonl")},
                "prompt": {"template": "{{ id }}", "reference": "{{ ref }}"},
                "generation": {"batch_size": 64}, "scorers": ["bleu", "chrf"]}]}))
            # The fake backend replays the system's lines in item order: a pre-generated-answers model.
            (tmp / "models.yaml").write_text(yaml.safe_dump({"base": {"name": system.name.split(".")[1], "source": "fake",
                                                                      "options": {"outputs": outputs}}}, allow_unicode=True))
            run_suites([tmp / "suite.yaml"], tmp / "models.yaml", tmp / "h.duckdb")
            with open_store(tmp / "h.duckdb", read_only=True) as store:
                got = {s.metric: s.estimate.mean for s in summarize(store, [system.name.split(".")[1]], resamples=100)}
        expected = {"corpus_bleu": sacrebleu.corpus_bleu(outputs, [refs]).score,
                    "corpus_chrf": sacrebleu.corpus_chrf(outputs, [refs]).score}
        for metric, value in expected.items():
            print(f"{system.name.split('.')[1]} | {metric} | {value:.4f} | {got[metric]:.4f} | {abs(value - got[metric]) < 1e-9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
