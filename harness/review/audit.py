"""`harness audit export|import`: a sheet of (source, claim, verdict) rows for human review, and
the human labels read back into the store, where the report compares them with the verifier."""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError, StoreError
from harness.judge.health import cohen_kappa
from harness.stats.intervals import bootstrap_statistic
from harness.store.db import Store
from harness.textfile import atomic_target, is_file, read_csv_rows

COLUMNS = ["run_id", "sample_id", "claim_index", "variant", "task", "source", "claim", "evidence", "support",
           "verifier_supported", "human_supported"]
TRUE, FALSE = {"1", "yes", "y", "true", "supported"}, {"0", "no", "n", "false", "unsupported"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (OWASP's CSV injection)."""


def spreadsheet_safe(value):
    """Model output is untrusted: a text cell that a spreadsheet would run as a formula gets a
    leading apostrophe, which spreadsheets show as text (and import strips again)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def from_sheet(value: str) -> str:
    """Undo spreadsheet_safe."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def claim_rows(store: Store, task: str, variants: list[str] | None = None) -> list[dict]:
    """Every checked claim of the latest runs of `task` (the hallucination scorer's details)."""
    rows = store.query(
        """SELECT r.variant, r.run_id, s.sample_id, s.details FROM latest_runs r JOIN samples s USING (run_id)
           WHERE r.task = ? AND (? IS NULL OR list_contains(?, r.variant)) ORDER BY r.variant, s.sample_id""",
        [task, variants, variants])
    out = []
    for r in rows:
        details = json.loads(r["details"]) if r["details"] else {}
        h = details.get("hallucination")
        if not h:
            continue
        for i, c in enumerate(h["claims"]):
            if c["supported"] is None:
                continue  # the verifier gave no verdict: nothing to compare a human label with
            out.append({"run_id": r["run_id"], "sample_id": r["sample_id"], "claim_index": i, "variant": r["variant"], "task": task,
                        "source": "\n\n".join(h["sources"]), "claim": c["claim"], "evidence": c["evidence"],
                        "support": c["support"], "verifier_supported": "yes" if c["supported"] else "no", "human_supported": ""})
    return out


def export_sheet(store: Store, task: str, out: Path, n: int = 100, seed: int = 0, variants: list[str] | None = None) -> int:
    """Write a random sample of `n` claims to CSV (written to a temp file, then renamed)."""
    rows = claim_rows(store, task, variants)
    if not rows:
        raise StoreError(f"no checked claims stored for task '{task}'",
                         hint="audit a generation task that uses the hallucination scorer (`harness run` it first)")
    picked = random.Random(seed).sample(rows, min(n, len(rows)))
    write_sheet(out, COLUMNS, picked)
    return len(picked)


def write_sheet(out: Path, columns: list[str], rows: list[dict]) -> None:
    """A CSV sheet for people to fill in: every text cell spreadsheet-safe, written to a temp file
    and renamed, so a reader never sees half a sheet."""
    with atomic_target(out, "sheet", hint="pass another --out path") as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)


def import_sheet(store: Store, path: Path) -> tuple[int, int]:
    """Read human labels (human_supported: yes/no) back; rows left blank are skipped. Returns
    (labelled, skipped). Every row is checked before anything is written."""
    if not is_file(path):
        raise ConfigError(f"{path}: file not found")

    header, rows = read_csv_rows(path)
    missing = [c for c in ("run_id", "sample_id", "claim_index", "claim", "verifier_supported", "human_supported") if c not in header]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} (export a sheet with `harness audit export`)")
    labels, skipped = [], 0
    for line, row in rows:
        value = row["human_supported"].strip().lower()
        if not value:
            skipped += 1
            continue
        if value not in TRUE | FALSE:
            raise ConfigError(f"{path}: line {line}: human_supported must be yes or no (got {row['human_supported']!r})")
        try:
            index = int(row["claim_index"])
        except ValueError:
            raise ConfigError(f"{path}: line {line}: claim_index must be an integer (got {row['claim_index']!r})") from None
        # the export wrote ids spreadsheet-safe: an id starting with - or = came back with an apostrophe
        run_id, sample_id = from_sheet(row["run_id"]), from_sheet(row["sample_id"])
        known = store.query("SELECT 1 FROM samples WHERE run_id = ? AND sample_id = ?", [run_id, sample_id])
        if not known:
            raise ConfigError(f"{path}: line {line}: run {run_id} has no sample {sample_id} in {store.path}")
        labels.append((run_id, sample_id, index, from_sheet(row["claim"]),
                       row["verifier_supported"].strip().lower() in TRUE, value in TRUE))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with store.transaction() as con:
        for run_id, sample_id, index, claim, verifier, human in labels:
            con.execute("DELETE FROM audit_labels WHERE run_id = ? AND sample_id = ? AND claim_index = ?", [run_id, sample_id, index])
            con.execute("INSERT INTO audit_labels VALUES (?, ?, ?, ?, ?, ?, ?)", [run_id, sample_id, index, claim, verifier, human, now])
    return len(labels), skipped


def agreement(store: Store, task: str, variants: list[str]) -> dict | None:
    """Verifier-human agreement and Cohen's kappa over the imported labels of the task's latest runs."""

    rows = store.query("""SELECT a.verifier_supported AS v, a.human_supported AS h FROM audit_labels a JOIN latest_runs r USING (run_id)
                          WHERE r.task = ? AND list_contains(?, r.variant)""", [task, variants])
    if not rows:
        return None
    v, h = [r["v"] for r in rows], [r["h"] for r in rows]
    agree = bootstrap_statistic(len(rows), lambda idx: sum(v[i] == h[i] for i in idx) / len(idx), 1000, 0.95, 0)
    kappa = bootstrap_statistic(len(rows), lambda idx: cohen_kappa([v[i] for i in idx], [h[i] for i in idx], [True, False]), 1000, 0.95, 0)
    return {"n": len(rows), "agreement": agree, "kappa": kappa,
            "human_unsupported_rate": sum(not x for x in h) / len(h), "verifier_unsupported_rate": sum(not x for x in v) / len(v)}
