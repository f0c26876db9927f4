"""Load tasks and `harness load`: open-loop Poisson arrivals against a served model, latency
from each request's arrival, the SLO decided per rate with order-statistic bounds, the highest
rate that meets it. Against a fake OpenAI-compatible server on loopback with a fixed capacity."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from tests.conftest import write
from tests.fake_openai_server import FakeOpenAIServer

SUITE = """
name: capacity
seed: 7
tasks:
  - name: serve
    type: load
    data: {format: jsonl, path: briefs.jsonl}
    id_field: id
    prompt: {template: "Brief: {{ brief }}"}
    generation: {max_new_tokens: 4}
    load:
      rates: [10, 20, 400]
      requests_per_rate: 40
      slo: {percentile: 90, latency_ms: 150}
      price_per_hour: 3.6
"""


@pytest.fixture
def capacity(tmp_path):
    write(tmp_path / "briefs.jsonl", "".join(json.dumps({"id": f"b{i}", "brief": f"brief number {i}"}) + "\n" for i in range(8)))
    return write(tmp_path / "s.yaml", SUITE)


def test_arrivals_are_poisson_and_seeded():
    import numpy as np

    from harness.tasks.kinds.load import arrivals

    times = arrivals(4.0, 4000, seed=1)
    gaps = np.diff([0.0] + times)
    assert abs(gaps.mean() - 0.25) < 0.02 and abs(gaps.std() - 0.25) < 0.02  # exponential: sd equals the mean
    assert arrivals(4.0, 50, seed=1) == times[:50] and arrivals(4.0, 50, seed=2) != times[:50]


def test_load_finds_the_rate_a_limited_server_sustains(capacity, tmp_path, capsys):
    """One request at a time, 10 ms each (100 req/s): 10 and 20 req/s meet p90 <= 150 ms; at 400
    req/s the queue grows past it. The capacity is 20 req/s, with its cost from the price."""
    store = tmp_path / "h.duckdb"
    with FakeOpenAIServer(reply=lambda p: "one two three four", first_delay_s=0.01, slots=1) as server:
        code = main(["load", str(capacity), "--model", f"endpoint:{server.url},model=m,name=served", "--store", str(store)])
        assert code == 0
        assert server.max_in_flight > 1  # open loop: arrivals do not wait for earlier requests
    out = capsys.readouterr().out
    assert "capacity at the SLO: 20 requests/s" in out and "misses" in out
    con = duckdb.connect(str(store), read_only=True)
    stats = {m: (v, lo, hi, w) for m, v, lo, hi, w in con.execute("SELECT metric, value, low, high, warning FROM run_stats").fetchall()}
    n = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    con.close()
    assert stats["load_max_rate_at_slo"][0] == 20
    assert stats["load_slo_met_600rpm"][0] == 1 and stats["load_slo_met_1200rpm"][0] == 1 and stats["load_slo_met_24000rpm"][0] == 0
    assert "misses" in stats["load_slo_met_24000rpm"][3]
    low, high = stats["load_latency_s_p90_600rpm"][1:3]
    assert 0.01 <= low <= stats["load_latency_s_p90_600rpm"][0] <= high <= 0.15
    assert stats["load_latency_s_p90_24000rpm"][1] > 0.15
    assert n == 120
    report = write(tmp_path / "r.yaml", "title: capacity\nvariants: [served]\n")
    assert main(["report", str(report), "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Capacity at the SLO: p90 latency &le; 150 ms" in html and "<polyline" in html
    assert html.count(">meets<br>") == 2 and html.count(">misses<br>") == 1 and "<b>20</b>/s" in html
    # cost at the capacity: 3.6 per hour = 0.001 per second, over the tokens per second measured at 20 req/s
    assert stats["load_cost_per_1k_output_tokens_at_slo"][0] == pytest.approx(0.001 / stats["load_output_tokens_per_s_1200rpm"][0] * 1000)


def test_a_percentile_rule_on_a_load_run_is_decided_from_the_stored_requests(capacity, tmp_path, capsys):
    store = tmp_path / "h.duckdb"
    with FakeOpenAIServer(reply=lambda p: "one two", first_delay_s=0.01, slots=1) as server:
        assert main(["load", str(capacity), "--model", f"endpoint:{server.url},model=m,name=served", "--store", str(store),
                     "--rates", "20", "400"]) == 0
    report = write(tmp_path / "r.yaml", """
        title: capacity
        variants: [served]
        gate:
          - {variant: served, task: serve, metric: load_latency_s_p90_1200rpm, max: 0.15}
          - {variant: served, task: serve, metric: load_latency_s_p90_24000rpm, max: 0.15}
        """)
    capsys.readouterr()
    assert main(["gate", str(report), "--store", str(store)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PASS") and lines[1].startswith("FAIL")


def test_unreachable_server_and_in_process_backend_are_exit_2_before_any_request(capacity, tmp_path, capsys):
    store = tmp_path / "h.duckdb"
    assert main(["load", str(capacity), "--model", "endpoint:http://127.0.0.1:9/v1,model=m", "--store", str(store)]) == 2
    assert "no server answers" in capsys.readouterr().err
    assert main(["load", str(capacity), "--model", "fake", "--store", str(store)]) == 2
    assert "load tasks drive a served model over HTTP" in capsys.readouterr().err
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    con.close()


@pytest.mark.parametrize("change, said", [
    ("rates: [2, 1]", "rates must increase"),
    ("rates: [0.33]", "whole number of requests per minute"),
    ("requests_per_rate: 20", "can't bound a p90"),
])
def test_bad_load_specs_are_exit_2(capacity, tmp_path, capsys, change, said):
    key = change.split(":")[0]
    text = "\n".join(line if not line.strip().startswith(key + ":") else f"      {change}" for line in capacity.read_text().splitlines())
    bad = write(tmp_path / "bad.yaml", text + "\n")
    assert main(["validate", str(bad)]) == 2
    assert said in capsys.readouterr().out + capsys.readouterr().err


def test_load_without_load_tasks_says_so(workspace, tmp_path, capsys):
    assert main(["load", str(workspace / "suites" / "gen.yaml"), "--model", "endpoint:http://127.0.0.1:9/v1,model=m",
                 "--store", str(tmp_path / "h.duckdb")]) == 2
    assert "no task of type load" in capsys.readouterr().err


def test_an_override_the_load_spec_refuses_is_exit_2(capacity, tmp_path, capsys):
    assert main(["load", str(capacity), "--model", "endpoint:http://127.0.0.1:9/v1,model=m", "--requests", "10",
                 "--store", str(tmp_path / "h.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "can't bound a p90" in err and "requests_per_rate" in err
