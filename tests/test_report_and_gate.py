"""Reports (escaped, self-contained, with CIs and samples) and gate verdicts/exit codes,
over rows written by the real pipeline with two fake variants."""

from __future__ import annotations

import re

import pytest

from harness.cli import main
from tests.conftest import write


@pytest.fixture
def two_variants(workspace):
    """fake-good always answers 'A' and echoes a planted <script>; fake-bad answers from its hash."""
    good = write(workspace / "models" / "good.yaml", """
        base:
          name: fake-good
          source: fake
          options:
            favour: [A, B, C, D]
            default_output: "<script>alert('x')</script> Good morning, friends. #LumenMornings ☕"
        """)
    bad = write(workspace / "models" / "bad.yaml", "base: {name: fake-bad, source: fake}\n")
    store = workspace / "h.duckdb"
    suites = [str(workspace / "suites" / "mc.yaml"), str(workspace / "suites" / "gen.yaml")]
    for models in (good, bad):
        assert main(["run", *suites, "--models", str(models), "--store", str(store)]) == 0
    return workspace


def report_file(ws, gate: str) -> str:
    return str(write(ws / "reports" / "r.yaml", f"""
        title: "Compare <b>variants</b>"
        variants: [fake-bad, fake-good]
        baseline: fake-bad
        samples_per_task: 2
        statistics: {{resamples: 500}}
        gate:
        {gate}
        """))


def test_report_is_self_contained_and_escapes_model_output(two_variants):
    ws = two_variants
    path = report_file(ws, "  - {variant: fake-good, task: tweets, metric: rougeL, min: 0.0}")
    out = ws / "out.html"
    assert main(["report", path, "--store", str(ws / "h.duckdb"), "--out", str(out)]) == 0
    html = out.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "Compare &lt;b&gt;variants&lt;/b&gt;" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing loaded from a CDN
    for needed in ("Leaderboard", "quiz", "tweets", "rougeL", "Paired differences", "n=20", "Provenance", "PASS"):
        assert needed in html
    # the leaderboard shows each task's first declared metric (gen.yaml lists rouge first)
    assert '<th>tweets<br><span class="small">rouge1</span></th>' in html
    # each CI is printed as [low, high]
    assert re.search(r"\[\d\.\d{3}, \d\.\d{3}\]", html)


def test_gate_pass_fail_and_error_codes(two_variants, capsys):
    ws = two_variants
    store = str(ws / "h.duckdb")
    passing = report_file(ws, "  - {variant: fake-good, baseline: fake-bad, task: tweets, metric: rougeL, max_drop: 0.0}")
    assert main(["gate", passing, "--store", store]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "paired p" in out and "gate: PASS (1/1 rules pass)" in out

    failing = report_file(ws, "  - {variant: fake-bad, task: quiz, metric: acc, min: 0.99, name: bad is perfect}")
    assert main(["gate", failing, "--store", store]) == 1
    out = capsys.readouterr().out
    assert "FAIL  bad is perfect: mean=" in out and "(n=20)" in out

    missing = report_file(ws, "  - {variant: fake-good, task: quiz, metric: bleu, min: 0.1}")
    assert main(["gate", missing, "--store", store]) == 2
    assert "no scores for variant 'fake-good', task 'quiz', metric 'bleu'" in capsys.readouterr().err


def test_gate_on_ci_bound_is_stricter_than_on_mean(two_variants, capsys):
    ws = two_variants
    store = str(ws / "h.duckdb")
    mean_rule = report_file(ws, "  - {variant: fake-bad, task: quiz, metric: acc, min: 0.05}")
    assert main(["gate", mean_rule, "--store", store]) in (0, 1)
    line = capsys.readouterr().out.splitlines()[0]
    mean = float(re.search(r"observed (\d\.\d+) \[(\d\.\d+), (\d\.\d+)\]", line).group(1))
    low = float(re.search(r"observed (\d\.\d+) \[(\d\.\d+), (\d\.\d+)\]", line).group(2))
    assert low < mean
    threshold = (low + mean) / 2
    on_mean = report_file(ws, f"  - {{variant: fake-bad, task: quiz, metric: acc, min: {threshold}}}")
    assert main(["gate", on_mean, "--store", store]) == 0
    on_low = report_file(ws, f"  - {{variant: fake-bad, task: quiz, metric: acc, min: {threshold}, statistic: ci_low}}")
    assert main(["gate", on_low, "--store", store]) == 1
