"""Read a YAML file into a pydantic model; every failure becomes a one-line ConfigError
naming the file and the field path."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import ConfigError
from harness.textfile import MAX_DEPTH, is_dir, is_file, read_text

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every file-boundary model: unknown keys are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def short_repr(value: object, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters, without building the whole repr first: a value that
    aliases make huge (or that contains itself) is shown by its start."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, limit, limit, limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 6
    return r.repr(value)[:limit]


_KINDS = {"int": "a number", "float": "a number", "bool": "true or false", "NoneType": "null", "date": "a date", "datetime": "a date"}


def _loc(loc: tuple) -> str:
    import re

    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not re.fullmatch(r"[\w-]+", str(part)):  # '', 'a b', 'x.y': quoted, so the path reads one way
            out += f"[{short_repr(str(part))}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def format_validation_error(path: Path | str, exc: ValidationError, data: object = None) -> str:
    """One line per problem: `file: field.path: message`; unknown keys get a did-you-mean."""
    import difflib

    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc, parent = _walk(_MODEL_OF.get(exc.title), loc)
        msg = err["msg"]
        if err["type"] == "invalid_key" or loc[-1:] == ("[key]",):
            # A mapping key YAML read as a number, null or true: pydantic's loc ends in the key (and
            # '[key]' for a dict field), which reads like a list index; name the mapping instead.
            lines.append(f"{path}: {_loc(loc[:-2] if loc[-1:] == ('[key]',) else loc[:-1])}: key {short_repr(err['input'])} "
                         f"is not text (YAML reads it as {_KINDS.get(type(err['input']).__name__, 'a value')}): quote it or remove it")
            continue
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            allowed = list(parent.model_fields) if parent is not None else []
            if allowed:
                close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
                if close:
                    msg += f"; did you mean '{close[0]}'?"
                msg += ("" if close else ".") + f" Allowed: {', '.join(sorted(allowed))}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            msg += f" (got {short_repr(err['input'])})"
        lines.append(f"{path}: {_loc(loc)}: {msg}")
    return "\n".join(lines)


def _walk(model: type[BaseModel] | None, loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """Follow `loc` through the declared fields. Returns the loc without pydantic's
    discriminated-union tags (e.g. the `generation` in tasks.0.generation.prompt) and the model
    that holds the last key (for an unknown key's allowed names)."""
    import typing

    clean: list = []
    candidates: list[type[BaseModel]] = [model] if model is not None else []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            clean.append(part)
            continue
        tagged = [m for m in candidates if _tag_matches(m, part)] if len(candidates) > 1 else []
        if tagged:
            candidates = tagged  # a union tag, not a key the user wrote
            continue
        clean.append(part)
        if i == len(loc) - 1:
            break
        field = next((m.model_fields[part] for m in candidates if part in m.model_fields), None)
        candidates = _models_in(field.annotation, typing) if field is not None else []
    holder = candidates[0] if candidates else None
    return tuple(clean), holder


def _tag_matches(model: type[BaseModel], tag: str) -> bool:
    import typing

    field = model.model_fields.get("type")
    if getattr(model, "UNION_TAG", None) == tag:
        return True  # a catch-all member (a plugin's task kind) tagged by name, not by a Literal
    return field is not None and tag in typing.get_args(field.annotation)


def _models_in(annotation, typing) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += [m for m in _models_in(arg, typing) if m not in found]
    return found


_MODEL_OF: dict[str, type[BaseModel]] = {}


MAX_VALUES = 1_000_000
"""A document whose aliases expand to more values than this is refused: a few lines of anchors
can stand for billions of values (the "billion laughs"), which validating or hashing would expand."""


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader (same safe constructors), except that a key repeated in one
    mapping is an error naming both lines, where safe_load silently keeps the last value, and that
    nesting deeper than MAX_DEPTH is an error naming the line where it goes too deep."""

    _depth = 0

    def construct_object(self, node, deep=False):
        # A tagged scalar the tag's constructor can't read (`!!int abc`, `!!timestamp 2001-13-45`):
        # PyYAML lets the constructor's ValueError through without a place; give it the node's.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            why = f" ({exc})" if isinstance(exc, (ValueError, OverflowError)) else ""
            raise yaml.constructor.ConstructorError(None, None, f"can't read {short_repr(node.value)} as a {node.tag.rsplit(':', 1)[-1]}{why}",
                                                    node.start_mark) from None

    def construct_document(self, node):
        _check_aliases(node)  # before anything is built: a bomb would be expanded, a loop built
        return super().construct_document(node)

    def compose_node(self, parent, index):
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_aliases(root: yaml.Node) -> None:
    """A YAML error at the node where aliases make the document contain itself, expand past
    MAX_VALUES values, or nest past MAX_DEPTH levels (each alias adds the depth of what it names).
    Each shared node is counted once, without expanding it."""
    size: dict[int, tuple[int, int]] = {}  # id -> (values, depth) of each collection node done
    open_ids: set[int] = set()  # the collections being counted: met again inside itself, a loop
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, yaml.CollectionNode):
            continue
        key = id(node)
        children = [c for item in node.value for c in (item if isinstance(item, tuple) else (item,))
                    if isinstance(c, yaml.CollectionNode)]
        if done:
            open_ids.discard(key)
            values = len(node.value) + 1 + sum(size[id(c)][0] for c in children)
            depth = 1 + max((size[id(c)][1] for c in children), default=0)
            problem = (f"its aliases expand to more than {MAX_VALUES:,} values" if values > MAX_VALUES
                       else f"its aliases nest values more than {MAX_DEPTH} levels deep" if depth > MAX_DEPTH else None)
            if problem:
                raise yaml.composer.ComposerError(None, None, problem, node.start_mark)
            size[key] = (values, depth)
        elif key in open_ids:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a value that contains it (the document would be infinite)",
                                              node.start_mark)
        elif key not in size:
            open_ids.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children)


def _unique_mapping(loader: UniqueKeyLoader, node, deep: bool = False):
    first_line: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = first_line.get(key)
        except TypeError:  # an unhashable key: the safe constructor reports it below
            continue
        if seen is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen + 1}, again on line {key_node.start_mark.line + 1})",
                key_node.start_mark)
        first_line[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


HINTS = [
    ("duplicate key", "keep one of the two: YAML would silently use the last"),
    ("nested more", "no harness file nests this deep: look for brackets or indentation that never close"),
    ("can't read", "quote the value to keep it as text (YAML reads 2024-13-01 as a date), or drop its !!tag"),
    ("an alias refers", "an alias (*name) can only refer to an anchor (&name) outside the value it is in"),
    ("its aliases nest", "each alias adds the depth of the value it names: write the values out instead of a chain of aliases"),
    ("its aliases", "an anchor used many times in a value that is itself used many times multiplies: write the values out, "
                    "or use fewer levels of aliases"),
    ("", "look at this line and the one before it: an unclosed bracket or quote, a tab used for indentation, or a value "
         "containing ': ' or '#' that needs quotes"),
]
"""(start of PyYAML's or our own problem text, the hint shown with it); the last is the default."""


def read_yaml(path: Path | str) -> object:
    """Load a YAML file safely (UniqueKeyLoader); a missing file, a file that is not UTF-8, a
    YAML syntax error or a repeated key is a ConfigError naming the place."""

    path = Path(path)
    if not is_file(path):
        raise ConfigError(f"{path}: file not found" + (" (it is a directory)" if is_dir(path) else ""))
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (NUL, other control characters): PyYAML names its
        # offset in the text; say the line and column, as for every other YAML error.
        line, column = _line_column(text, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError(f"{path}: line {line}, column {column}: invalid YAML: character {char} is not allowed in a YAML file",
                          hint="remove it; a control character in a value is written as an escape in a double-quoted "
                               "string, e.g. \"\\x01\"") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        hint = next((h for start, h in HINTS if problem.startswith(start)), HINTS[-1][1])
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}", hint=hint) from None
    return data


def _line_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character offset, counting line breaks as YAML does."""
    import re

    breaks = list(re.finditer(r"\r\n|[\r\n\x85\u2028\u2029]", text[:position]))
    return len(breaks) + 1, position - (breaks[-1].end() if breaks else 0) + 1


def parse_model(model: type[M], data: object, path: Path | str) -> M:
    """Validate `data` (already parsed) as `model`, raising ConfigError naming `path`."""
    _MODEL_OF[model.__name__] = model
    if data is None:
        raise ConfigError(f"{path}: file is empty; expected a mapping for {model.__name__}",
                          hint="see the shipped suites/, models/ and reports/ files for a starting point")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None


def load_model_file(model: type[M], path: Path | str) -> M:
    """Read and validate one YAML file as `model`."""
    return parse_model(model, read_yaml(path), path)
