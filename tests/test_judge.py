"""LLM-as-judge: parsing, prompts, the OpenAI-compatible client against a fake loopback server
(order swap, position bias, retries, error rows, cache), health statistics, local judges."""

from __future__ import annotations

import json

import duckdb
import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.judge.clients import JudgeCall, OpenAIJudge
from harness.judge.health import PairCall, cohen_kappa, logistic_fit, pairwise_health
from harness.judge.parse import parse_dimensions, parse_rating, parse_verdict
from harness.judge.prompts import load_judge_prompts
from harness.judge.task import combine_orders, majority
from harness.store.journal import Journal
from tests.conftest import write
from tests.fake_judge_server import FakeJudgeServer, always_first, prefers_marker

# -- parsing and prompts ----------------------------------------------------------------------

def test_parse_mt_bench_conventions():
    assert parse_rating("The scale is [[1]] to [[10]]... Rating: [[7]]") == 7.0
    assert parse_rating("Rating: [8.5]") == 8.5
    assert parse_rating("Rating: [[11]]") is None and parse_rating("no rating") is None
    assert parse_verdict("so [[B]]") == "B" and parse_verdict("[[C]]") == "tie"
    assert parse_verdict("[[A]] or maybe [[B]]") is None and parse_verdict("A is better") is None
    assert parse_dimensions("Accuracy: [[7]]\n- relevance: [[9]]\nformat: 3", ("accuracy", "relevance", "format")) == \
        {"accuracy": 7.0, "relevance": 9.0, "format": None}


def test_shipped_prompts_cover_every_form_and_fill_literally():
    prompts = load_judge_prompts()
    for name in ("single", "single-ref", "pair", "pair-ref"):
        assert name in prompts and f"{name}-multi-turn" in prompts
    filled = prompts["pair"].fill({"question": "q {answer_a}", "answer_a": "def f(): return {1: 2}", "answer_b": "b"})
    assert "q {answer_a}" in filled and "{1: 2}" in filled  # values are never re-substituted
    with pytest.raises(ConfigError, match="needs answer_b"):
        prompts["pair"].fill({"question": "q", "answer_a": "a"})


def test_mt_bench_judge_prompt_file_format_loads(tmp_path):
    row = {"name": "pair-v2", "type": "pairwise", "system_prompt": "s", "output_format": "[[A]]",
           "prompt_template": "[User Question]\n{question}\n{answer_a}\n{answer_b}"}
    path = write(tmp_path / "jp.jsonl", json.dumps(row) + "\n")
    assert load_judge_prompts(path)["pair-v2"].fields == {"question", "answer_a", "answer_b"}
    bad = write(tmp_path / "bad.jsonl", json.dumps({"name": "x"}) + "\n")
    with pytest.raises(ConfigError, match="line 1: missing type"):
        load_judge_prompts(bad)


# -- statistics -------------------------------------------------------------------------------

def test_vote_and_order_combination_follow_fastchat():
    assert majority(["A", "A", "B"]) == "A" and majority(["A", "B"]) == "tie" and majority([]) is None
    assert combine_orders({"candidate_first": "candidate", "candidate_second": "candidate"}) == ("candidate", 0.0)
    assert combine_orders({"candidate_first": "candidate", "candidate_second": "baseline"}) == ("tie", 1.0)
    # order swap: an item with one order missing is unjudged, never decided from the other alone
    assert combine_orders({"candidate_first": None, "candidate_second": "baseline"}) == (None, None)
    assert combine_orders({"candidate_second": "baseline"}, both=False) == ("baseline", None)  # order: random


def test_kappa_and_logistic_fit():
    assert cohen_kappa(["A", "B", "A", "B"], ["A", "B", "A", "B"], ["A", "B", "tie"]) == pytest.approx(1.0)
    assert cohen_kappa(["A", "A", "B", "B"], ["A", "B", "A", "B"], ["A", "B", "tie"]) == pytest.approx(0.0)
    assert cohen_kappa([3, 4], [4, 3], list(range(1, 11)), "quadratic") < 1
    # outcome rises with x: positive slope; symmetric data: intercept ~ 0 (lc win rate 0.5)
    b0, b1 = logistic_fit([-2, -1, -1, 1, 1, 2] * 5, [0, 0, 1, 0, 1, 1] * 5)
    assert b1 > 0.3 and abs(b0) < 1e-6


def test_length_controlled_win_rate_removes_a_planted_length_preference():
    # The judge picks the longer answer 80% of the time, whoever wrote it; the candidate is the
    # longer one on 15 of 20 items, so its raw win rate (0.65) is inflated by length alone.
    calls = []
    outcomes = [(300, 100, i < 12) for i in range(15)] + [(100, 300, i < 1) for i in range(5)]
    for i, (lc, lb, cand_wins) in enumerate(outcomes):
        for pos in ("candidate_first", "candidate_second"):
            calls.append(PairCall(f"i{i}", pos, "candidate" if cand_wins else "baseline", lc, lb))
    final = {c.item: c.winner for c in calls}
    figures = {f.metric: f.estimate.mean for f in pairwise_health(calls, final, [], resamples=200)}
    assert figures["win_rate"] == pytest.approx(0.65)
    assert figures["longer_wins"] == pytest.approx(0.8) and figures["length_slope"] > 0.5
    assert figures["lc_win_rate"] == pytest.approx(0.5, abs=0.02)
    assert figures["consistency"] == 1.0 and figures["first_position_win_rate"] == pytest.approx(0.5)


# -- end to end against a fake OpenAI-compatible server ------------------------------------------

@pytest.fixture
def judged(tmp_path):
    items = [{"id": f"q{i}", "topic": f"topic {i}", "tweet": f"ref {i}"} for i in range(6)]
    write(tmp_path / "items.jsonl", "\n".join(json.dumps(x) for x in items) + "\n")
    write(tmp_path / "good.jsonl", "\n".join(json.dumps({"id": x["id"], "output": f"GOOD {x['topic']}"}) for x in items) + "\n")
    write(tmp_path / "bad.jsonl", "\n".join(json.dumps({"id": x["id"], "output": f"meh {x['topic']}"}) for x in items) + "\n")
    anchors = [{"question": "q", "answer_a": "GOOD a", "answer_b": "bad b", "human": "A"},
               {"question": "q", "answer_a": "bad a", "answer_b": "GOOD b", "human": "B"},
               {"question": "q", "answer_a": "fine", "answer_b": "fine too", "human": "tie"}]
    write(tmp_path / "anchors.jsonl", "\n".join(json.dumps(a) for a in anchors) + "\n")

    def run(url, order="swap", extra="", answers=("good", "bad"), rc=0, execute=True, model="fake-judge"):
        suite = write(tmp_path / "s.yaml", f"""
            name: judged
            tasks:
              - name: tweets
                type: generation
                data: {{format: jsonl, path: items.jsonl}}
                id_field: id
                prompt: {{template: "Write about {{{{ topic }}}}", reference: "{{{{ tweet }}}}"}}
              - name: vs_bad
                type: judge
                grading: pairwise
                of: tweets
                baseline: bad
                order: {order}
                judge: {{backend: openai, base_url: "{url}", model: {model}, backoff_s: 0.01, timeout_s: 0.5,
                         max_retries: 2, anchors: anchors.jsonl, use_reference: false{extra}}}
            """)
        args = ["run", str(suite), "--store", str(tmp_path / "h.duckdb")]
        for name in answers:
            args += ["--answers", f"{name}={tmp_path / (name + '.jsonl')}"]
        run.args = args
        if not execute:
            return tmp_path / "h.duckdb"
        run.last_code = main(args)
        if rc is not None:
            assert run.last_code == rc
        return tmp_path / "h.duckdb"

    return run


def _health(store) -> dict:
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("""SELECT metric, value, warning FROM run_stats JOIN latest_runs USING (run_id)
                          WHERE task = 'vs_bad'""").fetchall()
    con.close()
    return {m: (v, w) for m, v, w in rows}


def test_swap_issues_both_orders_and_faithful_judge_is_consistent(judged):
    with FakeJudgeServer(prefers_marker()) as srv:
        store = judged(srv.url)
    users = [r["messages"][-1]["content"] for r in srv.requests]
    assert len(users) == (6 + 3) * 2  # items and anchors, each in both orders
    # the same pair really was shown both ways round
    assert any("### Assistant A\nGOOD topic 0\n" in u for u in users) and any("### Assistant B\nGOOD topic 0\n" in u for u in users)
    h = _health(store)
    assert h["win_rate"][0] == 1.0 and h["consistency"][0] == 1.0 and h["first_position_win_rate"][0] == 0.5
    assert h["anchor_agreement"][0] == 1.0 and h["anchor_kappa"][0] == pytest.approx(1.0)
    assert not any(w for _, w in h.values())


def test_always_first_judge_scores_zero_consistency_and_is_flagged(judged, tmp_path):
    with FakeJudgeServer(always_first) as srv:
        store = judged(srv.url)
    h = _health(store)
    assert h["consistency"][0] == 0.0 and "consistency" in h["consistency"][1]
    assert h["first_position_win_rate"][0] == 1.0 and h["first_position_win_rate"][1]
    assert h["win_rate"][0] == 0.5 and h["tie_rate"][0] == 1.0  # inconsistent verdicts become ties
    out = tmp_path / "r.html"
    write(tmp_path / "r.yaml", "title: t\nvariants: [good, bad]\nbaseline: bad\n")
    assert main(["report", str(tmp_path / "r.yaml"), "--store", str(store), "--out", str(out)]) == 0
    assert "Unreliable judge" in out.read_text()


def test_random_order_judges_each_pair_once(judged):
    with FakeJudgeServer(prefers_marker()) as srv:
        judged(srv.url, order="random")
    assert len(srv.requests) == 6 + 3


def test_retries_recover_from_500s_and_timeouts(judged):
    with FakeJudgeServer(prefers_marker(), failures={"status": 503, "times": 2}) as srv:
        store = judged(srv.url)
    assert len(srv.requests) == 18 * 3 and _health(store)["error_rate"][0] == 0.0
    with FakeJudgeServer(prefers_marker(), failures={"sleep": 1.0, "times": 1}) as srv:
        store = judged(srv.url, model="other-judge")
    assert _health(store)["error_rate"][0] == 0.0


def test_failed_calls_become_error_rows_and_are_retried_next_run(judged, capsys):
    srv = FakeJudgeServer(prefers_marker(), failures={"status": 500, "times": 99}).__enter__()
    store = judged(srv.url, rc=1)  # the run ends non-zero, saying what failed
    assert len(srv.requests) == 18 * 3  # 1 try + 2 retries each
    assert "18 judge calls failed after their retries (HTTP 500: 18)" in capsys.readouterr().err
    con = duckdb.connect(str(store), read_only=True)
    errors = con.execute("SELECT count(*), min(error) FROM judgments WHERE error IS NOT NULL").fetchone()
    unjudged = con.execute("""SELECT count(*) FROM scores JOIN latest_runs USING (run_id)
                              WHERE task = 'vs_bad' AND metric = 'unjudged' AND value = 1""").fetchone()[0]
    cached = con.execute("SELECT count(*) FROM judge_cache").fetchone()[0]
    con.close()
    assert errors[0] == 18 and "HTTP 500" in errors[1] and "after 3 attempts" in errors[1]
    assert unjudged == 6 and cached == 0  # every item kept, marked unjudged; failures are not cached
    assert _health(store)["error_rate"][1]  # flagged
    # The endpoint is back: a plain rerun (no --force) asks the failed calls again and completes.
    srv.failures, srv.requests = {}, []
    judged(srv.url, rc=0)
    assert len(srv.requests) == 18
    assert _health(store)["error_rate"][0] == 0.0 and _health(store)["win_rate"][0] == 1.0
    srv.requests = []
    judged(srv.url, rc=0)  # complete now: reused, no call made
    assert len(srv.requests) == 0
    srv.__exit__(None, None, None)


def test_flaky_endpoint_loses_nothing_and_plain_reruns_complete_the_run(judged, capsys):
    """30% 5xx, 10% stalls past the timeout, 5% malformed bodies: every failure is a stored row,
    each rerun asks only the calls still unanswered, and the run completes."""
    srv = FakeJudgeServer(prefers_marker(), flaky={"p_5xx": 0.3, "p_timeout": 0.1, "p_malformed": 0.05, "seed": 7}).__enter__()
    try:
        # (Which calls fail depends on thread timing: about 14% of calls fail per run, so the
        # first run fails some in 94% of cases; the deterministic retry path is tested above.)
        rc, reruns, previous_failed = 1, 0, 0
        while rc == 1 and reruns < 8:
            srv.requests = []
            store = judged(srv.url, rc=None)
            assert judged.last_code in (0, 1)
            con = duckdb.connect(str(store), read_only=True)
            latest = con.execute("""SELECT count(*) FILTER (WHERE error IS NOT NULL), count(*) FROM judgments
                                    JOIN latest_runs USING (run_id) WHERE task = 'vs_bad'""").fetchone()
            asked = {r["messages"][-1]["content"] for r in srv.requests}
            con.close()
            assert latest[1] == 18  # every call is a row, answered or failed: nothing lost
            if reruns:
                assert len(asked) == previous_failed  # only the calls that had failed were asked again
            previous_failed, rc = latest[0], judged.last_code
            assert (rc == 1) == (previous_failed > 0)  # non-zero exactly when calls failed
            reruns += 1
        assert rc == 0 and previous_failed == 0
        assert _health(store)["win_rate"][0] == 1.0 and _health(store)["error_rate"][0] == 0.0
    finally:
        srv.__exit__(None, None, None)


def test_kill_9_during_a_judge_batch_loses_only_the_calls_in_flight(judged):
    """SIGKILL a `harness run` while its judge calls are being answered: every answered call was
    committed as it arrived, so the rerun asks exactly the calls not answered before the kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    with FakeJudgeServer(prefers_marker(), delay_s=0.25) as srv:
        store = judged(srv.url, execute=False)
        env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0"}
        proc = subprocess.Popen([sys.executable, "-m", "harness", *judged.args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill when the third wave of 4 concurrent calls has arrived: the first wave's replies
        # were answered (and committed) 0.25 s before, the last wave isn't answered yet.
        deadline = time.time() + 60
        while len(srv.requests) < 12 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        con = duckdb.connect(str(store), read_only=True)
        committed = con.execute("SELECT count(*) FROM judge_cache").fetchone()[0]
        runs = con.execute("SELECT count(*) FROM runs WHERE task = 'vs_bad'").fetchone()[0]
        con.close()
        assert 0 < committed < 18 and runs == 0  # paid-for calls kept; no half-written judge run
        journal = store.with_name(store.name + ".journal")  # replies in, not committed yet, at the kill
        journaled = {r["judge"] for r in Journal(store).records() if "judge" in r}
        assert len(journaled) >= committed
        srv.requests = []
        judged(srv.url, rc=0)
        assert len(srv.requests) == 18 - len(journaled)  # every reply that arrived is kept, committed or not
        assert not journal.exists()  # settled into the store
    con = duckdb.connect(str(store), read_only=True)
    n = con.execute("SELECT count(*) FROM judgments JOIN latest_runs USING (run_id) WHERE task = 'vs_bad'").fetchone()[0]
    con.close()
    assert n == 18


def test_kills_at_random_moments_of_a_judge_batch_never_repeat_an_answered_call(judged, tmp_path):
    """Kill -9 probes at seeded random moments of a judge batch (18 calls, 4 at a time, 0.25 s
    each): every reply the server had written more than 50 ms before the kill is in the store or
    its journal, and the rerun asks exactly the calls with no reply kept: 0 answered calls repeated."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    rng = random.Random(30)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS": "0"}
    repeated, kept_total = [], 0
    with FakeJudgeServer(prefers_marker(), delay_s=0.25) as srv:
        for _ in range(4):
            store = judged(srv.url, execute=False)
            for leftover in (store, store.with_name(store.name + ".journal")):
                leftover.unlink(missing_ok=True)
            srv.requests, srv.answered = [], []
            proc = subprocess.Popen([sys.executable, "-m", "harness", *judged.args], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 60
            while not srv.requests and time.time() < deadline and proc.poll() is None:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.05, 1.1))  # somewhere in the batch's ~1.25 s
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = time.time()
            proc.wait()
            answered = {user for t, user in srv.answered if t < killed_at - 0.05}
            srv.requests = []
            judged(srv.url, rc=0)
            asked_again = {r["messages"][-1]["content"] for r in srv.requests}
            repeated.append(len(answered & asked_again))
            kept_total += len(answered)
    assert repeated == [0] * 4, repeated
    assert kept_total > 0  # the kills landed after some replies


def test_swap_item_with_one_failed_order_is_unjudged_not_decided_from_the_other(judged):
    """A judge that always answers 'A' and fails every candidate-second call: the old code scored
    those items from the candidate-first order alone (a win each); now they are unjudged."""
    with FakeJudgeServer(always_first, failures={"status": 500, "times": 99, "only": "### Assistant A\nmeh"}) as srv:
        store = judged(srv.url, rc=1)
    con = duckdb.connect(str(store), read_only=True)
    rows = dict(con.execute("""SELECT metric, avg(value) FROM scores JOIN latest_runs USING (run_id)
                               WHERE task = 'vs_bad' GROUP BY metric""").fetchall())
    con.close()
    assert rows["unjudged"] == 1.0 and rows["win_rate"] is None


def test_unparseable_replies_count_as_parse_failures(judged):
    with FakeJudgeServer(lambda user: "I really cannot decide.") as srv:
        store = judged(srv.url)
    h = _health(store)
    assert h["parse_failure_rate"][0] == 1.0 and h["parse_failure_rate"][1]


def test_cache_prevents_repeat_calls(judged):
    with FakeJudgeServer(prefers_marker()) as srv:
        judged(srv.url)
        first = len(srv.requests)
        store = judged(srv.url, extra=", thresholds: {min_consistency: 0.7}")  # a new run, same calls
        assert len(srv.requests) == first
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM judgments JOIN latest_runs USING (run_id) WHERE NOT cached").fetchone()[0] == 0
    con.close()


def test_api_key_is_sent_but_never_stored(judged, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-secret-123")
    with FakeJudgeServer(prefers_marker()) as srv:
        store = judged(srv.url, extra=", api_key_env: JUDGE_KEY")
    assert srv.requests[0]["auth"] == "Bearer sk-secret-123"
    assert b"sk-secret-123" not in store.read_bytes()


def test_missing_api_key_variable_is_a_config_error(judged, monkeypatch, capsys):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    judged("http://127.0.0.1:9/v1", extra=", api_key_env: NOPE_KEY", rc=2)
    assert "NOPE_KEY is not set" in capsys.readouterr().err


def test_openai_client_non_retryable_status_fails_fast():
    with FakeJudgeServer(always_first, failures={"status": 400, "times": 9}) as srv:
        reply = OpenAIJudge(srv.url, "m", backoff_s=0.0).judge_many([JudgeCall("s", "u", "verdict")])[0]
    assert reply.text is None and reply.error.startswith("HTTP 400") and len(srv.requests) == 1


# -- local judges (fake backend) and single grading, multi-turn -----------------------------------

MT_ITEMS = [{"question_id": 1, "category": "writing", "turns": ["Write a haiku.", "Now make it rhyme."]},
            {"question_id": 2, "category": "math", "turns": ["What is 2+2?", "And 3+3?"], "reference": ["4", "6"]}]


def test_multi_turn_generation_and_single_grading_with_local_judge(tmp_path):
    write(tmp_path / "q.jsonl", "\n".join(json.dumps(q) for q in MT_ITEMS) + "\n")
    models = write(tmp_path / "m.yaml", """
        base:
          name: fake-m
          source: fake
          options: {responses: {"Rating: [[": "x", "Now make it rhyme": "rhymes here", "2+2": "It is 4", "3+3": "6"},
                    default_output: "Rating: [[8]]"}
        """)
    suite = write(tmp_path / "s.yaml", """
        name: mt
        tasks:
          - name: chat
            type: generation
            data: {format: jsonl, path: q.jsonl}
            id_field: question_id
            multi_turn: {turns_field: turns, references_field: reference}
            prompt: {template: "{{ turn }}"}
            generation: {max_new_tokens: 16}
          - name: chat_rating
            type: judge
            grading: single
            of: chat
            judge: {backend: local, mode: generate, dimensions: [accuracy, clarity]}
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    rows = dict(con.execute("""SELECT s.sample_id, s.details FROM samples s JOIN latest_runs r USING (run_id)
                               WHERE r.task = 'chat'""").fetchall())
    assert sorted(rows) == ["1#t1", "1#t2", "2#t1", "2#t2"]
    t2 = json.loads(rows["2#t2"])
    assert t2["answers"][0] == "It is 4" and t2["references"] == ["4", "6"]  # turn 2 saw its own turn-1 answer
    prompts = dict(con.execute("""SELECT sample_id, prompt_name FROM judgments j JOIN latest_runs r USING (run_id)
                                  WHERE r.task = 'chat_rating'""").fetchall())
    assert prompts == {"1#t1": "single", "1#t2": "single-multi-turn", "2#t1": "single-ref", "2#t2": "single-ref-multi-turn"}
    judged = con.execute("""SELECT sample_id, item_id, turn FROM samples JOIN latest_runs r USING (run_id)
                            WHERE r.task = 'chat_rating' ORDER BY sample_id""").fetchall()
    assert judged == [("1#t1", "1", 1), ("1#t2", "1", 2), ("2#t1", "2", 1), ("2#t2", "2", 2)]  # as the judged samples'
    # The fake judge never answers "accuracy: [[n]]": every reply is a parse failure, flagged, not guessed.
    h = dict(con.execute("""SELECT metric, value FROM run_stats JOIN latest_runs USING (run_id) WHERE task = 'chat_rating'""").fetchall())
    con.close()
    assert h["parse_failure_rate"] == 1.0


def test_local_choice_judge_on_tiny_model_gives_parseable_verdicts(tmp_path, tiny_model_dir):
    items = [{"id": f"q{i}", "topic": f"topic {i}", "tweet": f"ref {i}"} for i in range(3)]
    write(tmp_path / "items.jsonl", "\n".join(json.dumps(x) for x in items) + "\n")
    write(tmp_path / "a.jsonl", "\n".join(json.dumps({"id": x["id"], "output": "Fresh coffee today"}) for x in items) + "\n")
    write(tmp_path / "b.jsonl", "\n".join(json.dumps({"id": x["id"], "output": "no"}) for x in items) + "\n")
    models = write(tmp_path / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}}}\n")
    suite = write(tmp_path / "s.yaml", """
        name: j
        tasks:
          - name: tweets
            type: generation
            data: {format: jsonl, path: items.jsonl}
            id_field: id
            prompt: {template: "{{ topic }}"}
          - name: pair
            type: judge
            grading: pairwise
            of: tweets
            baseline: b
          - name: rate
            type: judge
            grading: single
            of: tweets
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--answers", f"a={tmp_path / 'a.jsonl'}",
                 "--answers", f"b={tmp_path / 'b.jsonl'}", "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    parsed = con.execute("SELECT bool_and(parsed), count(*) FROM judgments").fetchone()
    ratings = [r[0] for r in con.execute("SELECT rating FROM judgments WHERE rating IS NOT NULL").fetchall()]
    con.close()
    assert parsed == (True, 3 * 2 + 3 * 2)  # pairwise: 3 items x 2 orders; single: 3 items x 2 answer sets
    assert all(1.0 <= r <= 10.0 for r in ratings)


def test_judge_task_config_errors(tmp_path, capsys):
    suite = write(tmp_path / "s.yaml", """
        name: j
        tasks:
          - name: t
            type: generation
            data: {format: jsonl, path: x.jsonl}
            prompt: {template: "x"}
          - name: p
            type: judge
            grading: pairwise
            of: tweetz
        """)
    assert main(["validate", str(suite)]) == 2
    out = capsys.readouterr().out
    assert "pairwise judging needs a baseline" in out
    suite.write_text(suite.read_text().replace("of: tweetz", "of: tweetz\n    baseline: x\n    judge: {bogus: 1}"))
    assert main(["validate", str(suite)]) == 2
    assert "tasks[1].judge.bogus: unknown key" in capsys.readouterr().out


def test_judge_ratings_are_broken_down_by_category(tmp_path):
    """MT-Bench style: a category_field on the generation task is stored with its samples, and the
    report breaks the judge's rating down by it."""
    write(tmp_path / "q.jsonl", "\n".join(json.dumps(q) for q in MT_ITEMS) + "\n")
    models = write(tmp_path / "m.yaml", 'base: {name: fake-m, source: fake, options: {default_output: "Rating: [[7]]"}}\n')
    suite = write(tmp_path / "s.yaml", """
        name: mt
        tasks:
          - name: chat
            type: generation
            data: {format: jsonl, path: q.jsonl}
            id_field: question_id
            category_field: category
            multi_turn: {turns_field: turns, references_field: reference}
            prompt: {template: "{{ turn }}"}
            generation: {max_new_tokens: 16}
          - name: chat_rating
            type: judge
            grading: single
            of: chat
            judge: {backend: local, mode: generate}
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--models", str(models), "--store", str(store)]) == 0
    con = duckdb.connect(str(store), read_only=True)
    cats = dict(con.execute("""SELECT s.sample_id, json_extract_string(s.details, '$.category') FROM samples s
                               JOIN latest_runs r USING (run_id) WHERE r.task = 'chat'""").fetchall())
    con.close()
    assert cats == {"1#t1": "writing", "1#t2": "writing", "2#t1": "math", "2#t2": "math"}
    report = write(tmp_path / "r.yaml", "title: mt\nvariants: [fake-m]\nstatistics: {resamples: 200}\n")
    out = tmp_path / "r.html"
    assert main(["report", str(report), "--store", str(store), "--out", str(out)]) == 0
    html = out.read_text()
    section = html.split("by category")[1].split("</table>")[0]
    assert "<td>math</td>" in section and "<td>writing</td>" in section and "n=2" in section
    # a category field the items lack is a clear error before anything runs
    bad = write(tmp_path / "bad.yaml", suite.read_text().replace("category_field: category", "category_field: topic"))
    assert main(["run", str(bad), "--models", str(models), "--store", str(tmp_path / "h2.duckdb")]) == 2


def test_a_local_judge_without_models_is_a_clear_error(tmp_path, capsys):
    """Answer sets only, and a judge that is a model of a models file nobody passed: exit 2 with
    the fix, nothing written."""
    write(tmp_path / "items.jsonl", '{"id": "i1", "topic": "coffee"}\n')
    write(tmp_path / "a.jsonl", '{"id": "i1", "output": "coffee!"}\n')
    suite = write(tmp_path / "s.yaml", """
        name: judged
        tasks:
          - {name: tweets, type: generation, data: {format: jsonl, path: items.jsonl}, id_field: id,
             prompt: {template: "{{ topic }}"}}
          - {name: tone, type: judge, grading: single, of: tweets}
        """)
    store = tmp_path / "h.duckdb"
    assert main(["run", str(suite), "--answers", f"a={tmp_path / 'a.jsonl'}", "--store", str(store)]) == 2
    assert "a local judge is a model of the models file: pass --models" in capsys.readouterr().err
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    con.close()
