"""Reports (escaped, self-contained, with CIs and samples) and the gate: direction-aware rules as
hypothesis tests with four verdicts and exit codes, Holm across rules, run-level metrics, judge
health as a precondition, partial and missing data never silent, and the CI outputs."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime

import numpy as np
import pytest

from harness.cli import main
from harness.store.db import RunRow, ScoreRow, StatRow, Store
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
    """A report over the two fake variants; `gate`: rule lines, each starting '  - '."""
    path = ws / "reports" / "r.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('title: "Compare <b>variants</b>"\nvariants: [fake-bad, fake-good]\nbaseline: fake-bad\n'
                    f"samples_per_task: 2\nstatistics: {{resamples: 500}}\ngate:\n{gate}\n")
    return str(path)


def test_report_is_self_contained_and_escapes_model_output(two_variants):
    ws = two_variants
    path = report_file(ws, "  - {variant: fake-good, baseline: fake-bad, task: quiz, metric: acc, max_drop: 1.0}")
    out = ws / "out.html"
    assert main(["report", path, "--store", str(ws / "h.duckdb"), "--out", str(out)]) == 0
    html = out.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "Compare &lt;b&gt;variants&lt;/b&gt;" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing loaded from a CDN
    for needed in ("Leaderboard", "quiz", "tweets", "rougeL", "Paired differences", "n=20", "Provenance",
                   "exact McNemar", "betting bound (values in [-1, 1], n=6 &lt; 30)", "p (Holm)", "MDE", "Gate: <span class=\"pass\">PASS"):
        assert needed in html
    # the leaderboard shows each task's first declared metric (gen.yaml lists rouge first)
    assert '<th>tweets<br><span class="small">rouge1 ↑</span></th>' in html  # with its better direction
    # each CI is printed as [low, high]
    assert re.search(r"\[\d\.\d{3}, \d\.\d{3}\]", html)


def test_gate_four_verdicts_and_exit_codes(two_variants, capsys):
    ws = two_variants
    store = str(ws / "h.duckdb")
    # fake-good favours A on every item, fake-bad answers at random: acc 0.25-ish vs whatever A gives.
    passing = report_file(ws, "  - {variant: fake-good, baseline: fake-bad, task: quiz, metric: acc, max_drop: 1.0}")
    assert main(["gate", passing, "--store", store]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS") and "Tango score test" in out  # a margin: Tango's test, not the exact one at 0
    assert "gate: PASS (1 pass" in out and "exit code 0" in out

    failing = report_file(ws, "  - {variant: fake-bad, task: quiz, metric: acc, min: 0.99, name: bad is perfect}")
    assert main(["gate", failing, "--store", store]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL         bad is perfect: proportion") and "(n=20, exact binomial)" in out

    # 20 items can't tell 0.25-ish from 0.3: the bounds straddle the threshold
    acc = float(re.search(r"proportion ([\d.]+)", out).group(1))
    unsure = report_file(ws, f"  - {{variant: fake-bad, task: quiz, metric: acc, min: {acc + 0.02}}}")
    assert main(["gate", unsure, "--store", store]) == 3
    out = capsys.readouterr().out
    assert out.startswith("INCONCLUSIVE") and "the data can't decide: MDE" in out and "items would decide" in out
    assert main(["gate", unsure, "--store", store, "--inconclusive", "fail"]) == 1
    assert main(["gate", unsure, "--store", store, "--inconclusive", "pass"]) == 0
    capsys.readouterr()

    missing = report_file(ws, "  - {variant: fake-good, task: quiz, metric: bleu, min: 0.1}")
    assert main(["gate", missing, "--store", store]) == 2
    assert "no values of 'bleu' in fake-good's run of quiz (it stores: acc, acc_norm, contaminated, contamination_overlap)" in capsys.readouterr().out
    unknown = report_file(ws, "  - {variant: fake-typo, task: quiz, metric: acc, min: 0.1}")
    assert main(["gate", unknown, "--store", store]) == 2
    assert "no runs of variant 'fake-typo'" in capsys.readouterr().out
    undeclared = report_file(ws, "  - {variant: fake-good, task: quiz, metric: accuracy, min: 0.1}")
    assert main(["gate", undeclared, "--store", store]) == 2  # the one report-file check validate makes too
    assert "gate[0].metric: unknown metric 'accuracy'" in capsys.readouterr().err


def test_old_statistic_key_still_loads_and_is_reported_as_ignored(two_variants, capsys):
    ws = two_variants
    path = report_file(ws, "  - {variant: fake-good, task: quiz, metric: acc, min: 0.05, statistic: ci_low}")
    assert main(["gate", path, "--store", str(ws / "h.duckdb")]) in (0, 1, 3)
    assert "statistic: ci_low is ignored" in capsys.readouterr().out


# -- constructed stores ---------------------------------------------------------------------------

def plant(store: Store, variant: str, task: str, values: dict[str, list[float]], task_type: str = "generation",
          suite: str = "s", partial: bool = False, suite_tasks: list | None = None, stats=()) -> str:
    """One run of `task` for `variant` with the given per-item values of each metric."""
    run_id = f"{variant}-{task}"
    now = datetime(2026, 11, 28)
    n = len(next(iter(values.values())))
    store.write_task_run(
        RunRow(run_id=run_id, run_key=run_id, suite=suite, suite_hash="h", task=task, task_type=task_type,
               metrics=json.dumps(list(values)), variant=variant, variant_key=variant, backend="fake", device="none", dtype="none",
               data_hash="d", prompt_hash="p", generation_config=None, seed=0, harness_version="t", git_commit=None, started_at=now,
               last_used_at=now, wall_s=0.5 * n, n_samples=n, partial=partial, n_items_total=n * (5 if partial else 1),
               suite_tasks=json.dumps(suite_tasks) if suite_tasks else None),
        [], [ScoreRow(run_id, f"i{k}", "planted", m, v) for m, vs in values.items() for k, v in enumerate(vs)],
        stats=[StatRow(run_id, m, v, None, None, n, w) for m, v, w in stats])
    return run_id


def gate_file(tmp_path, rules: str, variants="[base, cand]", stats="") -> str:
    return str(write(tmp_path / "g.yaml", f"title: g\nvariants: {variants}\nstatistics: {{resamples: 500{stats}}}\ngate:\n{rules}"))


def gate(tmp_path, rules: str, capsys, *extra, stats="") -> tuple[int, str]:
    """Exit code and what the gate printed (stdout, then any error on stderr)."""
    code = main(["gate", gate_file(tmp_path, rules, stats=stats), "--store", str(tmp_path / "g.duckdb"), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_worse_hallucination_rate_fails_non_inferiority_and_an_improvement_passes(tmp_path, capsys):
    """Lower is better for hallucination_rate: the old gate passed a regression and failed an improvement."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.3, 100)
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "base", "grounded", {"hallucination_rate": list(base)})
        plant(store, "worse", "grounded", {"hallucination_rate": list(base + 0.15)})
        plant(store, "better", "grounded", {"hallucination_rate": list(base - 0.09)})
    rule = "  - {{variant: {v}, baseline: base, task: grounded, metric: hallucination_rate, max_drop: 0.05}}\n"
    code, out = gate(tmp_path, rule.format(v="worse"), capsys)
    assert code == 1 and out.startswith("FAIL") and "difference 0.15" in out and "vs +0.05" in out
    code, out = gate(tmp_path, rule.format(v="better"), capsys)
    assert code == 0 and out.startswith("PASS") and "difference -0.09" in out
    # superiority in the right direction too: lower is the better side
    sup = "  - {kind: superiority, variant: better, baseline: base, task: grounded, metric: hallucination_rate}\n"
    assert gate(tmp_path, sup, capsys)[0] == 0
    sup = "  - {kind: superiority, variant: worse, baseline: base, task: grounded, metric: hallucination_rate}\n"
    assert gate(tmp_path, sup, capsys)[0] == 1
    # an absolute bound on the upper confidence bound
    bound = "  - {variant: better, task: grounded, metric: hallucination_rate, max: 0.15}\n"
    code, out = gate(tmp_path, bound, capsys)
    assert code == 0 and "studentized bootstrap" in out


def test_ordinal_ratings_use_wilcoxon_and_direction_none_refuses_paired_rules(tmp_path, capsys):
    rng = np.random.default_rng(1)
    base = rng.integers(3, 8, 60).astype(float)
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "base", "rate", {"judge_rating": list(base), "claims": list(base)}, task_type="judge_single")
        plant(store, "cand", "rate", {"judge_rating": list(base + 1), "claims": list(base)}, task_type="judge_single")
    code, out = gate(tmp_path, "  - {kind: superiority, variant: cand, baseline: base, task: rate, metric: judge_rating}\n", capsys)
    assert code == 0 and "Wilcoxon signed-rank" in out and "difference 1" in out
    code, out = gate(tmp_path, "  - {variant: cand, baseline: base, task: rate, metric: claims, max_drop: 1}\n", capsys)
    assert code == 2 and "has no better direction" in out


def test_holm_across_rules_makes_a_marginal_rule_inconclusive(tmp_path, capsys):
    from harness.stats.hypothesis import paired_test

    rng = np.random.default_rng(3)
    base = rng.normal(0.5, 0.2, 40)
    cand = base + 0.04 + rng.normal(0, 0.05, 40)
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "base", "t", {"rougeL": list(base)})
        plant(store, "cand", "t", {"rougeL": list(cand)})
    # a superiority margin at which the rule alone passes with 0.01 < p <= 0.05 (same test, seed and resamples)
    margin = next(m for m in np.arange(0.0, 0.05, 0.0005)
                  if 0.01 < paired_test("continuous", cand, base, m, 0.05, 500, 0, bounds=False).p_above <= 0.05)
    one = f"  - {{kind: superiority, variant: cand, baseline: base, task: t, metric: rougeL, margin: {margin:.4f}}}\n"
    code, out = gate(tmp_path, one, capsys)
    assert code == 0
    # four more rules the data can't decide (thresholds at the estimate): the marginal p is now one of five
    five = one + "".join(f"  - {{variant: cand, task: t, metric: rougeL, min: {cand.mean() + k * 1e-4:.6f}, name: r{k}}}\n"
                         for k in range(4))
    code, out = gate(tmp_path, five, capsys)
    assert code == 3 and out.startswith("INCONCLUSIVE") and "Holm p=" in out
    code, out = gate(tmp_path, five, capsys, stats=", multiplicity: none")
    assert out.startswith("PASS")  # uncorrected, the marginal rule passes again (the other four stay undecided)


def test_judged_metric_needs_a_healthy_judge(tmp_path, capsys):
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "cand", "pairs", {"win_rate": [1.0] * 30}, task_type="judge_pairwise",
              stats=[("consistency", 0.1, "order-swap consistency 10% < 60%: verdicts depend on answer position")])
    rule = "  - {variant: cand, task: pairs, metric: win_rate, min: 0.5}\n"
    code, out = gate(tmp_path, rule, capsys)
    assert code == 3 and "the judge failed its health checks (consistency: order-swap consistency 10%" in out
    code, out = gate(tmp_path, rule.replace("min: 0.5", "min: 0.5, require_healthy_judge: false"), capsys)
    assert code == 0


def test_partial_runs_are_errors_unless_allowed_and_missing_tasks_are_named(tmp_path, capsys):
    tasks = [{"task": "a", "type": "generation", "baseline": None}, {"task": "b", "type": "generation", "baseline": None},
             {"task": "j", "type": "judge", "baseline": "base"}]
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "base", "a", {"rougeL": [0.5] * 10}, suite_tasks=tasks)
        plant(store, "cand", "a", {"rougeL": [0.6, 0.7] * 5}, partial=True, suite_tasks=tasks)
    rule = "  - {variant: cand, task: a, metric: rougeL, min: 0.1}\n"
    code, out = gate(tmp_path, rule, capsys)
    assert code == 2 and "cand's only run of a is a --limit sample (10 of 50 items)" in out
    # both variants lack task b; the pairwise judge task j is missing for cand only (base is its baseline)
    # cand lacks task b and the pairwise judge task j (base is j's baseline, so base lacks only b)
    assert "warning: cand: suite 's' has no stored run of b, j" in out and "warning: base" not in out
    code, out = gate(tmp_path, rule.replace("min: 0.1", "min: 0.1, allow_partial: true"), capsys)
    assert code == 0 and "partial run (10 of 50 items), allowed by the rule" in out
    report = write(tmp_path / "r.yaml", "title: r\nvariants: [base, cand]\n")
    out_html = tmp_path / "r.html"
    assert main(["report", str(report), "--store", str(tmp_path / "g.duckdb"), "--out", str(out_html)]) == 0
    html = out_html.read_text()
    assert "Incomplete results" in html and "only a --limit sample (10 of 50 items)" in html and "has no stored run of b" in html


def test_report_naming_what_does_not_exist_exits_2(two_variants, capsys):
    ws = two_variants
    store = str(ws / "h.duckdb")
    for body, message in [("variants: [fake-bad, fake-typo]", "no runs of 'fake-typo'"),
                          ("variants: [fake-bad, fake-good]\ntasks: [quiz, quizz]", "no task 'quizz'"),
                          ("variants: [fake-bad, fake-good]\nheadline: {quiz: accuracy}", "task 'quiz' has no metric 'accuracy'"),
                          ("variants: [fake-bad, fake-good]\nheadline: {quizz: acc}", "no task 'quizz'")]:
        path = write(ws / "reports" / "bad.yaml", f"title: t\n{body}\n")
        assert main(["report", str(path), "--store", store]) == 2
        assert message in capsys.readouterr().err
        if "headline" not in body:
            assert main(["plan", str(path), "--store", store]) == 2
            capsys.readouterr()


def test_run_level_metrics_are_gateable(tmp_path, capsys, scripted_latency):
    assert scripted_latency(tmp_path / "g.duckdb") == 0
    capsys.readouterr()
    rules = ("  - {variant: fake-l, task: serving, metric: throughput_tokens_per_s_c5, min: 10}\n"
             "  - {variant: fake-l, task: serving, metric: latency_s_p50, max: 5.0}\n"
             "  - {variant: fake-l, task: serving, metric: latency_s_p95, max: 5.0, name: p95 from 10 requests}\n"
             "  - {variant: fake-l, task: serving, metric: cost_per_1k_output_tokens_c1, max: 10.0}\n"
             "  - {variant: fake-l, task: serving, metric: peak_memory_mb, max: 1000000}\n"
             "  - {variant: fake-l, task: serving, metric: throughput_tokens_per_s_c1, min: 1.0}\n"
             "  - {variant: fake-l, task: serving, metric: peak_memory_mb, max: 1000000, tolerance: 50}\n"
             "  - {variant: fake-l, task: serving, metric: peak_memory_mb, max: 10, tolerance: 5}\n"
             "  - {variant: fake-l, task: serving, metric: peak_memory_mb, max: 1000000, tolerance: 2000000}\n")
    code, out = gate(tmp_path, rules, capsys, stats=", multiplicity: none", )
    lines = out.splitlines()
    # the gate recomputes the stored figures from the per-request rows; two batches at concurrency 5
    # can't establish a throughput bound with confidence (a percentile bootstrap said they could)
    assert lines[0].startswith("INCONCLUSIVE") and f"{40 / 1.5:.4g}" in lines[0] and "linearised ratio" in lines[0]
    assert lines[1].startswith("PASS") and "exact binomial (order statistics)" in lines[1]
    # a p95 can't be bounded from 10 requests: the upper bound is infinite
    assert lines[2].startswith("INCONCLUSIVE") and "+inf" in lines[2]
    assert "10 requests can't bound a p95 at all at this alpha: at least 59 are needed" in lines[2]  # 0.95^59 <= 0.05
    assert lines[3].startswith("PASS") and f"{0.001 * 5.5 / 40 * 1000:.4g}" in lines[3]
    # one number has no sampling distribution: without a tolerance it can't decide, and never gets a p-value
    assert lines[4].startswith("INCONCLUSIVE") and "single measurement" in lines[4] and "tolerance" in lines[4]
    assert lines[6].startswith("PASS") and "± 50 (declared tolerance)" in lines[6]
    assert lines[7].startswith("FAIL") and lines[8].startswith("INCONCLUSIVE") and "within the tolerance" in lines[8]
    assert not any("p=" in line or "p<" in line for line in lines[4:5] + lines[6:9])
    # ten batches of one at concurrency 1 do establish 40 tokens / 5.5 s >= 1 token/s
    assert lines[5].startswith("PASS") and f"{40 / 5.5:.4g}" in lines[5] and "(n=10," in lines[5]
    assert code == 1  # the planted failure


def test_corpus_bleu_is_gateable_paired(two_variants, capsys):
    ws = two_variants
    path = report_file(ws, "  - {kind: superiority, variant: fake-good, baseline: fake-bad, task: tweets, metric: corpus_bleu}")
    assert main(["gate", path, "--store", str(ws / "h.duckdb")]) in (0, 1, 3)
    out = capsys.readouterr().out
    assert "paired percentile bootstrap" in out and "(n=6," in out


def test_ci_outputs_junit_markdown_json_and_step_summary(two_variants, capsys, monkeypatch):
    ws = two_variants
    store = str(ws / "h.duckdb")
    path = report_file(ws, "\n".join([
        "  - {variant: fake-good, baseline: fake-bad, task: quiz, metric: acc, max_drop: 1.0, name: keeps knowledge}",
        "  - {variant: fake-bad, task: quiz, metric: acc, min: 0.99, name: perfect}",
        "  - {variant: fake-bad, task: quiz, metric: acc, min: 0.3, name: unsure}",
        "  - {variant: fake-bad, task: quiz, metric: bleu, min: 0.3, name: broken}"]))
    summary = ws / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = main(["gate", path, "--store", store, "--junit", str(ws / "out" / "gate.xml"), "--markdown", str(ws / "gate.md"),
                 "--json", str(ws / "gate.json")])
    assert code == 2  # an error wins over a failure
    suite = ET.parse(ws / "out" / "gate.xml").getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["keeps knowledge", "perfect", "unsure", "broken"]
    assert suite.get("tests") == "4" and suite.get("failures") == "1" and suite.get("errors") == "1"
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None
    assert cases[1].find("failure") is not None
    statuses = {c.get("name"): c for c in cases}
    verdict = json.loads((ws / "gate.json").read_text())
    assert verdict["verdict"] == "error" and verdict["exit_code"] == 2
    assert [r["status"] for r in verdict["rules"]] == [v for v in (verdict["rules"][0]["status"], "fail",
                                                                    verdict["rules"][2]["status"], "error")]
    if verdict["rules"][2]["status"] == "inconclusive":
        assert statuses["unsure"].find("skipped").get("message").startswith("inconclusive")
    assert verdict["rules"][1]["lower_bound"] < verdict["rules"][1]["upper_bound"] < 0.99
    md = (ws / "gate.md").read_text()
    assert "| ❌ fail | perfect |" in md and "| 🛑 error | broken |" in md
    assert summary.read_text().startswith("earlier step\n### Gate:")


def test_gate_output_to_a_directory_is_a_clean_error(two_variants, capsys):
    ws = two_variants
    path = report_file(ws, "  - {variant: fake-good, task: quiz, metric: acc, min: 0.01}")
    (ws / "adir").mkdir()
    assert main(["gate", path, "--store", str(ws / "h.duckdb"), "--junit", str(ws / "adir")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_plan_prints_mde_and_items_needed(two_variants, capsys):
    ws = two_variants
    path = report_file(ws, "  - {variant: fake-bad, task: quiz, metric: acc, min: 0.3, name: unsure}")
    assert main(["plan", path, "--store", str(ws / "h.duckdb"), "--price-per-hour", "3.6"]) == 0
    out = capsys.readouterr().out
    assert "MDE" in out and "Comparisons with fake-bad" in out and "fake-good" in out
    if "INCONCLUSIVE" in out:
        assert "items" in out and "cost" in out


def test_skewed_small_samples_do_not_decide_on_their_long_side(tmp_path, capsys):
    """Unbounded values (latency) skewed towards the bad side at n = 20: the bootstrap can't be
    trusted on that side and no range bounds the tail, so the rule can't pass; skewed the other
    way the same data decide as before."""
    rng = np.random.default_rng(2)
    base = rng.uniform(0.2, 0.4, 20)
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "base", "t", {"latency_s": list(base)})
        # lower is better: a long tail of slower items used to make passing 'below' too easy at n=20
        plant(store, "cand", "t", {"latency_s": list(base + rng.exponential(0.3, 20) - 0.35)})
        plant(store, "cand2", "t", {"latency_s": list(base - rng.exponential(0.3, 20) - 0.05)})
    rule = "  - {kind: superiority, variant: V, baseline: base, task: t, metric: latency_s}\n"
    code, out = gate(tmp_path, rule.replace("V", "cand"), capsys)
    assert code == 3 and "+inf]" in out and "skewness +" in out and "upper bound needs about" in out
    code, out = gate(tmp_path, rule.replace("V", "cand2"), capsys)  # skewed towards the good side
    assert code == 0 and "skewness" not in out


def test_an_all_zero_rate_gets_the_exact_bound(tmp_path, capsys):
    """0 hallucinations in 20 answers: the exact upper bound is 0.139, so 'at most 0.1' can't pass
    (it used to, on 'no variation', bounds [0, 0]); 0 in 40 (bound 0.072) does."""
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "cand", "g20", {"hallucination_rate": [0.0] * 20})
        plant(store, "cand", "g40", {"hallucination_rate": [0.0] * 40})
    rule = "  - {variant: cand, task: T, metric: hallucination_rate, max: 0.1}\n"
    code, out = gate(tmp_path, rule.replace("T", "g20"), capsys)
    assert code == 3 and "0.1391" in out and "exact binomial" in out
    code, out = gate(tmp_path, rule.replace("T", "g40"), capsys)
    assert code == 0 and "0.07216" in out


def test_a_clean_small_sample_does_not_certify_non_inferiority(tmp_path, capsys):
    """16 items that all moved by +-0.01: the bootstrap's interval is tight and used to pass 'loses
    at most 0.05', yet a fine-tune that breaks a tenth of items badly shows none of them in 16
    draws 18% of the time. On the declared range [0, 1] the betting bound says n = 16 can't
    certify that; 200 such items (bootstrap, no skew) do."""
    rng = np.random.default_rng(5)
    with Store(tmp_path / "g.duckdb") as store:
        for n in (16, 200):
            base = rng.uniform(0.4, 0.8, n)
            plant(store, "base", f"t{n}", {"rougeL": list(base)})
            plant(store, "cand", f"t{n}", {"rougeL": list(base + rng.normal(0, 0.01, n))})
    rule = "  - {variant: cand, baseline: base, task: T, metric: rougeL, max_drop: 0.05}\n"
    code, out = gate(tmp_path, rule.replace("T", "t16"), capsys)
    assert code == 3 and "betting bound (values in [-1, 1], n=16 < 30)" in out
    code, out = gate(tmp_path, rule.replace("T", "t200"), capsys)
    assert code == 0 and "studentized paired bootstrap" in out and "betting" not in out


def test_a_variant_is_best_only_when_its_lead_is_decided():
    from harness.analysis.metrics import MetricSummary
    from harness.report.view import decided_best
    from harness.stats.intervals import Estimate

    def rows(*cells):
        return [MetricSummary(f"v{i}", "s", "t", "m", Estimate(*c, 40), "r") for i, c in enumerate(cells)]

    assert decided_best(rows((0.5, 0.4, 0.6), (0.5, 0.4, 0.6), (0.5, 0.4, 0.6)), "higher") is None  # a three-way tie
    assert decided_best(rows((0.3001, 0.2, 0.4), (0.3, 0.2, 0.4)), "higher") is None  # a 0.0001 lead inside the noise
    assert decided_best(rows((0.8, 0.7, 0.9), (0.3, 0.2, 0.4)), "higher") == "v0"
    assert decided_best(rows((0.8, 0.7, 0.9), (0.3, 0.2, 0.4)), "lower") == "v1"
    assert decided_best(rows((0.8, 0.7, 0.9), (0.3, 0.2, 0.4)), "none") is None


def test_what_would_decide_a_rule_is_said_in_words_a_person_can_act_on():
    from harness.config.report import GateRule
    from harness.report.gate import Verdict, needed_words
    from harness.stats.hypothesis import TestOutcome

    rule = GateRule(variant="v", task="t", metric="acc", min=0.5)
    o = TestOutcome(0.5001, 0.4, 0.6, 0.4, 0.6, 40, "exact binomial", "proportion", 0.08)
    assert needed_words(Verdict(rule, "inconclusive", "", outcome=o, n_needed=11232902)).startswith(
        "the estimate sits on the threshold: no practical number of items")
    assert needed_words(Verdict(rule, "inconclusive", "", outcome=o, n_needed=2420)) == "about 2420 items would decide a gap this size"


def test_sizes_are_written_in_a_readable_unit():
    from harness.report.formatting import size

    assert size(812) == "812 B" and size(14_200) == "14.2 KB" and size(268_100_000) == "268.1 MB" and size(1_200_000_000) == "1.20 GB"


def test_the_verdict_line_never_calls_a_failed_variant_not_failed(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.uniform(0.3, 0.7, 60)
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "base", "t", {"rougeL": list(base)})
        plant(store, "broken", "t", {"rougeL": list(base - 0.3)})
        plant(store, "close", "t", {"rougeL": list(base - 0.045 + rng.normal(0, 0.15, 60))})
    report = write(tmp_path / "r.yaml", """
        title: t
        variants: [base, broken, close]
        statistics: {resamples: 300}
        gate:
          - {variant: broken, baseline: base, task: t, metric: rougeL, max_drop: 0.05}
          - {variant: close, baseline: base, task: t, metric: rougeL, max_drop: 0.05}
        """)
    assert main(["report", str(report), "--store", str(tmp_path / "g.duckdb"), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "No variant can be shipped on this evidence yet: close has undecided gate rules, and broken fails one (blocked)." in html
    assert "not failed" not in html


def test_the_tradeoff_chart_has_ticks_and_does_not_zoom_in_on_noise():
    """Two variants 0.0001 apart in quality, each with an interval of +-0.05: drawn a pixel apart
    at most, on an axis whose ticks say its values; latency from 0."""
    from harness.report.view import _scatter, nice_ticks
    from harness.stats.intervals import Estimate

    rows = [{"variant": "a", "latency_p50": 1.2, "quality": Estimate(0.3000, 0.25, 0.35, 16)},
            {"variant": "b", "latency_p50": 1.4, "quality": Estimate(0.3001, 0.25, 0.35, 16)}]
    g = _scatter(rows)
    a, b = g["points"]
    assert abs(a["y"] - b["y"]) < 1.0 and a["y_low"] > a["y"] > a["y_high"]
    assert g["xticks"][0][1] == "0" and len(g["yticks"]) >= 3 and all(label for _, label in g["yticks"])
    assert nice_ticks(0.0, 1.4) == [0.0, 0.5, 1.0, 1.5] and nice_ticks(0.25, 0.35) == [0.25, 0.3, 0.35]


def test_plan_never_prints_an_item_count_nobody_could_collect(tmp_path, capsys):
    """A difference of 1e-7 on noisy scores: the plan says no practical n detects it, instead of a
    30-digit number of items; an exact zero says no difference."""
    rng = np.random.default_rng(4)
    base = rng.uniform(0.2, 0.8, 40)
    noise = rng.normal(0, 0.1, 40)
    with Store(tmp_path / "g.duckdb") as store:
        plant(store, "base", "t", {"rougeL": list(base)})
        plant(store, "cand", "t", {"rougeL": list(base + noise - noise.mean() + 1e-7)})
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [base, cand]\nstatistics: {resamples: 200}\n")
    assert main(["plan", str(report), "--store", str(tmp_path / "g.duckdb")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "rougeL" in x)
    assert "no practical number of items (over 1,000,000) detects it" in line and "about" not in line


def test_a_p100_or_p0_rule_says_it_can_never_be_bounded():
    import math as m

    from harness.report.gate import _items_needed
    from harness.stats.hypothesis import TestOutcome
    from harness.stats.metricspec import resolve

    metric, params = resolve("latency_s_p100")
    o = TestOutcome(1.0, 0.5, m.inf, m.nan, m.nan, 10, "exact binomial (order statistics)", "p100", m.nan)
    assert _items_needed(metric, params, o, 0.1, "below", 0.05, 0.8) == (m.inf, True)
    metric, params = resolve("latency_s_p10")
    both = TestOutcome(1.0, -m.inf, m.inf, m.nan, m.nan, 2, "exact binomial (order statistics)", "p10", m.nan)
    assert _items_needed(metric, params, both, 0.1, "between", 0.05, 0.8) == (29.0, True)  # the lower side needs 0.9^29 <= 0.05


def test_every_command_that_reads_a_report_file_says_the_same_about_a_misspelt_metric(tmp_path, capsys):
    """One check of report files: `validate`, `gate`, `report`, `plan` and `tag` give the same
    error (file, field, suggestion) for a misspelt metric, exit 2, and write nothing."""
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [a]\ngate:\n  - {name: r, variant: a, task: t, metric: rougel, min: 0.1}\n")
    store = tmp_path / "h.duckdb"
    said = {}
    for argv in (["validate", str(report)], ["gate", str(report), "--store", str(store)],
                 ["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")],
                 ["plan", str(report), "--store", str(store)], ["tag", str(report), "v1", "--store", str(store)]):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        line = next(x for x in (captured.out + captured.err).splitlines() if "gate[0].metric" in x)
        said[argv[0]] = line.split(f"{report}: ", 1)[1]
    assert len(set(said.values())) == 1, said
    assert "unknown metric 'rougel'. Did you mean 'rougeL'" in said["gate"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]  # no store, no report, no temporary file
