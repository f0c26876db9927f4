"""`harness validate`: check declarative files without loading any model."""

from __future__ import annotations

from pathlib import Path

from harness.config.loader import read_yaml
from harness.config.report import load_report
from harness.config.suite import load_suite
from harness.errors import ConfigError, HarnessError
from harness.judge.open import check_judge_env
from harness.judge.task import prepare_judge_task
from harness.models.catalogue import Catalogue
from harness.tasks.prepare import prepare_suite

KIND_BY_DIR = {"suites": "suite", "models": "models", "reports": "report"}


def detect_kind(path: Path) -> str:
    """By the folder it lives in, else by its top-level keys."""
    for part in reversed(path.parts[:-1]):
        if part in KIND_BY_DIR:
            return KIND_BY_DIR[part]

    data = read_yaml(path)
    if isinstance(data, dict):
        if "tasks" in data:
            return "suite"
        if "base" in data:
            return "models"
        if "title" in data or "gate" in data:
            return "report"
    return "unknown"


def validate_file(path: Path, kind: str) -> None:
    """Raise a HarnessError describing the first problem, if any."""
    if kind == "suite":
        suite = load_suite(path)
        prepare_suite(suite, path)  # loads the data and renders every prompt
        for t in suite.tasks:
            if t.type == "judge":
                prepare_judge_task(t, suite.name, path)  # judge prompts and anchors
                check_judge_env(t.judge, f"{path}: task '{t.name}'")
    elif kind == "models":
        Catalogue.load(path).check()  # backends and options, the base's files, variant configs and data
    elif kind == "report":
        load_report(path)
    else:

        raise ConfigError(f"{path}: can't tell whether this is a suite, models or report file "
                          "(put it under suites/, models/ or reports/)")


def validate_paths(paths: list[Path]) -> list[tuple[Path, str, str | None]]:
    """(path, kind, error or None) for every YAML file under the given paths."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(list(p.rglob("*.yaml")) + list(p.rglob("*.yml")))
        else:
            files.append(p)
    results = []
    for f in files:
        kind = "?"
        try:
            kind = detect_kind(f)
            validate_file(f, kind)
            results.append((f, kind, None))
        except HarnessError as exc:
            results.append((f, kind, str(exc) + (f"\nHint: {exc.hint}" if exc.hint else "")))
    return results
