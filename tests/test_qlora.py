"""QLoRA on a machine without CUDA: a clear error by default, and each explicit fallback recorded."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import REPO, write

MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - name: q
    parent: tiny
    method: sft_lora
    config:
      data: {{path: {data}, prompt: "Brief: {{{{ topic }}}}\\nTweet:", completion: " {{{{ tweet }}}}", validation_fraction: 0}}
      lora: {{r: 4, alpha: 8}}
      training: {{learning_rate: 0.01, max_steps: 2, batch_size: 4, max_length: 48, logging_steps: 1}}
      qlora: {{quant_type: nf4, double_quant: true{fallback}}}
"""


def models(tmp_path, model, fallback=""):
    return write(tmp_path / "models" / "m.yaml", MODELS.format(model=model, data=REPO / "data" / "brand" / "train.jsonl", fallback=fallback))


@pytest.fixture(autouse=True)
def no_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("these tests describe the no-CUDA behaviour")


def test_qlora_without_cuda_is_a_clear_error(tmp_path, tiny_model_dir, capsys):
    assert main(["build", str(models(tmp_path, tiny_model_dir)), "--store", str(tmp_path / "h.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "QLoRA needs CUDA" in err and "cpu_fallback" in err
    assert not list((tmp_path / "artifacts").glob("*")) if (tmp_path / "artifacts").exists() else True


@pytest.mark.parametrize("fallback, recorded", [("lora", "qlora -> lora"), ("nf4_cpu", "4-bit with float32 compute")])
def test_explicit_fallback_is_taken_and_recorded(tmp_path, tiny_model_dir, fallback, recorded):
    if fallback == "nf4_cpu":
        pytest.importorskip("bitsandbytes")
    path = models(tmp_path, tiny_model_dir, f", cpu_fallback: {fallback}")
    assert main(["build", str(path), "--store", str(tmp_path / "h.duckdb")]) == 0
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    fb, curve = con.execute("SELECT fallback, train_curve FROM variants WHERE name = 'q'").fetchone()
    assert recorded in fb
    losses = [p["loss"] for p in json.loads(curve) if "loss" in p]
    assert losses and all(loss > 0 for loss in losses)
