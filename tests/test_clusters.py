"""Correlated items are resampled as clusters: a task's cluster_field, HaluEval's two answers over
one passage, a conversation's turns. Intervals widen on planted correlated pairs, gates say how
many clusters they resampled, and a misspelt cluster_field is a clear error."""

from __future__ import annotations

import json

import numpy as np

from harness.cli import main
from harness.stats.clusters import clustered_mean_test, is_clustered
from harness.stats.intervals import bootstrap_mean
from tests.conftest import write

SUITE = """
name: passages
tasks:
  - name: quiz
    type: multiple_choice
    data: {format: jsonl, path: items.jsonl}
    cluster_field: passage
    prompt: {template: "{{ passage }} {{ q }}\\nA. {{ options[0] }}\\nB. {{ options[1] }}\\nAnswer:"}
    multiple_choice: {choices_field: options, answer_field: gold}
    scorers: [acc]
"""


def test_clustered_intervals_widen_on_correlated_pairs():
    """Every value appears twice (two items per cluster, perfectly correlated): resampling items
    as independent halves the variance the interval sees; resampling clusters does not."""
    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(0, 1, 60), 2)
    labels = np.repeat(np.arange(60), 2).tolist()
    independent = bootstrap_mean(x, 2000, 0.95, 0)
    clustered = bootstrap_mean(x, 2000, 0.95, 0, clusters=labels)
    assert clustered.mean == independent.mean
    ratio = (clustered.high - clustered.low) / (independent.high - independent.low)
    assert 1.25 < ratio < 1.6  # sqrt(2) in expectation
    # clusters of one are the plain bootstrap
    same = bootstrap_mean(x, 2000, 0.95, 0, clusters=list(range(len(x))))
    assert (same.low, same.high) == (independent.low, independent.high)


def test_clustered_test_counts_clusters_and_handles_unequal_sizes():
    values = {f"i{k}": float(k % 3) for k in range(12)}
    pairs = {f"i{k}": f"c{k // 2}" for k in range(12)}
    assert is_clustered(pairs, values) and not is_clustered({}, values)
    o = clustered_mean_test(values, pairs, 0.5, 0.05, 500, 0, support=(0, 2))
    assert o.n == 12 and "6 clusters of 2 items" in o.method
    uneven = {**pairs, "i11": "c0"}
    o = clustered_mean_test(values, uneven, 0.5, 0.05, 500, 0)
    assert "cluster bootstrap" in o.method and "6 clusters of 1-3 items" in o.method


def test_cluster_field_is_stored_and_the_gate_resamples_clusters(tmp_path, capsys):
    write(tmp_path / "s.yaml", SUITE)
    (tmp_path / "items.jsonl").write_text("".join(
        json.dumps({"passage": f"Passage {i // 2}.", "q": f"Question {i}?", "options": ["yes", "no"], "gold": i % 2}) + "\n"
        for i in range(24)))
    write(tmp_path / "a.yaml", "base: {name: a, source: fake, options: {favour: [A]}}\n")
    store = str(tmp_path / "h.duckdb")
    assert main(["run", str(tmp_path / "s.yaml"), "--models", str(tmp_path / "a.yaml"), "--store", store]) == 0
    import duckdb

    con = duckdb.connect(store, read_only=True)
    clusters = con.execute("SELECT cluster, count(*) FROM samples GROUP BY cluster").fetchall()
    con.close()
    assert len(clusters) == 12 and all(n == 2 for _, n in clusters)
    report = write(tmp_path / "r.yaml", """
        title: t
        variants: [a]
        statistics: {resamples: 300}
        gate:
          - {variant: a, task: quiz, metric: acc, min: 0.2}
        """)
    capsys.readouterr()
    main(["gate", str(report), "--store", store])
    assert "resampling 12 clusters of 2 items" in capsys.readouterr().out


def test_a_misspelt_cluster_field_is_a_clear_error(tmp_path, capsys):
    write(tmp_path / "s.yaml", SUITE.replace("cluster_field: passage", "cluster_field: pasage"))
    (tmp_path / "items.jsonl").write_text(json.dumps({"passage": "P.", "q": "Q?", "options": ["yes", "no"], "gold": 0}) + "\n")
    write(tmp_path / "a.yaml", "base: {name: a, source: fake}\n")
    assert main(["run", str(tmp_path / "s.yaml"), "--models", str(tmp_path / "a.yaml"), "--store", str(tmp_path / "h.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "cluster_field 'pasage' is not a field" in err and "passage" in err
    assert not (tmp_path / "h.duckdb").exists()


def test_halueval_pairs_share_a_cluster(tmp_path):
    from harness.data.loaders import LoadRequest, load_halueval

    path = tmp_path / "qa.json"
    path.write_text("".join(json.dumps({"knowledge": f"K{i}", "question": f"Q{i}", "right_answer": "r", "hallucinated_answer": "h"})
                            + "\n" for i in range(3)))
    records = load_halueval(LoadRequest(path))
    assert len(records) == 6 and len({r.cluster for r in records}) == 3
    assert {r.cluster for r in records[:2]} == {records[0].id.rsplit("-", 1)[0]}


def test_review_cases_do_not_pass_without_evidence():
    """Cases a review found passing on nothing: identical values whose float sd is 1e-17; an
    all-zero sample in clusters of unequal size; a paired all-zero difference in clusters."""
    from harness.stats.clusters import clustered_paired_test
    from harness.stats.hypothesis import one_sample_mean

    o = one_sample_mean([0.7] * 50, 0.71, 0.05, support=(0, 1))
    assert o.p_below > 0.05 and o.high > 0.71 and "no variation" in o.method
    assert one_sample_mean([0.7] * 50, 0.71, 0.05).p_below == 1.0  # no range: nothing bounds it
    sizes = [1, 2, 3] * 8  # 24 clusters, 48 items
    labels = [f"c{k}" for k, m in enumerate(sizes) for _ in range(m)]
    values = {f"i{j}": 0.0 for j in range(len(labels))}
    cluster_of = {f"i{j}": c for j, c in enumerate(labels)}
    o = clustered_mean_test(values, cluster_of, 0.05, 0.05, 300, 0, support=(0, 1))
    assert o.p_below > 0.05 and "24 clusters" in o.method
    noisy = {k: (0.1 if j % 5 == 0 else 0.0) for j, k in enumerate(values)}
    o = clustered_mean_test(noisy, cluster_of, 0.05, 0.05, 300, 0, support=(0, 1))
    assert "clusters of 1-3 items" in o.method and o.low <= o.estimate <= o.high
    o = clustered_paired_test(values, values, cluster_of, -0.02, 0.05, 300, 0, support=(0, 1))
    assert o.p_above > 0.05
    # one cluster: no interval, not a crash
    e = bootstrap_mean([0.0, 1.0, 0.5], clusters=["a", "a", "a"])
    assert e.mean == 0.5 and np.isnan(e.low)
