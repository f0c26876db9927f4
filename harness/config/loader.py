"""Read a YAML file into a pydantic model; every failure becomes a one-line ConfigError
naming the file and the field path."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import ConfigError
from harness.textfile import read_text

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every file-boundary model: unknown keys are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def format_validation_error(path: Path | str, exc: ValidationError, data: object = None) -> str:
    """One line per problem: `file: field.path: message`; unknown keys get a did-you-mean."""
    import difflib

    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc, parent = _walk(_MODEL_OF.get(exc.title), loc)
        msg = err["msg"]
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
            msg += f" (got {err['input']!r:.60})"
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


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader (same safe constructors), except that a key repeated in one
    mapping is an error naming both lines, where safe_load silently keeps the last value."""


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


def read_yaml(path: Path | str) -> object:
    """Load a YAML file safely (UniqueKeyLoader); a missing file, a file that is not UTF-8, a
    YAML syntax error or a repeated key is a ConfigError naming the place."""

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        return yaml.load(read_text(path), Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        hint = ("keep one of the two: YAML would silently use the last" if problem.startswith("duplicate key")
                else "look at this line and the one before it: an unclosed bracket or quote, a tab used for "
                     "indentation, or a value containing ': ' or '#' that needs quotes")
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}", hint=hint) from None


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
