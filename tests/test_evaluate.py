"""`harness run` with the fake backend: rows per sample x scorer, provenance, caching."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write


@pytest.fixture
def fake_models(workspace):
    return write(workspace / "models" / "fake.yaml", 'base: {name: fake-a, source: fake, options: {favour: ["A"]}}\n')


def run(workspace, models, *extra):
    return main(["run", str(workspace / "suites" / "mc.yaml"), str(workspace / "suites" / "gen.yaml"),
                 "--models", str(models), "--store", str(workspace / "h.duckdb"), *extra])


def test_every_sample_and_scorer_is_a_row(workspace, fake_models):
    assert run(workspace, fake_models) == 0
    con = duckdb.connect(str(workspace / "h.duckdb"), read_only=True)
    runs = con.execute("SELECT task, n_samples, variant, backend, seed, harness_version, data_hash, prompt_hash, "
                       "suite_hash, variant_key, generation_config FROM runs ORDER BY task").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in runs] == [("quiz", 20, "fake-a", "fake"), ("tweets", 6, "fake-a", "fake")]
    assert all(r[4] == 1234 and r[5] and r[6] and r[7] and r[8] and r[9] for r in runs)
    assert json.loads(runs[1][10])["max_new_tokens"] == 8 and runs[0][10] is None
    # quiz: 20 samples x (acc, acc_norm); tweets: 6 samples x (rouge1, rouge2, rougeL, bleu, chrf, exact_match);
    # each sample also x (contaminated, contamination_overlap): a fake base has no training data, so all clean
    counts = dict(con.execute("SELECT r.task, count(*) FROM scores s JOIN runs r USING (run_id) WHERE scorer <> 'contamination' "
                              "GROUP BY r.task").fetchall())
    assert counts == {"quiz": 40, "tweets": 36}
    checked = con.execute("SELECT count(*), sum(value) FROM scores WHERE metric = 'contaminated'").fetchone()
    assert checked == (26, 0.0)
    # The fake favours option A: accuracy equals the share of gold answers that are A, computed in SQL.
    acc = con.execute("SELECT avg(value) FROM scores WHERE metric = 'acc'").fetchone()[0]
    share_a = con.execute("SELECT avg(CASE WHEN reference = 'A' THEN 1.0 ELSE 0.0 END) FROM samples s "
                          "JOIN runs r USING (run_id) WHERE r.task = 'quiz'").fetchone()[0]
    assert acc == pytest.approx(share_a) and 0 < acc < 1
    # Without id_field an item is named by its content (the loader's subject stays as a prefix)
    first = con.execute("SELECT sample_id, details FROM samples WHERE sample_id LIKE 'arithmetic/%' ORDER BY sample_id").fetchall()
    assert len(first) == len({r[0] for r in first}) and all(re.fullmatch(r"arithmetic/h[0-9a-f]{12}", r[0]) for r in first)
    details = json.loads(first[0][1])
    assert len(details["loglikelihoods"]) == 4 and details["gold"] in range(4)
    assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 1


def test_unchanged_rerun_is_reused_and_force_recomputes(workspace, fake_models):
    assert run(workspace, fake_models) == 0
    assert run(workspace, fake_models) == 0
    con = duckdb.connect(str(workspace / "h.duckdb"))
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    con.close()
    assert run(workspace, fake_models, "--force") == 0
    con = duckdb.connect(str(workspace / "h.duckdb"))
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    assert con.execute("SELECT count(*) FROM latest_runs").fetchone()[0] == 2
    con.close()


def test_changed_prompt_is_a_new_run(workspace, fake_models):
    assert run(workspace, fake_models) == 0
    suite = workspace / "suites" / "gen.yaml"
    suite.write_text(suite.read_text().replace("Tweet:", "Tweet text:"))
    assert run(workspace, fake_models) == 0
    con = duckdb.connect(str(workspace / "h.duckdb"), read_only=True)
    hashes = con.execute("SELECT DISTINCT prompt_hash FROM runs WHERE task = 'tweets'").fetchall()
    assert len(hashes) == 2


def test_limit_is_a_seeded_random_sample_recorded_as_partial(workspace, fake_models):
    assert run(workspace, fake_models, "--limit", "3") == 0
    con = duckdb.connect(str(workspace / "h.duckdb"), read_only=True)
    runs = con.execute("SELECT task, n_samples, n_items_total, partial FROM runs ORDER BY task").fetchall()
    assert runs == [("quiz", 3, 20, True), ("tweets", 3, 6, True)]
    picked = [r[0] for r in con.execute("SELECT sample_id FROM samples s JOIN runs r USING (run_id) WHERE r.task = 'quiz' "
                                        "ORDER BY sample_id").fetchall()]
    con.close()
    first_three = ["arithmetic/0", "arithmetic/1", "arithmetic/2"]
    assert picked != first_three and len(picked) == 3
    # the same seed draws the same sample; a different --limit is a different run
    assert run(workspace, fake_models, "--limit", "3") == 0
    assert run(workspace, fake_models, "--limit", "4") == 0
    con = duckdb.connect(str(workspace / "h.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    con.close()


@pytest.mark.parametrize("bad", ["0", "-1", "x"])
def test_limit_must_be_a_positive_count(workspace, fake_models, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        run(workspace, fake_models, "--limit", bad)
    assert exc.value.code == 2 and "--limit" in capsys.readouterr().err
    assert not (workspace / "h.duckdb").exists()


def test_reports_read_full_runs_over_newer_partial_ones(workspace, fake_models):
    assert run(workspace, fake_models) == 0  # full run
    assert run(workspace, fake_models, "--limit", "2") == 0  # newer, partial
    con = duckdb.connect(str(workspace / "h.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    assert {r[0] for r in con.execute("SELECT n_samples FROM latest_runs").fetchall()} == {20, 6}
    con.close()


def test_run_key_covers_library_versions(workspace, fake_models, monkeypatch):
    import harness.run.evaluate as evaluate
    from harness.hashing import eval_libraries

    assert run(workspace, fake_models) == 0
    assert run(workspace, fake_models) == 0  # reused
    monkeypatch.setattr(evaluate, "eval_libraries", lambda: {**eval_libraries(), "torch": "0.0-other"})
    assert run(workspace, fake_models) == 0  # another torch: recomputed, never reused
    con = duckdb.connect(str(workspace / "h.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    libs = {json.loads(r[0])["torch"] for r in con.execute("SELECT libraries FROM runs").fetchall()}
    con.close()
    assert "0.0-other" in libs and len(libs) == 2  # recorded with each run


def test_run_key_covers_the_base_loading_options(workspace, tiny_model_dir):
    """max_length changes what a model sees (left truncation) without changing its weights."""
    models = write(workspace / "models" / "tiny.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}, "
                                                       "options: {max_length: 256}}\n")
    args = ["run", str(workspace / "suites" / "mc.yaml"), "--models", str(models), "--store", str(workspace / "h.duckdb"),
            "--limit", "2"]
    assert main(args) == 0 and main(args) == 0
    models.write_text(models.read_text().replace("max_length: 256", "max_length: 128"))
    assert main(args) == 0
    con = duckdb.connect(str(workspace / "h.duckdb"), read_only=True)
    rows = con.execute("SELECT DISTINCT variant_key, run_key FROM runs").fetchall()
    details = [json.loads(r[0]) for r in con.execute("SELECT backend_details FROM runs").fetchall()]
    con.close()
    assert len(rows) == 2 and len({r[0] for r in rows}) == 1  # same weights, two runs
    # what the backend said about itself is kept with the run: its window, and what became of prefix reuse
    assert {d["max_length"] for d in details} == {256, 128} and all(d["prefix_reuse"].startswith(("on", "off")) for d in details)


def test_corpus_bleu_and_chrf_are_sacrebleus(workspace, fake_models):
    import sacrebleu

    from harness.analysis.metrics import summarize
    from harness.store.db import open_store

    assert run(workspace, fake_models) == 0
    with open_store(workspace / "h.duckdb", read_only=True) as store:
        rows = store.query("SELECT output, reference FROM samples s JOIN runs r USING (run_id) WHERE r.task = 'tweets' ORDER BY sample_id")
        got = {s.metric: s.estimate for s in summarize(store, ["fake-a"], ["tweets"], resamples=200)}
    outputs, refs = [r["output"] for r in rows], [r["reference"] for r in rows]
    assert got["corpus_bleu"].mean == pytest.approx(sacrebleu.corpus_bleu(outputs, [refs]).score)
    assert got["corpus_chrf"].mean == pytest.approx(sacrebleu.corpus_chrf(outputs, [refs]).score)
    assert got["corpus_chrf"].low <= got["corpus_chrf"].mean <= got["corpus_chrf"].high and got["corpus_bleu"].n == 6
