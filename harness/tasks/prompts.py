"""Prompt templates: jinja2 in a sandbox with StrictUndefined, so a typo in a field name is an
error, not an empty string; and a null value (a JSON null, a missing CSV cell) printed by a
template is an error too, never the text "None"."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from harness.errors import ConfigError


@lru_cache(maxsize=1)
def _env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Prompts are plain text, not HTML: no autoescape here (the report escapes on output).
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                                         finalize=_refuse_null)


class NullValue(Exception):
    """A template printed a null value."""


def _refuse_null(value):
    # finalize sees every {{ ... }} result: None here would otherwise become the text "None"
    if value is None:
        raise NullValue()
    return value


@lru_cache(maxsize=256)
def compile_template(source: str, where: str = "template"):
    """Compile once; a syntax error is a ConfigError naming `where`."""
    from jinja2 import TemplateSyntaxError

    try:
        return _env().from_string(source)
    except TemplateSyntaxError as exc:
        raise ConfigError(f"{where}: template syntax error on line {exc.lineno}: {exc.message}") from None


def render(source: str, fields: dict[str, Any], where: str = "template") -> str:
    """Render a template over an item's fields; undefined names are ConfigErrors."""
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError

    template = compile_template(source, where)
    try:
        return template.render(**fields)
    except UndefinedError as exc:
        raise ConfigError(f"{where}: {exc.message} (item fields: {', '.join(sorted(fields))})") from None
    except NullValue:
        nulls = sorted(k for k, v in fields.items() if v is None)
        raise ConfigError(f"{where}: a value the template prints is null" + (f" (null fields: {', '.join(nulls)})" if nulls else ""),
                          hint="fill in the value in the data file, or guard it in the template: {% if x is not none %}") from None
    except SecurityError as exc:
        raise ConfigError(f"{where}: not allowed in a template: {exc}") from None
