"""Whether two runs can be compared item by item, and on which items.

A paired comparison is only as good as its pairing: two runs pair item by item only when both saw
the same items rendered the same way (equal data and prompt hashes). A judge run is compared
through the runs it judged, which must still be their variants' current runs. When the data or
prompts differ, the comparison is refused (`mismatch`) unless the report opts into pairing on the
items both runs have with identical content (`identical_items`), which then says how many items
each side lost."""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.store.db import Store


@dataclass(frozen=True)
class SharedItems:
    """The items two runs have with identical content, and what each side had besides."""

    ids: frozenset[str]
    dropped_candidate: int
    dropped_baseline: int

    def words(self, candidate: str, baseline: str) -> str:
        """'paired on the 38 items with identical content (dropped: b 2, a 2)'."""
        return (f"paired on the {len(self.ids)} items with identical content in both runs (dropped: {candidate} "
                f"{self.dropped_candidate}, {baseline} {self.dropped_baseline}; statistics.pairing: shared_items)")


def _label(run: dict) -> str:
    started = run.get("started_at")
    when = f", {started:%Y-%m-%d %H:%M}" if hasattr(started, "strftime") else ""
    return f"{run['variant']}'s run {run['run_id']}{when}"


def judged_runs(store: Store, run: dict) -> tuple[list[dict], list[str]]:
    """The runs whose items `run` scores: itself, or for a judge run the runs it judged. Also the
    problems: a judged run that is no longer its variant's current run of that task."""
    if not run.get("judge"):
        return [run], []
    ident = json.loads(run["judge"])
    out, stale = [], []
    for key in ("judged_run", "baseline_run"):
        rid = ident.get(key)
        if not rid:
            continue
        rows = store.query("SELECT * FROM runs WHERE run_id = ?", [rid])
        if not rows:
            stale.append(f"{_label(run)} judged run {rid}, which is no longer in the store")
            continue
        judged = rows[0]
        current = store.query("SELECT run_id FROM latest_runs WHERE variant = ? AND suite = ? AND task = ?",
                              [judged["variant"], judged["suite"], judged["task"]])
        if current and current[0]["run_id"] != rid:
            stale.append(f"{_label(run)} judged {_label(judged)}, but {judged['variant']}'s current run of "
                         f"{judged['task']} is {current[0]['run_id']}: run the judge task again")
        out.append(judged)
    return out, stale


def _differences(a: dict, b: dict) -> list[str]:
    diffs = []
    if a.get("data_hash") != b.get("data_hash"):
        diffs.append(f"data (hash {str(a.get('data_hash'))[:12]} vs {str(b.get('data_hash'))[:12]})")
    if a.get("prompt_hash") != b.get("prompt_hash"):
        diffs.append(f"prompts (hash {str(a.get('prompt_hash'))[:12]} vs {str(b.get('prompt_hash'))[:12]})")
    return diffs


def mismatch(store: Store, candidate: dict, baseline: dict | None = None) -> str | None:
    """Why `candidate` (against `baseline`, when given) can't be paired item by item, in words
    naming both runs; None when they saw the same items and prompts. A judge run is checked
    through the runs it judged (current, and comparable with each other for a pairwise judge)."""
    mine, problems = judged_runs(store, candidate)
    if baseline is not None:
        theirs, more = judged_runs(store, baseline)
        problems += more
        if candidate.get("judge") and baseline.get("judge") and candidate.get("prompt_hash") != baseline.get("prompt_hash"):
            problems.append(f"{_label(candidate)} and {_label(baseline)} used different judge prompts")
        pairs = list(zip(mine[:1], theirs[:1]))
    else:
        pairs = [(mine[0], mine[1])] if len(mine) == 2 else []
    for a, b in pairs:
        diffs = _differences(a, b)
        if diffs:
            problems.append(f"{_label(a)} and {_label(b)} saw different {' and '.join(diffs)}")
    return "; ".join(problems) or None


def identical_items(store: Store, candidate: dict, baseline: dict) -> SharedItems:
    """The item ids both runs (or the runs they judged) have with identical content: the item as
    rendered before any model saw it (prompt, options, reference; stored per sample), falling
    back to the stored prompt and reference for runs written before content was recorded."""
    a, b = judged_runs(store, candidate)[0][0], judged_runs(store, baseline)[0][0]
    content = "coalesce(content_hash, md5(prompt || '|' || coalesce(reference, '')))"
    rows = store.query(f"""
        WITH a AS (SELECT DISTINCT item_id, {content} AS c FROM samples WHERE run_id = ?),
             b AS (SELECT DISTINCT item_id, {content} AS c FROM samples WHERE run_id = ?)
        SELECT (SELECT list(item_id) FROM a JOIN b USING (item_id, c)) AS shared,
               (SELECT count(DISTINCT item_id) FROM a) AS n_a, (SELECT count(DISTINCT item_id) FROM b) AS n_b""",
                       [a["run_id"], b["run_id"]])
    shared = frozenset(rows[0]["shared"] or [])
    return SharedItems(shared, rows[0]["n_a"] - len(shared), rows[0]["n_b"] - len(shared))
