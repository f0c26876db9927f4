"""`harness outcomes import`: per-post online outcomes, checked row by row, and the report's
rates, detectable lift and offline-online correlation."""

from __future__ import annotations

import csv
import json
import random

import duckdb

from harness.cli import main
from harness.review.outcomes import clopper_pearson, compare_rates, compare_used, detectable_lift, edit_distance
from tests.conftest import write

SUITE = """
name: s
tasks:
  - name: tweets
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Brief: {{ topic }}\\nTweet:", reference: "{{ tweet }}"}
    scorers:
      - rouge
      - rubric: {checks: [{name: tagged, type: hashtags, min: 1}]}
"""


def _evaluated(tmp_path) -> str:
    """Variants a and b on 40 briefs; each output repeats a varying share of the reference (so
    ROUGE-L varies by item) and carries a hashtag on a random half (so the rubric does not follow it)."""
    rng = random.Random(5)
    words = "our new roast is here with notes of cocoa cherry and a long sweet finish".split()
    items = [{"id": f"b{k:02d}", "topic": f"brief {k}", "tweet": " ".join(words)} for k in range(40)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    write(tmp_path / "s.yaml", SUITE)
    store = str(tmp_path / "h.duckdb")
    for name in ("a", "b"):
        responses = {f"brief {k}\n": " ".join(words[:2 + k % 14]) + (" #lumen" if rng.random() < 0.5 else "") for k in range(40)}
        models = write(tmp_path / f"{name}.yaml", f"base: {{name: {name}, source: fake, options: {{responses: {json.dumps(responses)}}}}}\n")
        assert main(["run", str(tmp_path / "s.yaml"), "--models", str(models), "--store", store]) == 0
    return store


def _write_outcomes(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_outcomes_show_a_planted_lift_and_which_offline_metric_predicts_them(tmp_path, capsys):
    """Engagement follows each item's ROUGE-L (not its rubric), and variant b's posts engage
    twice as often: the report shows b's higher rate with non-overlapping exact intervals, and
    a ROUGE metric at the top of the predictors while the rubric's interval spans 0."""
    store = _evaluated(tmp_path)
    con = duckdb.connect(store, read_only=True)
    rouge = dict(con.execute("""SELECT r.variant || '/' || s.sample_id, s.value FROM scores s JOIN runs r USING (run_id)
                                WHERE s.metric = 'rougeL'""").fetchall())
    con.close()
    rows = []
    for v, lift in (("a", 1.0), ("b", 2.0)):
        for k in range(40):
            item = f"b{k:02d}"
            likes = round(2000 * lift * (0.01 + 0.04 * rouge[f"{v}/{item}"]))
            rows.append({"variant": v, "item_id": item, "impressions": 2000, "likes": likes, "reposts": 0, "replies": 1,
                         "used": "yes" if k % 3 else "no", "edit_seconds": 30 + k, "draft": "our new roast is here",
                         "published": "our new roast is finally here"})
    path = tmp_path / "outcomes.csv"
    _write_outcomes(path, rows)
    assert main(["outcomes", "import", str(path), "--store", store]) == 0
    assert "80 posts' outcomes stored" in capsys.readouterr().out
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [a, b]\nstatistics: {resamples: 300}\n")
    out = tmp_path / "r.html"
    assert main(["report", str(report), "--store", store, "--out", str(out)]) == 0
    html = out.read_text().split("<h2>Online outcomes</h2>")[1].split("<h2>")[0]
    from harness.review.outcomes import outcome_view
    from harness.store.db import Store

    with Store(tmp_path / "h.duckdb", read_only=True) as s:
        view = outcome_view(s, ["a", "b"])
    a, b = view["variants"]
    assert b["rate"] > 1.8 * a["rate"] and b["rate_ci"][0] > a["rate_ci"][1]  # the lift, outside the noise
    assert 0 < a["detectable_lift"] < 1 and a["used"][0] == 26 / 40
    assert a["vs_baseline"] is None and b["vs_baseline"]["baseline"] == "a"
    assert b["vs_baseline"]["rate"]["verdict"] == "higher" and b["vs_baseline"]["rate"]["low"] > 0
    assert b["vs_baseline"]["used"]["verdict"] == "cannot decide"  # the same 26 of 40 used on both sides
    assert "higher than a" in html and "cannot decide" in html
    top = view["predictors"][0]
    assert top["metric"] in ("rougeL", "rouge1", "rouge2") and top["rho"].low > 0.3  # pooled over both variants, b lifted
    rubric = next(p for p in view["predictors"] if p["metric"] == "rubric")
    assert rubric["rho"].low < 0 < rubric["rho"].high
    assert "rougeL" in html and "Spearman rho" in html and "0.17" in html  # edit distance: 1 word inserted, of 6


def test_a_bad_outcomes_row_is_exit_2_naming_the_line_and_field_and_nothing_is_written(tmp_path, capsys):
    store = _evaluated(tmp_path)
    good = {"variant": "a", "item_id": "b00", "impressions": 100, "likes": 3, "reposts": 0, "replies": 0, "used": "yes"}
    cases = [({"variant": "nobody"}, "line 3, field variant: 'nobody' is not a variant"),
             ({"likes": -1}, "line 3, field likes: expected a count"),
             ({"likes": "many"}, "line 3, field likes: expected a number, got 'many'"),
             ({"used": "perhaps"}, "line 3, field used: expected yes or no"),
             ({"impressions": 0}, "line 3, field impressions: a post with no impressions")]
    for change, message in cases:
        path = tmp_path / "bad.csv"
        _write_outcomes(path, [good, {**good, **change}])
        assert main(["outcomes", "import", str(path), "--store", store]) == 2
        assert message in capsys.readouterr().err
    con = duckdb.connect(store, read_only=True)
    assert con.execute("SELECT count(*) FROM outcomes").fetchone() == (0,)
    con.close()
    jsonl = write(tmp_path / "o.jsonl", json.dumps({**good, "extra": 1}) + "\n")
    assert main(["outcomes", "import", str(jsonl), "--store", store]) == 2
    assert "line 1: unknown field 'extra'" in capsys.readouterr().err


def test_the_helpers():
    assert edit_distance("a b c d", "a b c d") == 0 and edit_distance("a b", "c d") == 1.0
    low, high = clopper_pearson(0, 20)
    assert low == 0 and 0.16 < high < 0.17  # the rule of three's exact counterpart
    # 20 posts per arm with a per-post rate of 5% +- 1%: (1.96 + 0.84) x 0.0103 x sqrt(2/20) / 0.05, an 18% relative lift
    rates = [0.05 + 0.01 * (1 if i % 2 else -1) for i in range(20)]
    assert 0.17 < detectable_lift(rates, 20) < 0.19


def test_the_online_comparison_holds_its_error_rate_where_a_pooled_test_would_not():
    """Simulated A/B tests with no true difference: posts whose rates vary far more than their
    impressions do (beta-distributed rates, 20 posts per arm, 2,000 impressions each). Welch's test
    on per-post rates rejects about 5% of them; the pooled binomial test on summed counts, which
    treats every impression as independent, rejects far more: the reason the report uses the
    former. With a true 50% lift it decides most of the time."""
    import numpy as np
    from scipy.stats import norm

    rng = np.random.default_rng(11)
    sims, n, shown = 1000, 20, 2000

    def arm(mean):
        return rng.binomial(shown, rng.beta(4, 4 / mean - 4, size=n)) / shown

    welch = pooled = power = 0
    for _ in range(sims):
        a, b = arm(0.04), arm(0.04)
        welch += compare_rates(list(a), list(b))["verdict"] != "cannot decide"
        p0, p1, p = a.mean(), b.mean(), (a.mean() + b.mean()) / 2
        pooled += abs(p1 - p0) / np.sqrt(p * (1 - p) * 2 / (n * shown)) > norm.ppf(0.975)
        power += compare_rates(list(a), list(arm(0.06)))["verdict"] == "higher"
    assert 0.03 < welch / sims < 0.07, welch / sims
    assert pooled / sims > 0.3, pooled / sims
    assert power / sims > 0.6, power / sims
    assert compare_rates([0.1], [0.2, 0.3]) is None
    assert compare_used((5, 40), (30, 40))["verdict"] == "higher" and compare_used((5, 40), (6, 40))["verdict"] == "cannot decide"
