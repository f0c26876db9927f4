"""The demo's stand-in for a person filling a rubric review sheet (the demo has no people): rates
each output's tone and warmth 1-10 from the rubric checks it passes (the sheet's auto_<check>
columns: 1 + 9 x the share passed). It shows the calibrated-judge workflow end to end; with real
reviewers, fill the rating_<dimension> columns by hand instead and skip this script.

    python scripts/demo_reviewer.py SHEET.csv      # fills rating_tone and rating_warmth in place
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def main(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    checks = [c for c in fields if c.startswith("auto_")]
    dims = [c for c in fields if c.startswith("rating_")]
    if not rows or not checks or not dims:
        print(f"{path}: not a review sheet with auto_<check> and rating_<dimension> columns", file=sys.stderr)
        return 2
    for row in rows:
        verdicts = [row[c].strip().lower() for c in checks if row[c].strip()]
        share = sum(v == "yes" for v in verdicts) / len(verdicts) if verdicts else 0.5
        for d in dims:
            row[d] = str(round(1 + 9 * share))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{path}: rated {len(rows)} outputs on {', '.join(d[len('rating_'):] for d in dims)} (demo stand-in reviewer)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
