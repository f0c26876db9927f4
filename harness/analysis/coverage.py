"""What the stored results cover: tasks a variant's suite has but the store lacks (an
interrupted `harness run`), and runs evaluated on a --limit sample only. Reports and gates name
both; neither is ever silent."""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.store.db import Store


@dataclass(frozen=True)
class Gap:
    """Tasks of a suite that a variant has no stored run of."""

    variant: str
    suite: str
    missing: tuple[str, ...]

    def words(self) -> str:
        return f"{self.variant}: suite '{self.suite}' has no stored run of {', '.join(self.missing)}"


@dataclass(frozen=True)
class PartialRun:
    """The run reports read for a task is a --limit sample."""

    variant: str
    task: str
    n: int
    total: int | None

    def words(self) -> str:
        of = f" of {self.total}" if self.total else ""
        return f"{self.variant} / {self.task}: only a --limit sample ({self.n}{of} items) is stored"


def missing_tasks(store: Store, variants: list[str]) -> list[Gap]:
    """Per variant and suite: the tasks the suite declared (as recorded with the variant's newest
    run of it) that have no run. A pairwise judge task has no run for its own baseline."""
    rows = store.query(
        """SELECT variant, suite, task, suite_tasks, started_at FROM latest_runs WHERE list_contains(?, variant)
           ORDER BY variant, suite, started_at""", [variants])
    present: dict[tuple[str, str], set[str]] = {}
    declared: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        key = (r["variant"], r["suite"])
        present.setdefault(key, set()).add(r["task"])
        if r["suite_tasks"]:
            declared[key] = json.loads(r["suite_tasks"])  # the newest run's record wins
    gaps = []
    for (variant, suite), tasks in declared.items():
        expected = [t["task"] for t in tasks if not (t.get("type") == "judge" and t.get("baseline") == variant)]
        missing = tuple(t for t in expected if t not in present[(variant, suite)])
        if missing:
            gaps.append(Gap(variant, suite, missing))
    return gaps


def partial_runs(store: Store, variants: list[str], tasks: list[str] | None = None) -> list[PartialRun]:
    """The runs reports read that are --limit samples (no full run of the task is stored)."""
    rows = store.query(
        """SELECT variant, task, n_samples, n_items_total FROM latest_runs
           WHERE list_contains(?, variant) AND coalesce(partial, false) ORDER BY variant, task""", [variants])
    return [PartialRun(r["variant"], r["task"], r["n_samples"], r["n_items_total"]) for r in rows
            if tasks is None or r["task"] in tasks]
