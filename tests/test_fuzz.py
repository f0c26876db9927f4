"""Property-based fuzzing (Hypothesis) of everything a user hands harness: the suite, models and
report files, data files in each format (JSONL, CSV, MMLU CSV, answer files), command-line
arguments, and the review, audit and outcomes sheets imported into a store.

The property, for every example: `harness.cli.main` returns 0, or returns 2 and what it printed
names the file and a field or line; it never raises (argparse's own SystemExit(2) with its usage
message is fine), never prints a traceback, and an error leaves the store's row counts and the
workspace's files as they were (nothing written before the error).

Documents start valid (the repo's own suites/, models/ and reports/ files, small workspaces like
tests/conftest.py's, and documents generated from the pydantic models that parse the files) and are
then mutated: values replaced by random JSON, wrong types, huge and empty values; keys dropped,
renamed or added; and the file's bytes edited: repeated lines (duplicate keys), `!!python/...`
and other tags, anchors and aliases (a self-reference, a small billion-laughs bomb), invalid
UTF-8, BOMs, NULs, a 1 MB line, nesting up to 1,500 levels deep, truncation.

Profiles: HARNESS_FUZZ_PROFILE=ci (the default: derandomized, the file in about a minute on 2
cores) or soak (10,000 examples per target; benchmarks/fuzz_soak.py runs it and records the
figures). HARNESS_FUZZ_EXAMPLES=N overrides the number of examples of every target;
HARNESS_FUZZ_STATS=FILE writes each target's counts there as JSON when the module finishes.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import re
import shutil
import tempfile
import time
import types
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from harness.cli import main

REPO = Path(__file__).resolve().parent.parent

# -- profiles ----------------------------------------------------------------------------------

# Every example runs the real command in-process: slow examples and long shrinking are expected (no
# deadline, every health check off), and the one function-scoped fixture a target uses (monkeypatch,
# for an environment variable) holds the same for every example; each example makes its own folder.
_COMMON = dict(deadline=None, database=None, print_blob=True, suppress_health_check=list(HealthCheck))
settings.register_profile("ci", derandomize=True, **_COMMON)
PROFILE_EXAMPLES = 10_000
"""Examples per target under the soak profile."""
settings.register_profile("soak", max_examples=PROFILE_EXAMPLES, **_COMMON)
PROFILE_NAME = os.environ.get("HARNESS_FUZZ_PROFILE", "ci")
PROFILE = settings.get_profile(PROFILE_NAME)


def fuzz_settings(ci_examples: int) -> settings:
    """The target's settings: `ci_examples` under the ci profile, the soak profile's count under
    soak, HARNESS_FUZZ_EXAMPLES over either."""
    n = os.environ.get("HARNESS_FUZZ_EXAMPLES")
    count = int(n) if n else (ci_examples if PROFILE_NAME == "ci" else PROFILE.max_examples)
    return settings(PROFILE, max_examples=count)


# -- per-target counts (benchmarks/fuzz_soak.py reads them) ------------------------------------

STATS: dict[str, Counter] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_stats():
    yield
    out = os.environ.get("HARNESS_FUZZ_STATS")
    if out:
        Path(out).write_text(json.dumps({k: dict(v) for k, v in STATS.items()}, indent=2), encoding="utf-8")


@contextlib.contextmanager
def timed(target: str):
    """Count the target's seconds (all its examples, shrinking included)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        STATS.setdefault(target, Counter())["seconds"] += time.perf_counter() - start


# -- running a command and checking the property ------------------------------------------------

TRACEBACK = "Traceback (most recent call last)"

# A place in a file: a line, byte or column; a field path between colons (tasks[0].prompt,
# base.options, gate[1].metric); a task, item, field or column named in words; or the top level.
PLACE = re.compile(
    r"line \d+|byte \d+|column \d+|\(top level\)"
    r"|: (?:[^\W\d][\w-]*|\[[^\]\n]*\])(?:\[[^\]\n]*\]|\.[^\W\d][\w-]*)*(?: \([^)]*\))?: "
    r"|\[\d+\]|task '|\bitems? |field '?[\w-]+|column '?[\w-]+|columns? \(?[\w-]+"
    r"|<FILE>: [^\n]+: unknown key"  # a key as the user wrote it, quotes and spaces included
)
# Whole-file problems have no line to name: the file itself is the place.
WHOLE_FILE = ("file is empty", "file not found", "no rows", "no answers", "not a review sheet", "not an outcomes file",
              "missing column", "data has no items", "directory not found", "no *_", "cannot read the file")


@dataclass
class Case:
    """One example: the command, the files the user handed it, and what an error must leave alone."""

    argv: list[str]
    files: list[Path]
    """The files the user wrote for this command; an error message names one of them."""
    root: Path
    """The workspace: no file appears or disappears under it when the command fails."""
    store: Path | None = None
    codes: tuple[int, ...] = (0, 2)
    """Exit codes that are results (gate: 1 fail and 3 inconclusive as well)."""
    arguments: bool = False
    """The input is the command line itself: an error says `Error:` (argparse: `error:` with its
    usage; validate: `FAIL <file>`), about an argument or a file it names, not necessarily a line."""


def store_counts(store: Path | None) -> dict[str, int] | None:
    """Every table's row count (None when there is no store file)."""
    if store is None or not store.is_file():
        return None
    con = duckdb.connect(str(store), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def file_set(root: Path) -> set[str]:
    """Every file and folder under root (links not followed: the workspace links the repo's data/)."""
    out = set()
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        out.update(os.path.normpath(os.path.join(rel, name)) for name in dirs + files)
    # A DuckDB store's write-ahead log comes and goes with every connection; it is not a user file.
    return {p for p in out if not p.endswith(".wal")}


def run_main(argv: list[str]) -> tuple[int, str, BaseException | None]:
    """main(argv) in-process: (exit code, stdout + stderr, the exception it raised or None).
    argparse's SystemExit is an exit code, as the console script makes it."""
    out = io.StringIO()
    raised = None
    code = -1
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except Exception as exc:  # noqa: BLE001 (recorded, then re-raised by check())
            raised = exc
    return code, out.getvalue(), raised


# `harness validate` prints `FAIL <path> (<kind>)` above each error and a count below: neither says
# where the problem is, so the message is judged without them.
VALIDATE_FRAME = re.compile(r"^(FAIL .* \(\S+\)|ok {3}.*|\d+ valid, \d+ invalid)$", re.M)


def names_file(text: str, case: Case) -> bool:
    # A path under the workspace counts too: a fuzzed suite may point data.path at a file that isn't there.
    names = [str(p) for p in case.files] + [p.name for p in case.files] + [str(case.root)]
    return any(n and n in text for n in names)


def names_place(text: str, case: Case) -> bool:
    # The file's own name must not count as a field path: "Error: s.yaml: ..." alone names no place.
    for p in sorted(case.files, key=lambda p: -len(str(p))):
        text = text.replace(str(p), "<FILE>").replace(p.name, "<FILE>")
    return bool(PLACE.search(text)) or any(w in text for w in WHOLE_FILE)


def check(target: str, case: Case) -> tuple[int, str]:
    """Run the case and assert the property; count the outcome for the target either way."""
    stats = STATS.setdefault(target, Counter())
    stats["examples"] += 1
    before_rows, before_files = store_counts(case.store), file_set(case.root)
    code, text, raised = run_main(case.argv)
    if raised is not None:
        stats["tracebacks"] += 1
        raise AssertionError(f"{case.argv} raised {type(raised).__name__}: {raised!r:.500}\n{text[-2000:]}") from raised
    if TRACEBACK in text:
        stats["tracebacks"] += 1
        raise AssertionError(f"{case.argv} printed a traceback:\n{text[-3000:]}")
    if code not in case.codes:
        stats["bad_exit"] += 1
        raise AssertionError(f"{case.argv}: exit code {code}\n{text[-2000:]}")
    stats[f"exit_{code}"] += 1
    if code == 2:
        after_rows, after_files = store_counts(case.store), file_set(case.root)
        if after_rows != before_rows or after_files != before_files:
            stats["writes_before_error"] += 1
            raise AssertionError(f"{case.argv}: exit 2 but wrote: rows {before_rows} -> {after_rows}; "
                                 f"files added {sorted(after_files - before_files)[:5]}, removed {sorted(before_files - after_files)[:5]}\n"
                                 f"{text[-1500:]}")
        message = VALIDATE_FRAME.sub("", text)
        if case.arguments:
            clear = re.search(r"^(Error: .|usage: harness|harness\b.*: error: |FAIL .)", text, re.M) is not None
        else:
            clear = names_file(message, case) and names_place(message, case)
        if not clear:
            stats["unclear_message"] += 1
            raise AssertionError(f"{case.argv}: exit 2, but the message names no file and field or line:\n{text[-2000:]}")
    return code, text


# -- values and documents -----------------------------------------------------------------------

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12))
JSON_VALUES = st.recursive(LEAVES, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                           max_leaves=10)
# Bounded numbers for documents that are run, not only validated: a count of 10**18 draws per
# item is a valid request that would take forever on any backend, not a bug.
SMALL_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(-2, 50), st.text(max_size=12))
SMALL_JSON = st.recursive(SMALL_LEAVES, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                          max_leaves=6)
SPECIAL = ["", " ", [], {}, None, 0, -1, 1.5, 2**63, -(2**63), 1e308, float("inf"), float("nan"), True, False, "null", "~", "yes",
           "no", "on", "0x1F", "1e3", "\t", "\u202e", "\ufeff", "a\x00b", "{{", "}}", "{{ nope }}", "{% for x in %}", "/", ".",
           "../../etc/passwd", "x" * 5000, ["x"] * 300, {"a": {"b": {"c": None}}}]
KEYS = st.one_of(st.text(max_size=10), st.integers(-5, 5), st.none(), st.booleans())


def walk(doc, path=()):
    """Every node's path (keys and indices from the top), the top included."""
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from walk(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from walk(v, (*path, i))


def strings_in(doc) -> set[str]:
    """Every string key and value in a document (the vocabulary mutations draw from)."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out |= ({k} if isinstance(k, str) else set()) | strings_in(v)
    elif isinstance(doc, list):
        for v in doc:
            out |= strings_in(v)
    elif isinstance(doc, str):
        out.add(doc)
    return out


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _set(doc, path, value):
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


TREE_OPS = ["replace", "delete", "rename", "insert", "wrap_list", "wrap_dict", "stringify", "empty", "duplicate"]


@st.composite
def mutated(draw, seeds, vocab: list[str], values=JSON_VALUES, max_ops: int = 3):
    """A seed document with 0-max_ops structural mutations: values replaced by random JSON, special
    or vocabulary values; keys dropped, renamed (misspelt) or added; values retyped or emptied."""
    doc = copy.deepcopy(draw(seeds))
    # copies: SPECIAL's lists and mappings are shared, and a later op may mutate what it inserted
    anything = st.one_of(values, st.sampled_from(SPECIAL), st.sampled_from(vocab)).map(copy.deepcopy)
    for _ in range(draw(st.integers(0, max_ops))):
        path = draw(st.sampled_from(list(walk(doc))))
        op = draw(st.sampled_from(TREE_OPS))
        node = _get(doc, path)
        parent = _get(doc, path[:-1]) if path else None
        if op == "replace":
            doc = _set(doc, path, draw(anything))
        elif op == "delete" and path:
            del parent[path[-1]]
        elif op == "rename" and path and isinstance(parent, dict):
            key = path[-1]
            new = draw(st.one_of(KEYS, st.sampled_from(vocab), st.just(f"{key}x"), st.just(str(key).upper())))
            parent[new] = parent.pop(key)
        elif op == "insert" and isinstance(node, dict):
            node[draw(st.one_of(KEYS, st.sampled_from(vocab)))] = draw(anything)
        elif op == "insert" and isinstance(node, list):
            node.insert(draw(st.integers(0, len(node))), draw(anything))
        elif op == "wrap_list":
            doc = _set(doc, path, [node])
        elif op == "wrap_dict":
            doc = _set(doc, path, {draw(st.sampled_from(vocab)): node})
        elif op == "stringify":
            doc = _set(doc, path, str(node))
        elif op == "empty":
            doc = _set(doc, path, draw(st.sampled_from(["", [], {}, None])))
        elif op == "duplicate" and isinstance(node, list) and node:
            node.append(copy.deepcopy(node[draw(st.integers(0, len(node) - 1))]))
    return doc


# -- documents generated from the pydantic models ---------------------------------------------

def schema_values(tp, vocab: list[str], depth: int = 0) -> st.SearchStrategy:
    """Values shaped like annotation `tp` (nested models as mappings of their fields), ignoring
    the fields' constraints and validators, so they are often almost right."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    text = st.one_of(st.sampled_from(vocab), st.text(max_size=8))
    if tp is typing.Any:
        return JSON_VALUES
    if origin is typing.Annotated:
        return schema_values(args[0], vocab, depth)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([schema_values(a, vocab, depth) for a in args])
    if origin in (list, tuple):
        return st.lists(schema_values(args[0], vocab, depth + 1), max_size=2 if depth else 3) if args else st.lists(JSON_VALUES, max_size=2)
    if origin is dict or tp is dict:
        if not args:
            return st.dictionaries(text, JSON_VALUES, max_size=2)
        return st.dictionaries(schema_values(args[0], vocab, depth + 1), schema_values(args[1], vocab, depth + 1), max_size=2)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return from_model(tp, vocab, depth)
    if tp is str:
        return text
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.one_of(st.integers(-2, 20), st.sampled_from([0, 1, 2**63]))
    if tp is float:
        return st.one_of(st.floats(-1, 20), st.sampled_from([0.0, 0.5, float("nan")]))
    if tp is type(None):
        return st.none()
    return JSON_VALUES


def from_model(model: type[BaseModel], vocab: list[str], depth: int = 0) -> st.SearchStrategy:
    """A mapping with the model's required fields and some of its optional ones."""
    if depth > 4:
        return st.just({})
    required, optional = {}, {}
    for name, f in model.model_fields.items():
        values = st.deferred(lambda f=f: schema_values(f.annotation, vocab, depth + 1))
        (required if f.is_required() else optional)[f.alias or name] = values
    return st.fixed_dictionaries(required, optional=optional)


# -- file bytes ---------------------------------------------------------------------------------

TAGS = ["!!python/object/apply:os.system ['true']", "!!python/object:harness.config.suite.SuiteSpec {}", "!!python/name:os.getcwd ''",
        "!!python/tuple [1, 2]", "!!binary aGVsbG8=", "!!set {a, b}", "!!timestamp 2001-12-14", "!custom x", "!!omap [a: 1]",
        "!!float nan", "!!int 0x1f", "!!str 3", "!!null ''", "!!map {}", "!!seq []", "!<tag:yaml.org,2002:str> x", "!!bool yes",
        "!!merge <<", "!!pairs [a: 1, a: 2]"]
BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf\xef\xbb\xbf", b"\x00\x00\xfe\xff"]
KEY_LINE = re.compile(rb"^(\s*(?:- )?[^\s#:'\"][^:\n]*): (\S.*)$", re.M)


def alias_bomb(levels: int, fan: int) -> bytes:
    """A billion-laughs value in flow style: `levels` anchors, each `fan` aliases of the one before."""
    parts = [b"&l0 [" + b", ".join([b"lol"] * fan) + b"]"]
    for i in range(1, levels):
        parts.append(b"&l%d [" % i + b", ".join([b"*l%d" % (i - 1)] * fan) + b"]")
    return b"[" + b", ".join(parts) + b", *l%d]" % (levels - 1)


def _replace_value(data: bytes, draw, payload: bytes) -> bytes:
    """`payload` as the value of one `key: value` line (appended as a new key when there is none)."""
    lines = list(KEY_LINE.finditer(data))
    if not lines:
        return data.rstrip(b"\n") + b"\nfuzz: " + payload + b"\n"
    m = lines[draw(st.integers(0, len(lines) - 1))]
    return data[:m.start(2)] + payload + data[m.end(2):]


def _put(draw, data: bytes, at: int, payload: bytes) -> bytes:
    """`payload` as a key's value, at a random offset, or on a line of its own at the end."""
    where = draw(st.sampled_from(["value", "offset", "end"]))
    if where == "value":
        return _replace_value(data, draw, payload)
    return data[:at] + payload + data[at:] if where == "offset" else data + b"\n# " + payload + b"\n"


def _dup_line(draw, data: bytes, at: int) -> bytes:
    lines = data.split(b"\n")
    i = draw(st.integers(0, len(lines) - 1))
    return b"\n".join(lines[:i + 1] + lines[i:])


def _anchor(draw, data: bytes, at: int) -> bytes:
    data = _replace_value(data, draw, b"&a " + draw(st.sampled_from([b"[1, 2]", b"{k: v}", b"x", b"[x, *a]"])))
    return _replace_value(data, draw, draw(st.sampled_from([b"*a", b"{<<: *a, extra: 1}", b"[*a, *a]"])))


def _deep(draw, data: bytes, at: int) -> bytes:
    n = draw(st.integers(50, 1500))
    return _put(draw, data, at, draw(st.sampled_from([b"[" * n + b"]" * n, b"{a: " * n + b"1" + b"}" * n, b'{"a": ' * n + b"1" + b"}" * n])))


CONTROL = [b"\x01", b"\x1b", b"\x7f", b"\x0b", b"\x0c", "\u2028".encode(), "\x85".encode()]
EDITS = {
    "dup_line": _dup_line,
    "tag": lambda draw, data, at: _replace_value(data, draw, draw(st.sampled_from(TAGS)).encode()),
    "anchor": _anchor,
    # kept small (5**6 leaves at most): the point is that aliases are handled, not the memory
    "bomb": lambda draw, data, at: _replace_value(data, draw, alias_bomb(draw(st.integers(2, 6)), draw(st.integers(2, 5)))),
    "undefined_alias": lambda draw, data, at: _replace_value(data, draw, b"*nope"),
    "bad_utf8": lambda draw, data, at: data[:at] + bytes(x | 0x80 for x in draw(st.binary(min_size=1, max_size=3))) + data[at:],
    "bom": lambda draw, data, at: draw(st.sampled_from(BOMS)) + data,
    "nul": lambda draw, data, at: data[:at] + b"\x00" + data[at:],
    "control": lambda draw, data, at: data[:at] + draw(st.sampled_from(CONTROL)) + data[at:],
    "long_line": lambda draw, data, at: _put(draw, data, at, b"x" * 1_000_000),
    "deep": _deep,
    "truncate": lambda draw, data, at: data[:at],
    "tab": lambda draw, data, at: data.replace(b"\n  ", b"\n\t", 1) if draw(st.booleans()) else data[:at] + b"\t" + data[at:],
    "crlf": lambda draw, data, at: data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r"]))),
    "garbage": lambda draw, data, at: data[:at] + draw(st.binary(max_size=16)) + data[at:],
    "quote": lambda draw, data, at: data[:at] + draw(st.sampled_from([b'"', b"'", b'""', b'"a"b'])) + data[at:],
}
"""Byte-level edits of a file: repeated lines (duplicate keys), YAML tags, anchors and aliases
(a self-reference, a small billion-laughs bomb), invalid UTF-8, BOMs, NULs and control
characters, a 1 MB line, nesting up to 1,500 levels deep, truncation, tab indentation, CRLF or CR
line ends, random bytes, stray quotes."""
BYTE_OPS = list(EDITS)
YAML_ONLY = {"tag", "anchor", "bomb", "undefined_alias"}
BIG = {"long_line", "deep"}


def edit_bytes(draw, data: bytes, ops: list[str], max_ops: int = 2, big: bool = True) -> bytes:
    """0-max_ops edits (EDITS) of a file's bytes; `big`: the 1 MB line and deep nesting too."""
    ops = ops if big else [op for op in ops if op not in BIG]
    for _ in range(draw(st.integers(0, max_ops))):
        data = EDITS[draw(st.sampled_from(ops))](draw, data, draw(st.integers(0, len(data))))
    return data


def dump_yaml(draw, doc) -> bytes:
    try:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=draw(st.sampled_from([False, None]))).encode()
    except (yaml.YAMLError, RecursionError, UnicodeEncodeError):  # a document the emitter can't write: its repr, as bytes
        return repr(doc).encode()


@st.composite
def yaml_file(draw, raw: list[bytes], docs, vocab: list[str], values=JSON_VALUES, big: bool = True) -> bytes:
    """A YAML file: a seed file's own bytes (comments, anchors), or a seed or schema-generated
    document mutated and dumped; then edited byte by byte."""
    if raw and draw(st.integers(0, 4)) == 0:
        data = draw(st.sampled_from(raw))
    else:
        data = dump_yaml(draw, draw(mutated(docs, vocab, values)))
    return edit_bytes(draw, data, BYTE_OPS, big=big)


# -- the workspace ------------------------------------------------------------------------------

DATA = [{"id": f"t{k}", "topic": f"topic {k}", "tweet": f"tweet number {k}", "label": ["pos", "neg"][k % 2]} for k in range(4)]
MC = [{"id": f"q{k}", "question": f"What is {k} + 1?", "choices": [str(k), str(k + 1), str(k + 2)], "answer": 1} for k in range(3)]
TURNS = [{"question_id": k, "category": ["math", "writing"][k % 2], "turns": [f"Question {k}?", "And then?"]} for k in range(1, 4)]
REFS = [{"question_id": k, "choices": [{"turns": [f"Answer {k}.", "Then more."]}]} for k in range(1, 4)]
MMLU = ["What is 1 + 1?,1,2,3,4,B", "What is 2 + 2?,3,4,5,6,B", "Capital of France?,Paris,Rome,Oslo,Bern,A"]
MMLU_DEV = ["What is 0 + 1?,1,2,3,4,A"]

GEN = """\
name: gen
tasks:
  - name: tweets
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Brief: {{ topic }}", reference: "{{ tweet }}"}
    generation: {max_new_tokens: 8, batch_size: 2, stop: ["\\n"]}
    scorers: [rouge, exact_match]
"""
MC_JSONL = """\
name: mc
tasks:
  - name: quiz
    type: multiple_choice
    data: {format: jsonl, path: mc.jsonl}
    id_field: id
    prompt: {template: "{{ question }}\\nAnswer:"}
    multiple_choice: {choices_field: choices, answer_field: answer, continuation: text}
    scorers: [acc, acc_norm]
"""
MMLU_SUITE = """\
name: mmlu
tasks:
  - name: mmlu
    type: multiple_choice
    data: {format: mmlu_csv, path: mm, split: test}
    fewshot: {k: 1, split: dev}
    prompt:
      description: "Questions about {{ subject }}.\\n\\n"
      template: "{{ question }}\\nA. {{ choices[0] }}\\nB. {{ choices[1] }}\\nC. {{ choices[2] }}\\nD. {{ choices[3] }}\\nAnswer:"
    scorers: [acc]
"""
CSV_SUITE = """\
name: labels
tasks:
  - name: sentiment
    type: classification
    data: {format: csv, path: d.csv}
    id_field: id
    prompt: {template: "{{ tweet }}\\nSentiment:"}
    classification: {labels: [pos, neg], label_field: label}
  - name: csv_tweets
    type: generation
    data: {format: csv, path: d.csv, limit: 3}
    prompt: {template: "Brief: {{ topic }}", reference: "{{ tweet }}"}
    generation: {max_new_tokens: 4}
    scorers: [chrf]
"""
MISC_SUITE = """\
name: misc
seed: 7
contamination: {n: 8}
tasks:
  - name: ppl
    type: perplexity
    data: {format: jsonl, path: d.jsonl, limit: 2}
    id_field: id
    prompt: {template: "{{ tweet }}"}
  - name: serving
    type: latency
    data: {format: jsonl, path: d.jsonl, limit: 2}
    prompt: {template: "{{ topic }}"}
    generation: {max_new_tokens: 4}
    latency: {concurrency: [1, 2], warmup: 0}
  - name: extract
    type: generation
    data: {format: jsonl, path: d.jsonl}
    category_field: label
    prompt: {template: "{{ topic }}", reference: "{{ id }}"}
    generation: {max_new_tokens: 6, temperature: 0.5, n: 2}
    scorers: [{answer_match: {extract: {type: regex, pattern: 't(\\\\d)'}}}, exact_match]
"""
CHAT_SUITE = """\
name: chat
tasks:
  - name: chat
    type: generation
    data: {format: jsonl, path: turns.jsonl}
    id_field: question_id
    category_field: category
    multi_turn: {turns_field: turns, references_field: reference, reference_answers: refs.jsonl, reference_categories: [math]}
    prompt: {template: "{{ turn }}"}
    generation: {max_new_tokens: 6}
  - name: rating
    type: judge
    grading: single
    of: chat
    judge: {backend: local, mode: choice}
"""
LOCAL_SUITES = {"gen": GEN, "mc": MC_JSONL, "mmlu": MMLU_SUITE, "labels": CSV_SUITE, "misc": MISC_SUITE, "chat": CHAT_SUITE}

MODELS = "base: {name: f, source: fake}\n"
MODELS_SEEDS = [
    MODELS,
    "base: {name: f, source: fake, options: {default_output: 'tweet 1', outputs: [a, b]}}\n",
    """\
base: {name: f, source: fake, resources: {num_replicas: 1, num_cpus: 1}}
variants:
  - name: tuned
    parent: f
    method: sft_lora
    config:
      data: {path: ../suites/d.jsonl, prompt: "{{ topic }}", completion: " {{ tweet }}"}
      lora: {r: 4, alpha: 8}
      training: {max_steps: 2, batch_size: 2}
  - name: small
    parent: tuned
    method: quantize
    config: {scheme: int8}
""",
    "base: {name: e, source: endpoint, options: {base_url: 'http://127.0.0.1:9/v1', model: m}}\n",
    "base: {name: h, source: hub, id: org/name}\n",
]
REPORT_SEEDS = [
    "title: R\nvariants: [f]\ngate:\n  - {variant: f, task: tweets, metric: rougeL, min: 0.1}\n",
    """\
title: Compare
variants: [f, g]
baseline: f
tasks: [tweets]
headline: {tweets: rougeL}
statistics: {resamples: 200, confidence: 0.9, alpha: 0.1, multiplicity: none}
trends: [{task: tweets, metric: rougeL, by: tag, last: 3}]
gate:
  - {kind: non_inferiority, variant: g, baseline: f, task: tweets, metric: rougeL, margin: 0.05}
  - {kind: superiority, variant: g, baseline: f, task: tweets, metric: rougeL}
  - {variant: g, task: serving, metric: latency_s_p95, max: 2, tolerance: 0.1}
""",
]


def _jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


class Workspace:
    """The module's workspace (a plain class: Hypothesis prints a failing example's arguments, and
    the root says all that is needed)."""

    def __init__(self, root: Path, store: Path, run_ids: list[str], samples: list[tuple[str, str]], variants: list[str]):
        self.root, self.store, self.run_ids, self.variants = root, store, run_ids, variants
        self.samples = samples
        """(run_id, sample_id) of every stored sample: valid sheet rows point at them."""

    def __repr__(self) -> str:
        return f"Workspace({self.root})"


def _write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _checkpoint(store: Path) -> None:
    """Fold the write-ahead log into the store file, so a copy of the file alone is the whole store."""
    con = duckdb.connect(str(store))
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """suites/ (small suites over small data, and the repo's suites through a data/ link),
    models/m.yaml (the fake backend), reports/, and a store holding runs of every local suite."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "data").symlink_to(REPO / "data")  # the repo's own files use ../data/...: read, never written
    _write(root, "suites/d.jsonl", _jsonl(DATA))
    _write(root, "suites/mc.jsonl", _jsonl(MC))
    _write(root, "suites/turns.jsonl", _jsonl(TURNS))
    _write(root, "suites/refs.jsonl", _jsonl(REFS))
    _write(root, "suites/mm/test/sums_test.csv", "\n".join(MMLU) + "\n")
    _write(root, "suites/mm/dev/sums_dev.csv", "\n".join(MMLU_DEV) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(DATA[0]))
    w.writeheader()
    w.writerows(DATA)
    _write(root, "suites/d.csv", buf.getvalue())
    for name, text in LOCAL_SUITES.items():
        _write(root, f"suites/{name}.yaml", text)
    _write(root, "models/m.yaml", MODELS)
    store = root / "h.duckdb"
    for suite in LOCAL_SUITES:  # every seed a run test starts from runs as it is
        code, text, raised = run_main(["run", str(root / f"suites/{suite}.yaml"), "--models", str(root / "models/m.yaml"), "--store", str(store)])
        assert code == 0 and raised is None, text
        _checkpoint(store)
    con = duckdb.connect(str(store), read_only=True)
    try:
        samples = con.execute("SELECT run_id, sample_id FROM samples ORDER BY run_id, sample_id").fetchall()
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
        variants = [r[0] for r in con.execute("SELECT DISTINCT variant FROM runs").fetchall()]
    finally:
        con.close()
    return Workspace(root, store, runs, samples, variants)


@contextlib.contextmanager
def scratch(ws: Workspace, store: bool = False):
    """A fresh folder for one example beside the workspace's files (its own copy of the store when
    asked), removed afterwards."""
    folder = Path(tempfile.mkdtemp(dir=ws.root, prefix="ex-"))
    try:
        if store:
            shutil.copy(ws.store, folder / "h.duckdb")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _repo_files(folder: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((REPO / folder).glob("*.yaml"))]


def _docs(texts: list[bytes | str]) -> list:
    return [yaml.safe_load(t) for t in texts]


def _vocab(docs: list, model: type[BaseModel]) -> list[str]:
    words = set().union(*(strings_in(d) for d in docs))
    for f in _all_fields(model):
        words.add(f)
    return sorted(w for w in words if len(w) < 200)


def _all_fields(model: type[BaseModel], seen=None) -> set[str]:
    """Every field name reachable from a model, and every Literal value (valid kinds, modes)."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    out = set()

    def visit(tp):
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Literal:
            out.update(a for a in args if isinstance(a, str))
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            out.update(_all_fields(tp, seen))
        for a in args:
            visit(a)

    for name, f in model.model_fields.items():
        out.add(name)
        visit(f.annotation)
    return out


# -- targets: the three YAML file kinds -----------------------------------------------------------

from harness.config.models import ModelsFile  # noqa: E402 (beside the targets that use them)
from harness.config.report import ReportSpec  # noqa: E402
from harness.config.suite import SuiteSpec  # noqa: E402

SUITE_RAW = _repo_files("suites") + [t.encode() for t in LOCAL_SUITES.values()]
SUITE_DOCS = _docs(SUITE_RAW)
SUITE_VOCAB = _vocab(SUITE_DOCS, SuiteSpec)
RUN_RAW = [t.encode() for t in LOCAL_SUITES.values()]
RUN_DOCS = _docs(RUN_RAW)
MODELS_RAW = _repo_files("models") + [t.encode() for t in MODELS_SEEDS]
MODELS_DOCS = _docs(MODELS_RAW)
MODELS_VOCAB = _vocab(MODELS_DOCS, ModelsFile)
REPORT_RAW = _repo_files("reports") + [t.encode() for t in REPORT_SEEDS]
REPORT_DOCS = _docs(REPORT_RAW)
REPORT_VOCAB = _vocab(REPORT_DOCS, ReportSpec)


def seeds_and_schema(docs: list, model: type[BaseModel], vocab: list[str]) -> st.SearchStrategy:
    """A valid seed document, or one generated from the pydantic model (shaped right, often invalid)."""
    return st.one_of(st.sampled_from(docs), from_model(model, vocab))


def validate_case(ws: Workspace, rel: str, data: bytes) -> Case:
    path = _write(ws.root, rel, data)
    return Case(["validate", str(path)], [path], ws.root)


@fuzz_settings(120)
@given(data=yaml_file(SUITE_RAW, seeds_and_schema(SUITE_DOCS, SuiteSpec, SUITE_VOCAB), SUITE_VOCAB))
def test_suite_files_validate(ws, data):
    """`harness validate SUITE` on mutated suite files: exit 0, or exit 2 naming the file and the
    field or line; never a traceback."""
    with timed("suite"):
        check("suite", validate_case(ws, "suites/fuzz.yaml", data))


@fuzz_settings(25)
@given(data=yaml_file(RUN_RAW, st.sampled_from(RUN_DOCS), SUITE_VOCAB, values=SMALL_JSON, big=False))
def test_suite_files_run(ws, data):
    """`harness run SUITE --models M --store S` (the fake backend) on mutated runnable suites: exit
    0 with the runs stored, or exit 2 naming the file and place with every table's row count as it was."""
    with timed("suite_run"), scratch(ws, store=True) as ex:
        path = _write(ws.root, "suites/fuzz_run.yaml", data)  # in suites/: the seeds' data paths are relative to it
        store = ex / "h.duckdb"
        check("suite_run", Case(["run", str(path), "--models", str(ws.root / "models/m.yaml"), "--store", str(store)],
                                [path], ws.root, store=store))


@fuzz_settings(80)
@given(data=yaml_file(MODELS_RAW, seeds_and_schema(MODELS_DOCS, ModelsFile, MODELS_VOCAB), MODELS_VOCAB))
def test_models_files_validate(ws, data):
    """`harness validate MODELS` on mutated models files (the repo's lineages, the fake backend,
    endpoints): exit 0, or exit 2 naming the file and the field or line."""
    with timed("models"):
        check("models", validate_case(ws, "models/fuzz.yaml", data))


@fuzz_settings(80)
@given(data=yaml_file(REPORT_RAW, seeds_and_schema(REPORT_DOCS, ReportSpec, REPORT_VOCAB), REPORT_VOCAB))
def test_report_files_validate(ws, data):
    """`harness validate REPORT` on mutated report files (gate rules, statistics, trends): exit 0,
    or exit 2 naming the file and the field or line."""
    with timed("report"):
        check("report", validate_case(ws, "reports/fuzz.yaml", data))


# -- targets: data files --------------------------------------------------------------------------

DATA_OPS = [op for op in BYTE_OPS if op not in YAML_ONLY]
DATA_VOCAB = sorted(set().union(*(strings_in(r) for r in DATA + MC + TURNS + REFS)) | {"id", "output", "turns", "choices", "question_id"})


@st.composite
def jsonl_file(draw, seeds: list) -> bytes:
    """Rows of a seed mutated as JSON values (fields dropped, retyped, nested, emptied), one per
    line, then edited byte by byte (ragged or blank lines, BOM, NUL, invalid UTF-8, a 1 MB line,
    deep nesting, truncation)."""
    rows = draw(mutated(st.sampled_from(seeds), DATA_VOCAB, SMALL_JSON))
    lines = []
    for row in rows if isinstance(rows, list) else [rows]:
        try:
            lines.append(json.dumps(row, ensure_ascii=draw(st.booleans())))
        except (TypeError, ValueError):
            lines.append(repr(row))
    data = "\n".join(lines).encode("utf-8", "surrogatepass") + draw(st.sampled_from([b"\n", b"", b"\n\n", b"\n \n"]))
    return edit_bytes(draw, data, DATA_OPS)


@st.composite
def csv_file(draw, rows: list[list[str]], vocab: list[str] = DATA_VOCAB) -> bytes:
    """CSV rows (header first, when the format has one) with cells replaced, dropped or added
    (ragged rows), rows repeated, stray quotes; then edited byte by byte."""
    cells = st.one_of(st.text(max_size=10), st.sampled_from(vocab + ["A", "E", "0", "3", "4", "", '"', ",", "\n", " a "]))
    table = draw(mutated(st.just(rows), vocab, cells))
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    for row in table if isinstance(table, list) else [table]:
        writer.writerow([str(c) for c in row] if isinstance(row, list) else [str(row)])
    return edit_bytes(draw, buf.getvalue().encode("utf-8", "surrogatepass"), DATA_OPS)


def data_case(ws: Workspace, ex: Path, suite_text: str, rel: str, data: bytes, run: bool) -> Case:
    """A suite in suites/ whose data is the fuzzed file; validated, or run on a copy of the store."""
    data_path = _write(ws.root, rel, data)
    suite = _write(ws.root, "suites/fuzz_data.yaml", suite_text)
    store = ex / "h.duckdb"
    argv = (["run", str(suite), "--models", str(ws.root / "models/m.yaml"), "--store", str(store)] if run
            else ["validate", str(suite)])
    return Case(argv, [data_path, suite], ws.root, store=store if run else None)


@fuzz_settings(60)
@given(data=st.data())
def test_jsonl_data(ws, data):
    """JSONL data files (a generation and a multiple-choice task read them): `validate` the suite,
    and now and then `run` it: exit 0, or exit 2 naming the file and line (or the item and field)."""
    suite, seeds = data.draw(st.sampled_from([(GEN, [DATA]), (MC_JSONL, [MC])]))
    content = data.draw(jsonl_file(seeds))
    run = data.draw(st.integers(0, 7)) == 0
    with timed("jsonl"), scratch(ws, store=run) as ex:
        text = suite.replace("path: d.jsonl", "path: fuzz.jsonl").replace("path: mc.jsonl", "path: fuzz.jsonl")
        check("jsonl", data_case(ws, ex, text, "suites/fuzz.jsonl", content, run))


@fuzz_settings(60)
@given(data=st.data())
def test_csv_data(ws, data):
    """CSV data files with a header (a classification and a generation task read them): ragged
    rows, BOMs, NULs, stray quotes, enormous lines: exit 0, or exit 2 naming the file and line."""
    header = list(DATA[0])
    content = data.draw(csv_file([header] + [[str(r[h]) for h in header] for r in DATA]))
    run = data.draw(st.integers(0, 7)) == 0
    with timed("csv"), scratch(ws, store=run) as ex:
        check("csv", data_case(ws, ex, CSV_SUITE.replace("path: d.csv", "path: fuzz.csv"), "suites/fuzz.csv", content, run))


@fuzz_settings(60)
@given(data=st.data())
def test_mmlu_csv_data(ws, data):
    """MMLU-layout CSV files (no header, or a header row; question, A-D, answer as a letter or 0-3)
    in the test or the dev (few-shot) split: exit 0, or exit 2 naming the file and line."""
    rows = [next(csv.reader([line])) for line in MMLU]
    if data.draw(st.booleans()):
        rows = [["question", "A", "B", "C", "D", "answer"]] + rows
    content = data.draw(csv_file(rows))
    split = data.draw(st.sampled_from(["test", "dev"]))
    run = data.draw(st.integers(0, 7)) == 0
    with timed("mmlu_csv"), scratch(ws, store=run) as ex:
        folder = ws.root / "suites" / "mmfuzz"
        shutil.rmtree(folder, ignore_errors=True)
        _write(ws.root, "suites/mmfuzz/test/sums_test.csv", "\n".join(MMLU) + "\n")
        _write(ws.root, "suites/mmfuzz/dev/sums_dev.csv", "\n".join(MMLU_DEV) + "\n")
        check("mmlu_csv", data_case(ws, ex, MMLU_SUITE.replace("path: mm,", "path: mmfuzz,"),
                                    f"suites/mmfuzz/{split}/sums_{split}.csv", content, run))


ANSWER_SEEDS = [
    [{"id": r["id"], "output": r["tweet"]} for r in DATA],
    [{"id": r["id"], "turns": [r["tweet"]]} for r in DATA],
    [{"question_id": r["id"], "model_id": "m", "choices": [{"index": 0, "turns": [r["tweet"]]}]} for r in DATA],
]


@fuzz_settings(40)
@given(data=st.data())
def test_answer_files(ws, data):
    """Answer files: `harness run SUITE --answers NAME=FILE` (an answer set evaluated as a variant,
    on a copy of the store) and a suite's multi_turn.reference_answers (validated): exit 0, or exit 2
    naming the file and line, the store unchanged."""
    route = data.draw(st.sampled_from(["answers", "reference"]))
    content = data.draw(jsonl_file(ANSWER_SEEDS if route == "answers" else [REFS]))
    with timed("answers"), scratch(ws, store=True) as ex:
        path = _write(ws.root, "suites/fuzz_answers.jsonl", content)
        store = ex / "h.duckdb"
        if route == "answers":
            argv = ["run", str(ws.root / "suites/gen.yaml"), "--answers", f"a={path}", "--store", str(store)]
            case = Case(argv, [path], ws.root, store=store)
        else:
            suite = _write(ws.root, "suites/fuzz_chat.yaml", CHAT_SUITE.replace("refs.jsonl", "fuzz_answers.jsonl"))
            case = Case(["validate", str(suite)], [path, suite], ws.root)
        check("answers", case)


# -- targets: sheets imported into a store ----------------------------------------------------------

YES_NO = ["yes", "no", "", "YES", " y ", "n", "true", "false", "0", "1", "maybe", "supported", "unsupported", "=1+1", "'=1+1"]
NUMBERS = ["0", "1", "3", "10", "-1", "1.5", "1e3", "1e309", "nan", "inf", "-inf", "", " 7 ", "x", "10**9", "99999999999999999999999"]


def sheet_vocab(ws: Workspace) -> list[str]:
    return sorted({r for r, _ in ws.samples} | {s for _, s in ws.samples} | set(ws.variants) | set(YES_NO) | set(NUMBERS))


def import_case(ws: Workspace, ex: Path, command: list[str], name: str, content: bytes) -> Case:
    sheet = _write(ex, name, content)
    store = ex / "h.duckdb"
    return Case([*command, str(sheet), "--store", str(store)], [sheet], ex, store=store)


AUDIT_COLUMNS = ["run_id", "sample_id", "claim_index", "variant", "task", "source", "claim", "evidence", "support",
                 "verifier_supported", "human_supported"]


@fuzz_settings(40)
@given(data=st.data())
def test_audit_import(ws, data):
    """`harness audit import SHEET` with fuzzed sheets (rows of stored samples, yes/no labels,
    claim indices; columns dropped, cells ragged, bytes broken): exit 0, or exit 2 naming the
    sheet and the line or column, every table's row count unchanged."""
    rows = [AUDIT_COLUMNS]
    for _ in range(data.draw(st.integers(0, 4))):
        run_id, sample_id = data.draw(st.sampled_from(ws.samples))
        rows.append([run_id, sample_id, data.draw(st.sampled_from(["0", "1", "-1", "x", "1.5", ""])), "f", "tweets", "a source",
                     data.draw(st.text(max_size=10)), "", "0.5", data.draw(st.sampled_from(YES_NO)), data.draw(st.sampled_from(YES_NO))])
    content = data.draw(csv_file(rows, sheet_vocab(ws)))
    with timed("audit_import"), scratch(ws, store=True) as ex:
        check("audit_import", import_case(ws, ex, ["audit", "import"], "sheet.csv", content))


@fuzz_settings(40)
@given(data=st.data())
def test_review_import(ws, data):
    """`harness review import SHEET` with fuzzed rubric sheets (human_<check> yes/no, rating_<dimension>
    1-10, auto_<check>; unknown samples, ratings out of range, NaN): exit 0, or exit 2 naming the sheet
    and the line or column, every table's row count unchanged."""
    columns = ["run_id", "sample_id", "variant", "task", "prompt", "output", "auto_length", "human_length", "human_tone", "rating_warmth"]
    rows = [columns]
    for _ in range(data.draw(st.integers(0, 4))):
        run_id, sample_id = data.draw(st.sampled_from(ws.samples))
        rows.append([run_id, sample_id, "f", "tweets", "p", "o", data.draw(st.sampled_from(YES_NO)), data.draw(st.sampled_from(YES_NO)),
                     data.draw(st.sampled_from(YES_NO)), data.draw(st.sampled_from(NUMBERS))])
    content = data.draw(csv_file(rows, sheet_vocab(ws)))
    with timed("review_import"), scratch(ws, store=True) as ex:
        check("review_import", import_case(ws, ex, ["review", "import"], "review.csv", content))


OUTCOME_COLUMNS = ["variant", "item_id", "impressions", "likes", "reposts", "replies", "used", "edit_seconds", "draft", "published"]


@fuzz_settings(40)
@given(data=st.data())
def test_outcomes_import(ws, data):
    """`harness outcomes import FILE` with fuzzed CSV and JSONL outcomes (unknown variants, negative,
    fractional, huge or non-numeric counts, wrong JSON types, unknown fields): exit 0, or exit 2
    naming the file and the line and field, every table's row count unchanged."""
    # mostly valid counts and variants, so that whole files get through to the store now and then
    number = st.one_of(st.integers(1, 10**4), st.integers(1, 10**4), st.sampled_from(NUMBERS), st.integers(-5, 10**20))
    posts = []
    for _ in range(data.draw(st.integers(0, 4))):
        posts.append({"variant": data.draw(st.sampled_from([*ws.variants, *ws.variants, *ws.variants, "ghost", ""])),
                      "item_id": data.draw(st.sampled_from([s for _, s in ws.samples])),
                      "impressions": data.draw(number), "likes": data.draw(number), "reposts": data.draw(number), "replies": data.draw(number),
                      "used": data.draw(st.sampled_from(YES_NO)), "edit_seconds": data.draw(number), "draft": "a b c", "published": "a b d"})
    if data.draw(st.booleans()):
        name, content = "outcomes.jsonl", data.draw(jsonl_file([posts]))
    else:
        table = [OUTCOME_COLUMNS] + [[str(p[c]) for c in OUTCOME_COLUMNS] for p in posts]
        name, content = "outcomes.csv", data.draw(csv_file(table, sheet_vocab(ws)))
    with timed("outcomes_import"), scratch(ws, store=True) as ex:
        check("outcomes_import", import_case(ws, ex, ["outcomes", "import"], name, content))


# -- target: command-line arguments ---------------------------------------------------------------

# Commands that serve forever (view), send load to a server (load), build exports with llama.cpp
# (ship) or re-run models (noise) are left out, as are flags that start Ray, trackers or uploads.
UNSAFE_COMMANDS = {"view", "load", "ship", "noise"}
UNSAFE_FLAGS = {"--ray", "--log", "--push", "--shard-items", "--port", "--host"}


def _commands() -> dict[tuple[str, ...], list[str]]:
    """(command, action) -> its option strings, read from the real parser (() for the top level)."""
    import argparse

    from harness.cli import build_parser

    out: dict[tuple[str, ...], list[str]] = {}

    def visit(parser, prefix):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        out[prefix] = sorted({o for a in parser._actions for o in a.option_strings} - UNSAFE_FLAGS)
        for sub in subs:
            for name, child in sub.choices.items():
                if not prefix and name in UNSAFE_COMMANDS:
                    continue
                visit(child, (*prefix, name))

    visit(build_parser(), ())
    return out


COMMANDS = _commands()
CLI_WORDS = ["s.yaml", "m.yaml", "r.yaml", "h.duckdb", "d.jsonl", "sheet.csv", "nope.yaml", "out", "out/x.html", ".", "-", "", "--",
             "suites", "tweets", "f", "g", "fake", "fake,name=x", "fake,delay_s=x", "endpoint:http://127.0.0.1:9,model=x", "hf:nope",
             "gguf:nope", "x=d.jsonl", "a=nope.jsonl", "auto", "temperature=0.5", "max_new_tokens=-1", "stop=a|b", "foo=bar",
             "variants", "runs", "scorers", "metrics", "v1.0", "lm-eval", "parquet", "-v", "-h"] + NUMBERS
SAFE_TEXT = st.text(max_size=12).filter(lambda t: not t.startswith(("/", "~")) and ".." not in t and "\x00" not in t)


@st.composite
def cli_args(draw) -> list[str]:
    """A command (as the parser defines them) followed by its own flags, workspace file names,
    numbers and random words in any order; now and then a flag before the command."""
    command = draw(st.sampled_from(sorted(COMMANDS)))
    token = st.one_of(st.sampled_from(COMMANDS[command] or ["--help"]), st.sampled_from(CLI_WORDS), SAFE_TEXT)
    before = draw(st.lists(st.sampled_from(["-v", "--version", "-h", "--nope"] + COMMANDS[()]), max_size=1))
    return [*before, *command, *draw(st.lists(token, max_size=7))]


@fuzz_settings(60)
@given(argv=cli_args())
def test_cli_arguments(ws, argv, monkeypatch):
    """Random argument lists to `main` in a workspace folder (suite, models, report, data and a copy
    of the store): a result (gate's 1 and 3, run's 1 included), or exit 2 with an error message
    (argparse's usage counts); never a traceback; an error writes no file and no row."""
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    with timed("cli"), scratch(ws, store=True) as ex:
        _write(ex, "s.yaml", GEN)
        _write(ex, "d.jsonl", _jsonl(DATA))
        _write(ex, "m.yaml", MODELS)
        _write(ex, "r.yaml", REPORT_SEEDS[0])
        _write(ex, "sheet.csv", ",".join(AUDIT_COLUMNS) + "\n")
        cwd = os.getcwd()
        os.chdir(ex)  # relative paths (and the default store, .harness/) land in the scratch folder
        try:
            check("cli", Case(argv, [], ex, store=ex / "h.duckdb", codes=(0, 1, 2, 3), arguments=True))
        finally:
            os.chdir(cwd)


# -- regressions: what the fuzzing found, each fixed and pinned by a plain test ----------------------

def _fails_with(argv: list[str], *needles: str) -> str:
    """Run argv: exit 2, no traceback, and every needle in the output."""
    code, text, raised = run_main(argv)
    assert raised is None and TRACEBACK not in text, text
    assert code == 2, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    return text


def test_yaml_control_character_names_line_and_column(tmp_path):
    """A NUL (or another control character) in a YAML file is an error at its line and column, not
    at PyYAML's character offset."""
    path = _write(tmp_path, "suites/s.yaml", "name: s\ndescription: a\x00b\n")
    _fails_with(["validate", str(path)], "s.yaml: line 2, column 15: invalid YAML: character U+0000 is not allowed")


def test_yaml_nested_too_deep_is_an_error_not_a_recursion_error(tmp_path):
    """1,000 levels of brackets used to exhaust Python's stack in the YAML composer (RecursionError);
    now nesting past MAX_DEPTH is an error naming the line."""
    path = _write(tmp_path, "suites/s.yaml", "name: s\ntasks: " + "[" * 1000 + "]" * 1000 + "\n")
    _fails_with(["validate", str(path)], "s.yaml: line 2, column ", "nested more than 100 levels deep")


def test_yaml_alias_bomb_and_self_reference_are_refused(tmp_path):
    """A billion-laughs document (9 levels of 9 aliases) is refused before anything expands it, an
    alias inside its own anchor is refused rather than built as an infinite value, and a chain of
    aliases deeper than nesting may go is refused: each at its line."""
    bomb = "name: s\ndescription: " + alias_bomb(9, 9).decode() + "\ntasks: []\n"
    _fails_with(["validate", str(_write(tmp_path, "suites/bomb.yaml", bomb))], "bomb.yaml: line 2, column ",
                "invalid YAML: its aliases expand to more than 1,000,000 values")
    loop = "name: s\ndescription: &a [x, *a]\ntasks: []\n"
    _fails_with(["validate", str(_write(tmp_path, "suites/loop.yaml", loop))],
                "loop.yaml: line 2, column 14: invalid YAML: an alias refers to a value that contains it")
    chain = "name: s\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" if i else "a0: &a0 [x]\n" for i in range(150))
    _fails_with(["validate", str(_write(tmp_path, "suites/chain.yaml", chain))], "chain.yaml: line 102, column 7: invalid YAML: "
                "its aliases nest values more than 100 levels deep")
    small = "name: s\ndescription: " + alias_bomb(4, 4).decode() + "\ntasks: []\n"  # within limits: an ordinary error, shown short
    text = _fails_with(["validate", str(_write(tmp_path, "suites/small.yaml", small))], "description: Input should be a valid string")
    assert len(max(text.splitlines(), key=len)) < 300


def test_yaml_value_a_tag_cant_read_names_its_line(tmp_path):
    """`2024-13-45` (read as a date) or `!!int abc` made PyYAML's constructor raise ValueError or
    AttributeError without a place; now it is a YAML error at the value's line and column."""
    path = _write(tmp_path, "suites/s.yaml", "name: s\nseed: 2001-13-45\ntasks: []\n")
    _fails_with(["validate", str(path)], "s.yaml: line 2, column 7: invalid YAML: can't read '2001-13-45' as a timestamp")
    path = _write(tmp_path, "suites/t.yaml", "name: s\ndescription: !!timestamp 2001-12-14\n  }}\ntasks: []\n")
    _fails_with(["validate", str(path)], "t.yaml: line 2, column 14: invalid YAML: can't read")


def test_task_type_that_is_not_text(tmp_path):
    """`type: [generation]` made the task union's tag function raise TypeError (unhashable list)."""
    path = _write(tmp_path, "suites/s.yaml", GEN.replace("type: generation", "type: [generation]"))
    _fails_with(["validate", str(path)], "s.yaml: tasks[0]: Value error, unknown task type '['generation']'. Did you mean 'generation'?")


def test_keys_that_are_not_text_or_not_names(tmp_path):
    """A key YAML reads as a number names its mapping (it read like a list index, `[-1]`); a key
    such as '' or 'a b' is quoted in the field path (it read `headline.`)."""
    path = _write(tmp_path, "models/m.yaml", "base: {name: f, source: fake}\n-1: x\n")
    _fails_with(["validate", str(path)], "m.yaml: (top level): key -1 is not text (YAML reads it as a number)")
    path = _write(tmp_path, "reports/r.yaml", "title: x\nvariants: [a]\nheadline: {'': null}\n")
    _fails_with(["validate", str(path)], "r.yaml: headline['']: Input should be a valid string (got None)")


def test_missing_data_path_names_the_suite_and_task(tmp_path):
    """A task without data.path said only 'this data format needs data.path', naming no file."""
    path = _write(tmp_path, "suites/s.yaml", GEN.replace("{format: jsonl, path: d.jsonl}", "{format: jsonl}"))
    _fails_with(["validate", str(path)], "s.yaml: task 'tweets': data.path: this data format needs a path")
    path = _write(tmp_path, "suites/m.yaml", MMLU_SUITE.replace("path: mm, ", ""))
    _fails_with(["validate", str(path)], "m.yaml: task 'mmlu': data.path: mmlu_csv needs a path")


def test_path_longer_than_the_file_system_allows(tmp_path):
    """A data.path (or answers file, or sheet) longer than the file system allows raised OSError
    (ENAMETOOLONG) from is_file(); now it is not found, like any missing file."""
    path = _write(tmp_path, "suites/s.yaml", GEN.replace("path: d.jsonl", "path: " + "x" * 5000))
    _fails_with(["validate", str(path)], "data file not found")
    models = _write(tmp_path, "m.yaml", MODELS)
    _fails_with(["run", str(tmp_path / ("y" * 5000 + ".yaml")), "--models", str(models), "--store", str(tmp_path / "h.duckdb")],
                "file not found")
    assert not (tmp_path / "h.duckdb").exists()


def test_jsonl_nested_too_deep_names_the_line(tmp_path):
    """A JSONL line nested thousands of levels deep raised RecursionError in json.loads; one
    nested a few hundred levels passed and broke hashing later. Both are errors at the line."""
    _write(tmp_path, "suites/d.jsonl", _jsonl(DATA[:1]) + '{"id": "x", "topic": ' + "[" * 5000 + "]" * 5000 + "}\n")
    suite = _write(tmp_path, "suites/s.yaml", GEN)
    _fails_with(["validate", str(suite)], "d.jsonl: line 2: lists and objects nested more than 100 levels deep")
    _write(tmp_path, "suites/d.jsonl", '{"id": "x", "topic": ' + "[" * 500 + "]" * 500 + "}\n")
    _fails_with(["validate", str(suite)], "d.jsonl: line 1: lists and objects nested more than 100 levels deep")


def test_csv_value_over_the_csv_module_limit_names_the_line(tmp_path):
    """An unclosed quote (or a value over 131,072 characters) made Python's csv reader raise
    csv.Error through every CSV reader: data, MMLU and sheets. Now: the file, the line, a hint."""
    _write(tmp_path, "suites/d.csv", "id,topic,tweet,label\nt0,\"" + "x" * 200_000 + "\n")
    suite = _write(tmp_path, "suites/s.yaml", CSV_SUITE)
    text = _fails_with(["validate", str(suite)], "d.csv: line 2: not readable as CSV (field larger than field limit")
    assert "never closed" in text
    _write(tmp_path, "suites/mm/test/sums_test.csv", "\"" + "x" * 200_000 + "\n")
    _fails_with(["validate", str(_write(tmp_path, "suites/m.yaml", MMLU_SUITE.replace("fewshot: {k: 1, split: dev}", "fewshot: {k: 0}")))],
                "sums_test.csv: line 1: not readable as CSV")


def test_outcomes_jsonl_values_of_the_wrong_json_type(ws, tmp_path):
    """JSONL outcomes took a list as a draft or an item id (stored as its repr) and true as a count
    of 1; now each is an error naming the line and field, and nothing is stored."""
    store = tmp_path / "h.duckdb"
    shutil.copy(ws.store, store)
    before = store_counts(store)
    for row, needle in [({"variant": "f", "impressions": 10, "draft": [1, 2]}, "line 1, field draft: expected text, got list"),
                        ({"variant": "f", "impressions": 10, "item_id": {"a": 1}}, "line 1, field item_id: expected text"),
                        ({"variant": "f", "impressions": True}, "line 1, field impressions: expected a number, got True")]:
        path = _write(tmp_path, "o.jsonl", json.dumps(row) + "\n")
        _fails_with(["outcomes", "import", str(path), "--store", str(store)], "o.jsonl: " + needle)
    assert store_counts(store) == before
    path = _write(tmp_path, "o.jsonl", json.dumps({"variant": "f", "impressions": 10, "item_id": 7, "used": True}) + "\n")
    assert run_main(["outcomes", "import", str(path), "--store", str(store)])[0] == 0


def test_sheet_ids_come_back_without_the_spreadsheet_apostrophe(tmp_path):
    """Export writes a cell starting with - = + @ with a leading apostrophe (so a spreadsheet shows
    it as text); the review and audit imports looked the ids up with the apostrophe, so an item id
    such as '-1' was 'not in the store'."""
    _write(tmp_path, "d.jsonl", _jsonl([{"id": "-1", "topic": "a", "tweet": "b"}, {"id": "=2", "topic": "c", "tweet": "d"}]))
    suite = _write(tmp_path, "s.yaml", GEN)
    models = _write(tmp_path, "m.yaml", MODELS)
    store = tmp_path / "h.duckdb"
    assert run_main(["run", str(suite), "--models", str(models), "--store", str(store)])[0] == 0
    con = duckdb.connect(str(store), read_only=True)
    run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.close()
    review = _write(tmp_path, "review.csv", f"run_id,sample_id,human_length\n{run_id},'-1,yes\n{run_id},'=2,no\n")
    code, text, _ = run_main(["review", "import", str(review), "--store", str(store)])
    assert code == 0 and "2 human verdicts" in text, text
    audit = _write(tmp_path, "audit.csv", ",".join(AUDIT_COLUMNS[:3] + ["claim", "verifier_supported", "human_supported"])
                   + f"\n{run_id},'-1,0,a claim,yes,no\n")
    code, text, _ = run_main(["audit", "import", str(audit), "--store", str(store)])
    assert code == 0 and "1 human labels" in text, text
    con = duckdb.connect(str(store), read_only=True)
    assert sorted(r[0] for r in con.execute("SELECT sample_id FROM review_labels").fetchall()) == ["-1", "=2"]
    assert con.execute("SELECT sample_id FROM audit_labels").fetchall() == [("-1",)]
    con.close()


TARGETS = {
    "suite": ("test_suite_files_validate", "suite YAML, `validate`"),
    "suite_run": ("test_suite_files_run", "suite YAML, `run` (fake backend)"),
    "models": ("test_models_files_validate", "models YAML, `validate`"),
    "report": ("test_report_files_validate", "report YAML, `validate`"),
    "jsonl": ("test_jsonl_data", "JSONL data, `validate` / `run`"),
    "csv": ("test_csv_data", "CSV data, `validate` / `run`"),
    "mmlu_csv": ("test_mmlu_csv_data", "MMLU CSV data, `validate` / `run`"),
    "answers": ("test_answer_files", "answer files, `run --answers` / reference answers"),
    "cli": ("test_cli_arguments", "command-line arguments"),
    "audit_import": ("test_audit_import", "`audit import` sheets"),
    "review_import": ("test_review_import", "`review import` sheets"),
    "outcomes_import": ("test_outcomes_import", "`outcomes import` CSV / JSONL"),
}
"""target (the name its counts are kept under) -> (its test, what it fuzzes): benchmarks/fuzz_soak.py runs each."""
