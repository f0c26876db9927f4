"""Quantized (bitsandbytes int8 / NF4 / FP4) and merged variants on the tiny model."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import REPO, write

pytest.importorskip("bitsandbytes")

MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - name: tiny-sft
    parent: tiny
    method: sft_lora
    config:
      data: {{path: {data}, prompt: "Brief: {{{{ topic }}}}\\nTweet:", completion: " {{{{ tweet }}}}", validation_fraction: 0}}
      lora: {{r: 4, alpha: 8}}
      training: {{learning_rate: 0.01, max_steps: 3, batch_size: 4, max_length: 48}}
  - {{name: tiny-merged, parent: tiny-sft, method: merge}}
  - {{name: tiny-int8, parent: tiny-sft, method: quantize, config: {{scheme: int8}}}}
  - {{name: tiny-nf4, parent: tiny, method: quantize, config: {{scheme: nf4}}}}
  - {{name: tiny-fp4, parent: tiny, method: quantize, config: {{scheme: fp4, double_quant: false}}}}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model_dir):
    ws = tmp_path_factory.mktemp("qm")
    models = write(ws / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, data=REPO / "data" / "brand" / "train.jsonl"))
    assert main(["build", str(models), "--store", str(ws / "h.duckdb")]) == 0
    return ws, models


def rows(ws):
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    out = {r[0]: {"kind": r[1], "path": r[2], "metrics": json.loads(r[3] or "{}"), "parent": r[4]}
           for r in con.execute("SELECT name, artifact_kind, artifact_path, metrics, parent_name FROM variants").fetchall()}
    con.close()
    return out


def test_quantization_reports_per_layer_error_and_bytes(built):
    ws, _ = built
    v = rows(ws)
    for name, scheme in (("tiny-int8", "int8"), ("tiny-nf4", "nf4"), ("tiny-fp4", "fp4")):
        m = v[name]["metrics"]
        assert v[name]["kind"] == "quantized" and m["scheme"] == scheme
        assert m["layers_measured"] == 14  # 2 layers x (q, k, v, o, gate, up, down)
        assert 0 < m["relative_error_mean"] < (0.02 if scheme == "int8" else 0.2)
        assert m["linear_bytes_after"] < m["linear_bytes_before"] / (3 if scheme == "int8" else 5)
        assert all(r["bytes_after"] < r["bytes_before"] for r in m["per_layer"])
    # 4-bit loses more than 8-bit, as it must
    assert v["tiny-nf4"]["metrics"]["relative_error_mean"] > v["tiny-int8"]["metrics"]["relative_error_mean"]


def test_quantized_variants_evaluate_close_to_their_source(built, workspace):
    ws, models = built
    store = str(ws / "h.duckdb")
    suite = str(workspace / "suites" / "mc.yaml")
    assert main(["run", suite, "--models", str(models), "--store", store, "--limit", "3"]) == 0
    con = duckdb.connect(store, read_only=True)
    lls = {}
    # --limit draws the same seeded sample of items for every variant: compare on its first item.
    first = con.execute("SELECT min(sample_id) FROM samples").fetchone()[0]
    for variant, details in con.execute("SELECT r.variant, s.details FROM runs r JOIN samples s USING (run_id) "
                                        "WHERE s.sample_id = ?", [first]).fetchall():
        lls[variant] = json.loads(details)["loglikelihoods"]
    dtypes = dict(con.execute("SELECT variant, dtype FROM runs").fetchall())
    con.close()
    assert dtypes["tiny-int8"] == "int8" and dtypes["tiny-nf4"] == "nf4"
    assert lls["tiny-int8"] == pytest.approx(lls["tiny-sft"], abs=0.5)
    assert lls["tiny-int8"] != lls["tiny-sft"]
    assert lls["tiny-merged"] == pytest.approx(lls["tiny-sft"], abs=1e-3)


def test_merge_keeps_the_adapter_and_records_the_check(built):
    from pathlib import Path

    ws, _ = built
    v = rows(ws)["tiny-merged"]
    assert v["kind"] == "full" and v["metrics"]["merge_max_abs_logit_diff"] < 1e-3
    assert (Path(v["path"]) / "adapter" / "adapter_config.json").is_file()
    assert (Path(v["path"]) / "model.safetensors").is_file()


def test_no_children_of_quantized_variants(built, tiny_model_dir, capsys):
    ws, models = built
    text = models.read_text() + "  - {name: bad, parent: tiny-int8, method: merge}\n"
    bad = write(ws / "models" / "bad.yaml", text)
    assert main(["build", str(bad), "--store", str(ws / "h.duckdb"), "--variant", "bad"]) == 2
    assert "is a quantized inference artifact" in capsys.readouterr().err
