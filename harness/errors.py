"""One error hierarchy. The CLI prints these as `Error: ...` plus a hint, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Base of every error the user can fix; `hint` says how."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(HarnessError):
    """A declarative file (suite, model, report, data) is invalid."""


class UnknownNameError(ConfigError):
    """A name (scorer, backend, recipe, variant, task) does not resolve."""

    def __init__(self, kind: str, name: str, available: Iterable[str], where: str | None = None):
        available = sorted(available)
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        prefix = f"{where}: " if where else ""
        msg = f"{prefix}unknown {kind} '{name}'."
        if close:
            msg += f" Did you mean {', '.join(repr(c) for c in close)}?"
        msg += f" Available: {', '.join(available) if available else '(none)'}"
        super().__init__(msg)
        self.kind, self.name, self.available = kind, name, available


class MissingDependencyError(HarnessError):
    """An optional dependency is not installed; the hint names the extra to install."""

    def __init__(self, feature: str, package: str, extra: str):
        super().__init__(
            f"{feature} needs the package '{package}', which is not installed.",
            hint=f"pip install 'harness[{extra}]'",
        )


class BackendError(HarnessError):
    """A model backend cannot do what was asked (capability missing, load failure)."""


class StoreError(HarnessError):
    """The results store is missing, locked or lacks what a query needs."""


def require(module: str, feature: str, extra: str):
    """Import an optional module or raise MissingDependencyError with the install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(feature, module.split(".")[0], extra) from exc
