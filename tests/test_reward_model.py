"""The reward model recipe and the `reward` scorer on the tiny model, with a planted preference:
chosen and rejected differ only in a sign-off of equal length, so "longer is better" is at
chance and only a model that learned the preference ranks held-out pairs."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import REPO, write

GOOD, BAD = " Cheers, friend!", " Whatever, pals."  # equal length: no length signal


def planted_pairs(tmp_path, good: str, bad: str, n: int = 48):
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()[:n]]
    lines = [json.dumps({"prompt": f"Brief: {r['topic']}\nTweet:", "chosen": f" {r['tweet']}{good}",
                         "rejected": f" {r['tweet']}{bad}"}) for r in rows]
    return write(tmp_path / f"pairs-{len(good)}-{good[1]}.jsonl", "\n".join(lines) + "\n")


RM = """
  - name: {name}
    parent: tiny
    method: reward_model
    config:
      data: {{source: pairs, path: {data}, validation_fraction: 0.25}}
      lora: {{r: 4, alpha: 8, target_modules: [q_proj, v_proj]}}
      training: {{max_steps: {steps}, batch_size: 4, max_length: 64, learning_rate: 0.003, logging_steps: 5}}
"""
MODELS = "base: {{name: tiny, source: hf_dir, path: {model}}}\nvariants:" + RM


@pytest.fixture(scope="module")
def built_rm(tmp_path_factory, tiny_model_dir):
    """Two reward models on opposite planted preferences: an untrained (random) head ranks the
    pairs of both the same way, so only training puts both above chance."""
    tmp = tmp_path_factory.mktemp("rm")
    text = MODELS.format(model=tiny_model_dir, name="tiny-rm", data=planted_pairs(tmp, GOOD, BAD), steps=40) + RM.format(
        name="tiny-rm-reversed", data=planted_pairs(tmp, BAD, GOOD), steps=40)
    models = write(tmp / "models" / "m.yaml", text)
    store = tmp / "h.duckdb"
    assert main(["build", str(models), "--store", str(store)]) == 0
    return tmp, models, store


def test_a_reward_model_learns_a_planted_preference(built_rm):
    tmp, models, store = built_rm
    con = duckdb.connect(str(store), read_only=True)
    built = con.execute("SELECT name, artifact_kind, metrics FROM variants WHERE method = 'reward_model' ORDER BY name").fetchall()
    assert [b[0] for b in built] == ["tiny-rm", "tiny-rm-reversed"]
    for name, kind, metrics in built:
        metrics = json.loads(metrics)
        assert kind == "reward_model" and metrics["steps"] == 40 and metrics["pairs_validation"] == 12
        after, before, baseline = metrics["heldout_after"], metrics["heldout_before"], metrics["length_baseline"]
        assert baseline["accuracy"] == 0.5  # equal lengths: every pair a tie
        assert after["n"] == 12 and after["ci95"][0] > 0.5, (name, after)  # above chance, interval included
        assert after["margin"] > before["margin"]
        vs = metrics["versus_length"]  # paired against the baseline on the same pairs
        assert vs["difference"] == pytest.approx(after["accuracy"] - 0.5) and vs["ci95"][0] > 0


def test_the_reward_scorer_ranks_outputs_by_the_learned_preference(built_rm, tmp_path):
    _, models, store = built_rm
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "validation.jsonl").read_text().splitlines()[:8]]
    data = write(tmp_path / "briefs.jsonl", "\n".join(json.dumps({"id": str(i), "topic": r["topic"], "tweet": r["tweet"]})
                                                      for i, r in enumerate(rows)) + "\n")
    suite = write(tmp_path / "s.yaml", f"""
        name: rm
        tasks:
          - name: tweets
            type: generation
            data: {{format: jsonl, path: {data}}}
            id_field: id
            prompt: {{template: "Brief: {{{{ topic }}}}\\nTweet:"}}
            scorers: [{{reward: {{model: tiny-rm}}}}]
        """)
    for name, ending in (("polite", GOOD), ("rude", BAD)):
        write(tmp_path / f"{name}.jsonl", "\n".join(json.dumps({"id": str(i), "output": f" {r['tweet']}{ending}"})
                                                   for i, r in enumerate(rows)) + "\n")
    assert main(["run", str(suite), "--models", str(models), "--store", str(store),
                 "--answers", f"polite={tmp_path / 'polite.jsonl'}", "--answers", f"rude={tmp_path / 'rude.jsonl'}"]) == 0
    con = duckdb.connect(str(store), read_only=True)
    means = dict(con.execute("SELECT r.variant, avg(s.value) FROM scores s JOIN runs r USING (run_id) "
                             "WHERE s.metric = 'reward' GROUP BY r.variant").fetchall())
    assert means["polite"] > means["rude"], means
    per_item = con.execute("SELECT count(*) FROM scores s JOIN runs r USING (run_id) WHERE s.metric = 'reward'").fetchone()[0]
    assert per_item == 16
    con.close()
    # The same outputs scored by the reversed model: a new run (its key holds the model's), the opposite ranking.
    reversed_suite = write(tmp_path / "s2.yaml", suite.read_text().replace("name: rm\n", "name: rm-reversed\n")
                           .replace("model: tiny-rm}", "model: tiny-rm-reversed}"))
    assert main(["run", str(reversed_suite), "--models", str(models), "--store", str(store),
                 "--answers", f"polite={tmp_path / 'polite.jsonl'}", "--answers", f"rude={tmp_path / 'rude.jsonl'}"]) == 0
    con = duckdb.connect(str(store), read_only=True)
    means = dict(con.execute("SELECT r.variant, avg(s.value) FROM scores s JOIN runs r USING (run_id) "
                             "WHERE s.metric = 'reward' AND r.suite = 'rm-reversed' GROUP BY r.variant").fetchall())
    assert means["rude"] > means["polite"], means
    con.close()
    # The report shows the reward models that scored its runs in the lineage, with their held-out accuracy
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [polite, rude]\nstatistics: {resamples: 200}\n")
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "<td>tiny-rm</td>" in html and "<td>tiny-rm-reversed</td>" in html
    assert "held-out pairwise accuracy 1.000 [1.000, 1.000] (n=12; before training" in html


def test_a_reward_model_is_neither_a_candidate_nor_a_parent(built_rm, tmp_path, capsys, tiny_model_dir):
    _, models, store = built_rm
    suite = REPO / "suites" / "mmlu_sample.yaml"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store), "--variant", "tiny-rm"]) == 2
    assert "a reward model scores outputs" in capsys.readouterr().err
    child = write(tmp_path / "models" / "c.yaml", MODELS.format(model=tiny_model_dir, name="tiny-rm", data=tmp_path / "p.jsonl", steps=1)
                  + "  - {name: on-rm, parent: tiny-rm, method: quantize, config: {scheme: int8}}\n")
    write(tmp_path / "p.jsonl", "{}\n")
    assert main(["validate", str(child)]) == 2
    assert "'tiny-rm' is a reward_model (it scores outputs)" in capsys.readouterr().out


def test_a_reward_scorer_needs_the_models_file_and_a_reward_model(built_rm, tmp_path, capsys):
    _, models, store = built_rm
    data = write(tmp_path / "d.jsonl", '{"id": "0", "q": "hi"}\n')
    suite = write(tmp_path / "s.yaml", f"""
        name: rm2
        tasks:
          - name: t
            type: generation
            data: {{format: jsonl, path: {data}}}
            id_field: id
            prompt: {{template: "{{{{ q }}}}"}}
            scorers: [{{reward: {{model: tiny}}}}]
        """)
    write(tmp_path / "a.jsonl", '{"id": "0", "output": "hello"}\n')
    assert main(["run", str(suite), "--store", str(store), "--answers", f"a={tmp_path / 'a.jsonl'}"]) == 2
    assert "give --models" in capsys.readouterr().err
    assert main(["run", str(suite), "--models", str(models), "--store", str(store), "--answers", f"a={tmp_path / 'a.jsonl'}"]) == 2
    assert "'tiny' is not a reward model" in capsys.readouterr().err


def test_rloo_trains_against_the_reward_model_with_a_kl_penalty(built_rm, tmp_path):
    """The RLHF path: the policy samples, the built reward model scores, the KL to the parent is
    penalised and logged; the adapter it saves changes the model."""
    from harness.backends.hf import HFBackend

    _, models, store = built_rm
    prompts = write(tmp_path / "prompts.jsonl", "".join(json.dumps({"topic": t}) + "\n" for t in
                                                       ["a rainy morning", "new beans", "late opening", "oat milk"]))
    rl = write(models.parent / "rl.yaml", models.read_text() + f"""
  - name: tiny-rl
    parent: tiny
    method: rloo
    config:
      data: {{path: {prompts}, prompt: "Brief: {{{{ topic }}}}\\nTweet:"}}
      reward: {{model: tiny-rm}}
      lora: {{r: 4, alpha: 8, target_modules: [q_proj, v_proj]}}
      training: {{beta: 0.1, num_generations: 2, batch_size: 4, max_completion_length: 8, max_steps: 3, learning_rate: 0.01}}
""")
    assert main(["build", str(rl), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    path, metrics, curve = con.execute("SELECT artifact_path, metrics, train_curve FROM variants WHERE method = 'rloo'").fetchone()
    con.close()
    metrics, curve = json.loads(metrics), json.loads(curve)
    assert metrics["steps"] == 3 and metrics["reward_model"] == "tiny-rm" and metrics["prompts"] == 4
    assert metrics["completions_per_step"] == 4
    logged = [p for p in curve if "reward" in p]
    assert len(logged) == 3 and all("kl" in p for p in logged)
    pair = [("Brief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup.")]
    tuned = HFBackend(_tiny_dir(models), adapters=[path]).loglikelihood(pair)[0].logprob
    base = HFBackend(_tiny_dir(models)).loglikelihood(pair)[0].logprob
    assert tuned != pytest.approx(base, abs=1e-5)


def _tiny_dir(models) -> str:
    """The tiny base model's directory, as the models file names it."""
    import yaml

    return yaml.safe_load(models.read_text())["base"]["path"]
