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

from harness.audit import FALSE, TRUE, from_sheet, write_sheet
from harness.errors import ConfigError, StoreError
from harness.store.db import Store

BASE_COLUMNS = ["run_id", "sample_id", "variant", "task", "prompt", "output"]


def rubric_checks(store: Store, task: str, variants: list[str] | None) -> list[str]:
    """The rubric checks stored for the task's latest runs (metrics rubric_<check>), in name order."""
    rows = store.query("""SELECT DISTINCT s.metric FROM latest_runs r JOIN scores s USING (run_id)
                          WHERE r.task = ? AND (? IS NULL OR list_contains(?, r.variant)) AND s.metric LIKE 'rubric\\_%' ESCAPE '\\'
                          ORDER BY s.metric""", [task, variants, variants])
    return [r["metric"][len("rubric_"):] for r in rows]


def export_review(store: Store, task: str, out: Path, n: int = 50, seed: int = 0, variants: list[str] | None = None) -> int:
    """Write a seeded random sample of `n` outputs of the task's latest runs with their automatic
    check verdicts and empty human columns (a temp file, then renamed)."""
    checks = rubric_checks(store, task, variants)
    if not checks:
        raise StoreError(f"no rubric checks stored for task '{task}'",
                         hint="review a generation task that uses the rubric scorer (`harness run` it first)")
    items = store.query("""SELECT r.run_id, s.sample_id, r.variant, r.task, s.prompt, s.output FROM latest_runs r JOIN samples s USING (run_id)
                           WHERE r.task = ? AND (? IS NULL OR list_contains(?, r.variant)) ORDER BY r.variant, s.sample_id""",
                        [task, variants, variants])
    picked = random.Random(seed).sample(items, min(n, len(items)))
    auto = {(r["run_id"], r["sample_id"], r["metric"][len("rubric_"):]): r["value"] for r in store.query(
        """SELECT run_id, sample_id, metric, value FROM scores WHERE list_contains(?, run_id) AND metric LIKE 'rubric\\_%' ESCAPE '\\'""",
        [sorted({p["run_id"] for p in picked})])}
    columns = BASE_COLUMNS + [c for check in checks for c in (f"auto_{check}", f"human_{check}")]
    rows = []
    for p in picked:
        row = {k: p[k] for k in BASE_COLUMNS}
        for check in checks:
            value = auto.get((p["run_id"], p["sample_id"], check))
            row[f"auto_{check}"] = "" if value is None else ("yes" if value >= 0.5 else "no")
            row[f"human_{check}"] = ""
        rows.append(row)
    write_sheet(out, columns, rows)
    return len(picked)


def import_review(store: Store, path: Path) -> tuple[int, int]:
    """Read the human verdicts back; returns (labels stored, blank cells skipped). Every row is
    checked (known run and sample, yes/no values) before anything is written."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    from harness.textfile import read_csv_rows

    header, rows = read_csv_rows(path)
    missing = [c for c in ("run_id", "sample_id") if c not in header]
    checks = [c[len("human_"):] for c in header if c.startswith("human_")]
    if missing or not checks:
        raise ConfigError(f"{path}: not a review sheet (needs run_id, sample_id and human_<check> columns)",
                          hint="export one with `harness review export`")
    labels, skipped = [], 0
    for line, row in rows:
        known = store.query("SELECT 1 FROM samples WHERE run_id = ? AND sample_id = ?", [row["run_id"], row["sample_id"]])
        if not known:
            raise ConfigError(f"{path}: line {line}: run {row['run_id']} has no sample {from_sheet(row['sample_id'])} in {store.path}")
        for check in checks:
            value = (row.get(f"human_{check}") or "").strip().lower()
            if not value:
                skipped += 1
                continue
            if value not in TRUE | FALSE:
                raise ConfigError(f"{path}: line {line}, column human_{check}: expected yes or no, got {row[f'human_{check}']!r}")
            auto = (row.get(f"auto_{check}") or "").strip().lower()
            labels.append((row["run_id"], row["sample_id"], check, None if not auto else auto in TRUE, value in TRUE))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    store.con.execute("BEGIN")
    try:
        for run_id, sample_id, check, automatic, human in labels:
            store.con.execute("DELETE FROM review_labels WHERE run_id = ? AND sample_id = ? AND check_name = ?", [run_id, sample_id, check])
            store.con.execute("INSERT INTO review_labels VALUES (?, ?, ?, ?, ?, ?)", [run_id, sample_id, check, automatic, human, now])
        store.con.execute("COMMIT")
    except Exception as exc:
        store.rollback(exc)
        raise
    return len(labels), skipped


def review_agreement(store: Store, task: str, variants: list[str]) -> list[dict]:
    """Per check: items a person reviewed, agreement of the automatic check with the person and
    Cohen's kappa (each with a bootstrap interval; kappa NaN where one label only), both pass rates. Empty when nothing was imported."""
    from harness.judge.health import cohen_kappa
    from harness.stats import bootstrap_statistic

    rows = store.query("""SELECT l.check_name, list(l.automatic) AS auto, list(l.human) AS human FROM review_labels l
                          JOIN latest_runs r USING (run_id)
                          WHERE r.task = ? AND list_contains(?, r.variant) AND l.automatic IS NOT NULL
                          GROUP BY l.check_name ORDER BY l.check_name""", [task, variants])
    out = []
    for r in rows:
        a, h = r["auto"], r["human"]
        agree = bootstrap_statistic(len(a), lambda idx: sum(a[i] == h[i] for i in idx) / len(idx), 1000, 0.95, 0)
        kappa = bootstrap_statistic(len(a), lambda idx: cohen_kappa([a[i] for i in idx], [h[i] for i in idx], [True, False]),
                                    1000, 0.95, 0)
        out.append({"check": r["check_name"], "n": len(a), "agreement": agree, "kappa": kappa,
                    "human_pass": sum(h) / len(h), "auto_pass": sum(a) / len(a)})
    return out
