"""Distillation (response- and token-level) and the layer-dropping student, on tiny models."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from harness.recipes.shrink import kept_layers
from tests.conftest import REPO, make_tiny_model, write

TRAIN = REPO / "data" / "brand" / "train.jsonl"

MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - name: teacher
    parent: tiny
    method: sft_lora
    config:
      data: {{path: {data}, prompt: "Brief: {{{{ topic }}}}\\nTweet:", completion: " {{{{ tweet }}}}", validation_fraction: 0}}
      lora: {{r: 4, alpha: 8}}
      training: {{learning_rate: 0.01, max_steps: 3, batch_size: 4, max_length: 48}}
  - {{name: small, parent: tiny, method: shrink, config: {{keep_every: 2}}}}
  - name: student-response
    parent: tiny
    method: distill
    config:
      teacher: teacher
      level: response
      data: {{path: {data}, prompt: "Brief: {{{{ topic }}}}\\nTweet:", limit: 6}}
      max_new_tokens: 6
      training: {{max_steps: 2, batch_size: 2, max_length: 48}}
  - name: student-token
    parent: small
    method: distill
    config:
      teacher: teacher
      level: token
      train: full
      temperature: 2.0
      kl_weight: 0.5
      data: {{path: {data}, prompt: "Brief: {{{{ topic }}}}\\nTweet:", completion: " {{{{ tweet }}}}", limit: 8}}
      training: {{max_steps: 2, batch_size: 4, max_length: 48, learning_rate: 0.001}}
"""


def test_kept_layers_always_keeps_the_last():
    assert kept_layers(18, 2) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 17]
    assert kept_layers(4, 3) == [0, 3]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    ws = tmp_path_factory.mktemp("distill")
    model = make_tiny_model(ws / "tiny4", layers=4)
    models = write(ws / "models" / "m.yaml", MODELS.format(model=model, data=TRAIN))
    assert main(["build", str(models), "--store", str(ws / "h.duckdb")]) == 0
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    rows = {r[0]: (r[1], r[2], json.loads(r[3] or "{}"), r[4], r[5])
            for r in con.execute("SELECT name, artifact_kind, artifact_path, metrics, total_params, trainable_params FROM variants").fetchall()}
    con.close()
    return ws, models, rows


def test_shrunk_student_has_fewer_layers_and_still_runs(built):
    from harness.backends.base import GenerationConfig
    from harness.backends.hf import HFBackend

    _, _, rows = built
    kind, path, metrics, total, _ = rows["small"]
    assert kind == "full" and metrics["layers_kept"] == [0, 2, 3]
    assert metrics["parameters_after"] < metrics["parameters_before"]
    backend = HFBackend(path)
    assert backend.model.config.num_hidden_layers == 3
    assert len(backend.generate(["Brief: rain\nTweet:"], GenerationConfig(max_new_tokens=4))) == 1


def test_response_level_trains_on_the_teachers_outputs(built):
    from pathlib import Path

    _, _, rows = built
    kind, path, metrics, _, _ = rows["student-response"]
    assert kind == "adapter" and metrics["level"] == "response" and metrics["teacher"] == "teacher"
    outputs = (Path(path) / "teacher_outputs.jsonl").read_text().splitlines()
    assert len(outputs) == metrics["teacher_outputs"] > 0


def test_token_level_mixes_ce_and_kl_and_changes_the_student(built):
    from harness.backends.hf import HFBackend

    _, _, rows = built
    kind, path, metrics, total, trainable = rows["student-token"]
    assert kind == "full" and metrics["level"] == "token" and trainable == total
    assert metrics["last_kl"] > 0 and metrics["last_ce"] > 0 and metrics["steps"] == 2
    # the rank diagnostic of a full fine-tune: W_tuned - W_initial for every linear layer (3 layers x 7)
    assert metrics["lora_rank"]["layers"] == 21 and metrics["lora_rank"]["energy_rank_max"] >= 1
    pair = [("Brief: rain\nTweet:", " A rainy morning")]
    before = HFBackend(rows["small"][1]).loglikelihood(pair)[0].logprob
    after = HFBackend(path).loglikelihood(pair)[0].logprob
    assert after != pytest.approx(before, abs=1e-4)


def test_teacher_must_be_declared_first(tmp_path, tiny_model_dir, capsys):
    models = write(tmp_path / "models" / "m.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - name: s
            parent: tiny
            method: distill
            config: {{teacher: later, data: {{path: {TRAIN}, prompt: "x"}}}}
        """)
    assert main(["build", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert "unknown model 'later'" in capsys.readouterr().err


def test_token_level_refuses_a_different_tokenizer(tmp_path, tiny_model_dir, capsys):
    models = write(tmp_path / "models" / "m.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - {{name: other, parent: tiny, method: shrink, config: {{keep_every: 2}}}}
          - name: s
            parent: tiny
            method: distill
            config: {{teacher: other, level: token, data: {{path: {TRAIN}, prompt: "x", completion: "y"}}}}
        """)
    store = str(tmp_path / "h.duckdb")
    assert main(["build", str(models), "--store", store, "--variant", "other"]) == 0
    con = duckdb.connect(store, read_only=True)
    (path,) = con.execute("SELECT artifact_path FROM variants WHERE name = 'other'").fetchone()
    con.close()
    tok_file = tmp_path / path / "tokenizer.json"
    tok = json.loads(tok_file.read_text())
    tok["model"]["vocab"]["zzzz"] = len(tok["model"]["vocab"])  # the teacher now has a different vocabulary
    tok_file.write_text(json.dumps(tok))
    capsys.readouterr()
    assert main(["build", str(models), "--store", store]) == 2
    assert "share a tokenizer" in capsys.readouterr().err


def test_the_teacher_follows_the_batch_to_its_device(tiny_model_dir):
    """Under CUDA the trainer puts each batch on the GPU while the teacher was loaded on the CPU
    (the recipe called it as loaded: a device mismatch on the first step). Here the batch is on the
    `meta` device (shapes only, no GPU needed): the teacher must move to it."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.recipes.distill import teacher_logits

    teacher = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="eager").eval()
    batch = {"input_ids": torch.ones((2, 5), dtype=torch.long, device="meta")}
    assert next(teacher.parameters()).device.type == "cpu"
    logits = teacher_logits(teacher, batch)
    assert next(teacher.parameters()).device.type == "meta"
    assert logits.device.type == "meta" and logits.shape[:2] == (2, 5)
