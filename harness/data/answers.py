"""Pre-generated answers (`harness run --answers NAME=FILE`): evaluate outputs that some other
system produced, e.g. MT-Bench's model_answer files, as if NAME were a variant.

Accepted line formats (JSONL): MT-Bench's {question_id, model_id, choices: [{turns: [...]}]},
or {id, turns: [...]}, or {id, output}."""

from __future__ import annotations

from pathlib import Path

from harness.data.loaders import read_jsonl_objects
from harness.errors import ConfigError
from harness.textfile import is_file


def load_answer_file(path: Path, reference: bool = False) -> dict[str, tuple[str, ...]]:
    """item id (as a string) -> the answer of each turn. `reference`: a suite's reference-answer
    file (multi_turn.reference_answers), not an --answers file."""
    if not is_file(path):
        if reference:
            raise ConfigError(f"{path}: reference answers file not found (multi_turn.reference_answers)",
                              hint="the path is relative to the suite file")
        raise ConfigError(f"{path}: answers file not found (--answers NAME=FILE)", hint="FILE is relative to the current directory")
    out: dict[str, tuple[str, ...]] = {}
    for n, row in read_jsonl_objects(path):
        if "question_id" in row and "choices" in row:
            try:
                turns = row["choices"][0]["turns"]
            except (KeyError, IndexError, TypeError):
                raise ConfigError(f"{path}: line {n}: choices[0].turns is missing (MT-Bench answer format)") from None
            key = row["question_id"]
        elif "id" in row and ("turns" in row or "output" in row):
            key, turns = row["id"], row.get("turns", [row.get("output")])
        else:
            raise ConfigError(f"{path}: line {n}: expected MT-Bench's {{question_id, choices}} or {{id, turns}} or {{id, output}}")
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise ConfigError(f"{path}: line {n}: turns must be a list of strings")
        if str(key) in out:
            raise ConfigError(f"{path}: line {n}: duplicate answer for item {key}")
        out[str(key)] = tuple(turns)
    if not out:
        raise ConfigError(f"{path}: no answers")
    return out


def with_reference_answers(records: list, path: Path, id_field: str | None, category_field: str | None,
                           references_field: str, categories: list[str], where: str) -> list:
    """Records whose `references_field` holds the reference file's answers (FastChat's
    reference_answer/gpt-4.jsonl) for the items of `categories`, and no reference for any other
    item. ConfigError naming the items of those categories that the file does not answer."""
    from dataclasses import replace

    if id_field is None or category_field is None:
        raise ConfigError(f"{where}: multi_turn.reference_answers needs the task's id_field (the key both files share: "
                          "MT-Bench's question_id) and category_field (which items use a reference)")
    answers = load_answer_file(path, reference=True)
    wanted = [r for r in records if str(r.fields.get(category_field)) in categories]
    missing = [str(r.fields.get(id_field)) for r in wanted if str(r.fields.get(id_field)) not in answers]
    if missing:
        raise ConfigError(f"{path}: no reference answer for {len(missing)} of the {len(wanted)} items in categories "
                          f"{', '.join(categories)} ({id_field} {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
                          hint="use the reference file of the same question set, or narrow multi_turn.reference_categories")
    out = []
    for r in records:
        key = str(r.fields.get(id_field))
        ref = list(answers[key]) if r in wanted else None
        out.append(replace(r, fields={**r.fields, references_field: ref}))
    return out


def parse_answers_arg(values: list[str] | None) -> dict[str, Path]:
    """`NAME=FILE` strings from the command line -> {name: path}."""
    import re

    out: dict[str, Path] = {}
    for v in values or []:
        name, sep, file = v.partition("=")
        if not sep or not file or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ConfigError(f"--answers {v!r}: expected NAME=FILE, NAME of letters, digits, '_', '.', '-'")
        if name in out:
            raise ConfigError(f"--answers: '{name}' given twice")
        out[name] = Path(file)
    return out
