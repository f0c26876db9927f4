"""`harness review export|import`: a person scores a seeded random sample of outputs on the
rubric's checks (the chapter's human review of 50 outputs on the 8 checks), and the report
compares the person with the automatic checks, check by check.

The sheet is a CSV with the output and, per check, the automatic verdict (`auto_<check>`) and an
empty `human_<check>` column to fill with yes or no (a blank cell is skipped). The same safety as
the hallucination audit sheets: model output is untrusted, so a cell a spreadsheet would run as a
formula is written with a leading apostrophe; every row of an import is checked before anything
is written.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError, StoreError
from harness.judge.health import cohen_kappa
from harness.review.audit import FALSE, TRUE, from_sheet, write_sheet
from harness.stats.intervals import bootstrap_mean, bootstrap_statistic
from harness.store.db import Store
from harness.textfile import is_file, read_csv_rows

BASE_COLUMNS = ["run_id", "sample_id", "variant", "task", "prompt", "output"]


def rubric_checks(store: Store, task: str, variants: list[str] | None) -> list[str]:
    """The rubric checks stored for the task's latest runs (metrics rubric_<check>), in name order."""
    rows = store.query("""SELECT DISTINCT s.metric FROM latest_runs r JOIN scores s USING (run_id)
                          WHERE r.task = ? AND (? IS NULL OR list_contains(?, r.variant)) AND s.metric LIKE 'rubric\\_%' ESCAPE '\\'
                          ORDER BY s.metric""", [task, variants, variants])
    return [r["metric"][len("rubric_"):] for r in rows]


def judged_dimensions(samples: list[dict]) -> list[str]:
    """The rubric's judged dimensions (tone, warmth), as its scorer records them with each sample."""
    import json

    found: dict[str, None] = {}
    for p in samples:
        for entry in json.loads(p["details"] or "{}").values():
            if isinstance(entry, dict):
                found.update(dict.fromkeys(entry.get("judged") or []))
    return list(found)


RATING_RANGE = (1, 10)
"""The person rates judged dimensions on the judge's own scale, so the two compare directly."""


def export_review(store: Store, task: str, out: Path, n: int = 50, seed: int = 0, variants: list[str] | None = None) -> int:
    """Write a seeded random sample of `n` outputs of the task's latest runs with their automatic
    check verdicts and empty human columns (a temp file, then renamed)."""
    checks = rubric_checks(store, task, variants)
    if not checks:
        raise StoreError(f"no rubric checks stored for task '{task}'",
                         hint="review a generation task that uses the rubric scorer (`harness run` it first)")
    items = store.query("""SELECT r.run_id, s.sample_id, r.variant, r.task, s.prompt, s.output, s.details FROM latest_runs r
                           JOIN samples s USING (run_id)
                           WHERE r.task = ? AND (? IS NULL OR list_contains(?, r.variant)) ORDER BY r.variant, s.sample_id""",
                        [task, variants, variants])
    picked = random.Random(seed).sample(items, min(n, len(items)))
    auto = {(r["run_id"], r["sample_id"], r["metric"][len("rubric_"):]): r["value"] for r in store.query(
        """SELECT run_id, sample_id, metric, value FROM scores WHERE list_contains(?, run_id) AND metric LIKE 'rubric\\_%' ESCAPE '\\'""",
        [sorted({p["run_id"] for p in picked})])}
    judged = judged_dimensions(picked)
    columns = (BASE_COLUMNS + [c for check in checks for c in (f"auto_{check}", f"human_{check}")]
               + [f"rating_{d}" for d in judged])
    rows = []
    for p in picked:
        row = {k: p[k] for k in BASE_COLUMNS}
        for check in checks:
            value = auto.get((p["run_id"], p["sample_id"], check))
            row[f"auto_{check}"] = "" if value is None else ("yes" if value >= 0.5 else "no")
            row[f"human_{check}"] = ""
        row.update({f"rating_{d}": "" for d in judged})
        rows.append(row)
    write_sheet(out, columns, rows)
    return len(picked)


def import_review(store: Store, path: Path) -> tuple[int, int]:
    """Read the human verdicts back; returns (labels stored, blank cells skipped). Every row is
    checked (known run and sample, yes/no values) before anything is written."""
    if not is_file(path):
        raise ConfigError(f"{path}: file not found")

    header, rows = read_csv_rows(path)
    missing = [c for c in ("run_id", "sample_id") if c not in header]
    checks = [c[len("human_"):] for c in header if c.startswith("human_")]
    dimensions = [c[len("rating_"):] for c in header if c.startswith("rating_")]
    if missing or not (checks or dimensions):
        raise ConfigError(f"{path}: not a review sheet (needs run_id, sample_id and human_<check> or rating_<dimension> columns)",
                          hint="export one with `harness review export`")
    labels, ratings, skipped = [], [], 0
    for line, row in rows:
        # the export wrote ids spreadsheet-safe: an id starting with - or = came back with an apostrophe
        run_id, sample_id = from_sheet(row["run_id"]), from_sheet(row["sample_id"])
        known = store.query("SELECT 1 FROM samples WHERE run_id = ? AND sample_id = ?", [run_id, sample_id])
        if not known:
            raise ConfigError(f"{path}: line {line}: run {run_id} has no sample {sample_id} in {store.path}")
        for check in checks:
            value = (row.get(f"human_{check}") or "").strip().lower()
            if not value:
                skipped += 1
                continue
            if value not in TRUE | FALSE:
                raise ConfigError(f"{path}: line {line}, column human_{check}: expected yes or no, got {row[f'human_{check}']!r}")
            auto = (row.get(f"auto_{check}") or "").strip().lower()
            labels.append((run_id, sample_id, check, None if not auto else auto in TRUE, value in TRUE))
        for dim in dimensions:
            value = (row.get(f"rating_{dim}") or "").strip()
            if not value:
                skipped += 1
                continue
            try:
                rating = float(value)
            except ValueError:
                rating = float("nan")
            if not RATING_RANGE[0] <= rating <= RATING_RANGE[1]:
                raise ConfigError(f"{path}: line {line}, column rating_{dim}: expected a rating from {RATING_RANGE[0]} to "
                                  f"{RATING_RANGE[1]}, got {row[f'rating_{dim}']!r}")
            ratings.append((run_id, sample_id, dim, rating))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with store.transaction() as con:
        for run_id, sample_id, check, automatic, human in labels:
            con.execute("DELETE FROM review_labels WHERE run_id = ? AND sample_id = ? AND check_name = ?", [run_id, sample_id, check])
            con.execute("INSERT INTO review_labels VALUES (?, ?, ?, ?, ?, ?)", [run_id, sample_id, check, automatic, human, now])
        for run_id, sample_id, dim, rating in ratings:
            con.execute("DELETE FROM review_ratings WHERE run_id = ? AND sample_id = ? AND dimension = ?", [run_id, sample_id, dim])
            con.execute("INSERT INTO review_ratings VALUES (?, ?, ?, ?, ?)", [run_id, sample_id, dim, rating, now])
    return len(labels) + len(ratings), skipped


def review_agreement(store: Store, task: str, variants: list[str]) -> list[dict]:
    """Per check: items a person reviewed, agreement of the automatic check with the person and
    Cohen's kappa (each with a bootstrap interval; kappa NaN where one label only), both pass rates. Empty when nothing was imported."""

    rows = store.query("""SELECT l.check_name, list(l.automatic) AS auto, list(l.human) AS human FROM review_labels l
                          JOIN latest_runs r USING (run_id)
                          WHERE r.task = ? AND list_contains(?, r.variant) AND l.automatic IS NOT NULL
                          GROUP BY l.check_name ORDER BY l.check_name""", [task, variants])
    out = []
    for r in rows:
        a, h = r["auto"], r["human"]
        agree = bootstrap_statistic(len(a), lambda idx, a=a, h=h: sum(a[i] == h[i] for i in idx) / len(idx), 1000, 0.95, 0)
        kappa = bootstrap_statistic(len(a), lambda idx, a=a, h=h: cohen_kappa([a[i] for i in idx], [h[i] for i in idx], [True, False]),
                                    1000, 0.95, 0)
        out.append({"check": r["check_name"], "n": len(a), "agreement": agree, "kappa": kappa,
                    "human_pass": sum(h) / len(h), "auto_pass": sum(a) / len(a)})
    return out


def rating_agreement(store: Store, task: str, variants: list[str]) -> list[dict]:
    """Per judged dimension a person rated: the person's mean rating, and on the outputs an LLM
    judge also rated (metric judge_<dimension> of a judge run of the same variant and item), the
    judge's mean, the mean absolute difference and Spearman's rank correlation, each with a
    bootstrap interval. Empty when no rating was imported."""

    rows = store.query("""SELECT q.dimension, q.run_id, q.sample_id, q.rating, r.variant FROM review_ratings q
                          JOIN latest_runs r USING (run_id)
                          WHERE r.task = ? AND list_contains(?, r.variant) ORDER BY q.dimension, r.variant, q.sample_id""",
                       [task, variants])
    out = []
    for dim in dict.fromkeys(r["dimension"] for r in rows):
        mine = [r for r in rows if r["dimension"] == dim]
        judged = {(j["variant"], j["sample_id"]): j["value"] for j in store.query(
            """SELECT r.variant, s.sample_id, avg(s.value) AS value FROM latest_runs r JOIN scores s USING (run_id)
               WHERE r.task_type = 'judge_single' AND s.metric = ? AND list_contains(?, r.variant) AND s.value IS NOT NULL
               GROUP BY r.variant, s.sample_id""", [f"judge_{dim}", variants])}
        both = [(m["rating"], judged[(m["variant"], m["sample_id"])]) for m in mine if (m["variant"], m["sample_id"]) in judged]
        entry = {"dimension": dim, "n": len(mine), "human": bootstrap_mean([m["rating"] for m in mine]), "paired": len(both)}
        if len(both) >= 3:
            h, j = [b[0] for b in both], [b[1] for b in both]
            entry["judge"] = bootstrap_mean(j)
            entry["abs_diff"] = bootstrap_mean([abs(a - b) for a, b in both])
            entry["spearman"] = bootstrap_statistic(len(both), lambda idx, h=h, j=j: _spearman([h[i] for i in idx], [j[i] for i in idx]),
                                                    1000, 0.95, 0)
        out.append(entry)
    return out


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho (NaN when either side is constant)."""
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)
