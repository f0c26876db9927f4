"""`harness init`: a working starter workspace for a named model (a suite with a multiple-choice
and a generation task over small data it writes, the model as a models file, a report with a
gate), and JSON Schemas of the three file kinds that the starter files reference, so editors
complete and check their keys (YAML language server's `$schema` comment)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.config.models import ModelsFile
from harness.config.report import ReportSpec
from harness.config.suite import SuiteSpec
from harness.errors import ConfigError

SCHEMAS = {"suite": SuiteSpec, "models": ModelsFile, "report": ReportSpec}
"""File kind -> the pydantic model that parses it."""

QUIZ = [
    ("What is 7 + 5?", ["10", "12", "13", "75"], 1),
    ("Which planet is closest to the Sun?", ["Venus", "Earth", "Mercury", "Mars"], 2),
    ("What is the capital of Japan?", ["Kyoto", "Osaka", "Tokyo", "Nagoya"], 2),
    ("How many sides does a hexagon have?", ["5", "6", "7", "8"], 1),
    ("Water boils at sea level at what temperature in Celsius?", ["90", "100", "110", "120"], 1),
    ("Which gas do plants take in for photosynthesis?", ["Oxygen", "Nitrogen", "Carbon dioxide", "Helium"], 2),
    ("What is 9 x 3?", ["27", "24", "30", "21"], 0),
    ("Which ocean is the largest?", ["Atlantic", "Indian", "Arctic", "Pacific"], 3),
]

BRIEFS = [
    ("Announce that the store opens at 8am on weekdays.", "We open at 8am every weekday. See you soon!"),
    ("Thank customers for a great first year.", "Thank you for a wonderful first year with us!"),
    ("Remind people the sale ends on Sunday.", "Last chance: the sale ends this Sunday."),
    ("Introduce a new seasonal drink.", "Our new seasonal drink is here. Come and try it!"),
    ("Say the shop is closed for a holiday on Monday.", "We are closed on Monday for the holiday."),
    ("Invite people to a free tasting on Friday.", "Join us on Friday for a free tasting!"),
]


def schema_header(kind: str) -> str:
    """The comment that points editors at a kind's schema (relative to a file one folder down)."""
    return f"# yaml-language-server: $schema=../schemas/{kind}.schema.json\n"


def write_schemas(folder: Path) -> list[Path]:
    """`<kind>.schema.json` for the suite, models and report files (JSON Schema from the models
    that parse them: unknown keys are rejected there too, `additionalProperties: false`)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for kind, model in SCHEMAS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema.setdefault("title", f"harness {kind} file")
        path = folder / f"{kind}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        out.append(path)
    return out


def starter_files(model_name: str, models: dict) -> dict[str, str]:
    """Relative path -> text of every file of the starter workspace."""
    quiz = "\n".join(json.dumps({"id": f"q{i}", "question": q, "choices": c, "answer": a}) for i, (q, c, a) in enumerate(QUIZ))
    briefs = "\n".join(json.dumps({"id": f"b{i}", "brief": b, "reference": r}) for i, (b, r) in enumerate(BRIEFS))
    suite = {"name": "starter", "description": "A starter suite: replace the data and prompts with your own.", "seed": 1234,
             "tasks": [{"name": "quiz", "type": "multiple_choice", "data": {"format": "jsonl", "path": "../data/quiz.jsonl"},
                        "id_field": "id",
                        "prompt": {"template": "{{ question }}\nA. {{ choices[0] }}\nB. {{ choices[1] }}\nC. {{ choices[2] }}\n"
                                               "D. {{ choices[3] }}\nAnswer:"},
                        "multiple_choice": {"choices_field": "choices", "answer_field": "answer", "continuation": "letter"},
                        "scorers": ["acc", "acc_norm"]},
                       {"name": "briefs", "type": "generation", "data": {"format": "jsonl", "path": "../data/briefs.jsonl"},
                        "id_field": "id", "prompt": {"template": "Write a short post.\nBrief: {{ brief }}\nPost:",
                                                     "reference": "{{ reference }}"},
                        "generation": {"max_new_tokens": 32, "stop": ["\n"]}, "scorers": ["rouge", "exact_match"]}]}
    report = {"title": f"Does {model_name} pass the starter checks?", "variants": [model_name],
              "gate": [{"variant": model_name, "task": "quiz", "metric": "acc", "min": 0.25, "name": "quiz above chance"}]}
    dump = lambda data: yaml.safe_dump(data, sort_keys=False, allow_unicode=True)  # noqa: E731
    return {"data/quiz.jsonl": quiz + "\n", "data/briefs.jsonl": briefs + "\n",
            "suites/starter.yaml": schema_header("suite") + dump(suite),
            "models/model.yaml": schema_header("models") + dump(models),
            "reports/starter.yaml": schema_header("report") + dump(report)}


def init_workspace(folder: Path, model_name: str, models: dict, force: bool = False) -> list[Path]:
    """Write the starter workspace into `folder`; an existing file is a ConfigError (nothing
    written) unless `force`."""
    files = starter_files(model_name, models)
    existing = [p for p in files if (folder / p).exists()]
    if existing and not force:
        raise ConfigError(f"{folder}: {', '.join(existing)} already exist(s)", hint="pass another folder, or --force to overwrite")
    written = []
    try:
        for rel, text in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
        written += write_schemas(folder / "schemas")
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot write the workspace: {exc.strerror or exc}", hint="pass another folder") from None
    return written
