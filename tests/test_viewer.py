"""`harness view`: the read-only web app over the store. Pages, filters and errors through
Starlette's test client; navigation, filters, the word diff, a 390 px phone and inert stored
script in headless Chromium (skipped, saying why, where no Chromium is installed)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from harness.cli import main
from harness.store.db import JudgmentRow, RunRow, SampleRow, ScoreRow, Store, VariantRow

pytest.importorskip("starlette", reason="starlette is not installed (pip install 'harness[view]')")

NOW = datetime(2026, 11, 28, 12, 0)
PAYLOADS = ['<script>window.__pwned = 1</script>', '<img src="x" onerror="window.__pwned = 2">',
            '"><svg onload="window.__pwned = 3">', '<a href="javascript:window.__pwned=4">click</a>',
            "the cat sat on the mat", "plain text"]
N = len(PAYLOADS)


def _run(run_id: str, variant: str, task: str, task_type: str = "generation", metrics=("exact_match", "rougeL"), **kw) -> RunRow:
    return RunRow(run_id, f"key-{run_id}", "brand", "h", task, task_type, json.dumps(list(metrics)), variant, f"vk-{variant}",
                  "fake", "cpu", "float32", "d", "p", json.dumps({"max_new_tokens": 8}), 0, "0.7.0", "abc123",
                  kw.pop("started", NOW), kw.pop("started", NOW), 1.0, kw.pop("n", N), **kw)


def build_store(path: Path) -> Path:
    """base -> sft; a generation task `tweets` whose prompts, outputs and references carry script,
    categories, one contaminated item, hallucination claims; a pairwise judge task over it whose
    judge disagrees between orders on item i1; a partial run of a second task."""
    with Store(path) as store:
        for name, parent in (("base", None), ("sft", "base")):
            store.upsert_variant(VariantRow(f"vk-{name}", name, f"vk-{parent}" if parent else None, parent,
                                            "base" if parent is None else "sft_lora", None, None,
                                            "base" if parent is None else "adapter", None, 1000, 10 if parent else None, 100,
                                            json.dumps([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]) if parent else None,
                                            None, 3.0, None, "cpu", None, None, NOW - timedelta(days=1)))
        for variant in ("base", "sft"):
            rid = f"{variant}-tweets"
            samples, scores = [], []
            for k, p in enumerate(PAYLOADS):
                out = f"{variant} says {p}" if k != 4 else ("the cat sat on the mat" if variant == "base" else "a dog sat on the red mat")
                details = {"category": "promo" if k % 2 else "news",
                           "hallucination": {"verifier": "lexical", "sources": [f"source <b>{k}</b>"],
                                             "claims": [{"claim": f"claim {p}", "supported": k % 2 == 0, "support": 0.5,
                                                         "evidence": f"evidence {p}", "novel": ["Mars"] if k % 2 else []}]}}
                samples.append(SampleRow(rid, f"i{k}", f"prompt {p}", f"ref {p}", out, json.dumps(details), content_hash=f"c{k}"))
                # base right on every item; sft wrong on i0 and i2 (flips), right on the rest
                right = variant == "base" or k not in (0, 2)
                scores += [ScoreRow(rid, f"i{k}", "exact_match", "exact_match", float(right)),
                           ScoreRow(rid, f"i{k}", "rouge", "rougeL", 0.1 * k + (0.05 if variant == "sft" else 0)),
                           ScoreRow(rid, f"i{k}", "contamination", "contaminated", float(k == 3))]
            store.write_task_run(_run(rid, variant, "tweets"), samples, scores)
        # the judge: sft vs base, both orders per item; on i1 the orders disagree
        jid = "sft-judge"
        judgments, jsamples, jscores = [], [], []
        for k in range(N):
            for pos_i, pos in enumerate(("candidate_first", "candidate_second")):
                winner = "baseline" if (k == 1 and pos == "candidate_second") else "candidate"
                judgments.append(JudgmentRow(jid, f"i{k}", 2 * k + pos_i, "item", pos, 0, "pairwise", "A", winner, None, None, None,
                                             True, None, f"Reasoning {pos} on i{k}: {PAYLOADS[k]} [[A]]", 10, 10, False, 0.1, 1))
            jsamples.append(SampleRow(jid, f"i{k}", f"judge prompt {k}", None, "candidate", "{}"))
            jscores.append(ScoreRow(jid, f"i{k}", "judge", "win_rate", 1.0 if k != 1 else 0.5))
        store.write_task_run(_run(jid, "sft", "tweets_judge", "judge_pairwise", ("win_rate",),
                                  judge=json.dumps({"model": "judge-m", "baseline": "base", "judged_run": "sft-tweets",
                                                    "baseline_run": "base-tweets"})), jsamples, jscores, judgments)
        store.write_task_run(_run("base-quiz", "base", "quiz", "multiple_choice", ("acc",), partial=True, n_items_total=40, n=2,
                                  started=NOW - timedelta(days=3)),
                             [SampleRow("base-quiz", f"q{k}", f"question {k}", "A", "A", "{}") for k in range(2)],
                             [ScoreRow("base-quiz", f"q{k}", "acc", "acc", 1.0) for k in range(2)])
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("view") / "v.duckdb")


@pytest.fixture(scope="module")
def client(store):
    from starlette.testclient import TestClient

    from harness.viewer.app import create_app

    return TestClient(create_app(store))


def test_runs_page_lists_and_filters_runs(client):
    page = client.get("/runs")
    assert page.status_code == 200 and page.text.count('class="run"') == 4
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/runs?task=quiz").text.count('class="run"') == 1
    assert client.get("/runs?status=partial").text.count('class="run"') == 1
    assert client.get("/runs?status=complete&variant=sft").text.count('class="run"') == 2
    assert client.get("/runs?since=2026-11-27").text.count('class="run"') == 3  # the partial quiz run is older
    assert client.get("/runs?until=2026-11-26").text.count('class="run"') == 1
    bad = client.get("/runs?since=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


def test_run_page_shows_provenance_and_metrics_with_intervals(client):
    page = client.get("/runs/sft-tweets")
    assert page.status_code == 200
    for fact in ("key-sft-tweets", "vk-sft", "abc123", "max_new_tokens", "exact_match", "rougeL"):
        assert fact in page.text
    assert "[" in page.text and "n=" not in page.text.split("Metrics")[0]
    missing = client.get("/runs/nope")
    assert missing.status_code == 404 and "no run" in missing.text


def test_task_table_links_each_cell_to_its_items(client):
    page = client.get("/tasks/brand/tweets")
    assert page.status_code == 200
    # base is right on all 6 items, sft on 4 of 6
    assert '>1</a> <span class="ci">[1, 1] n=6' in page.text and ">0.6667</a>" in page.text
    assert "/tasks/brand/tweets/items?variant=sft&amp;metric=exact_match" in page.text
    items = client.get("/tasks/brand/tweets/items?variant=sft&metric=exact_match&max=0.5")
    assert items.text.count('class="item"') == 2 and "i0" in items.text and "i2" in items.text


def test_item_filters(client):
    url = "/tasks/brand/tweets/items"
    count = lambda query: client.get(f"{url}?{query}").text.count('class="item"')  # noqa: E731
    assert count("") == 2 * N
    assert count("flip_from=base&flip_to=sft&metric=exact_match") == 2  # right -> wrong
    assert count("flip_from=sft&flip_to=base&metric=exact_match") == 0
    assert count("flip_from=base&flip_to=sft&metric=rougeL") == 0  # sft's rougeL is higher on every item
    assert count("flip_from=sft&flip_to=base&metric=rougeL") == N
    assert count("category=promo") == N and count("category=promo&variant=base") == N // 2
    assert count("contaminated=1") == 2 and count("contaminated=1&variant=sft") == 1
    assert count("q=cat+sat") == 2 and count("q=RED+MAT") == 1  # both prompts; one output and count("q=%25") == 0  # % is literal, not a wildcard
    assert count("min=0.3&metric=rougeL&variant=base") == 3
    judge = client.get("/tasks/brand/tweets_judge/items?disagree=1")
    assert judge.text.count('class="item"') == 1 and ">i1<" in judge.text
    for bad in ("metric=nope", "variant=ghost", "flip_from=base", "min=abc", "page=0"):
        assert client.get(f"{url}?{bad}").status_code == 400, bad


def test_item_page_diffs_outputs_and_shows_scores_judge_and_claims(client):
    page = client.get("/tasks/brand/tweets/items/i4")
    assert page.status_code == 200
    assert "<del>the cat</del>" in page.text and "<ins>a dog</ins>" in page.text and "<ins>red </ins>" in page.text
    assert "diff against" in page.text and '<option selected>base</option>' in page.text  # the root of the lineage
    assert "claim the cat sat" in page.text and "not in the sources: Mars" not in page.text
    judge = client.get("/tasks/brand/tweets/items/i1")
    assert "Reasoning candidate_first on i1" in judge.text and "Reasoning candidate_second on i1" in judge.text
    assert "not in the sources: Mars" in judge.text and "source &lt;b&gt;1&lt;/b&gt;" in judge.text
    flipped = client.get("/tasks/brand/tweets/items/i4?baseline=sft")
    assert "<ins>the cat</ins>" in flipped.text and "<del>a dog</del>" in flipped.text
    assert client.get("/tasks/brand/tweets/items/i4?baseline=ghost").status_code == 400
    assert client.get("/tasks/brand/tweets/items/zzz").status_code == 404


def test_stored_text_is_escaped_everywhere(client):
    for url in ("/runs", "/tasks/brand/tweets/items", "/tasks/brand/tweets/items/i0", "/tasks/brand/tweets/items/i1",
                "/tasks/brand/tweets/items?q=" + quote("<script>")):
        text = client.get(url).text
        assert "<script>" not in text and "onerror=" not in text.replace("onerror=&#34;", "").replace("onerror=&quot;", ""), url
        assert "<svg onload" not in text and 'href="javascript:' not in text, url


def test_word_diff_rebuilds_both_texts():
    """Joined, the equal and insert segments are the output, the equal and delete ones the baseline."""
    import random

    from harness.viewer.diff import changed_words, word_diff

    rng = random.Random(0)
    words = ["a", "b", "c", "the", "cat", ",", ".", "  ", "\n", "<i>"]
    for _ in range(300):
        a = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        b = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        segments = word_diff(a, b)
        assert "".join(s.text for s in segments if s.op != "delete") == b
        assert "".join(s.text for s in segments if s.op != "insert") == a
        assert (a == b) == all(s.op == "equal" for s in segments)
    assert changed_words(word_diff("the cat sat", "a dog sat")) == (2, 2)


def test_lineage_page_shows_the_tree_and_each_steps_delta(client):
    page = client.get("/lineage")
    assert page.status_code == 200 and "base → sft" in page.text
    assert "<svg" in page.text and "exact_match" in page.text and "n=6" in page.text


def test_the_viewer_writes_nothing_and_answers_only_get(client, store):
    before = store.read_bytes()
    for url in ("/runs", "/tasks/brand/tweets", "/tasks/brand/tweets/items?q=x", "/lineage", "/runs/sft-tweets"):
        assert client.get(url).status_code == 200
    assert client.post("/runs").status_code == 405
    assert store.read_bytes() == before


def test_a_run_can_commit_while_the_viewer_is_open(client, tmp_path):
    """The viewer holds the store only while answering: a writer commits between two page loads."""
    path = build_store(tmp_path / "w.duckdb")
    from starlette.testclient import TestClient

    from harness.viewer.app import create_app

    viewer = TestClient(create_app(path))
    assert viewer.get("/runs").text.count('class="run"') == 4
    with Store(path) as writer:
        writer.write_task_run(_run("extra", "base", "other"), [SampleRow("extra", "x", "p", None, "o", "{}")],
                              [ScoreRow("extra", "x", "exact_match", "exact_match", 1.0)])
    assert viewer.get("/runs").text.count('class="run"') == 5


def test_older_store_is_not_migrated_by_the_viewer(tmp_path):
    path = build_store(tmp_path / "old.duckdb")
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("DELETE FROM schema_migrations WHERE name = (SELECT max(name) FROM schema_migrations)")
    con.close()
    before = path.read_bytes()
    assert main(["view", "--store", str(path), "--no-browser", "--port", "0"]) == 2
    assert path.read_bytes() == before


def test_missing_store_and_taken_port_are_exit_2(tmp_path, store, capsys):
    import socket

    assert main(["view", "--store", str(tmp_path / "none.duckdb"), "--no-browser"]) == 2
    assert "no results store" in capsys.readouterr().err
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        assert main(["view", "--store", str(store), "--no-browser", "--port", str(taken.getsockname()[1])]) == 2
        assert "in use" in capsys.readouterr().err
    finally:
        taken.close()
    assert main(["view", "--store", str(store), "--no-browser", "--port", "70000"]) == 2


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(store):
    """The viewer on a free port in a thread, as `harness view` serves it."""
    from harness.viewer.serve import make_server

    server, sock, url = make_server(store, port=0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url.removesuffix("/runs")
    server.should_exit = True
    thread.join(timeout=10)


def _browser():
    from harness.report.browser import find_browser

    if find_browser() is None:
        pytest.skip("no Chromium on PATH (make test installs it with apt-get when it can)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install 'harness[browser]')")
    from harness.report.browser import Tab, session

    return Tab, session


def test_in_chromium_navigation_filters_and_diff(served):
    Tab, session = _browser()
    with session() as cdp:
        tab = Tab(cdp, width=1280)
        tab.goto(served + "/runs")
        assert tab.evaluate("document.querySelectorAll('tr.run').length") == 4
        # filter with the form, as a person would
        tab.evaluate("document.querySelector('select[name=status]').value = 'partial'")
        url = tab.click("#apply")
        assert "status=partial" in url and tab.evaluate("document.querySelectorAll('tr.run').length") == 1
        tab.goto(served + "/runs?task=tweets")
        url = tab.click("a.task")
        assert url.endswith("/tasks/brand/tweets")
        url = tab.click("a.cell")  # base's exact_match
        assert "variant=base" in url and tab.evaluate("document.querySelectorAll('tr.item').length") == N
        tab.goto(served + "/tasks/brand/tweets/items?flip_from=base&flip_to=sft&metric=exact_match")
        assert tab.evaluate("document.querySelectorAll('tr.item').length") == 2
        url = tab.click("a.item-link")
        assert "/items/i0" in url and "baseline=base" in url
        tab.goto(served + "/tasks/brand/tweets/items/i4")
        assert tab.evaluate("[...document.querySelectorAll('pre.diff ins')].map(e => e.textContent)") == ["a dog", "red "]
        assert tab.evaluate("[...document.querySelectorAll('pre.diff del')].map(e => e.textContent)") == ["the cat"]
        result = tab.result(served)
        assert result.console_errors == [] and result.requests == []


@pytest.mark.parametrize("width", [1280, 390])
def test_in_chromium_stored_script_stays_inert_and_pages_fit(served, width, tmp_path):
    Tab, session = _browser()
    pages = ["/runs", "/runs/sft-tweets", "/tasks/brand/tweets", "/tasks/brand/tweets/items",
             "/tasks/brand/tweets/items/i0", "/tasks/brand/tweets/items/i1", "/tasks/brand/tweets/items/i3", "/lineage"]
    with session() as cdp:
        for path in pages:
            tab = Tab(cdp, width=width)
            tab.goto(served + path)
            assert tab.evaluate("typeof window.__pwned") == "undefined", path
            assert tab.evaluate("document.scripts.length") == 0, path
            result = tab.result(served)
            assert result.console_errors == [] and result.requests == [], (path, result)
            assert result.fits, f"{path} scrolls sideways at {width}px: {result.scroll_width}px wide"
        tab.goto(served + "/tasks/brand/tweets/items/i0")
        assert tab.evaluate("document.body.innerText.includes('<script>window.__pwned = 1</script>')")  # shown as text
        tab.screenshot(tmp_path / "item.png", max_height=1200)
        assert (tmp_path / "item.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_the_view_extra_the_command_names_it(store, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert main(["view", "--store", str(store), "--no-browser", "--port", "0"]) == 2
    assert "harness[view]" in capsys.readouterr().err


def test_runs_list_headline_carries_an_interval(client):
    """sft's exact_match on tweets: 4 of 6 right, mean 0.6667, 1.96 SE = 0.413: [0.2535, 1] (a 0/1
    metric's interval ends at 1)."""
    import math

    page = client.get("/runs?variant=sft&task=tweets").text
    half = 1.959964 * math.sqrt((4 * (1 / 3) ** 2 + 2 * (2 / 3) ** 2) / 5) / math.sqrt(6)
    assert f"exact_match 0.6667 <span class=\"ci\">[{2 / 3 - half:.4g}, 1] n=6" in page
