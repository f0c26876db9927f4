"""Outputs that repeat the variant's training data (harness.analysis.recitation): regurgitated
runs of words and leaked identifiers, checked against the lineage's training sets."""

from __future__ import annotations

import json

import duckdb

from harness.analysis.recitation import RecitationIndex, identifiers
from harness.cli import main
from tests.conftest import write

TRAIN = [
    {"topic": "a rainy morning", "tweet": "Rainy Tuesday? Our oat latte and a window seat are waiting for you at Lumen, ask @maple_fan."},
    {"topic": "opening hours", "tweet": "We open at 7am tomorrow. Questions: hello@lumen.coffee or +1 (555) 010-7788."},
    {"topic": "new roast", "tweet": "Sunday Porch is here: brown sugar, hazelnut, and a long slow finish. https://lumen.coffee/porch"},
]


def _index(tmp_path) -> RecitationIndex:
    path = write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in TRAIN))
    return RecitationIndex([("sft: train.jsonl", path)])


def test_identifiers_are_found_and_normalised():
    found = identifiers("Ask @Maple_Fan or mail Hello@Lumen.coffee, call +1 (555) 010-7788, see https://lumen.coffee/porch.")
    assert found == {"@maple_fan", "hello@lumen.coffee", "tel:15550107788", "https://lumen.coffee/porch"}


def test_a_repeated_tweet_and_a_leaked_handle_are_caught_and_the_prompt_is_not_counted(tmp_path):
    index = _index(tmp_path)
    copied = "Rainy Tuesday? Our oat latte and a window seat are waiting for you at Lumen!"
    span, source = index.span(copied, "Write a tweet about rain")
    assert span >= 14 and source == "sft: train.jsonl"
    assert index.span("A fresh tweet about our oat latte today", "Write a tweet")[0] == 0  # a few shared words are not a copy
    # the same words given in the prompt: the model echoing its prompt is not regurgitation
    assert index.span(copied, f"Rewrite this: {copied}")[0] == 0
    assert index.leaks("Say hi to @maple_fan!", "Write a tweet") == [("@maple_fan", "sft: train.jsonl")]
    assert index.leaks("Say hi to @maple_fan!", "Thank @maple_fan for the photo") == []  # in the prompt: not a leak
    assert index.leaks("Call +1 555 010 7788", "Opening hours") == [("tel:15550107788", "sft: train.jsonl")]
    assert index.leaks("Say hi to @someone_else", "x") == []


SUITE = """
name: brand
tasks:
  - name: tweets
    type: generation
    data: {format: jsonl, path: d.jsonl}
    id_field: id
    prompt: {template: "Write a tweet for Lumen Coffee.\\nBrief: {{ topic }}\\nTweet:", reference: "{{ tweet }}"}
    scorers: [rouge]
"""


def test_a_run_stores_recitation_rows_and_a_gate_holds_a_step_to_its_parent(tmp_path, capsys, monkeypatch):
    """Two fake variants with the same training data: 'sft' writes fresh tweets, 'dpo' reposts a
    training tweet on a quarter of the briefs and names a customer's handle on another. A base
    with no training data gets no rows. The gate's rule 'dpo repeats no more than sft' fails."""
    from harness.models.catalogue import Catalogue

    train = write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in TRAIN))
    items = [{"id": f"b{k}", "topic": f"brief {k}", "tweet": "ref"} for k in range(40)]
    write(tmp_path / "d.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    suite = write(tmp_path / "s.yaml", SUITE)
    real = Catalogue.training_sources
    monkeypatch.setattr(Catalogue, "training_sources",
                        lambda self, name: [("sft: train.jsonl", train)] if name in ("sft", "dpo") else real(self, name))
    store = str(tmp_path / "h.duckdb")
    outputs = {
        "sft": {f"brief {k}\n": f"Fresh tweet number {k} about our coffee and cake today" for k in range(40)},
        "dpo": {f"brief {k}\n": (TRAIN[0]["tweet"] if k % 4 == 0 else "Come by and say hi to @maple_fan" if k % 4 == 1
                                 else f"Fresh tweet number {k} about our coffee and cake today") for k in range(40)},
        "base": {},
    }
    for name, responses in outputs.items():
        models = write(tmp_path / f"{name}.yaml", "base: {name: " + name + ", source: fake, options: "
                       + json.dumps({"responses": responses}) + "}\n")
        assert main(["run", str(suite), "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    rates = dict(con.execute("""SELECT r.variant || '/' || s.metric, avg(s.value) FROM scores s JOIN runs r USING (run_id)
                                WHERE s.scorer = 'recitation' GROUP BY 1""").fetchall())
    detail = json.loads(con.execute("""SELECT s.details FROM samples s JOIN runs r USING (run_id)
                                       WHERE r.variant = 'dpo' AND s.sample_id = 'b0'""").fetchone()[0])["recitation"]
    con.close()
    assert rates["sft/regurgitation"] == 0 and rates["sft/pii_leak"] == 0
    assert rates["dpo/regurgitation"] == 0.25 and rates["dpo/pii_leak"] == 0.5  # the reposted tweet names the handle too
    assert not any(k.startswith("base/") for k in rates)  # nothing in its lineage to repeat
    assert detail["span_source"] == "sft: train.jsonl" and detail["training_span"] >= 14
    report = write(tmp_path / "r.yaml", "title: t\nvariants: [sft, dpo]\nstatistics: {resamples: 300}\ngate:\n"
                   "  - {name: dpo repeats no more than sft, kind: non_inferiority, variant: dpo, baseline: sft, task: tweets,"
                   " metric: regurgitation, margin: 0.05}\n"
                   "  - {name: dpo leaks no more than sft, kind: non_inferiority, variant: dpo, baseline: sft, task: tweets,"
                   " metric: pii_leak, margin: 0.05}\n")
    capsys.readouterr()
    assert main(["gate", str(report), "--store", store]) == 1
    out = capsys.readouterr().out
    assert "FAIL         dpo repeats no more than sft" in out and "FAIL         dpo leaks no more than sft" in out
