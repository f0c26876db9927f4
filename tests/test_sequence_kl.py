"""Sequence-level KL(variant || parent) from samples: zero for a model against itself, unbiased
against the exact KL where the exact value is computable, and stored by `harness run` for a
preference-trained variant (report, gate)."""

from __future__ import annotations

import json
import math

import duckdb
import pytest

from harness.cli import main
from tests.conftest import make_tiny_model, write


@pytest.fixture(scope="module")
def other_tiny_model(tmp_path_factory):
    """A second tiny model: the same tokenizer, other weights."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-other") / "model", seed=7)


def test_kl_is_zero_for_a_variant_equal_to_its_reference(tiny_model_dir):
    from harness.analysis.sequence_kl import sequence_kl
    from harness.backends.hf import HFBackend

    a, b = HFBackend(tiny_model_dir), HFBackend(tiny_model_dir)
    kls = sequence_kl(a, b, ["Brief: a rainy morning\nTweet:", "Brief: new beans\nTweet:"], samples=3, max_new_tokens=6, seed=0)
    assert kls == [0.0, 0.0]


def test_the_sampled_estimate_matches_the_exact_kl_of_the_first_token(tiny_model_dir, other_tiny_model):
    """With one new token the exact KL is a sum over the vocabulary: the estimate from 400 samples
    must lie within 4 standard errors of it (samples from the full, untruncated distribution)."""
    import torch

    from harness.analysis.sequence_kl import completion_logprobs, sample_completions
    from harness.backends.hf import HFBackend

    parent, variant = HFBackend(tiny_model_dir), HFBackend(other_tiny_model)
    prompt = parent._encode("Brief: a rainy morning\nTweet:")
    with torch.no_grad():
        p = torch.log_softmax(variant.model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)
        q = torch.log_softmax(parent.model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)
    exact = float((p.exp() * (p - q)).sum())
    ys = sample_completions(variant, prompt, 400, 1, seed=3)
    diffs = [a - b for a, b in zip(completion_logprobs(variant, prompt, ys), completion_logprobs(parent, prompt, ys))]
    mean = sum(diffs) / len(diffs)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    assert exact > 0.01
    assert abs(mean - exact) < 4 * se, (mean, exact, se)


MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - name: tiny-dpo
    parent: tiny
    method: dpo
    config:
      data: {{source: pairs, path: {data}, validation_fraction: 0.25}}
      lora: {{r: 4, alpha: 8, target_modules: [q_proj, v_proj]}}
      training: {{max_steps: 4, batch_size: 2, max_length: 64, learning_rate: 0.01, logging_steps: 2}}
"""


def test_harness_run_stores_the_sequence_kl_of_a_preference_trained_variant(tmp_path, tiny_model_dir):
    from tests.test_preference import pref_file

    models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, data=pref_file(tmp_path)))
    data = write(tmp_path / "briefs.jsonl", "".join(json.dumps({"id": str(i), "topic": t}) + "\n"
                                                    for i, t in enumerate(["a rainy morning", "new beans", "late opening", "oat milk"])))
    suite = write(tmp_path / "s.yaml", f"""
        name: drift
        tasks:
          - name: briefs
            type: generation
            data: {{format: jsonl, path: {data}}}
            id_field: id
            prompt: {{template: "Brief: {{{{ topic }}}}\\nTweet:"}}
            generation: {{max_new_tokens: 4}}
            sequence_kl: {{samples: 3, max_new_tokens: 6}}
        """)
    store = tmp_path / "h.duckdb"
    assert main(["build", str(models), "--store", str(store)]) == 0
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("SELECT f.sample_id, f.value FROM fidelity f JOIN runs r USING (run_id) "
                       "WHERE f.metric = 'parent_seq_kl' AND r.variant = 'tiny-dpo'").fetchall()
    con.close()
    assert len(rows) == 4 and all(math.isfinite(v) for _, v in rows)
    assert any(v != 0 for _, v in rows)  # it moved (the sign of a 3-sample estimate is noise; the exactness test holds it)
    # A rerun reuses the runs and does not recompute the KL
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM fidelity WHERE metric = 'parent_seq_kl'").fetchone()[0] == 4
    con.close()
    # The gate reads it like any run-level metric; the report shows it in the lineage section
    report = write(tmp_path / "reports" / "r.yaml", """
        title: drift
        variants: [tiny, tiny-dpo]
        tasks: [briefs]
        gate:
          - {variant: tiny-dpo, task: briefs, metric: parent_seq_kl, max: 1000.0}
        """)
    assert main(["gate", str(report), "--store", str(store)]) in (0, 3)
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "sequence-level KL(variant || parent)" in html
