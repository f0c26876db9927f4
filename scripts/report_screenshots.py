"""Screenshots of the demo report at desktop and phone widths, for docs/screenshots/ (run after
`make demo`: `make screenshots`). Renders reports/demo.yaml from the demo store, loads it in
headless Chromium, checks it the way the browser tests do (no console errors, no network
requests, no sideways scrolling) and saves the top of the page at each width."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.report.browser import check  # noqa: E402

WIDTHS = {"desktop": (1280, 1800), "phone": (390, 2200)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=REPO / ".harness" / "harness.duckdb")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "demo.html"
        subprocess.run([sys.executable, "-m", "harness", "report", str(REPO / "reports" / "demo.yaml"), "--store", str(args.store),
                        "--out", str(html)], check=True, cwd=REPO)
        for name, (width, height) in WIDTHS.items():
            shot = args.out / f"demo-report-{name}.png"
            result = check(html, width=width, height=900, screenshot=shot, max_height=height)
            problems = result.console_errors + [f"request: {r}" for r in result.requests]
            if not result.fits:
                problems.append(f"scrolls sideways ({result.scroll_width}px wide at {width}px)")
            print(f"{shot.relative_to(REPO) if shot.is_relative_to(REPO) else shot}: {width}px wide, "
                  f"{shot.stat().st_size // 1024} KB; {'; '.join(problems) or 'no console errors, no requests, fits'}")
            if problems:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
