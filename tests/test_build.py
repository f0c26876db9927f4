"""`harness build` on the tiny model: LoRA SFT trains, saves, reloads, changes outputs; lineage; cache hits."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.backends.base import GenerationConfig
from harness.cli import main
from tests.conftest import REPO, write

MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - name: tiny-sft
    parent: tiny
    method: sft_lora
    config:
      data:
        path: {data}
        validation_path: {val}
        prompt: "Write a tweet for Lumen Coffee.\\nBrief: {{{{ topic }}}}\\nTweet:"
        completion: " {{{{ tweet }}}}"
      lora: {{r: 4, alpha: 8, target_modules: [q_proj, v_proj]}}
      training: {{learning_rate: 0.01, max_steps: {steps}, batch_size: 4, max_length: 48, logging_steps: 1}}
"""


def models_file(ws, model_dir, steps=4):
    return write(ws / "models" / "tiny.yaml", MODELS.format(model=model_dir, data=REPO / "data" / "brand" / "train.jsonl",
                                                           val=REPO / "data" / "brand" / "validation.jsonl", steps=steps))


@pytest.fixture
def built(workspace, tiny_model_dir):
    models = models_file(workspace, tiny_model_dir)
    assert main(["build", str(models), "--store", str(workspace / "h.duckdb")]) == 0
    return workspace, models


def test_sft_records_lineage_and_training(built):
    ws, _ = built
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    rows = con.execute("SELECT name, parent_name, method, artifact_kind, artifact_path, trainable_params, total_params, "
                       "train_curve, metrics, wall_s, peak_rss_mb, parent_key FROM variants ORDER BY created_at").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("tiny", None, "base", "base"), ("tiny-sft", "tiny", "sft_lora", "adapter")]
    sft = rows[1]
    assert 0 < sft[5] < sft[6]
    curve = json.loads(sft[7])
    assert len([p for p in curve if "loss" in p]) == 4
    assert "eval_loss" in json.loads(sft[8])
    assert sft[9] > 0 and sft[10] > 0
    assert sft[11] == con.execute("SELECT variant_key FROM variants WHERE name = 'tiny'").fetchone()[0]


def test_adapter_reloads_and_changes_outputs(built, tiny_model_dir):
    import torch

    from harness.backends.hf import HFBackend

    ws, _ = built
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    adapter = con.execute("SELECT artifact_path FROM variants WHERE name = 'tiny-sft'").fetchone()[0]
    base = HFBackend(tiny_model_dir)
    tuned = HFBackend(tiny_model_dir, adapters=[adapter])
    pair = [("Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup.")]
    assert tuned.loglikelihood(pair)[0].logprob != pytest.approx(base.loglikelihood(pair)[0].logprob, abs=1e-3)
    # merging the adapter into the base gives the same logits (what serving a merged model relies on)
    merged = tuned.model.merge_and_unload()
    ids = tuned.tokenizer(pair[0][0], return_tensors="pt").input_ids
    fresh = HFBackend(tiny_model_dir, adapters=[adapter]).model
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, fresh(ids).logits, atol=1e-4)
    gen = tuned.generate([pair[0][0]], GenerationConfig(max_new_tokens=5))
    assert len(gen) == 1


def test_unchanged_rebuild_is_a_cache_hit_and_a_change_rebuilds(built, tiny_model_dir, capsys):
    ws, models = built
    capsys.readouterr()
    assert main(["build", str(models), "--store", str(ws / "h.duckdb")]) == 0
    assert "tiny-sft: reused" in capsys.readouterr().out
    models_file(ws, tiny_model_dir, steps=2)
    assert main(["build", str(models), "--store", str(ws / "h.duckdb")]) == 0
    assert "tiny-sft: built" in capsys.readouterr().out


def test_run_before_build_says_how_to_fix(workspace, tiny_model_dir, capsys):
    models = models_file(workspace, tiny_model_dir)
    code = main(["run", str(workspace / "suites" / "gen.yaml"), "--models", str(models), "--store", str(workspace / "h.duckdb")])
    assert code == 2
    err = capsys.readouterr().err
    assert "variant 'tiny-sft' is not built" in err and "harness build" in err


def test_end_to_end_build_run_report_gate(built, capsys):
    ws, models = built
    store = str(ws / "h.duckdb")
    suites = [str(ws / "suites" / "mc.yaml"), str(ws / "suites" / "gen.yaml")]
    assert main(["run", *suites, "--models", str(models), "--store", store, "--limit", "4"]) == 0
    con = duckdb.connect(store, read_only=True)
    assert con.execute("SELECT count(DISTINCT variant), count(*) FROM runs").fetchone() == (2, 4)
    con.close()
    report = write(ws / "reports" / "tiny.yaml", """
        title: tiny
        variants: [tiny, tiny-sft]
        gate:
          - {variant: tiny-sft, baseline: tiny, task: quiz, metric: acc, max_drop: 1.0}
        """)
    assert main(["report", str(report), "--store", store]) == 0
    assert (ws / "reports").exists() and (ws / "h.duckdb").parent.joinpath("reports", "tiny.html").exists()
    # A --limit run is partial: the gate refuses it unless the rule allows partial data.
    assert main(["gate", str(report), "--store", store]) == 2
    assert "is a --limit sample (4 of 20 items)" in capsys.readouterr().out
    report.write_text(report.read_text().replace("max_drop: 1.0}", "max_drop: 1.0, allow_partial: true}"))
    assert main(["gate", str(report), "--store", store]) == 0
    assert main(["list", "variants", "--store", store]) == 0
    assert "└─ tiny-sft [sft_lora" in capsys.readouterr().out


def test_early_stopping_stops_when_validation_loss_stalls(workspace, tiny_model_dir):
    models = write(workspace / "models" / "es.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - name: es
            parent: tiny
            method: sft_lora
            config:
              data: {{path: {REPO / 'data' / 'brand' / 'train.jsonl'}, prompt: "{{{{ topic }}}}", completion: " {{{{ tweet }}}}", validation_fraction: 0.05}}
              training: {{learning_rate: 1.0e-12, max_steps: 10, batch_size: 4, max_length: 32, eval_steps: 1, early_stopping_patience: 2, logging_steps: 1}}
        """)
    store = workspace / "h.duckdb"
    assert main(["build", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    metrics = json.loads(con.execute("SELECT metrics FROM variants WHERE name = 'es'").fetchone()[0])
    assert metrics["stopped_early"] is True and metrics["steps"] == 3  # best at step 1, no gain at 2 and 3


def test_chat_template_needs_one(workspace, tiny_model_dir, capsys):
    models = write(workspace / "models" / "ct.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - name: ct
            parent: tiny
            method: sft_lora
            config:
              data: {{path: {REPO / 'data' / 'brand' / 'train.jsonl'}, prompt: "{{{{ topic }}}}", completion: " {{{{ tweet }}}}", chat_template: true}}
        """)
    assert main(["build", str(models), "--store", str(workspace / "h.duckdb")]) == 2
    assert "has no chat template" in capsys.readouterr().err


def test_early_stopping_requires_eval_steps(workspace, tiny_model_dir, capsys):
    models = write(workspace / "models" / "bad.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - name: x
            parent: tiny
            method: sft_lora
            config:
              data: {{path: {REPO / 'data' / 'brand' / 'train.jsonl'}, prompt: "a", completion: "b"}}
              training: {{early_stopping_patience: 2}}
        """)
    assert main(["validate", str(models)]) == 2
    assert "early_stopping_patience needs training.eval_steps" in capsys.readouterr().out


def test_a_killed_builds_tmp_folder_is_removed_by_the_next_build(built):
    ws, models = built
    stale = ws / "artifacts" / "tiny-sft-deadbeef.tmp"
    stale.mkdir(parents=True)
    (stale / "half.bin").write_bytes(b"x")
    assert main(["build", str(models), "--store", str(ws / "h.duckdb")]) == 0  # everything reused
    assert not stale.exists()


def perplexity_suite(ws, limit: int):
    """A perplexity task over a seeded sample of `limit` held-out brand tweets (ids: their line
    numbers from 0), as suites/ppl.yaml under `ws`."""
    return write(ws / "suites" / "ppl.yaml", f"""
        name: ppl
        tasks:
          - name: held_out
            type: perplexity
            data: {{format: jsonl, path: {REPO / 'data' / 'brand' / 'validation.jsonl'}, limit: {limit}}}
            prompt: {{template: "{{{{ tweet }}}}"}}
        """)


def _tweets_by_id(lines: list[str]) -> dict[str, str]:
    """The brand file's tweets under their sample ids (items are named by their content)."""
    from harness.tasks.prepare import content_id
    return {content_id(json.loads(line)): json.loads(line)["tweet"] for line in lines}


def test_per_token_kl_to_the_parent_on_a_perplexity_task(built, tiny_model_dir, capsys):
    """`harness run` loads a variant with its parent on a perplexity task's texts: the mean
    next-token KL is stored per text, is 0 for a model against itself, and is gateable."""
    import torch

    from harness.analysis.fidelity import token_kl
    from harness.backends.hf import HFBackend

    ws, models = built
    suite = perplexity_suite(ws, limit=4)
    assert main(["run", str(suite), "--models", str(models), "--store", str(ws / "h.duckdb")]) == 0
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    rows = con.execute("""SELECT f.sample_id, f.value FROM fidelity f JOIN runs r USING (run_id)
                          WHERE r.variant = 'tiny-sft' AND f.metric = 'parent_token_kl' ORDER BY f.sample_id""").fetchall()
    adapter = con.execute("SELECT artifact_path FROM variants WHERE name = 'tiny-sft'").fetchone()[0]
    con.close()
    assert len(rows) == 4 and all(v > 0 for _, v in rows)
    base, sft = HFBackend(tiny_model_dir), HFBackend(tiny_model_dir, adapters=[adapter])
    lines = (REPO / "data" / "brand" / "validation.jsonl").read_text().splitlines()
    texts = [_tweets_by_id(lines)[sid] for sid, _ in rows]
    assert token_kl(base, base, texts) == [0.0] * 4
    # by hand for the first text: softmax over the vocabulary at each position, both models
    ids = torch.tensor([base._encode(texts[0])])
    with torch.no_grad():
        p = torch.softmax(base.model(input_ids=ids).logits[0, :-1].double(), -1)
        q = torch.softmax(sft.model(input_ids=ids).logits[0, :-1].double(), -1)
    by_hand = float((p * (p.log() - q.log())).sum(-1).mean())
    assert rows[0][1] == pytest.approx(by_hand, rel=1e-3)
    report = write(ws / "reports" / "kl.yaml", """
        title: KL
        variants: [tiny, tiny-sft]
        gate:
          - {variant: tiny-sft, task: held_out, metric: parent_token_kl, max: 50}
        """)
    main(["gate", str(report), "--store", str(ws / "h.duckdb")])
    assert "tiny-sft held_out/parent_token_kl <= 50" in capsys.readouterr().out


def test_an_adapter_trained_elsewhere_is_a_variant(built, tiny_model_dir, capsys):
    """A PEFT adapter directory from outside (here: the SFT artifact, copied away) becomes a
    variant of its own: same outputs as the variant that trained it; a wrong path is a clear error."""
    import shutil

    ws, _ = built
    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    artifact = con.execute("SELECT artifact_path FROM variants WHERE name = 'tiny-sft'").fetchone()[0]
    con.close()
    shutil.copytree(artifact, ws / "elsewhere")
    models = write(ws / "models" / "ext.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - {{name: outside, parent: tiny, method: adapter, config: {{path: ../elsewhere}}}}
        """)
    assert main(["build", str(models), "--store", str(ws / "h.duckdb")]) == 0
    from harness.backends.hf import HFBackend

    con = duckdb.connect(str(ws / "h.duckdb"), read_only=True)
    path, parent, kind = con.execute("SELECT artifact_path, parent_name, artifact_kind FROM variants WHERE name = 'outside'").fetchone()
    con.close()
    assert parent == "tiny" and kind == "adapter"
    prompts = ["Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:"]
    config = GenerationConfig(max_new_tokens=8)
    assert HFBackend(tiny_model_dir, adapters=[path]).generate(prompts, config)[0].text == \
        HFBackend(tiny_model_dir, adapters=[artifact]).generate(prompts, config)[0].text
    models.write_text(models.read_text().replace("../elsewhere", "../nowhere"))
    assert main(["validate", str(models)]) == 2
    assert "no adapter_config.json (expected a PEFT adapter directory)" in capsys.readouterr().out


def test_a_hub_id_base_from_the_local_cache_and_a_clear_error_offline(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """source: hub resolves through the Hugging Face cache; offline and not cached, the error names
    the id and the cache path. (The cache here is a folder laid out as huggingface_hub lays it out.)"""
    import shutil

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read by snapshot_download at call time
    snapshot = tmp_path / "hub" / "models--tiny-org--tiny-lm" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (tmp_path / "hub" / "models--tiny-org--tiny-lm" / "refs").mkdir()
    (tmp_path / "hub" / "models--tiny-org--tiny-lm" / "refs" / "main").write_text("a" * 40)
    write(tmp_path / "d.jsonl", '{"id": "a", "topic": "coffee"}\n')
    suite = write(tmp_path / "s.yaml", """
        name: h
        tasks:
          - {name: t, type: generation, data: {format: jsonl, path: d.jsonl}, id_field: id,
             prompt: {template: "{{ topic }}", reference: "{{ topic }}"}, generation: {max_new_tokens: 3}, scorers: [exact_match]}
        """)
    models = write(tmp_path / "m.yaml", "base: {name: from-hub, source: hub, id: tiny-org/tiny-lm}\n")
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 0
    capsys.readouterr()
    models.write_text("base: {name: from-hub, source: hub, id: nobody/not-here}\n")
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "base.id: model nobody/not-here is not in the local Hugging Face cache" in err and str(tmp_path / "hub") in err
    assert "HF_HUB_OFFLINE=0" in err


def test_per_token_kl_along_a_chain_reuses_each_models_distributions(workspace, tiny_model_dir, tmp_path):
    """base -> a1 -> a2: the KL pairs are computed in lineage order, a1's next-token distributions
    carried from its own pair to a2's; the stored figures equal each pair computed on its own."""
    from harness.analysis.fidelity import token_kl
    from harness.backends.hf import HFBackend
    from tests.test_vllm import _adapter

    pytest.importorskip("peft")
    a1, a2 = _adapter(tiny_model_dir, tmp_path / "a1", 1), _adapter(tiny_model_dir, tmp_path / "a2", 2)
    models = write(workspace / "models" / "chain.yaml", f"""
        base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}
        variants:
          - {{name: a1, parent: tiny, method: adapter, config: {{path: {a1}}}}}
          - {{name: a2, parent: a1, method: adapter, config: {{path: {a2}}}}}
        """)
    suite = perplexity_suite(workspace, limit=5)
    store = str(workspace / "h.duckdb")
    assert main(["build", str(models), "--store", store]) == 0
    assert main(["run", str(suite), "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    rows = {v: con.execute("""SELECT f.sample_id, f.value FROM fidelity f JOIN runs r USING (run_id)
                                 WHERE r.variant = ? AND f.metric = 'parent_token_kl' ORDER BY f.sample_id""", [v]).fetchall()
            for v in ("a1", "a2")}
    stored = {v: [x for _, x in r] for v, r in rows.items()}
    paths = dict(con.execute("SELECT name, artifact_path FROM variants").fetchall())
    con.close()
    lines = (REPO / "data" / "brand" / "validation.jsonl").read_text().splitlines()
    texts = [_tweets_by_id(lines)[sid] for sid, _ in rows["a1"]]  # the seeded sample, in stored order
    order = range(5)
    base = HFBackend(tiny_model_dir)
    m1 = HFBackend(tiny_model_dir, adapters=[paths["a1"]])
    m2 = HFBackend(tiny_model_dir, adapters=[paths["a1"], paths["a2"]])
    assert stored["a1"] == pytest.approx([token_kl(base, m1, texts)[i] for i in order], rel=1e-4)
    assert stored["a2"] == pytest.approx([token_kl(m1, m2, texts)[i] for i in order], rel=1e-4)
    assert all(v > 0 for v in stored["a2"])
