"""Results where teams already look: lm-eval results files (read back with lm-eval's own code),
experiment trackers and model cards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import REPO, write

TWO_SUBJECTS = """
name: mmlu2
tasks:
  - name: mmlu2_arithmetic
    type: multiple_choice
    data: {format: mmlu_csv, path: @DATA@, split: test, subjects: [arithmetic]}
    fewshot: {k: 1, split: dev}
    prompt:
      template: "{{ question }}\\nA. {{ choices[0] }}\\nB. {{ choices[1] }}\\nC. {{ choices[2] }}\\nD. {{ choices[3] }}\\nAnswer:"
    scorers: [acc, acc_norm]
  - name: mmlu2_geography
    type: multiple_choice
    data: {format: mmlu_csv, path: @DATA@, split: test, subjects: [world_geography], limit: 7}
    prompt:
      template: "{{ question }}\\nA. {{ choices[0] }}\\nB. {{ choices[1] }}\\nC. {{ choices[2] }}\\nD. {{ choices[3] }}\\nAnswer:"
    scorers: [acc]
"""


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> dict:
    """Two fake variants on a two-subject MMLU suite and a generation suite."""
    tmp = tmp_path_factory.mktemp("interop")
    suite = write(tmp / "suites" / "mmlu2.yaml", TWO_SUBJECTS.replace("@DATA@", str(REPO / "data" / "mmlu_sample")))
    gen = write(tmp / "suites" / "gen.yaml", f"""
        name: gen
        tasks:
          - name: tweets
            type: generation
            data: {{format: jsonl, path: {REPO / "data" / "brand" / "test.jsonl"}, limit: 6}}
            id_field: id
            prompt: {{template: "Brief: {{{{ topic }}}}\\nTweet:", reference: "{{{{ tweet }}}}"}}
            generation: {{max_new_tokens: 8, stop: ["\\n"]}}
            scorers: [rouge, exact_match]
        """)
    store = tmp / "h.duckdb"
    for models in (write(tmp / "a.yaml", "base: {name: fake-a, source: fake, options: {favour: [A]}}\n"),
                   write(tmp / "b.yaml", "base: {name: fake-b, source: fake}\n")):
        assert main(["run", str(suite), str(gen), "--models", str(models), "--store", str(store)]) == 0
    return {"store": store, "tmp": tmp}


def test_lm_eval_export_is_read_by_lm_eval(evaluated, tmp_path):
    from lm_eval.utils import (
        get_file_task_name,
        get_latest_filename,
        get_results_filenames,
        get_sample_results_filenames,
        make_table,
    )

    out = tmp_path / "lm"
    assert main(["export", str(out), "--format", "lm-eval", "--store", str(evaluated["store"])]) == 0
    files = sorted(str(p) for p in out.rglob("*.json*"))
    assert {Path(p).parent.name for p in files} == {"fake-a", "fake-b"}  # a folder per model, as lm-eval writes
    results = get_results_filenames(files)
    assert len(results) == 2
    samples = get_sample_results_filenames(files)
    assert {get_file_task_name(Path(p).name) for p in samples} == {"mmlu2_arithmetic", "mmlu2_geography", "tweets"}
    doc = json.loads(Path(get_latest_filename([p for p in results if "fake-a" in p])).read_text())
    for key in ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "n-samples", "higher_is_better", "config"):
        assert key in doc, key
    table = make_table(doc)
    assert "mmlu2_arithmetic" in table and "acc_norm" in table and "±" in table
    assert "mmlu2" in make_table(doc, "groups")
    assert doc["n-shot"]["mmlu2_arithmetic"] == 1 and doc["n-shot"]["mmlu2_geography"] == 0
    assert doc["group_subtasks"]["mmlu2"] == ["mmlu2_arithmetic", "mmlu2_geography"]
    # per-sample lines carry what lm-eval's sample files carry, and the metric averages match
    lines = [json.loads(x) for x in Path(next(p for p in samples if "fake-a" in p and "arithmetic" in p)).read_text().splitlines()]
    assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash", "prompt_hash", "target_hash", "acc"} <= set(lines[0])
    assert sum(x["acc"] for x in lines) / len(lines) == pytest.approx(doc["results"]["mmlu2_arithmetic"]["acc,none"])
    assert doc["n-samples"]["mmlu2_arithmetic"]["effective"] == len(lines)


def test_lm_eval_group_aggregate_equals_lm_evals(evaluated, tmp_path):
    """The suite as a group: the size-weighted mean and pooled stderr lm-eval computes for mmlu."""
    from lm_eval.api.metrics import aggregate_subtask_metrics, mean_stderr, pooled_sample_stderr

    out = tmp_path / "lm"
    assert main(["export", str(out), "--format", "lm-eval", "--variant", "fake-b", "--store", str(evaluated["store"])]) == 0
    doc = json.loads(next(out.rglob("results_*.json")).read_text())
    tasks = doc["group_subtasks"]["mmlu2"]
    sizes = [doc["n-samples"][t]["effective"] for t in tasks]
    assert sizes[0] != sizes[1]  # weighting by size matters
    means = [doc["results"][t]["acc,none"] for t in tasks]
    errors = [doc["results"][t]["acc_stderr,none"] for t in tasks]
    assert doc["groups"]["mmlu2"]["acc,none"] == pytest.approx(aggregate_subtask_metrics(means, sizes, weight_by_size=True))
    assert doc["groups"]["mmlu2"]["acc_stderr,none"] == pytest.approx(float(pooled_sample_stderr(errors, sizes)))
    assert "acc_norm,none" not in doc["groups"]["mmlu2"]  # only metrics every task has
    values = [json.loads(x)["acc"] for x in next(out.rglob("samples_mmlu2_geography_*.jsonl")).read_text().splitlines()]
    assert doc["results"]["mmlu2_geography"]["acc_stderr,none"] == pytest.approx(mean_stderr(values))


def test_lm_eval_export_errors_are_exit_2_and_leave_nothing(evaluated, tmp_path, capsys):
    out = tmp_path / "lm"
    assert main(["export", str(out), "--format", "lm-eval", "--variant", "ghost", "--store", str(evaluated["store"])]) == 2
    assert "ghost" in capsys.readouterr().err and not out.exists() and not (tmp_path / "lm.tmp").exists()
    assert main(["export", str(out), "--variant", "fake-a", "--store", str(evaluated["store"])]) == 2  # parquet takes no --variant
    empty = tmp_path / "empty.duckdb"
    from harness.store.db import Store

    Store(empty).close()
    assert main(["export", str(out), "--format", "lm-eval", "--store", str(empty)]) == 2
    assert "no run" in capsys.readouterr().err and not out.exists()


def test_model_card_model_index_parses_with_huggingface_hub(evaluated, tmp_path):
    from huggingface_hub import ModelCard

    report = write(tmp_path / "r.yaml", """
        title: Card check
        variants: [fake-b, fake-a]
        gate:
          - {variant: fake-a, task: mmlu2_arithmetic, metric: acc, min: 0.0}
          - {variant: fake-b, task: tweets, metric: rougeL, min: 0.0}
        """)
    out = tmp_path / "card"
    assert main(["card", "fake-a", "--report", str(report), "--out", str(out), "--base-model", "google/gemma-3-270m",
                 "--store", str(evaluated["store"])]) == 0
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "google/gemma-3-270m"
    results = {(r.dataset_name, r.metric_type): r for r in card.data.eval_results}
    acc = results[("mmlu2 / mmlu2_arithmetic", "acc")]
    assert acc.task_type == "multiple-choice" and acc.dataset_type == "mmlu2" and acc.verified is False
    from harness.store.db import Store

    with Store(evaluated["store"], read_only=True) as store:
        mean = store.query("""SELECT avg(value) AS m FROM scores JOIN latest_runs USING (run_id)
                              WHERE variant = 'fake-a' AND task = 'mmlu2_arithmetic' AND metric = 'acc'""")[0]["m"]
    assert acc.metric_value == pytest.approx(mean) and "95% CI" in acc.metric_name and "n=10" in acc.metric_name
    text = (out / "README.md").read_text()
    assert "## Gate (Card check)" in text and "fake-a mmlu2_arithmetic/acc >= 0" in text and "**pass**" in text
    assert "fake-b" not in text.split("## Gate")[1]  # only the rules on this variant


def test_model_card_push_dry_run_and_refusals(evaluated, tmp_path, capsys, monkeypatch):
    out = tmp_path / "card"
    store = str(evaluated["store"])
    assert main(["card", "fake-a", "--out", str(out), "--push", "me/fake-a", "--dry-run", "--store", store]) == 0
    said = capsys.readouterr().out
    assert "would upload to me/fake-a (private)" in said and "README.md" in said
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["card", "fake-a", "--out", str(out), "--push", "me/fake-a", "--store", store]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored login either
    assert main(["card", "fake-a", "--out", str(out), "--push", "me/fake-a", "--store", store]) == 2
    assert "token" in capsys.readouterr().err
    assert main(["card", "ghost", "--out", str(tmp_path / "g"), "--store", store]) == 2
    assert "no run of variant 'ghost'" in capsys.readouterr().err and not (tmp_path / "g").exists()
    assert main(["card", "fake-a", "--dry-run", "--store", store]) == 2


# -- experiment trackers (offline: MLflow's local file store, W&B's offline mode) -------------------


def _wandb_records(run_dir: Path) -> list:
    """The records of an offline W&B run, parsed with W&B's own protobuf schema from its
    transaction log (LevelDB log framing: 32 KiB blocks of checksum, length, type, data)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    block, pos, buf, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            pos += left - 7
            continue
        buf += data[pos:pos + length]
        pos += length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(buf)
            records.append(record)
            buf = b""
    return records


GATED = """
title: Tracked
variants: [fake-b, fake-a]
gate:
  - {variant: fake-a, task: mmlu2_arithmetic, metric: acc, min: 0.0}
"""


def test_report_logged_to_mlflow_reads_back(evaluated, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'harness[mlflow]')")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = tmp_path / "s" / "h.duckdb"
    store.parent.mkdir()
    store.write_bytes(evaluated["store"].read_bytes())
    report = write(tmp_path / "r.yaml", GATED)
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html"), "--log", "mlflow"]) == 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(store.parent / "mlruns").as_uri())  # the default: beside the store
    experiment = client.get_experiment_by_name("harness")
    (run,) = client.search_runs([experiment.experiment_id])
    m = run.data.metrics
    assert m["fake-a/mmlu2_arithmetic/acc.ci_low"] <= m["fake-a/mmlu2_arithmetic/acc"] <= m["fake-a/mmlu2_arithmetic/acc.ci_high"]
    assert m["fake-a/mmlu2_arithmetic/acc.n"] == 10 and "fake-b/tweets/rougeL" in m
    assert m["gate/exit_code"] == 0 and m["gate/rule_1.passed"] == 1
    assert run.data.tags["harness.gate"] == "pass" and run.data.tags["gate/rule_1"].startswith("pass: fake-a")
    assert run.data.params["fake-a/mmlu2_arithmetic/run_id"] and run.data.params["title"] == "Tracked"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["r.html"]


def test_run_logged_to_wandb_offline_reads_back(evaluated, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'harness[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    store = tmp_path / "h.duckdb"
    store.write_bytes(evaluated["store"].read_bytes())
    suite = evaluated["tmp"] / "suites" / "mmlu2.yaml"
    assert main(["run", str(suite), "--models", str(evaluated["tmp"] / "a.yaml"), "--store", str(store), "--log", "wandb"]) == 0
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    records = _wandb_records(run_dir)
    summary = {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "summary" for u in r.summary.update}
    assert summary["mmlu2_arithmetic/acc.n"] == 10 and summary["mmlu2_geography/acc.n"] == 7
    assert summary["mmlu2_arithmetic/acc.ci_low"] <= summary["mmlu2_arithmetic/acc"] <= summary["mmlu2_arithmetic/acc.ci_high"]
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["variant"] == "fake-a" and config["mmlu2_arithmetic/run_id"]
    assert run.display_name.startswith("fake-a") and "harness" in run.tags


def test_tracker_without_credentials_or_client_is_exit_2_before_evaluating(evaluated, tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb", reason="wandb is not installed")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    store = tmp_path / "new.duckdb"
    suite = evaluated["tmp"] / "suites" / "mmlu2.yaml"
    assert main(["run", str(suite), "--models", str(evaluated["tmp"] / "a.yaml"), "--store", str(store), "--log", "wandb"]) == 2
    assert "WANDB_MODE=offline" in capsys.readouterr().err and not store.exists()
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: importing it raises ImportError
    assert main(["run", str(suite), "--models", str(evaluated["tmp"] / "a.yaml"), "--store", str(store), "--log", "mlflow"]) == 2
    assert "harness[mlflow]" in capsys.readouterr().err and not store.exists()


def test_model_card_push_to_a_fake_hub_uploads_card_and_weights(evaluated, tmp_path):
    """--push against a local fake Hub: the repository is created private, and one commit holds
    the card and every file of the variant's built artifact, byte for byte."""
    from datetime import datetime

    from harness.store.db import Store, VariantRow
    from tests.fake_hub_server import FakeHub

    store = tmp_path / "h.duckdb"
    store.write_bytes(evaluated["store"].read_bytes())
    artifact = tmp_path / "artifact"
    write(artifact / "adapter_config.json", '{"r": 4}\n')
    (artifact / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 8)
    with Store(store) as s:  # fake-a's runs now point at a build record with weights
        key = s.query("SELECT DISTINCT variant_key FROM latest_runs WHERE variant = 'fake-a'")[0]["variant_key"]
        s.upsert_variant(VariantRow(key, "fake-a", None, None, "adapter", None, None, "adapter", str(artifact), 2057, 10, 100,
                                    None, None, 1.0, None, "cpu", None, None, datetime(2026, 12, 1)))
    with FakeHub() as hub:
        # a fresh process, as a user runs it: huggingface_hub reads its endpoint and offline mode at import
        env = {**os.environ, "HF_ENDPOINT": hub.url.removesuffix("/v1"), "HF_TOKEN": "hf_test_token", "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf")}
        done = subprocess.run([sys.executable, "-m", "harness", "card", "fake-a", "--out", str(tmp_path / "card"), "--push", "me/fake-a",
                               "--store", str(store)], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "uploaded to" in done.stdout
    repo = hub.repos["me/fake-a"]
    assert repo["private"] and len(repo["commits"]) == 1
    assert repo["files"]["README.md"] == (tmp_path / "card" / "README.md").read_bytes()
    assert repo["files"]["adapter_model.safetensors"] == (artifact / "adapter_model.safetensors").read_bytes()
    assert set(repo["files"]) == {"README.md", "adapter_config.json", "adapter_model.safetensors"}
    assert all(t == "Bearer hf_test_token" for t in hub.tokens if t)
