"""Loaders turn a DataSpec into a list of Records. Every malformed input is a ConfigError
naming the file and the line."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, UnknownNameError, require
from harness.hashing import stable_hash
from harness.textfile import MAX_DEPTH, csv_error, is_dir, is_file, nesting_depth, read_csv_rows, read_text

LETTERS = "ABCDEFGHIJ"
HEADER_ANSWER = ("answer", "target", "label", "gold", "correct", "answerkey")
"""The last cell of an MMLU-layout header row."""


@dataclass(frozen=True)
class Record:
    """One data item: a stable id and its fields."""

    id: str
    fields: dict[str, Any] = field(hash=False)
    named_by_content: bool = False
    """The loader derived `id` from the item's content (not its position): a task without
    id_field keeps it as the sample id instead of hashing the fields."""
    cluster: str | None = None
    """Records the loader made from one source item (HaluEval's right and hallucinated answer over
    one passage) share a cluster: they are not independent draws."""


@dataclass(frozen=True)
class LoadRequest:
    """What a loader needs: the resolved path and the spec's options."""

    path: Path | None
    split: str | None = None
    subjects: tuple[str, ...] | None = None
    dataset: str | None = None
    name: str | None = None
    where: str | None = None
    """Who asked (`suite.yaml: task 'name'`): errors about the spec itself, such as a missing
    data.path, start with it (errors about a file name the file)."""


def read_jsonl_objects(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) per non-blank line; ConfigError naming the line otherwise."""
    out = []
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {lineno}, column {exc.colno}: malformed JSON: {exc.msg}",
                              hint="JSONL holds one complete JSON object per line, keys and strings in double quotes") from None
        except RecursionError:  # the decoder recurses per level: a few thousand levels exhaust the stack
            raise ConfigError(f"{path}: line {lineno}: lists and objects nested more than {MAX_DEPTH} levels deep") from None
        if nesting_depth(obj) > MAX_DEPTH:  # shallower, but still deeper than hashing and rendering can recurse
            raise ConfigError(f"{path}: line {lineno}: lists and objects nested more than {MAX_DEPTH} levels deep")
        if not isinstance(obj, dict):
            raise ConfigError(f"{path}: line {lineno}: expected a JSON object, got {type(obj).__name__}")
        out.append((lineno, obj))
    return out


def load_jsonl(req: LoadRequest) -> list[Record]:
    """One JSON object per line; blank lines are skipped."""
    path = _existing_file(req)
    return [Record(str(i), obj) for i, (_, obj) in enumerate(read_jsonl_objects(path))]


def load_csv(req: LoadRequest) -> list[Record]:
    """A CSV file with a header row."""
    path = _existing_file(req)
    _, rows = read_csv_rows(path)
    return [Record(str(i), row) for i, (_, row) in enumerate(rows)]


def load_mmlu_csv(req: LoadRequest) -> list[Record]:
    """The original MMLU layout: `<dir>/<split>/<subject>_<split>.csv`, columns question, A, B, C,
    D, answer (a letter, or 0-3 as common exports write it); a header row (`question,A,B,C,D,answer`
    or similar: its last cell is not an answer) is skipped. Records get question, choices, answer
    (a letter), subject."""
    if req.path is None:
        raise _spec_error(req, "data.path: mmlu_csv needs a path (the directory holding dev/ and test/)")
    split = req.split or "test"
    folder = req.path / split
    if not is_dir(folder):
        raise ConfigError(f"{folder}: directory not found (mmlu_csv expects <path>/{split}/<subject>_{split}.csv)")
    available = {p.name[: -len(f"_{split}.csv")]: p for p in sorted(folder.glob(f"*_{split}.csv"))}
    subjects = list(req.subjects) if req.subjects else sorted(available)
    if not subjects:
        raise ConfigError(f"{folder}: no *_{split}.csv files")
    records = []
    for subject in subjects:
        if subject not in available:
            raise UnknownNameError("MMLU subject", subject, available, where=str(folder))
        path = available[subject]
        reader = csv.reader(io.StringIO(read_text(path), newline=""))
        try:
            records += _mmlu_records(path, reader, subject)
        except csv.Error as exc:
            raise csv_error(path, reader.line_num, exc) from None
    return records


def _mmlu_records(path: Path, reader, subject: str) -> list[Record]:
    """One subject's rows as records (a header row skipped); ConfigError naming a bad row's line."""
    records = []
    k = 0  # data rows of this subject so far: ids stay <subject>/<row> with or without a header
    for n, row in enumerate(reader, start=1):
        lineno = reader.line_num
        if len(row) != 6:
            raise ConfigError(f"{path}: line {lineno}: expected 6 columns (question, A, B, C, D, answer), got {len(row)}")
        answer = row[5].strip().upper()
        if n == 1 and row[5].strip().lower() in HEADER_ANSWER:
            continue  # a header row
        if answer in ("0", "1", "2", "3"):
            answer = LETTERS[int(answer)]
        if answer not in LETTERS[:4]:
            raise ConfigError(f"{path}: line {lineno}, column 6: answer must be A, B, C or D (or 0-3), got {row[5]!r}")
        fields = {"question": row[0], "choices": row[1:5], "answer": answer, "subject": subject.replace("_", " ")}
        records.append(Record(f"{subject}/{k}", fields))
        k += 1
    return records


HALUEVAL_FORMATS = {
    # set: (answer fields right/hallucinated, source fields, question field)
    "qa": (("right_answer", "hallucinated_answer"), ("knowledge",), "question"),
    "dialogue": (("right_response", "hallucinated_response"), ("knowledge", "dialogue_history"), "dialogue_history"),
    "summarization": (("right_summary", "hallucinated_summary"), ("document",), None),
}


def load_halueval(req: LoadRequest) -> list[Record]:
    """HaluEval's QA, dialogue and summarization files (told apart by their fields). Each item
    becomes two records, `<h>-right` and `<h>-hallucinated` (h: a hash of the item), with uniform fields: `answer`,
    `hallucinated` (0/1, the label), `source` (the knowledge or document, plus the dialogue
    history), `question` ('' for summarization) and `set`."""
    path = _existing_file(req)
    out = []
    for lineno, obj in read_jsonl_objects(path):
        kind = next((k for k, (answers, _, _) in HALUEVAL_FORMATS.items() if all(a in obj for a in answers)), None)
        if kind is None:
            raise ConfigError(f"{path}: line {lineno}: not a HaluEval item (expected right_/hallucinated_ answer, response or summary fields)")
        (right, wrong), sources, question = HALUEVAL_FORMATS[kind]
        missing = [f for f in sources if f not in obj]
        if missing:
            raise ConfigError(f"{path}: line {lineno}: HaluEval {kind} item without {', '.join(missing)}")
        base = {"set": kind, "source": "\n\n".join(str(obj[f]) for f in sources), "question": str(obj.get(question, "")) if question else ""}
        # Both records of one item share its content hash: the pair stays visible in the ids
        n = "h" + stable_hash(obj)[:12]
        out.append(Record(f"{n}-right", {**base, "answer": str(obj[right]), "hallucinated": 0}, named_by_content=True, cluster=n))
        out.append(Record(f"{n}-hallucinated", {**base, "answer": str(obj[wrong]), "hallucinated": 1}, named_by_content=True,
                          cluster=n))
    return out


def load_tweeteval(req: LoadRequest) -> list[Record]:
    """TweetEval's layout as cardiffnlp ships it: `<path>/<split>_text.txt` and
    `<path>/<split>_labels.txt` (one tweet / one label index per line, in step) and
    `<path>/mapping.txt` (`index<TAB>name`). Records get text, label (the name) and label_id."""
    if req.path is None:
        raise _spec_error(req, "data.path: tweeteval needs a path (the directory holding <split>_text.txt, <split>_labels.txt, mapping.txt)")
    if not is_dir(req.path):
        raise ConfigError(f"{req.path}: directory not found (tweeteval expects <path>/<split>_text.txt, <split>_labels.txt, mapping.txt)")
    split = req.split or "test"
    texts_path, labels_path, mapping_path = (req.path / f"{split}_text.txt", req.path / f"{split}_labels.txt", req.path / "mapping.txt")
    for f in (texts_path, labels_path, mapping_path):
        _existing_file(req, f)
    mapping = {}
    for lineno, line in enumerate(read_text(mapping_path).splitlines(), start=1):
        if line.strip():
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0].strip().isdigit():
                raise ConfigError(f"{mapping_path}: line {lineno}: expected '<index><TAB><name>', got {line!r}")
            mapping[int(parts[0])] = parts[1].strip()
    texts = read_text(texts_path).rstrip("\n").split("\n")
    labels = read_text(labels_path).rstrip("\n").split("\n")
    if len(texts) != len(labels):
        raise ConfigError(f"{texts_path}: {len(texts)} lines, but {labels_path} has {len(labels)}: the files must be in step")
    out = []
    for n, (text, label) in enumerate(zip(texts, labels)):
        if not label.strip().isdigit() or int(label) not in mapping:
            raise ConfigError(f"{labels_path}: line {n + 1}: label {label!r} is not an index of mapping.txt ({sorted(mapping)})")
        out.append(Record(str(n), {"text": text.strip(), "label": mapping[int(label)], "label_id": int(label)}))
    return out


def load_hf_dataset(req: LoadRequest) -> list[Record]:
    """A Hugging Face `datasets` dataset (needs network or a local cache)."""

    datasets = require("datasets", "the hf data source", "hf")
    if not req.dataset:
        raise _spec_error(req, "data.dataset: the hf data source needs a dataset name")
    ds = datasets.load_dataset(req.dataset, req.name, split=req.split or "test")
    return [Record(str(i), dict(row)) for i, row in enumerate(ds)]


def _spec_error(req: LoadRequest, message: str) -> ConfigError:
    return ConfigError(f"{req.where}: {message}" if req.where else message)


def _existing_file(req: LoadRequest, path: Path | None = None) -> Path:
    """`path` (default the request's) when it is a file; ConfigError naming it (or the missing data.path) otherwise."""
    path = path or req.path
    if path is None:
        raise _spec_error(req, "data.path: this data format needs a path")
    if not is_file(path):
        raise ConfigError(f"{path}: data file not found", hint="data.path is relative to the suite file's folder")
    return path
