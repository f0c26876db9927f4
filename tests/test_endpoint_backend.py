"""The OpenAI-compatible candidate backend (`source: endpoint`) against a loopback fake server:
streaming and time to first token, real concurrency, retries shared with the judge, prompt
logprobs for multiple choice (and a clear error where the server has none), resume after a
failure, keys never stored. An opt-in test (-m slow) runs a real llama_cpp.server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import duckdb
import pytest

from harness.backends.base import GenerationConfig
from harness.backends.openai_compat import OpenAIBackend
from harness.cli import main
from harness.errors import ConfigError, HarnessError
from tests.conftest import write
from tests.fake_openai_server import FakeOpenAIServer, word_logprob


def test_streamed_generation_measures_ttft_and_sends_requests_concurrently():
    with FakeOpenAIServer(first_delay_s=0.05, token_delay_s=0.05) as server:
        backend = OpenAIBackend(server.url, "m")
        outs = backend.generate([f"prompt {i}" for i in range(6)], GenerationConfig(max_new_tokens=16, batch_size=3))
        assert server.max_in_flight == 3  # the batch size is the number of requests in flight
        assert [o.text for o in outs] == ["fresh coffee today"] * 6
        for o in outs:
            assert (o.prompt_tokens, o.output_tokens) == (2, 3)  # the server's usage
            assert 0.04 < o.ttft_s < o.request_latency_s and o.latency_s >= 0.15
        assert all(r["stream"] and r["path"] == "/v1/completions" for r in server.requests)


def test_chat_api_stop_strings_and_missing_usage():
    with FakeOpenAIServer(reply=lambda p: "one two. three", usage=False) as server:
        backend = OpenAIBackend(server.url, "m", api="chat")
        out = backend.generate(["hi"], GenerationConfig(stop=(".",)))[0]
        assert out.text == "one two" and server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
        assert server.requests[0]["stop"] == ["."]
        assert out.output_tokens == 2 and "whitespace words" in backend.info.details["token_counts"]


def test_word_counts_are_marked_in_the_stored_samples(workspace):
    """A server without usage: the stored samples say their token counts are words."""
    store = str(workspace / "h.duckdb")
    with FakeOpenAIServer(usage=False) as server:
        models = write(workspace / "models" / "e.yaml", f"base: {{name: s, source: endpoint, options: {{base_url: '{server.url}', model: m}}}}\n")
        assert main(["run", str(workspace / "suites" / "gen.yaml"), "--models", str(models), "--store", store]) == 0
    con = duckdb.connect(store, read_only=True)
    marks = {json.loads(d).get("token_counts") for (d,) in con.execute("SELECT details FROM samples").fetchall()}
    con.close()
    assert marks == {"whitespace words (the server sent no usage)"}


def test_log_likelihood_from_echoed_prompt_logprobs():
    with FakeOpenAIServer() as server:
        backend = OpenAIBackend(server.url, "m")
        context = "Question: two plus two?\nAnswer:"
        got = backend.loglikelihood([(context, " four"), (context + " ", "wrong answer")])
        assert got[0].logprob == pytest.approx(word_logprob(" four")) and got[0].is_greedy and got[0].n_tokens == 1
        # the trailing space moved to the continuation; a non-top token is not greedy
        assert got[1].logprob == pytest.approx(word_logprob(" wrong") + word_logprob(" answer")) and not got[1].is_greedy
        assert all(r["echo"] and r["logprobs"] == 1 for r in server.requests)


def test_a_server_without_prompt_logprobs_is_a_clear_error():
    with FakeOpenAIServer(echo=False) as server:
        with pytest.raises(ConfigError, match="returned no prompt log-probabilities"):
            OpenAIBackend(server.url, "m").loglikelihood([("a b", " c")])
    with pytest.raises(ConfigError, match="needs the completions API"):
        OpenAIBackend("http://127.0.0.1:9/v1", "m", api="chat").loglikelihood([("a", " b")])


def test_retries_then_success_and_persistent_failure():
    with FakeOpenAIServer(fail_first=2) as server:
        out = OpenAIBackend(server.url, "m", backoff_s=0.01).generate(["x"], GenerationConfig())
        assert out[0].text == "fresh coffee today" and len(server.requests) == 3
    with FakeOpenAIServer(fail_first=10) as server:
        with pytest.raises(HarnessError, match=r"HTTP 503.*after 2 attempts"):
            OpenAIBackend(server.url, "m", max_retries=1, backoff_s=0.01).generate(["x"], GenerationConfig())
    with FakeOpenAIServer(fail_first=10, fail_status=401) as server:  # not worth retrying
        with pytest.raises(HarnessError, match="HTTP 401"):
            OpenAIBackend(server.url, "m", backoff_s=0.01).generate(["x"], GenerationConfig())
        assert len(server.requests) == 1


ENDPOINT_MODELS = """
base:
  name: served
  source: endpoint
  options: {{base_url: "{url}", model: tiny-served, api_key_env: HARNESS_TEST_KEY, backoff_s: 0.01, max_retries: {retries}}}
"""


def test_an_endpoint_is_a_candidate_end_to_end_and_resumes_after_a_failure(workspace, monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_KEY", "sk-secret-123")
    monkeypatch.setenv("HARNESS_CHECKPOINT_ITEMS", "1")
    monkeypatch.setenv("HARNESS_CHECKPOINT_MIN_SECONDS", "0")
    store = str(workspace / "h.duckdb")
    gen = workspace / "suites" / "gen.yaml"
    gen.write_text(gen.read_text().replace("batch_size: 4", "batch_size: 1"))  # one request at a time: a known order
    suites = [str(gen), str(workspace / "suites" / "mc.yaml")]
    with FakeOpenAIServer(reply=lambda p: "A rainy morning" if "rain" in p else "Good coffee") as server:
        models = write(workspace / "models" / "e.yaml", ENDPOINT_MODELS.format(url=server.url, retries=1))
        seen: list[str] = []

        def fourth_fails(prompt: str) -> bool:  # the 4th request's prompt fails on every attempt
            if "Tweet:" in prompt:
                seen.append(prompt)
            return len(seen) >= 4 and prompt == seen[3]

        server.fail_when = fourth_fails
        assert main(["run", *suites, "--models", str(models), "--store", store]) != 0
        n_first = len(server.requests)
        server.fail_when = None
        assert main(["run", *suites, "--models", str(models), "--store", store]) == 0
        assert all(r["auth"] == "Bearer sk-secret-123" for r in server.requests)
        resent = [r["prompt"] for r in server.requests[n_first:] if r.get("stream")]
        assert resent[0] == seen[3] and len(resent) == 3
    con = duckdb.connect(store, read_only=True)
    runs = con.execute("SELECT task, backend, n_samples FROM runs ORDER BY task").fetchall()
    assert runs == [("quiz", "openai", 20), ("tweets", "openai", 6)]
    # the rerun asked exactly the items not finished before: with the first three, each item once
    # (compared as multisets: two items of the sample share a brief)
    stored = [p for (p,) in con.execute("SELECT s.prompt FROM samples s JOIN runs r USING (run_id) WHERE r.task = 'tweets'").fetchall()]
    assert sorted(seen[:3] + resent) == sorted(stored)
    for table in ("runs", "samples", "variants"):
        assert "sk-secret" not in json.dumps(con.execute(f"SELECT * FROM {table}").fetchall(), default=str)
    con.close()


def test_endpoint_options_are_checked(workspace, capsys):
    models = write(workspace / "models" / "e.yaml", "base: {name: s, source: endpoint, options: {model: m}}\n")
    assert main(["validate", str(models)]) == 2
    assert "options.base_url: the openai backend needs base_url" in capsys.readouterr().out
    models.write_text("base: {name: s, source: endpoint, options: {base_url: 'ftp://x', model: m}}\n")
    assert main(["validate", str(models)]) == 2
    assert "expected an http:// or https:// URL" in capsys.readouterr().out
    models.write_text("base: {name: s, source: endpoint, backend: hf, options: {}}\n")
    assert main(["validate", str(models)]) == 2
    assert "no weights for the hf backend to load" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_real_llama_cpp_server_serving_the_embedded_gguf(tmp_path):
    """Opt-in (-m slow): llama_cpp.server (pip install 'llama-cpp-python[server]') serving the
    embedded Gemma 3 270M GGUF on 127.0.0.1; generation and prompt-logprob multiple choice."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")
    from harness.models.weights import embedded_gguf

    gguf, _ = embedded_gguf()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--logits_all", "true", "--n_ctx", "1024", "--model_alias", "gemma"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        url = f"http://127.0.0.1:{port}/v1"
        backend = OpenAIBackend(url, "gemma", timeout_s=120, max_retries=30, backoff_s=1.0)
        out = backend.generate(["The capital of France is"], GenerationConfig(max_new_tokens=8))[0]
        assert out.output_tokens > 0 and out.ttft_s is not None
        a, b = backend.loglikelihood([("The capital of France is", " Paris"), ("The capital of France is", " Berlin")])
        assert a.logprob > b.logprob
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    time.sleep(0)
