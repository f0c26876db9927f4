"""Every bad input is a clear error: exit 2, `Error:` naming the file and the place (field path,
line and column, or byte offset), a `Hint:` where the fix is known, no traceback, and the store
exactly as it was (every table's row count unchanged).

One table, one row per bad input, across suites, data files, models, reports, CLI arguments,
environment settings and store paths. Each case starts from a valid workspace whose store holds
one finished run, breaks one thing, and runs the command a user would."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from harness.cli import main

DATA = [{"id": f"t{k}", "topic": f"topic {k}", "tweet": f"tweet {k}"} for k in range(4)]

SUITE = """\
name: s
tasks:
  - name: tweets
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Brief: {{ topic }}", reference: "{{ tweet }}"}
    generation: {max_new_tokens: 8, batch_size: 2}
    scorers: [rouge]
"""

RLOO = """\
variants:
  - name: rm
    parent: fake-b
    method: reward_model
    config: {data: {path: d.jsonl, prompt: "{{ topic }}", chosen: " {{ tweet }}", rejected: " no"}}
  - name: rl
    parent: fake-b
    method: rloo
    config:
      data: {path: d.jsonl, prompt: "{{ topic }}"}
      reward: {model: rm}
      training: {num_generations: 2, batch_size: 4}
"""

JUDGE = """\
  - name: judged
    type: judge
    grading: pairwise
    of: tweets
    baseline: fake-b
    judge: {backend: openai, base_url: "http://127.0.0.1:9/v1", model: m, max_retries: 0}
"""

MODELS = """\
base:
  name: fake-b
  source: fake
  options: {default_output: "tweet 1"}
"""

SFT = """\
variants:
  - name: tuned
    parent: fake-b
    method: sft_lora
    config:
      data: {path: d.jsonl, prompt: "{{ topic }}", completion: " {{ tweet }}"}
"""

REPORT = """\
title: R
variants: [fake-b]
gate:
  - {variant: fake-b, task: tweets, metric: rougeL, min: 0.1}
"""

# The suite with new generation settings, so `run` would evaluate (and write) again if it got that far
SUITE_CHANGED = SUITE.replace("max_new_tokens: 8", "max_new_tokens: 9")
KEYED_JUDGE = JUDGE.replace("max_retries: 0", "max_retries: 0, api_key_env: HARNESS_TEST_UNSET_KEY")
LATENCY_SUITE = SUITE.replace("type: generation", "type: latency").replace("    scorers: [rouge]\n", "    latency: {concurrency: [0]}\n")
SHEET_HEADER = "run_id,sample_id,claim_index,claim,verifier_supported,human_supported\n"

TABLES = ("runs", "samples", "scores", "judgments", "run_stats", "variants", "judge_cache", "checkpoints", "audit_labels",
          "fidelity")


@dataclass
class Workspace:
    root: Path

    @property
    def suite(self) -> Path:
        return self.root / "suites" / "s.yaml"

    @property
    def models(self) -> Path:
        return self.root / "models" / "m.yaml"

    @property
    def report(self) -> Path:
        return self.root / "reports" / "r.yaml"

    @property
    def store(self) -> Path:
        return self.root / "h.duckdb"

    def put(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    def run(self, *extra: str) -> list[str]:
        return ["run", str(self.suite), "--models", str(self.models), "--store", str(self.store), *extra]

    def validate(self, path: Path) -> list[str]:
        return ["validate", str(path)]


def _jsonl(rows) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Path:
    """A valid workspace whose store holds one finished run of the suite."""
    root = tmp_path_factory.mktemp("valid")
    ws = Workspace(root)
    ws.put("suites/s.yaml", SUITE)
    ws.put("suites/d.jsonl", _jsonl(DATA))
    ws.put("models/m.yaml", MODELS)
    ws.put("models/d.jsonl", _jsonl(DATA))
    ws.put("reports/r.yaml", REPORT)
    assert main(ws.run()) == 0
    return root


def _zero_middle(data: bytes) -> bytes:
    """The store with every block after its headers zeroed (its rows' checksums no longer match)."""
    return data[:12288] + bytes(len(data) - 12288)


def _counts(store: Path) -> dict[str, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        con.close()


def latin1(text: str) -> bytes:
    return text.encode("latin-1")


# (id, break one thing and return the command's arguments, what stderr must name, a Hint: expected)
CASES = [
    # -- suites ----------------------------------------------------------------------------------
    ("suite-unknown-top-key", lambda w: (w.put("suites/s.yaml", SUITE + "nmae: x\n"), w.validate(w.suite))[1],
     ["s.yaml", "nmae: unknown key"], False),
    ("suite-unknown-task-key", lambda w: (w.put("suites/s.yaml", SUITE.replace("prompt:", "promt:")), w.run())[1],
     ["s.yaml", "tasks[0].promt: unknown key; did you mean 'prompt'?"], False),
    ("suite-wrong-type", lambda w: (w.put("suites/s.yaml", SUITE.replace("max_new_tokens: 8", "max_new_tokens: ten")), w.run())[1],
     ["s.yaml", "tasks[0].generation.max_new_tokens"], False),
    ("suite-negative-count", lambda w: (w.put("suites/s.yaml", SUITE.replace("max_new_tokens: 8", "max_new_tokens: -5")), w.run())[1],
     ["s.yaml", "tasks[0].generation.max_new_tokens", "greater than or equal to 1"], False),
    ("suite-zero-batch", lambda w: (w.put("suites/s.yaml", SUITE.replace("batch_size: 2", "batch_size: 0")), w.run())[1],
     ["s.yaml", "tasks[0].generation.batch_size"], False),
    ("suite-negative-temperature", lambda w: (w.put("suites/s.yaml", SUITE.replace("batch_size: 2", "batch_size: 2, temperature: -1")),
                                              w.run())[1], ["s.yaml", "generation.temperature"], False),
    ("suite-top-p-zero", lambda w: (w.put("suites/s.yaml", SUITE.replace("batch_size: 2", "batch_size: 2, top_p: 0")), w.run())[1],
     ["s.yaml", "generation.top_p"], False),
    ("suite-data-limit-negative", lambda w: (w.put("suites/s.yaml", SUITE.replace("path: d.jsonl", "path: d.jsonl, limit: -1")), w.run())[1],
     ["s.yaml", "tasks[0].data.limit"], False),
    ("suite-yaml-syntax", lambda w: (w.put("suites/s.yaml", SUITE.replace("batch_size: 2}", "batch_size: 2")), w.run())[1],
     ["s.yaml", "line 9", "invalid YAML"], True),
    ("suite-duplicate-key", lambda w: (w.put("suites/s.yaml", SUITE.replace("    type: generation\n", "    type: generation\n    name: again\n")),
                                       w.run())[1], ["s.yaml", "duplicate key 'name' (first on line 3, again on line 5)"], True),
    ("suite-latin1", lambda w: (w.put("suites/s.yaml", latin1(SUITE.replace("name: s", "name: s\ndescription: café"))), w.run())[1],
     ["s.yaml: byte 24 (line 2, column 17): not UTF-8"], True),
    ("suite-empty", lambda w: (w.put("suites/s.yaml", ""), w.run())[1], ["s.yaml: file is empty"], True),
    ("suite-not-a-mapping", lambda w: (w.put("suites/s.yaml", "- a\n- b\n"), w.run())[1], ["s.yaml", "(top level)"], False),
    ("suite-missing-file", lambda w: (w.suite.unlink(), w.run())[1], ["s.yaml: file not found"], False),
    ("suite-is-a-directory", lambda w: (w.suite.unlink(), w.suite.mkdir(), w.run())[2], ["s.yaml: file not found (it is a directory)"], False),
    ("suite-unknown-scorer", lambda w: (w.put("suites/s.yaml", SUITE.replace("[rouge]", "[rogue]")), w.run())[1],
     ["s.yaml", "scorers[0]", "unknown scorer 'rogue'", "Did you mean 'rouge'"], False),
    ("suite-scorer-wrong-task-type", lambda w: (w.put("suites/s.yaml", SUITE.replace("[rouge]", "[acc]")), w.run())[1],
     ["s.yaml", "scorers[0]", "does not apply to generation tasks"], False),
    ("suite-unknown-task-type", lambda w: (w.put("suites/s.yaml", SUITE.replace("type: generation", "type: generate")), w.run())[1],
     ["s.yaml", "tasks[0]"], False),
    ("suite-data-missing", lambda w: (w.put("suites/s.yaml", SUITE.replace("d.jsonl", "nope.jsonl")), w.run())[1],
     ["nope.jsonl: data file not found"], True),
    ("suite-template-syntax", lambda w: (w.put("suites/s.yaml", SUITE.replace("{{ topic }}", "{{ topic }")), w.run())[1],
     ["s.yaml", "prompt.template: template syntax error on line 1"], False),
    ("suite-template-undefined", lambda w: (w.put("suites/s.yaml", SUITE.replace("{{ topic }}", "{{ topik }}")), w.run())[1],
     ["s.yaml", "item 0: prompt.template", "'topik' is undefined"], False),
    ("suite-duplicate-task-names", lambda w: (w.put("suites/s.yaml", SUITE + SUITE.split("tasks:\n")[1]), w.run())[1],
     ["s.yaml", "task names must be unique; repeated: tweets"], False),
    ("suite-judge-of-unknown", lambda w: (w.put("suites/s.yaml", SUITE + JUDGE.replace("of: tweets", "of: tweetz")), w.run())[1],
     ["s.yaml", "of: 'tweetz' is not a generation task"], False),
    ("suite-judge-anchors-missing", lambda w: (w.put("suites/s.yaml", SUITE + JUDGE.replace("max_retries: 0", "max_retries: 0, anchors: a.jsonl")),
                                               w.validate(w.suite))[1], ["a.jsonl: anchor file not found (judge.anchors)"], False),
    ("suite-judge-unknown-prompt", lambda w: (w.put("suites/s.yaml", SUITE + JUDGE.replace("max_retries: 0", "max_retries: 0, prompt: pairr")),
                                              w.validate(w.suite))[1], ["s.yaml", "judge.prompt", "unknown judge prompt 'pairr'"], False),
    ("suite-judge-key-unset-validate", lambda w: (w.put("suites/s.yaml", SUITE + KEYED_JUDGE),
                                                  w.validate(w.suite))[1], ["s.yaml", "task 'judged': judge.api_key_env", "HARNESS_TEST_UNSET_KEY"], True),
    ("suite-judge-key-unset-run", lambda w: (w.put("suites/s.yaml", SUITE_CHANGED + KEYED_JUDGE),
                                             w.run())[1], ["s.yaml", "judge.api_key_env", "HARNESS_TEST_UNSET_KEY is not set"], True),
    ("suite-latency-concurrency-zero", lambda w: (w.put("suites/s.yaml", LATENCY_SUITE), w.run())[1],
     ["s.yaml", "tasks[0].latency.concurrency[0]"], False),
    # -- data files ------------------------------------------------------------------------------
    ("jsonl-malformed", lambda w: (w.put("suites/d.jsonl", _jsonl(DATA[:1]) + '{"id": "t9", topic}\n'), w.run())[1],
     ["d.jsonl: line 2, column 14: malformed JSON"], True),
    ("jsonl-not-an-object", lambda w: (w.put("suites/d.jsonl", "[1, 2]\n"), w.run())[1], ["d.jsonl: line 1: expected a JSON object"], False),
    ("jsonl-latin1", lambda w: (w.put("suites/d.jsonl", latin1(_jsonl(DATA[:1]) + '{"id": "t9", "topic": "caf\u00e9", "tweet": "x"}\n')), w.run())[1],
     ["d.jsonl: byte 79 (line 2, column 27): not UTF-8"], True),
    ("jsonl-null-value", lambda w: (w.put("suites/d.jsonl", _jsonl(DATA[:2] + [{"id": "t9", "topic": None, "tweet": "x"}])), w.run())[1],
     ["s.yaml: task 'tweets': item 2: prompt.template: a value the template prints is null (null fields: topic)"], True),
    ("jsonl-missing-field", lambda w: (w.put("suites/d.jsonl", _jsonl(DATA[:2] + [{"id": "t9", "topic": "x"}])), w.run())[1],
     ["s.yaml: task 'tweets': item 2: prompt.reference", "'tweet' is undefined"], False),
    ("jsonl-duplicate-ids", lambda w: (w.put("suites/d.jsonl", _jsonl(DATA + DATA[:1])), w.run())[1],
     ["s.yaml", "duplicate sample id 't0'"], False),
    ("jsonl-no-id-field", lambda w: (w.put("suites/d.jsonl", _jsonl([{"topic": "a", "tweet": "b"}])), w.run())[1],
     ["s.yaml", "id_field 'id' is not a field of item 0"], False),
    ("jsonl-empty", lambda w: (w.put("suites/d.jsonl", "\n"), w.run())[1], ["s.yaml", "task 'tweets': data has no items"], True),
    ("csv-missing-cell", lambda w: (w.put("suites/d.csv", "id,topic,tweet\nt0,a,b\nt1,c\n"),
                                    w.put("suites/s.yaml", SUITE.replace("{format: jsonl, path: d.jsonl}", "{format: csv, path: d.csv}")), w.run())[2],
     ["d.csv: line 3, column 3 (tweet): missing value"], True),
    ("csv-extra-cell", lambda w: (w.put("suites/d.csv", "id,topic,tweet\nt0,a,b,c\n"),
                                  w.put("suites/s.yaml", SUITE.replace("{format: jsonl, path: d.jsonl}", "{format: csv, path: d.csv}")), w.run())[2],
     ["d.csv: line 2, column 4: more values than header columns (3)"], False),
    ("csv-latin1", lambda w: (w.put("suites/d.csv", latin1("id,topic,tweet\nt0,caf\u00e9,b\n")),
                              w.put("suites/s.yaml", SUITE.replace("{format: jsonl, path: d.jsonl}", "{format: csv, path: d.csv}")), w.run())[2],
     ["d.csv: byte 21 (line 2, column 7): not UTF-8"], True),
    ("mmlu-wrong-columns", lambda w: (w.put("suites/mm/test/x_test.csv", "q,a,b,c,D\n"),
                                      w.put("suites/s.yaml", SUITE.replace("{format: jsonl, path: d.jsonl}", "{format: mmlu_csv, path: mm}")
                                            .replace("    id_field: id\n", "").replace("type: generation", "type: multiple_choice")
                                            .replace(", reference: \"{{ tweet }}\"", "").replace("{{ topic }}", "{{ question }}")
                                            .replace("    generation: {max_new_tokens: 8, batch_size: 2}\n", "").replace("[rouge]", "[acc]")), w.run())[2],
     ["x_test.csv: line 1: expected 6 columns"], False),
    ("mc-gold-out-of-range", lambda w: (w.put("suites/d.jsonl", _jsonl([{"id": "q", "question": "?", "choices": ["a", "b"], "answer": 7}])),
                                        w.put("suites/s.yaml", SUITE.replace("type: generation", "type: multiple_choice")
                                              .replace(", reference: \"{{ tweet }}\"", "").replace("{{ topic }}", "{{ question }}")
                                              .replace("    generation: {max_new_tokens: 8, batch_size: 2}\n", "").replace("[rouge]", "[acc]")), w.run())[2],
     ["s.yaml: task 'tweets': item 0: answer 7 is out of range for 2 options"], False),
    ("answers-malformed", lambda w: (w.put("a.jsonl", '{"id": "t0"}\n'), w.run("--answers", f"x={w.root / 'a.jsonl'}"))[1],
     ["a.jsonl: line 1: expected MT-Bench's"], False),
    ("answers-missing-file", lambda w: w.run("--answers", f"x={w.root / 'none.jsonl'}"), ["none.jsonl: answers file not found"], True),
    ("answers-arg-without-file", lambda w: w.run("--answers", "x"), ["--answers 'x': expected NAME=FILE"], False),
    # -- models ----------------------------------------------------------------------------------
    ("models-unknown-key", lambda w: (w.put("models/m.yaml", MODELS.replace("source: fake", "source: fake\n  sorce: x")), w.run())[1],
     ["m.yaml", "base.sorce: unknown key; did you mean 'source'?"], False),
    ("models-unknown-recipe", lambda w: (w.put("models/m.yaml", MODELS + SFT.replace("sft_lora", "sft_lorra")), w.validate(w.models))[1],
     ["m.yaml", "variants[0].method", "unknown recipe 'sft_lorra'"], False),
    ("models-unknown-parent", lambda w: (w.put("models/m.yaml", MODELS + SFT.replace("parent: fake-b", "parent: fake-c")), w.run())[1],
     ["m.yaml", "fake-c"], False),
    ("models-recipe-config", lambda w: (w.put("models/m.yaml", MODELS + SFT + "      lora: {r: 0}\n"), w.validate(w.models))[1],
     ["m.yaml", "variants[0].config", "lora.r"], False),
    ("models-training-data-missing", lambda w: (w.put("models/m.yaml", MODELS + SFT.replace("path: d.jsonl", "path: gone.jsonl")), w.validate(w.models))[1],
     ["gone.jsonl"], True),
    ("models-rloo-partial-groups", lambda w: (w.put("models/m.yaml", MODELS + RLOO.replace("batch_size: 4", "batch_size: 3")),
                                              w.validate(w.models))[1],
     ["m.yaml", "variants[1].config", "must be a multiple of num_generations (2)"], False),
    ("models-reward-model-as-parent", lambda w: (w.put("models/m.yaml", MODELS + RLOO.replace("parent: fake-b\n    method: rloo",
                                                                                            "parent: rm\n    method: rloo")),
                                                 w.validate(w.models))[1],
     ["m.yaml", "variants[1] (rl).parent: 'rm' is a reward_model (it scores outputs)"], True),
    ("suite-reward-unknown-model", lambda w: (w.put("suites/s.yaml", SUITE.replace("[rouge]", "[{reward: {model: nope}}]")), w.run())[1],
     ["s.yaml", "task 'tweets'", "unknown model 'nope'"], False),
    ("suite-sequence-kl-zero-samples", lambda w: (w.put("suites/s.yaml", SUITE + "    sequence_kl: {samples: 0}\n"), w.run())[1],
     ["s.yaml", "sequence_kl.samples"], False),
    ("models-duplicate-key", lambda w: (w.put("models/m.yaml", MODELS + "base: {name: again}\n"), w.run())[1],
     ["m.yaml", "duplicate key 'base' (first on line 1, again on line 5)"], True),
    ("models-fake-unknown-option", lambda w: (w.put("models/m.yaml", MODELS.replace("default_output", "defualt_output")), w.validate(w.models))[1],
     ["m.yaml: base.options: unknown fake-backend option(s) ['defualt_output']"], False),
    ("models-gguf-not-gguf", lambda w: (w.put("models/fake.gguf", b"PK\x03\x04 not a gguf"),
                                        w.put("models/m.yaml", "base: {name: g, source: gguf, path: fake.gguf}\n"), w.validate(w.models))[2],
     ["m.yaml: base.path", "fake.gguf: not a GGUF file"], True),
    ("models-gguf-missing", lambda w: (w.put("models/m.yaml", "base: {name: g, source: gguf, path: none.gguf}\n"), w.run())[1],
     ["m.yaml: base.path", "none.gguf: GGUF file not found"], True),
    ("models-hf-dir-not-a-model", lambda w: ((w.root / "models" / "folder").mkdir(),
                                             w.put("models/m.yaml", "base: {name: h, source: hf_dir, path: folder}\n"), w.validate(w.models))[2],
     ["m.yaml: base.path", "folder: not a transformers model directory (no config.json)"], True),
    ("models-hf-dir-bad-config", lambda w: (w.put("models/folder/config.json", "{oops"),
                                            w.put("models/m.yaml", "base: {name: h, source: hf_dir, path: folder}\n"), w.run())[2],
     ["m.yaml: base.path", "config.json: not valid JSON"], False),
    ("models-hf-dir-no-weights", lambda w: (w.put("models/folder/config.json", "{}"),
                                            w.put("models/m.yaml", "base: {name: h, source: hf_dir, path: folder}\n"), w.run())[2],
     ["m.yaml: base.path", "no weights"], False),
    ("models-hf-option-zero", lambda w: (w.put("models/folder/config.json", "{}"), w.put("models/folder/model.safetensors", b"x"),
                                         w.put("models/m.yaml", "base: {name: h, source: hf_dir, path: folder, options: {batch_size: 0}}\n"),
                                         w.validate(w.models))[3],
     ["m.yaml: base.options.batch_size: expected a whole number of at least 1"], False),
    ("run-variant-not-built", lambda w: (w.put("models/m.yaml", MODELS + SFT), w.run("--variant", "tuned"))[1],
     ["variant 'tuned' is not built"], True),
    ("run-unknown-variant", lambda w: w.run("--variant", "fake-c"), ["m.yaml", "unknown variant 'fake-c'"], False),
    ("run-baseline-never-run", lambda w: (w.put("suites/s.yaml", SUITE_CHANGED + JUDGE.replace("baseline: fake-b", "baseline: ghost")),
                                          w.run())[1], ["s.yaml: task 'judged'", "baseline 'ghost' has no stored outputs of task 'tweets'"], True),
    ("run-nothing-to-evaluate", lambda w: ["run", str(w.suite), "--store", str(w.store)], ["nothing to evaluate"], False),
    # -- reports ---------------------------------------------------------------------------------
    ("report-unknown-key", lambda w: (w.put("reports/r.yaml", REPORT + "titel: x\n"), ["report", str(w.report), "--store", str(w.store)])[1],
     ["r.yaml", "titel: unknown key; did you mean 'title'?"], False),
    ("report-gate-unknown-metric", lambda w: (w.put("reports/r.yaml", REPORT.replace("rougeL", "rogueL")), w.validate(w.report))[1],
     ["r.yaml", "gate[0].metric", "rogueL"], False),
    ("report-negative-margin", lambda w: (w.put("reports/r.yaml", REPORT.replace("min: 0.1", "baseline: fake-b, margin: -1")),
                                          ["gate", str(w.report), "--store", str(w.store)])[1], ["r.yaml", "gate[0].margin"], False),
    ("report-alpha-out-of-range", lambda w: (w.put("reports/r.yaml", REPORT + "statistics: {alpha: 0.7}\n"),
                                             ["gate", str(w.report), "--store", str(w.store)])[1], ["r.yaml", "statistics.alpha"], False),
    ("report-unknown-variant", lambda w: (w.put("reports/r.yaml", REPORT.replace("variants: [fake-b]", "variants: [fake-b, fake-x]")),
                                          ["report", str(w.report), "--store", str(w.store)])[1], ["r.yaml", "fake-x"], False),
    ("report-out-is-a-directory", lambda w: ["report", str(w.report), "--store", str(w.store), "--out", str(w.root)],
     ["{root}: cannot write the report"], True),
    ("gate-without-rules", lambda w: (w.put("reports/r.yaml", "title: R\nvariants: [fake-b]\n"), ["gate", str(w.report), "--store", str(w.store)])[1],
     ["r.yaml: no gate rules"], True),
    ("gate-junit-is-a-directory", lambda w: ["gate", str(w.report), "--store", str(w.store), "--junit", str(w.root)],
     ["cannot write"], True),
    # -- command-line arguments and settings ------------------------------------------------------
    ("cli-limit-zero", lambda w: w.run("--limit", "0"), ["--limit", "must be at least 1, got 0"], False),
    ("cli-limit-negative", lambda w: w.run("--limit", "-1"), ["--limit", "must be at least 1, got -1"], False),
    ("cli-limit-not-a-number", lambda w: w.run("--limit", "ten"), ["--limit", "expected a whole number, got 'ten'"], False),
    ("cli-audit-n-negative", lambda w: ["audit", "export", "--task", "tweets", "-n", "-1", "--out", str(w.root / "a.csv"), "--store", str(w.store)],
     ["-n", "must be at least 1, got -1"], False),
    ("cli-plan-negative-price", lambda w: ["plan", str(w.report), "--price-per-hour", "-2", "--store", str(w.store)],
     ["--price-per-hour", "must be at least 0"], False),
    ("cli-unknown-list", lambda w: ["list", "variantz", "--store", str(w.store)], ["invalid choice: 'variantz'"], False),
    ("audit-sheet-latin1", lambda w: (w.put("sheet.csv", latin1(SHEET_HEADER + "r,s,0,caf\u00e9,yes,no\n")),
                                      ["audit", "import", str(w.root / "sheet.csv"), "--store", str(w.store)])[1],
     ["sheet.csv: byte 79 (line 2, column 10): not UTF-8"], True),
    ("audit-sheet-missing-cell", lambda w: (w.put("sheet.csv", SHEET_HEADER + "r,s,0,c,yes\n"),
                                            ["audit", "import", str(w.root / "sheet.csv"), "--store", str(w.store)])[1],
     ["sheet.csv: line 2, column 6 (human_supported): missing value"], True),
    ("export-into-a-file", lambda w: (w.put("snap", "x"), ["export", str(w.root / "snap"), "--store", str(w.store)])[1],
     ["snap: is a file"], True),
    ("env-checkpoint-items-zero", lambda w: (w.put("suites/s.yaml", SUITE_CHANGED), w.run())[1],
     ["HARNESS_CHECKPOINT_ITEMS='0': must be at least 1"], True, {"HARNESS_CHECKPOINT_ITEMS": "0"}),
    ("env-store-wait-not-a-number", lambda w: ["list", "runs", "--store", str(w.store)],
     ["HARNESS_STORE_WAIT_S='soon': expected a number of seconds"], True, {"HARNESS_STORE_WAIT_S": "soon"}),
    ("env-store-memory-not-a-size", lambda w: ["list", "runs", "--store", str(w.store)],
     ["HARNESS_STORE_MEMORY='lots': expected a size such as 512MB"], True, {"HARNESS_STORE_MEMORY": "lots"}),
    # -- store paths -----------------------------------------------------------------------------
    ("store-is-a-directory", lambda w: ["list", "runs", "--store", str(w.root)], ["{root}: is a directory, not a store file"], True),
    ("store-is-sqlite", lambda w: (sqlite3.connect(w.root / "lite.db").execute("CREATE TABLE t (x)"),
                                   w.run()[:-1] + [str(w.root / "lite.db")])[1], ["lite.db: is an SQLite database, not a DuckDB store"], True),
    ("store-is-truncated", lambda w: ((w.root / "cut.duckdb").write_bytes(w.store.read_bytes()[:5000]),
                                      ["list", "runs", "--store", str(w.root / "cut.duckdb")])[1], ["cut.duckdb: store is damaged"], True),
    ("store-is-truncated-to-half", lambda w: ((w.root / "half.duckdb").write_bytes(w.store.read_bytes()[:w.store.stat().st_size // 2]),
                                              ["report", str(w.report), "--store", str(w.root / "half.duckdb"), "--out",
                                               str(w.root / "r.html")])[1], ["half.duckdb: store is damaged", "truncated"], True),
    ("store-run-on-a-half-store", lambda w: ((w.root / "half.duckdb").write_bytes(w.store.read_bytes()[:w.store.stat().st_size // 2]),
                                             w.run()[:-1] + [str(w.root / "half.duckdb")])[1], ["half.duckdb: store is damaged"], True),
    ("store-is-zero-filled", lambda w: ((w.root / "z.duckdb").write_bytes(bytes(w.store.stat().st_size)),
                                        ["gate", str(w.report), "--store", str(w.root / "z.duckdb")])[1], ["z.duckdb: store is damaged"], True),
    ("store-has-a-zeroed-block", lambda w: ((w.root / "zb.duckdb").write_bytes(_zero_middle(w.store.read_bytes())),
                                            ["list", "runs", "--store", str(w.root / "zb.duckdb")])[1],
     ["zb.duckdb: store is damaged", "checksum"], True),
    ("store-is-a-text-file", lambda w: (w.put("notes.txt", "hello\n"), ["gate", str(w.report), "--store", str(w.root / "notes.txt")])[1],
     ["notes.txt: store is damaged", "not a DuckDB database file"], True),
    ("store-below-a-file", lambda w: (w.put("afile", "x"), w.run()[:-1] + [str(w.root / "afile" / "h.duckdb")])[1],
     ["afile is a file, so no store can be created below it"], True),
    ("store-remote", lambda w: ["list", "runs", "--store", "md:shared_db"], ["md:shared_db: remote stores are refused"], True),
    ("store-missing-for-a-reader", lambda w: ["report", str(w.report), "--store", str(w.root / "none.duckdb")],
     ["none.duckdb: no results store here yet"], True),
    ("store-newer-schema", lambda w: (shutil.copy(w.store, w.root / "new.duckdb"),
                                      duckdb.connect(str(w.root / "new.duckdb"))
                                      .execute("INSERT INTO schema_migrations VALUES (99, '099_future', now())").close(),
                                      w.run()[:-1] + [str(w.root / "new.duckdb")])[2], ["new.duckdb: written by a newer harness", "099_future"], True),
]


def _case_params():
    for case in CASES:
        name, make, expect, hint = case[:4]
        env = case[4] if len(case) > 4 else {}
        yield pytest.param(make, expect, hint, env, id=name)


def test_the_table_is_broad():
    assert len(CASES) >= 60
    areas = {name.split("-")[0] for name, *_ in CASES}
    assert {"suite", "jsonl", "csv", "models", "report", "gate", "cli", "env", "store", "run", "audit"} <= areas


@pytest.mark.parametrize("make, expect, hint, env", list(_case_params()))
def test_bad_input_is_a_clear_error_and_changes_nothing(populated, tmp_path, capsys, monkeypatch, make, expect, hint, env):
    root = tmp_path / "ws"
    shutil.copytree(populated, root)
    ws = Workspace(root)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HARNESS_TEST_UNSET_KEY", raising=False)
    argv = make(ws)
    before = _counts(ws.store)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    err = captured.err + (captured.out if argv[0] == "validate" else "")
    assert code == 2, err
    assert "Traceback" not in err
    assert ("Error:" in err or "error:" in err or "FAIL" in err), err
    for needle in expect:
        assert needle.replace("{root}", str(root)) in err, f"{needle!r} not in:\n{err}"
    if hint:
        assert "Hint:" in err, err
    monkeypatch.delenv("HARNESS_STORE_WAIT_S", raising=False)
    monkeypatch.delenv("HARNESS_CHECKPOINT_ITEMS", raising=False)
    assert _counts(ws.store) == before  # nothing written
