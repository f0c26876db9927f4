"""The grpo recipe: RL whose reward is the brand rubric's observable checks (trl's GRPOTrainer,
LoRA on the parent), on the tiny model."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import REPO, write

pytest.importorskip("trl", reason="trl is not installed (pip install 'harness[train]')")

RUBRIC = "name: short\nchecks:\n  - {name: short, type: length, max: 24}\n"


def test_grpo_trains_on_the_rubric_checks_and_logs_reward_and_kl(workspace, tiny_model_dir, tmp_path):
    """Rewarded on one planted check, the policy is trained (LoRA on the parent), the rubric's
    reward and the KL to the parent are logged per step, and the saved adapter changes the model.
    (Whether 24 steps raise the check's pass rate is not asserted: on this random 2-layer model,
    whose samples have an entropy of about 6 nats, even 300 steps did not move a rare check.)"""
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
