"""The report in a real browser (headless Chromium over the DevTools protocol): no console errors,
no network requests, injected script inert, readable at phone width. `make test` installs
Debian's chromium when it is missing; without it these tests are skipped, saying why."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from harness.cli import main
from harness.report.browser import find_browser
from harness.store.db import RunRow, SampleRow, ScoreRow, Store
from tests.conftest import write

pytestmark = pytest.mark.skipif(find_browser() is None, reason="no Chromium on PATH (make test installs it with apt-get when it can)")
websocket = pytest.importorskip("websocket", reason="websocket-client is not installed (pip install 'harness[browser]')")

NOW = datetime(2026, 11, 28)
PAYLOADS = ['<script>window.__pwned = 1</script>', '<img src="x" onerror="window.__pwned = 2">',
            '"><svg onload="window.__pwned = 3">', '<a href="javascript:window.__pwned=4">click</a>',
            '<link rel="stylesheet" href="https://example.com/x.css">', "plain text"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report rendered from a fixed store whose model outputs, prompts and references carry script."""
    tmp = tmp_path_factory.mktemp("browser")
    with Store(tmp / "b.duckdb") as store:
        for variant, good in (("base", 0), ("cand", 1)):
            run_id = f"{variant}-t"
            samples = [SampleRow(run_id, f"i{k}", f"prompt {p}", f"ref {p}", f"{variant} says {p}", json.dumps({"note": p}))
                       for k, p in enumerate(PAYLOADS)]
            scores = [ScoreRow(run_id, f"i{k}", "exact_match", "exact_match", float((k + good) % 2)) for k in range(len(PAYLOADS))]
            store.write_task_run(RunRow(run_id, run_id, "s", "h", "t", "generation", '["exact_match"]', variant, variant, "fake",
                                        "none", "none", "d", "p", None, 0, "t", None, NOW, NOW, 1.0, len(PAYLOADS)), samples, scores)
    spec = write(tmp / "r.yaml", """
        title: "Browser check <script>window.__pwned = 5</script>"
        variants: [base, cand]
        notes: "<img src=x onerror=window.__pwned=6>"
        statistics: {resamples: 200}
        gate:
          - {variant: cand, task: t, metric: exact_match, min: 0.2}
        """)
    out = tmp / "r.html"
    assert main(["report", str(spec), "--store", str(tmp / "b.duckdb"), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("width", [1280, 390])
def test_report_loads_clean_and_injected_script_stays_inert(report, tmp_path, width):
    from harness.report.browser import check

    shot = tmp_path / f"report-{width}.png"
    result = check(report, width=width, height=900, screenshot=shot, max_height=1200,
                   expressions={"pwned": "typeof window.__pwned", "scripts": "document.scripts.length",
                                "verdict": "document.querySelector('.verdict .headline').textContent",
                                "payload_text": "document.body.innerText.includes('<script>window.__pwned = 1</script>')",
                                # the forest plot drawn inside the screen, its text at (near) its own size
                                "forest": "(() => { const s = document.querySelector('svg.forest'); const r = s.getBoundingClientRect();"
                                          " return [r.left, r.right, r.width / s.viewBox.baseVal.width]; })()"})
    assert result.console_errors == []
    assert result.requests == []  # self-contained: not even the injected stylesheet link is fetched
    assert result.evaluated["pwned"] == "undefined" and result.evaluated["scripts"] == 0
    assert result.evaluated["payload_text"] is True  # shown as text, not run
    assert "gate" in result.evaluated["verdict"].lower() or "ship" in result.evaluated["verdict"].lower()
    assert result.fits, f"the page scrolls sideways at {width}px: {result.scroll_width}px wide"
    left, right, scale = result.evaluated["forest"]
    assert 0 <= left and right <= width and scale >= 0.9, f"forest plot at {width}px: {left}-{right}px, text scaled by {scale:.2f}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_a_script_that_escaped_would_be_caught(tmp_path):
    """The check itself can fail: a page that runs script and fetches a resource is reported."""
    from harness.report.browser import check

    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>window.__pwned = 1; console.error('boom')</script>"
                    "<img src='http://127.0.0.1:9/x.png'><div style='width:3000px'>wide</div></body></html>")
    result = check(page, width=390, expressions={"pwned": "typeof window.__pwned"})
    assert result.evaluated["pwned"] == "number" and "boom" in " ".join(result.console_errors)
    assert any("127.0.0.1:9" in r for r in result.requests) and not result.fits


def test_printing_opens_every_folded_section(report):
    """Printed, the folded sections (prompts, comparisons, provenance) are laid out, not hidden."""
    from harness.report.browser import check

    folded = "[...document.querySelectorAll('details:not([open]) pre')]"
    screen = check(report, expressions={"shown": f"{folded}.filter(e => e.checkVisibility()).length",
                                        "all": f"{folded}.length"})
    printed = check(report, media="print", expressions={"shown": f"{folded}.filter(e => e.checkVisibility()).length"})
    assert screen.evaluated["all"] > 0 and screen.evaluated["shown"] == 0
    assert printed.evaluated["shown"] == screen.evaluated["all"] and printed.console_errors == []


@pytest.mark.parametrize("width", [1280, 390])
def test_the_trend_chart_draws_every_run_and_the_change_in_the_browser(tmp_path, width):
    """Six monthly runs with a step at month 4: in Chromium the chart has six points, one flagged,
    a dashed change line, fits the screen, and the page has no console error or request."""
    from harness.report.browser import check
    from tests.test_tags import TREND_REPORT, _monthly_runs

    store = _monthly_runs(tmp_path, [0.30, 0.32, 0.29, 0.75, 0.74, 0.76])
    report = write(tmp_path / "t.yaml", TREND_REPORT.format(by="run"))
    out = tmp_path / "t.html"
    assert main(["report", str(report), "--store", store, "--out", str(out)]) == 0
    result = check(out, width=width, expressions={
        "points": "document.querySelectorAll('svg.trend-chart circle').length",
        "flagged": "document.querySelectorAll('svg.trend-chart circle.flagged').length",
        "dashed": "document.querySelectorAll('svg.trend-chart line[stroke-dasharray]').length",
        "inside": "(() => { const r = document.querySelector('svg.trend-chart').getBoundingClientRect(); return r.left >= 0 && r.right <= "
                  f"{width} && r.height > 50; }})()"})
    assert result.console_errors == [] and result.requests == []
    assert result.evaluated == {"points": 6, "flagged": 1, "dashed": 1, "inside": True}
    assert result.fits
