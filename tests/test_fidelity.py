"""Fidelity to the parent, from stored runs: a variant identical to its parent agrees on every
item with KL 0; a perturbed one gives the flips and the KL of a hand computation."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest

from harness.analysis.fidelity import item_values
from harness.cli import main
from harness.store.db import RunRow, SampleRow, ScoreRow, Store, VariantRow
from tests.conftest import write

NOW = datetime(2026, 11, 28)
GOLD = [0, 1, 2, 0]
BASE = [[-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0], [-3.0, -2.0, -1.0], [-1.0, -1.5, -4.0]]
# items 0 and 1 change their top option: 0 goes right -> wrong, 1 wrong -> right
PERTURBED = [[-2.0, -1.0, -3.0], [-2.5, -1.0, -3.5], BASE[2], BASE[3]]  # not permutations: KL is asymmetric


def _variant(store, name, parent=None):
    store.upsert_variant(VariantRow(name, name, parent, parent, "sft_lora" if parent else "base", None, None, "adapter", None, None,
                                    None, None, None, None, None, None, None, None, None, NOW))


def _mc_run(store, variant, lls, task="quiz"):
    run_id = f"{variant}-{task}"
    samples, scores = [], []
    for k, (ll, gold) in enumerate(zip(lls, GOLD)):
        pick = max(range(len(ll)), key=lambda i: (ll[i], -i))
        samples.append(SampleRow(run_id, f"q{k}", "Q", "ABC"[gold], "ABC"[pick], json.dumps({"loglikelihoods": ll, "gold": gold})))
        scores.append(ScoreRow(run_id, f"q{k}", "acc", "acc", float(pick == gold)))
    store.write_task_run(RunRow(run_id, run_id, "s", "h", task, "multiple_choice", '["acc"]', variant, variant, "fake", "none", "none",
                                "d", "p", None, 0, "t", None, NOW, NOW, 1.0, len(lls)), samples, scores)


def _gen_run(store, variant, outputs, task="tweets"):
    run_id = f"{variant}-{task}"
    samples = [SampleRow(run_id, f"t{k}", "P", "ref", out, "{}") for k, out in enumerate(outputs)]
    store.write_task_run(RunRow(run_id, run_id, "s", "h", task, "generation", '["exact_match"]', variant, variant, "fake", "none",
                                "none", "d", "p", None, 0, "t", None, NOW, NOW, 1.0, len(outputs)), samples,
                         [ScoreRow(run_id, f"t{k}", "exact_match", "exact_match", 0.0) for k in range(len(outputs))])


def _kl(p_ll, q_ll):
    p = [math.exp(x) / sum(math.exp(y) for y in p_ll) for x in p_ll]
    q = [math.exp(x) / sum(math.exp(y) for y in q_ll) for x in q_ll]
    return sum(a * math.log(a / b) for a, b in zip(p, q))


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "f.duckdb"
    with Store(path) as store:
        _variant(store, "base")
        _variant(store, "same", "base")
        _variant(store, "pert", "base")
        _mc_run(store, "base", BASE)
        _mc_run(store, "same", BASE)
        _mc_run(store, "pert", PERTURBED)
        _gen_run(store, "base", ["warm cups today", "open at seven", "hello friends"])
        _gen_run(store, "same", ["warm cups today", "open at seven", "hello friends"])
        _gen_run(store, "pert", ["warm cups today", "open at eight", "goodbye"])
    return path


def test_identity_and_a_perturbed_variant_match_a_hand_computation(store_path):
    with Store(store_path, read_only=True) as store:
        same = item_values(store, "same-quiz")
        pert = item_values(store, "pert-quiz")
        gen_same = item_values(store, "same-tweets")
        gen_pert = item_values(store, "pert-tweets")
        from harness.analysis.fidelity import NoParentRun

        with pytest.raises(NoParentRun, match="'base' has no parent"):
            item_values(store, "base-quiz")
    mean = lambda d: sum(d.values()) / len(d)  # noqa: E731
    assert mean(same["parent_agreement"]) == 1.0 and mean(same["parent_kl"]) == 0.0
    assert mean(same["parent_flips_to_wrong"]) == mean(same["parent_flips_to_right"]) == 0.0
    assert mean(pert["parent_agreement"]) == 0.5
    assert mean(pert["parent_flips_to_wrong"]) == 0.25 and mean(pert["parent_flips_to_right"]) == 0.25
    assert mean(pert["parent_kl"]) == pytest.approx((_kl(BASE[0], PERTURBED[0]) + _kl(BASE[1], PERTURBED[1])) / 4)
    # the largest option log-likelihood difference per item: 1.0 and 1.5 on the perturbed items, 0 on the rest
    assert mean(same["parent_loglik_diff"]) == 0.0 and mean(pert["parent_loglik_diff"]) == pytest.approx((1.0 + 1.5) / 4)
    assert mean(gen_same["parent_exact_match"]) == 1.0 and mean(gen_same["parent_rougeL"]) == 1.0
    assert mean(gen_pert["parent_exact_match"]) == pytest.approx(1 / 3)
    # "open at eight" vs "open at seven": LCS 2 of 3 words each way -> F = 2/3; "goodbye" vs "hello friends": 0
    assert mean(gen_pert["parent_rougeL"]) == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_fidelity_is_gateable_and_in_the_report(store_path, tmp_path, capsys):
    report = write(tmp_path / "r.yaml", """
        title: F
        variants: [base, same, pert]
        statistics: {resamples: 500}
        gate:
          - {variant: same, task: quiz, metric: parent_kl, max: 0.001}
          - {variant: pert, task: quiz, metric: parent_flips_to_wrong, max: 0.02}
          - {variant: base, task: quiz, metric: parent_agreement, min: 0.9}
        """)
    main(["gate", str(report), "--store", str(store_path)])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("PASS") and "same quiz/parent_kl <= 0.001" in out
    assert "pert quiz/parent_flips_to_wrong <= 0.02: " in out and "0.25" in out.splitlines()[1]
    assert out.splitlines()[2].startswith("ERROR") and "'base' has no parent in the lineage" in out
    assert main(["report", str(report), "--store", str(store_path), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Fidelity to the parent" in html and "top-1 agreement with the parent: <b>0.500</b>" in html
    # each build step's effect on the headlines, drawn on the lineage tree
    assert "What each build step changed" in html
    assert ">quiz acc +0.000 [" in html  # pert: one item right -> wrong, one wrong -> right


def test_flips_between_two_variants_most_informative_first(store_path, capsys):
    from harness.analysis.flips import item_flips

    with Store(store_path, read_only=True) as store:
        f = item_flips(store, "quiz", "base", "pert", "acc")
    assert f.binary and f.n_shared == 4
    assert [x.sample_id for x in f.worse] == ["q0"] and [x.sample_id for x in f.better] == ["q1"]
    p = lambda ll, k: math.exp(ll[k]) / sum(math.exp(x) for x in ll)  # noqa: E731
    assert f.worse[0].gold_shift == pytest.approx(p(PERTURBED[0], 0) - p(BASE[0], 0))
    assert f.worse[0].before == ("A", 1.0) and f.worse[0].after == ("B", 0.0)
    assert main(["flips", "quiz", "--from", "base", "--to", "pert", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "pert vs base on quiz (acc, 4 shared items): 1 went from pass to fail, 1 from fail to pass" in out
    assert "q0: acc 1 -> 0, gold option p -0." in out
    with Store(store_path, read_only=True) as store:
        with pytest.raises(Exception, match="no run of task 'quiz' for variant 'ghost'"):
            item_flips(store, "quiz", "base", "ghost", "acc")


def test_continuous_flips_rank_by_the_size_of_the_change(tmp_path):
    from harness.analysis.flips import item_flips

    path = tmp_path / "c.duckdb"
    with Store(path) as store:
        for variant, values in (("a", [0.5, 0.5, 0.5, 0.5]), ("b", [0.1, 0.45, 0.9, 0.5])):
            run_id = f"{variant}-t"
            store.write_task_run(RunRow(run_id, run_id, "s", "h", "t", "generation", '["rougeL"]', variant, variant, "fake", "none", "none",
                                        "d", "p", None, 0, "t", None, NOW, NOW, 1.0, 4),
                                 [SampleRow(run_id, f"i{k}", "P", "R", f"out {variant}{k}", "{}") for k in range(4)],
                                 [ScoreRow(run_id, f"i{k}", "rouge", "rougeL", v) for k, v in enumerate(values)])
        f = item_flips(store, "t", "a", "b", "rougeL")
    assert not f.binary
    assert [x.sample_id for x in f.worse] == ["i0", "i1"] and [x.sample_id for x in f.better] == ["i2"]


def test_per_item_fidelity_is_stored_as_rows(store_path):
    from harness.analysis.fidelity import store_rows

    with Store(store_path) as store:
        assert store_rows(store, ["same-quiz", "pert-quiz", "pert-tweets", "base-quiz"]) == 5 * 4 + 5 * 4 + 2 * 3
        store_rows(store, ["pert-quiz"])  # again: replaced, not duplicated
        rows = store.query("""SELECT metric, avg(value) AS mean, count(*) AS n FROM fidelity
                              WHERE run_id = 'pert-quiz' AND parent_run_id = 'base-quiz' GROUP BY metric ORDER BY metric""")
    assert {r["metric"]: (r["mean"], r["n"]) for r in rows}["parent_flips_to_wrong"] == (0.25, 4)
    assert all(r["n"] == 4 for r in rows)


def test_only_multiple_choice_and_generation_runs_get_agreement_rows(store_path):
    from harness.analysis.fidelity import NoParentRun, store_rows

    with Store(store_path) as store:
        for variant in ("base", "pert"):
            run_id = f"{variant}-serving"
            store.write_task_run(RunRow(run_id, run_id, "s", "h", "serving", "latency", '["latency_s"]', variant, variant, "fake", "none",
                                        "none", "d", "p", None, 0, "t", None, NOW, NOW, 1.0, 1),
                                 [SampleRow(run_id, "i0@c1", "P", None, "same text", "{}")], [])
        assert store_rows(store, ["pert-serving"]) == 0
        with pytest.raises(NoParentRun, match="not latency"):
            item_values(store, "pert-serving")
