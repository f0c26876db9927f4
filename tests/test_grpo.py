"""The grpo recipe: RL whose reward is the brand rubric's observable checks (trl's GRPOTrainer,
LoRA on the parent), on the tiny model."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import REPO, make_tiny_tweeter, write

pytest.importorskip("trl", reason="trl is not installed (pip install 'harness[train]')")

RUBRIC = "name: short\nchecks:\n  - {name: short, type: length, max: 24}\n"


def test_grpo_trains_on_the_rubric_checks_and_logs_reward_and_kl(workspace, tiny_model_dir, tmp_path):
    """Rewarded on one planted check, the policy is trained (LoRA on the parent), the rubric's
    reward and the KL to the parent are logged per step, and the saved adapter changes the model.
    (The untrained tiny model samples near-uniform tokens, so no check's pass rate moves here; the
    next test trains it on the brand's tweets first and shows the rise.)"""
    from harness.backends.hf import HFBackend

    write(tmp_path / "rubric.yaml", RUBRIC)
    briefs = [json.loads(line)["topic"] for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()[:8]]
    prompts = write(tmp_path / "prompts.jsonl", "".join(json.dumps({"topic": b}) + "\n" for b in briefs))
    models = write(tmp_path / "m.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - name: tiny-grpo
            parent: tiny
            method: grpo
            config:
              data: {{path: {prompts}, prompt: "Brief: {{{{ topic }}}}\\nTweet:"}}
              reward: {{rubric: rubric.yaml}}
              lora: {{r: 8, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj]}}
              training: {{beta: 0.02, num_generations: 4, batch_size: 8, max_completion_length: 12, max_steps: 24,
                          learning_rate: 0.02, logging_steps: 1}}
        """)
    store = str(tmp_path / "h.duckdb")
    assert main(["build", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    path, metrics, curve = con.execute("SELECT artifact_path, metrics, train_curve FROM variants WHERE name = 'tiny-grpo'").fetchone()
    con.close()
    metrics, curve = json.loads(metrics), json.loads(curve)
    assert metrics["loss_type"] == "grpo" and metrics["reward_checks"] == ["short"] and metrics["steps"] == 24
    logged = [p for p in curve if "rewards/rubric/mean" in p]
    assert len(logged) == 24 and all("kl" in p and 0 <= p["rewards/rubric/mean"] <= 1 for p in logged)
    pair = [("Brief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup.")]
    tuned = HFBackend(tiny_model_dir, adapters=[path]).loglikelihood(pair)[0].logprob
    assert tuned != pytest.approx(HFBackend(tiny_model_dir).loglikelihood(pair)[0].logprob, abs=1e-5)


def test_grpo_names_a_missing_check_and_a_non_reward_model(workspace, tiny_model_dir, tmp_path, capsys):
    write(tmp_path / "rubric.yaml", RUBRIC)
    write(tmp_path / "p.jsonl", '{"topic": "rain"}\n')
    models = write(tmp_path / "m.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - {{name: g, parent: tiny, method: grpo, config: {{data: {{path: p.jsonl}}, reward: {{rubric: rubric.yaml, checks: [nope]}}}}}}
        """)
    assert main(["build", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert "reward.checks: nope not in" in capsys.readouterr().err


def test_grpo_raises_a_planted_checks_pass_rate_on_unseen_briefs_and_the_lineage_shows_the_cost(tmp_path):
    """The planted check: the tweet greets its readers as 'friends'. The tiny model trained on the
    brand's tweets does so on about a fifth of unseen briefs (it greets 'neighbours' as often).
    60 GRPO steps rewarded on that check alone raise its pass rate on the test briefs, measured
    through a suite as users run it, and the gate decides it; the KL to the parent, logged per
    step, grows as the policy moves."""
    base = make_tiny_tweeter(tmp_path / "tweeter")
    write(tmp_path / "rubric.yaml", "name: friendly\nchecks:\n  - {name: friends, type: required_words, words: [friends]}\n"
          "  - {name: neighbours, type: required_words, words: [neighbours]}\n")
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()]
    write(tmp_path / "prompts.jsonl", "".join(json.dumps({"topic": r["topic"]}) + "\n" for r in rows))
    models = write(tmp_path / "m.yaml", f"""
        base: {{name: tweeter, source: hf_dir, path: {base}}}
        variants:
          - name: tweeter-grpo
            parent: tweeter
            method: grpo
            config:
              data: {{path: prompts.jsonl, prompt: "Brief: {{{{ topic }}}}\\nTweet:"}}
              reward: {{rubric: rubric.yaml, checks: [friends]}}
              lora: {{r: 8, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj]}}
              training: {{beta: 0.02, num_generations: 4, batch_size: 8, max_completion_length: 16, max_steps: 60,
                          learning_rate: 0.01, logging_steps: 5}}
        """)
    suite = write(tmp_path / "s.yaml", f"""
        name: brand
        tasks:
          - name: tweets
            type: generation
            data: {{format: jsonl, path: {REPO / "data" / "brand" / "test.jsonl"}}}
            id_field: id
            prompt: {{template: "Brief: {{{{ topic }}}}\\nTweet:"}}
            generation: {{max_new_tokens: 32, temperature: 1.0, n: 2, batch_size: 16}}
            scorers: [{{rubric: {{path: rubric.yaml}}}}]
        """)
    store = str(tmp_path / "h.duckdb")
    assert main(["build", str(models), "--store", store]) == 0
    assert main(["run", str(suite), "--models", str(models), "--store", store, "--seed", "3"]) == 0
    con = duckdb.connect(store, read_only=True)
    rates = dict(con.execute("""SELECT r.variant || '/' || s.metric, avg(s.value) FROM scores s JOIN runs r USING (run_id)
                                WHERE s.metric IN ('rubric_friends', 'rubric_neighbours') GROUP BY 1""").fetchall())
    con.close()
    assert rates["tweeter/rubric_friends"] < 0.4 and rates["tweeter-grpo/rubric_friends"] > rates["tweeter/rubric_friends"] + 0.3, rates
    curve = json.loads(duckdb.connect(store, read_only=True).execute(
        "SELECT train_curve FROM variants WHERE name = 'tweeter-grpo'").fetchone()[0])
    kls = [p["kl"] for p in curve if "kl" in p]
    assert kls[-1] > 10 * kls[0], kls
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [tweeter, tweeter-grpo]\nstatistics: {resamples: 500}\ngate:\n"
                   "  - {name: RL raised the check, kind: superiority, variant: tweeter-grpo, baseline: tweeter, task: tweets,"
                   " metric: rubric_friends}\n")
    assert main(["gate", str(report), "--store", store]) == 0
