"""Screenshots of every `harness view` page on the demo store, for docs/screenshots/ (run after
`make demo`: `make screenshots`). Serves the store as `harness view` does, loads each page in
headless Chromium at desktop and phone widths, checks it the way the browser tests do (no console
errors, no requests beyond the viewer, no script, no sideways scrolling) and saves its top."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.report.browser import Tab, session  # noqa: E402
from harness.store.db import Store  # noqa: E402
from harness.viewer import queries  # noqa: E402
from harness.viewer.app import item_url, items_url, run_url, task_url  # noqa: E402
from harness.viewer.serve import make_server  # noqa: E402

WIDTHS = {"desktop": (1280, 1400), "phone": (390, 1800)}


def pages(store: Path) -> dict[str, str]:
    """One URL per page kind, picked from the store: the first generation task with two or more
    variants, the flips from the lineage's root to its last fine-tune, the first flipped item."""
    with Store(store, read_only=True, migrate=False) as s:
        runs = s.query("SELECT suite, task, variant, run_id FROM latest_runs WHERE task_type = 'generation' ORDER BY suite, task, variant")
        if not runs:
            raise SystemExit(f"{store}: no generation run; run `make demo` first")
        suite, task = runs[0]["suite"], runs[0]["task"]
        variants = [r["variant"] for r in runs if (r["suite"], r["task"]) == (suite, task)]
        before = queries.default_baseline(s, variants)
        after = next(v for v in reversed(variants) if v != before)
        flips = queries.items(s, suite, task, queries.ItemFilter(flip_from=before, flip_to=after))
        if not flips.rows:  # the fine-tune is better on every item: show where the base was worse instead
            before, after = after, before
            flips = queries.items(s, suite, task, queries.ItemFilter(flip_from=before, flip_to=after))
        item = flips.rows[0]["sample_id"] if flips.rows else queries.items(s, suite, task, queries.ItemFilter()).rows[0]["sample_id"]
    return {"runs": "/runs", "run": run_url(runs[0]["run_id"]), "task": task_url(suite, task),
            "items": items_url(suite, task, flip_from=before, flip_to=after),
            "item": item_url(suite, task, item, baseline=before), "lineage": "/lineage"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=REPO / ".harness" / "harness.duckdb")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    server, sock, url = make_server(args.store, port=0)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = url.removesuffix("/runs")
    failed = 0
    with session() as cdp:
        for name, path in pages(args.store).items():
            for kind, (width, height) in WIDTHS.items():
                tab = Tab(cdp, width=width)
                tab.goto(base + path)
                shot = args.out / f"view-{name}-{kind}.png"
                tab.screenshot(shot, max_height=height)
                result = tab.result(base)
                problems = result.console_errors + [f"request: {r}" for r in result.requests]
                if tab.evaluate("document.scripts.length"):
                    problems.append("a script element")
                if not result.fits:
                    problems.append(f"scrolls sideways ({result.scroll_width}px wide at {width}px)")
                failed += bool(problems)
                print(f"{shot.relative_to(REPO) if shot.is_relative_to(REPO) else shot}: {path} at {width}px, "
                      f"{shot.stat().st_size // 1024} KB; {'; '.join(problems) or 'no console errors, no requests, fits'}")
    server.should_exit = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
