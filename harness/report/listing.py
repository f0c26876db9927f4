"""Text views of the store for `harness list`."""

from __future__ import annotations

import re
import sys
import typing
from typing import Any

from harness import registry
from harness.config.schema import _default, _describe, _models_in, _type_name, scorer_config_model
from harness.stats.metricspec import declarations
from harness.store.db import Store


def lineage_tree(store: Store) -> list[str]:
    """Every stored build as an indented tree, base models at the roots."""
    rows = store.query("SELECT variant_key, name, parent_key, method, artifact_kind, trainable_params, wall_s, created_at "
                       "FROM variants ORDER BY created_at")
    children: dict[str | None, list[dict]] = {}
    keys = {r["variant_key"] for r in rows}
    for r in rows:
        parent = r["parent_key"] if r["parent_key"] in keys else None
        children.setdefault(parent, []).append(r)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            extra = f", {r['trainable_params']:,} trainable" if r["trainable_params"] else ""
            built = f", built in {r['wall_s']:.0f}s" if r["wall_s"] else ""
            lines.append(f"{'  ' * depth}{'└─ ' if depth else ''}{r['name']} [{r['method']}, {r['variant_key']}{extra}{built}]")
            walk(r["variant_key"], depth + 1)

    walk(None, 0)
    return lines or ["(no variants in the store yet)"]


def scorer_lines() -> list[str]:
    """Every registered scorer with the task types it applies to and the metrics it declares."""

    lines = []
    for name in registry.names("scorer"):
        target = registry.target("scorer", name)
        s = registry.resolve("scorer", name)
        lines.append(f"{name:18} {target}")
        lines.append(f"{'':18} {getattr(s, 'description', '')} (tasks: {', '.join(getattr(s, 'task_types', ()))})")
        for m in getattr(s, "metrics", ()):
            lines.append(f"{'':18}   {_metric_line(m)}")
        model = scorer_config_model(s)
        if model is None:
            lines.append(f"{'':18} options: none (written by name: `- {name}`)")
        else:
            lines.append(f"{'':18} options (`- {name}: {{...}}`, {model.__name__}):")
            lines += [f"{'':18}   {line}" for line in config_key_lines(model)]
    return lines


def recipe_lines() -> list[str]:
    """Every registered recipe (a variant's `method:`) with what it does and the keys its
    `config:` takes: name, type, default and the first sentence of the key's docstring."""
    lines = []
    listed: dict[Any, str] = {}  # config model -> the first recipe listed with it
    for name in registry.names("recipe"):
        target = registry.target("recipe", name)
        recipe = registry.resolve("recipe", name)
        module = sys.modules.get(target.partition(":")[0])
        lines.append(f"{name:18} {_first_sentence(getattr(module, '__doc__', None))} [{target}]")
        model = getattr(recipe, "config_model", None)
        if model is None:
            lines.append(f"{'':18} config: none")
        elif model in listed:
            lines.append(f"{'':18} config ({model.__name__}): the same keys as {listed[model]}")
        else:
            listed[model] = name
            lines.append(f"{'':18} config ({model.__name__}):")
            lines += [f"{'':18}   {line}" for line in config_key_lines(model)]
    return lines


def config_key_lines(model: Any) -> list[str]:
    """One aligned line per key of a pydantic config model: `key  type  default  what it is`,
    with the keys of a nested model dotted (`lora.r`; `checks[].name` for a list of them), one
    level deep (`harness schema` has every level)."""
    rows = _key_rows(model, "", ())
    if not rows:
        return ["(no keys)"]
    key_w = min(max(len(r[0]) for r in rows), 36)
    type_w = min(max(len(r[1]) for r in rows), 30)
    return [f"{key:{key_w}}  {type_:{type_w}}  {default}{'  ' + doc if doc else ''}".rstrip() for key, type_, default, doc in rows]


NESTED_LEVELS = 1
"""How many levels of nested models `harness list` spells out."""


def _key_rows(model: Any, prefix: str, path: tuple) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        nested = [m for m in _models_in(field.annotation) if m not in path and m is not model]
        doc = _describe(model, key, field)
        if doc.startswith("See ") or doc == "(not documented in the code)":
            doc = ""
        expand = len(path) < NESTED_LEVELS
        default = _plain_default(field, expand)
        if nested and not expand and default != "(keys: harness schema)":
            default += " (keys: harness schema)"
        rows.append((prefix + key, _plain_type(field.annotation), default, _first_sentence(doc)))
        if expand:
            inner = f"{prefix}{key}[]." if _is_list(field.annotation) else f"{prefix}{key}."
            for m in nested:
                rows += _key_rows(m, inner, path + (model,))
    return rows


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (list, tuple):
        return True
    return any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))


def _plain_type(annotation: Any) -> str:
    """schema's type name without its Markdown (links, escaped bars)."""
    text = _type_name(annotation).replace(" \\| ", "|")
    return re.sub(r"\[(\w+)\]\(#\w+\)", r"\1", text)


def _plain_default(field, expanded: bool) -> str:
    text = _default(field)
    if text == "**required**":
        return "required"
    if text == "(defaults below)":
        return "(keys below)" if expanded else "(keys: harness schema)"
    if text == "–":
        return "default: none"
    return "default: " + text.strip("`").replace("\\|", "|")


def _first_sentence(text: str | None) -> str:
    """The first sentence of a docstring, on one line."""
    flat = " ".join((text or "").split())
    return re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z`(])", flat, maxsplit=1)[0]


def metric_lines() -> list[str]:
    """Every declared metric: name, direction, values (which decides the test), level, range, provider."""

    lines = [f"{'metric':32} {'better':7} {'values':11} {'level':5} {'test':30} {'range':14} provider"]
    for d in sorted(declarations(), key=lambda d: (d.metric.name, d.provider)):
        m = d.metric
        lines.append(f"{m.name:32} {m.direction:7} {m.values:11} {m.level:5} {m.test:30} {_range(m):14} {d.provider}")
    return lines


def _range(m) -> str:
    lo = "-inf" if m.low is None else f"{m.low:g}"
    hi = "inf" if m.high is None else f"{m.high:g}"
    return f"[{lo}, {hi}]" + (f" {m.unit}" if m.unit else "")


def _metric_line(m) -> str:
    better = {"higher": "higher is better", "lower": "lower is better", "none": "no better direction"}[m.direction]
    return f"{m.name}: {m.display}; {better}; {m.values}, per {m.level}; {m.test}; range {_range(m)}"


def task_kind_lines() -> list[str]:
    """`harness list task_kinds`: each kind usable as a task's `type:` (built-in and plugin), what
    it computes, what it needs of a backend, and a plugin kind's `options:` keys."""
    lines = []
    for name in registry.names("task_kind"):
        if name.startswith("judge_"):
            continue  # run by `type: judge` tasks (grading: single / pairwise)
        kind = registry.resolve("task_kind", name)
        needs = f" (needs {', '.join(sorted(kind.needs))})" if kind.needs else ""
        lines.append(f"{name:18} {kind.description}{needs} [{registry.target('task_kind', name)}]")
        if kind.options is not None:
            lines += ["    options." + line.strip() for line in config_key_lines(kind.options)]
    lines.append(f"{'judge':18} an LLM judge over another task's outputs (grading: single or pairwise)")
    return lines
