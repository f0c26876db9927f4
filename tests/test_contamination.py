"""Contamination: eval items checked against the training sets of the evaluated variant's
lineage and the suite's corpora, stored as score rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from harness.analysis.contamination import Index, ngram_hashes, words
from tests.conftest import REPO, write


def test_normalisation_and_hashing():
    assert words("Hello, FRIENDS!! Our  café ☕ opens at 7am.") == ["hello", "friends", "our", "café", "opens", "at", "7am"]
    import numpy as np

    ids = np.arange(1, 21, dtype=np.uint64)
    h = ngram_hashes(ids, 13)
    assert len(h) == 8 and len(set(h.tolist())) == 8
    assert ngram_hashes(ids[5:18], 13)[0] == h[5]  # the same words hash the same wherever they stand
    assert len(ngram_hashes(ids[:5], 13)) == 0


def test_overlap_fraction_source_and_short_fields():
    idx = Index(n=5)
    idx.add_texts("sft: train.jsonl", ["one two three four five six seven", "open at seven on sunday"])
    idx.add_texts("corpus: web.txt", ["alpha beta gamma delta epsilon"])
    r = idx.check({"text": "one two three four five six seven eight nine ten"})
    # 6 five-word runs, 3 of them in the training text
    assert r.contaminated and r.overlap == pytest.approx(3 / 6) and r.source == "sft: train.jsonl" and r.field == "text"
    assert idx.check({"ref": "Alpha, beta; GAMMA delta epsilon!"}).source == "corpus: web.txt"
    short = idx.check({"brief": "at seven on sunday"})  # 4 words < n: found whole inside a training text
    assert short.contaminated and short.overlap == 1.0
    assert not idx.check({"brief": "at eight on sunday"}).contaminated
    assert not idx.check({"answer": "seven"}).contaminated  # too short to say anything
    strict = Index(n=5, threshold=0.6)
    strict.add_texts("s", ["one two three four five six seven"])
    assert not strict.check({"text": "one two three four five six seven eight nine ten"}).contaminated


def test_the_shipped_brand_test_split_is_clean_and_a_planted_copy_is_found():
    """The demo data is split by a hash of the normalised brief and generated so that no tweet
    shares a 13-word run with a tweet of another brief: the check finds nothing; a training row
    copied into the test split is found, with its source."""
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "test.jsonl").read_text().splitlines()]
    train = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text().splitlines()]
    idx = Index()
    idx.add_file(REPO / "data" / "brand" / "train.jsonl", "sft: train.jsonl")
    idx.add_file(REPO / "data" / "brand" / "validation.jsonl", "sft: validation.jsonl")
    assert not {r["topic"] for r in rows} & {r["topic"] for r in train}
    assert [idx.check({"topic": r["topic"], "reference": r["tweet"]}).contaminated for r in rows] == [False] * len(rows)
    planted = idx.check({"topic": train[7]["topic"], "reference": train[7]["tweet"]})
    assert planted.contaminated and planted.overlap == 1.0 and planted.source == "sft: train.jsonl"


def test_training_sources_follow_the_lineage(tmp_path):
    from harness.models.catalogue import Catalogue

    write(tmp_path / "sft.jsonl", '{"q": "a", "a": "b"}\n')
    write(tmp_path / "pairs.jsonl", '{"q": "a", "a": "b"}\n')
    write(tmp_path / "val.jsonl", '{"q": "a", "a": "b"}\n')  # only scored during training: not a training set
    models = write(tmp_path / "m.yaml", """
        base: {name: base, source: fake}
        variants:
          - name: sft
            parent: base
            method: sft_lora
            config: {data: {path: sft.jsonl, validation_path: val.jsonl, prompt: "{{ q }}", completion: " {{ a }}"}}
          - name: dpo
            parent: sft
            method: dpo
            config: {data: {source: pairs, path: pairs.jsonl, prompt: "{{ q }}", chosen: "{{ a }}", rejected: "{{ q }}"}}
        """)
    catalogue = Catalogue.load(models)
    assert [label for label, _ in catalogue.training_sources("dpo")] == ["dpo: pairs.jsonl", "sft: sft.jsonl"]
    assert catalogue.training_sources("base") == []


def test_a_run_stores_contamination_rows_from_the_suites_corpora(tmp_path, capsys):
    """A fake base has no training data; a suite corpus with one planted item is found, with its
    source, as score rows and in the sample's details."""
    from harness.cli import main

    items = [{"id": f"i{k}", "topic": f"write about the harbour light roast number {k} for the autumn menu", "tweet": "x"}
             for k in range(4)]
    write(tmp_path / "d.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    write(tmp_path / "web.txt", "Leaked: write about the harbour light roast number 2 for the autumn menu, said the blog.\n")
    models = write(tmp_path / "m.yaml", "base: {name: fake-c, source: fake}\n")
    suite = write(tmp_path / "s.yaml", """
        name: c
        contamination: {n: 8, corpora: [web.txt]}
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ topic }}", reference: "{{ tweet }}"}
            scorers: [exact_match]
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    flagged = con.execute("SELECT sample_id FROM scores WHERE metric = 'contaminated' AND value = 1").fetchall()
    details = json.loads(con.execute("SELECT details FROM samples WHERE sample_id = 'i2'").fetchone()[0])
    con.close()
    assert flagged == [("i2",)]
    assert details["contamination"]["source"] == "corpus: web.txt" and details["contamination"]["overlap"] == 1.0
    # the report shows the share and the headline on clean items; gate rules bound it or use clean items only
    report = write(tmp_path / "r.yaml", """
        title: C
        variants: [fake-c]
        headline: {t: exact_match}
        gate:
          - {variant: fake-c, task: t, metric: contaminated, max: 0.9}
          - {variant: fake-c, task: t, metric: exact_match, max: 1.0, clean_only: true}
          - {variant: fake-c, task: t, metric: corpus_bleu, min: 0, clean_only: true}
        """)
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "<h2>Contamination</h2>" in html and "1 of 4 (25%)" in html and "corpus: web.txt (1)" in html
    main(["gate", str(report), "--store", str(store)])
    out = capsys.readouterr().out
    assert "fake-c t/contaminated <= 0.9" in out
    assert "t/exact_match (clean items) <= 1: " in out and "on the 3 items clear of fake-c's training data" in out
    assert "clean_only applies to per-item metrics" in out
    write(tmp_path / "s.yaml", Path(suite).read_text().replace("corpora: [web.txt]", "corpora: [gone.txt]"))
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 2  # a missing corpus is an error
