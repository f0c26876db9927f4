"""Preference data checks (planted bad pairs) and the DPO family on the tiny model."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from harness.recipes.preference_data import Pair, check_pairs, export_audit_sample
from tests.conftest import REPO, write


def test_checks_catch_planted_bad_pairs(tmp_path):
    pairs = [
        Pair("p1", "a good answer", "a bad answer", "x"),
        Pair("p2", "same", "same ", "x"),  # chosen == rejected (after whitespace)
        Pair("p1", "a good answer", "a bad answer", "x"),  # duplicate
        Pair("p3", "another good answer", "meh", "y"),
    ]
    kept, report = check_pairs(pairs)
    assert len(kept) == 2
    assert (report.identical_dropped, report.duplicates_dropped, report.kept) == (1, 1, 2)
    assert report.categories == {"x": 1, "y": 1}
    assert report.length_imbalance > 0.2 and any("length imbalance" in w for w in report.warnings)
    assert export_audit_sample(kept, tmp_path / "audit.jsonl", 100) == 2
    rows = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {r["prompt"] for r in rows} == {"p1", "p3"} and all(r["human_label"] is None for r in rows)


def test_balanced_lengths_raise_no_warning():
    kept, report = check_pairs([Pair("p", "abcde", "vwxyz"), Pair("q", "abcdef", "uvwxyz")])
    assert report.length_imbalance == 0 and report.warnings == []


def pref_file(tmp_path):
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()[:12]]
    lines = [json.dumps({"prompt": f"Brief: {r['topic']}\nTweet:", "chosen": " " + r["tweet"],
                         "rejected": " buy now cheap coffee deal guys!! " + r["topic"][:40], "category": r["category"]}) for r in rows]
    return write(tmp_path / "pref.jsonl", "\n".join(lines) + "\n")


MODELS = """
base: {{name: tiny, source: hf_dir, path: {model}}}
variants:
  - name: tiny-{method}
    parent: tiny
    method: {method}
    config:
      data: {{source: {source}, path: {data}, category_field: category, validation_fraction: 0.25{extra}}}
      lora: {{r: 4, alpha: 8, target_modules: [q_proj, v_proj]}}
      training: {{max_steps: 2, batch_size: 2, max_length: 64, learning_rate: 0.001, logging_steps: 1}}
"""


@pytest.mark.parametrize("method", ["dpo", "ipo", "simpo", "kto"])
def test_each_preference_loss_trains_and_changes_the_model(method, tmp_path, tiny_model_dir):
    from harness.backends.hf import HFBackend

    models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method=method, source="pairs",
                                                                  data=pref_file(tmp_path), extra=""))
    store = tmp_path / "h.duckdb"
    assert main(["build", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    path, metrics, curve = con.execute("SELECT artifact_path, metrics, train_curve FROM variants WHERE method = ?", [method]).fetchone()
    metrics = json.loads(metrics)
    assert metrics["loss_type"] == method and metrics["steps"] == 2
    assert metrics["preference_data"]["kept"] == 12 and metrics["pairs_validation"] == 3
    assert metrics["lora_rank"]["layers"] == 4
    if method != "kto":
        assert "reward_accuracies" in metrics and "reward_margins" in metrics
    assert any("loss" in p for p in json.loads(curve))
    pair = [("Brief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup.")]
    base = HFBackend(tiny_model_dir).loglikelihood(pair)[0].logprob
    tuned = HFBackend(tiny_model_dir, adapters=[path]).loglikelihood(pair)[0].logprob
    assert tuned != pytest.approx(base, abs=1e-4)


def test_rule_based_pairs_use_the_parents_generations(tmp_path, tiny_model_dir):
    data = pref_file(tmp_path)
    models = write(tmp_path / "models" / "m.yaml", MODELS.format(
        model=tiny_model_dir, method="dpo", source="rule", data=data,
        extra=", chosen: '{{ chosen }}', max_new_tokens: 6, limit: 8"))
    store = tmp_path / "h.duckdb"
    assert main(["build", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    path, metrics = con.execute("SELECT artifact_path, metrics FROM variants WHERE method = 'dpo'").fetchone()
    audit = [json.loads(line) for line in (tmp_path / path / "audit_pairs.jsonl").read_text().splitlines()]
    assert audit and all("cheap coffee deal" not in a["rejected"] for a in audit)  # generated, not the file's
    assert json.loads(metrics)["preference_data"]["input_pairs"] == 8


def test_judge_annotated_pairs_from_an_endpoint(tmp_path, tiny_model_dir):
    from tests.fake_judge_server import FakeJudgeServer, prefers_marker

    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()[:10]]
    lines = []
    for i, r in enumerate(rows):
        good, bad = " GOOD " + r["tweet"], " meh " + r["topic"]
        a, b = (good, bad) if i % 2 else (bad, good)  # the better response on either side
        if i == 9:
            a, b = " GOOD one", " GOOD two"  # a tie: dropped
        lines.append(json.dumps({"prompt": f"Brief: {r['topic']}\nTweet:", "response_a": a, "response_b": b, "category": r["category"]}))
    data = write(tmp_path / "judge_pairs.jsonl", "\n".join(lines) + "\n")
    with FakeJudgeServer(prefers_marker()) as srv:
        extra = f", judge: {{backend: openai, base_url: '{srv.url}', model: fake, backoff_s: 0}}"
        models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method="dpo", source="judge",
                                                                      data=data, extra=extra))
        store = tmp_path / "h.duckdb"
        assert main(["build", str(models), "--store", str(store)]) == 0
        assert len(srv.requests) == 10 * 2 * 3  # both orders, 3 votes each
    con = duckdb.connect(str(store), read_only=True)
    path, metrics = con.execute("SELECT artifact_path, metrics FROM variants WHERE method = 'dpo'").fetchone()
    con.close()
    judge = json.loads(metrics)["preference_data"]["judge"]
    assert judge["kept"] == 9 and judge["ties_dropped"] == 1 and judge["a_chosen"] == 4
    audit = [json.loads(line) for line in (tmp_path / path / "audit_pairs.jsonl").read_text().splitlines()]
    assert audit and all(a["chosen"].startswith(" GOOD") and a["rejected"].startswith(" meh") for a in audit)


def test_local_preference_judge_must_name_its_model(tmp_path, tiny_model_dir, capsys):
    models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method="dpo", source="judge",
                                                                  data=pref_file(tmp_path), extra=", judge: {backend: local}"))
    assert main(["validate", str(models)]) == 2
    assert "a local preference judge names its model: judge.variant" in capsys.readouterr().out


def test_text_prep_applies_to_preference_data(tmp_path):
    from harness.recipes.preference_data import PreferenceDataSpec, build_pairs

    data = write(tmp_path / "p.jsonl", "\n".join([
        json.dumps({"prompt": "Hi", "chosen": "Visit https://x.example now!!! thanks @maya, see you soon", "rejected": "no"}),
        json.dumps({"prompt": "Hi", "chosen": "RT @lumen: a retweet that should be dropped entirely", "rejected": "no"}),
    ]) + "\n")
    spec = PreferenceDataSpec(path=str(data), prep={"min_chars": 10}, prep_fields=["chosen"])
    pairs = build_pairs(spec, data, "test")
    assert [p.chosen for p in pairs] == ["Visit [URL] now! thanks [USER], see you soon"]


def test_kto_weights_balance_the_sides():
    from harness.recipes.preference_data import kto_weights

    assert kto_weights(3, 12) == (4.0, 1.0)  # 1:4 -> desirable weighted 4x: (4 x 3) / (1 x 12) = 1
    assert kto_weights(12, 3) == (1.0, 4.0)
    assert kto_weights(5, 5) == (1.0, 1.0)


def test_kto_trains_on_unpaired_feedback_at_one_to_four(tmp_path, tiny_model_dir):
    """Thumbs up/down on single completions, 1 desirable for 4 undesirable: the ratio is reported,
    trl's weights are set from it, and the adapter changes the model."""
    from harness.backends.hf import HFBackend

    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()[:15]]
    labels = ["up", "down", "down", "down", "down"] * 3
    lines = [json.dumps({"prompt": f"Brief: {r['topic']}\nTweet:", "completion": " " + (r["tweet"] if lab == "up" else f"cheap deal #{k}!! {r['topic']}"),
                         "label": lab, "category": r["category"]}) for k, (r, lab) in enumerate(zip(rows, labels))]
    data = write(tmp_path / "feedback.jsonl", "\n".join(lines) + "\n")
    models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method="kto", source="unpaired", data=data, extra=""))
    store = tmp_path / "h.duckdb"
    assert main(["build", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    path, metrics = con.execute("SELECT artifact_path, metrics FROM variants WHERE method = 'kto'").fetchone()
    con.close()
    m = json.loads(metrics)
    q = m["preference_data"]
    assert (q["source"], q["desirable"], q["undesirable"]) == ("unpaired", 3, 12)
    assert (q["desirable_weight"], q["undesirable_weight"], q["weighted_ratio"]) == (4.0, 1.0, 1.0)
    assert m["steps"] == 2 and m["examples_validation"] == 4 and q["desirable_share"] == pytest.approx(0.2)
    pair = [("Brief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup.")]
    assert HFBackend(tiny_model_dir, adapters=[path]).loglikelihood(pair)[0].logprob != pytest.approx(
        HFBackend(tiny_model_dir).loglikelihood(pair)[0].logprob, abs=1e-4)


@pytest.mark.parametrize("method, extra, rows, message", [
    ("dpo", "", [{"prompt": "p", "completion": " c", "label": "up"}], "'unpaired' data (single labelled completions) trains KTO only"),
    ("kto", "", [{"prompt": "p", "completion": " c", "label": "maybe"}], "label 'maybe' is neither desirable"),
    ("kto", "", [{"prompt": "p", "completion": " c", "label": "up"}, {"prompt": "q", "completion": " d", "label": True}],
     "needs desirable and undesirable examples; after the checks it has 2 desirable and 0 undesirable"),
    ("kto", ", chosen: '{{ completion }}'", [{"prompt": "p", "completion": " c", "label": "up"}], "not ['chosen']"),
])
def test_bad_unpaired_data_is_refused(tmp_path, tiny_model_dir, capsys, method, extra, rows, message):
    data = write(tmp_path / "feedback.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method=method, source="unpaired", data=data,
                                                                  extra=extra))
    assert main(["build", str(models), "--store", str(tmp_path / "h.duckdb")]) == 2
    assert message in capsys.readouterr().err


CONSTITUTION = """
name: lumen-brand
principles:
  - {name: warm, text: "Prefer the reply that sounds like a warm neighbour."}
  - {name: brief, text: "Prefer the shorter reply."}
  - {name: honest, text: "Prefer the reply that promises nothing the brief does not state."}
"""


def _principled_policy(user: str) -> str:
    """warm and honest prefer the GOOD answer; brief prefers the shorter one."""
    from tests.fake_judge_server import answers_in

    a, b = answers_in(user)
    if "-- brief:" in user:
        return "[[A]]" if len(a) < len(b) else "[[B]]" if len(b) < len(a) else "[[C]]"
    if ("GOOD" in a) == ("GOOD" in b):
        return "[[C]]"
    return "[[A]]" if "GOOD" in a else "[[B]]"


def _judge_data(tmp_path, n=6):
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()[:n]]
    lines = []
    for i, r in enumerate(rows):
        good, bad = " GOOD " + r["tweet"], " meh"  # the GOOD one is longer: `brief` disagrees with the others
        a, b = (good, bad) if i % 2 else (bad, good)
        lines.append(json.dumps({"prompt": f"Brief: {r['topic']}\nTweet:", "response_a": a, "response_b": b}))
    return write(tmp_path / "judge_pairs.jsonl", "\n".join(lines) + "\n")


def test_a_constitution_labels_pairs_principle_by_principle(tmp_path, tiny_model_dir):
    from tests.fake_judge_server import FakeJudgeServer

    data = _judge_data(tmp_path)
    principles = write(tmp_path / "models" / "constitution.yaml", CONSTITUTION)
    write(tmp_path / "models" / "human.jsonl", "\n".join(json.dumps(h) for h in [
        {"prompt": "p1", "response_a": " GOOD hello neighbours", "response_b": " x", "human": "A"},
        {"prompt": "p2", "response_a": " x", "response_b": " GOOD see you soon", "human": "B"},
        {"prompt": "p3", "response_a": " GOOD a", "response_b": " GOOD b", "human": "tie"},
        {"prompt": "p4", "response_a": " y", "response_b": " GOOD hi there", "human": "A"}]) + "\n")
    with FakeJudgeServer(_principled_policy) as srv:
        extra = (f", principles: constitution.yaml, human_labels: human.jsonl, min_agreement: 0.5, "
                 f"judge: {{backend: openai, base_url: '{srv.url}', model: fake, backoff_s: 0, samples: 1}}")
        models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method="dpo", source="judge", data=data,
                                                                      extra=extra))
        store = tmp_path / "h.duckdb"
        assert main(["build", str(models), "--store", str(store)]) == 0
        # 4 human pairs + 6 training pairs, 3 principles, both orders, 1 sample
        assert len(srv.requests) == (4 + 6) * 3 * 2
        assert all("[Judge by this principle only -- " in r["messages"][-1]["content"] for r in srv.requests)
        con = duckdb.connect(str(store), read_only=True)
        key1, path, metrics = con.execute("SELECT variant_key, artifact_path, metrics FROM variants WHERE method = 'dpo'").fetchone()
        con.close()
        m = json.loads(metrics)
        assert m["constitution"]["name"] == "lumen-brand" and m["constitution"]["principles"] == ["warm", "brief", "honest"]
        assert len(m["constitution"]["sha256"]) == 64
        counts = m["preference_data"]["judge"]["principles"]
        assert counts["warm"]["a"] + counts["warm"]["b"] == 6 and counts["brief"]["a"] + counts["brief"]["b"] == 6
        assert m["preference_data"]["judge"]["kept"] == 6  # 2 of 3 principles prefer GOOD on every pair
        assert m["human_agreement"]["n"] == 4 and m["human_agreement"]["agreement"] == pytest.approx(0.75)  # p4: human says A
        verdicts = [json.loads(line) for line in (tmp_path / path / "annotations.jsonl").read_text().splitlines()]
        assert len(verdicts) == 6 and all(set(v["principles"]) == {"warm", "brief", "honest"} for v in verdicts)
        assert all(v["principles"]["brief"] != v["principles"]["warm"] for v in verdicts)
        # The report's lineage row says what the labels came from and how well they agree with people.
        write(tmp_path / "briefs.jsonl", '{"id": "0", "q": "Brief: new beans"}\n{"id": "1", "q": "Brief: rain"}\n')
        suite = write(tmp_path / "s.yaml", """
            name: s
            tasks:
              - {name: t, type: generation, data: {format: jsonl, path: briefs.jsonl}, id_field: id,
                 prompt: {template: "{{ q }}"}, generation: {max_new_tokens: 2}}
            """)
        assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
        report = write(tmp_path / "r.yaml", "title: t\nvariants: [tiny, tiny-dpo]\nstatistics: {resamples: 200}\n")
        assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
        html = (tmp_path / "r.html").read_text()
        assert "against the constitution &#39;lumen-brand&#39; (3 principles" in html
        assert "AI labels vs people: agreement 75% [" in html and "on 4 validation pairs, Cohen&#39;s kappa" in html
        # Another constitution is another variant: its hash is in the key.
        principles.write_text(CONSTITUTION.replace("warm neighbour", "warm, kind neighbour"))
        assert main(["build", str(models), "--store", str(store)]) == 0
        con = duckdb.connect(str(store), read_only=True)
        keys = [k for (k,) in con.execute("SELECT variant_key FROM variants WHERE method = 'dpo'").fetchall()]
        con.close()
        assert len(keys) == 2 and key1 in keys


def test_low_agreement_with_people_stops_the_build(tmp_path, tiny_model_dir, capsys):
    from tests.fake_judge_server import FakeJudgeServer, always_first

    data = _judge_data(tmp_path)
    write(tmp_path / "models" / "human.jsonl", "\n".join(json.dumps({"prompt": f"p{i}", "response_a": " a", "response_b": " b",
                                                                     "human": "B"}) for i in range(5)) + "\n")
    with FakeJudgeServer(always_first) as srv:
        extra = (f", human_labels: human.jsonl, min_agreement: 0.8, "
                 f"judge: {{backend: openai, base_url: '{srv.url}', model: fake, backoff_s: 0, samples: 1}}")
        models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method="dpo", source="judge", data=data,
                                                                      extra=extra))
        store = tmp_path / "h.duckdb"
        assert main(["build", str(models), "--store", str(store)]) == 2
        assert len(srv.requests) == 5 * 2  # only the validation pairs were judged
    err = capsys.readouterr().err
    assert "agree with the human labels on 0% of 5 validation pairs (Cohen" in err
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM variants WHERE method = 'dpo'").fetchone()[0] == 0
    con.close()


def test_judge_settings_annotation_cannot_use_are_refused(tmp_path, tiny_model_dir, capsys):
    extra = ", judge: {backend: openai, base_url: 'http://127.0.0.1:9', model: m, dimensions: [tone]}"
    models = write(tmp_path / "models" / "m.yaml", MODELS.format(model=tiny_model_dir, method="dpo", source="judge",
                                                                  data=pref_file(tmp_path), extra=extra))
    assert main(["validate", str(models)]) == 2
    assert "judge.dimensions: not used by preference annotation" in capsys.readouterr().out
