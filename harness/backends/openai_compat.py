"""The OpenAI-compatible candidate backend (`source: endpoint`, backend `openai`): the model is
whatever a server answers under a name: a hosted API, `vllm serve`, llama.cpp's server or
`llama_cpp.server`, Ollama, `mlx_lm.server`. Latency and cost then describe that serving stack.

- Generation streams (server-sent events), so time to first token is measured at the client;
  requests are really sent concurrently (up to the batch size a task asks for, or the latency
  suite's concurrency level, capped by `max_concurrency`).
- Multiple choice by log-likelihood uses the completions API with `echo` and `logprobs`: the
  server returns the prompt's token log-probabilities (vLLM, llama_cpp.server with logits_all).
  A server that does not is a clear error, never a silent guess.
- Timeouts and retries are harness.backends.openai_http's, shared with the judge client. A request that
  still fails stops the run with the error; the outputs already received are in the checkpoint,
  so the same command resumes with only the rest.
- The API key is read from the environment variable `api_key_env` names, at run time; it is never
  stored, logged or part of a run's identity."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from harness.backends.base import (
    GENERATE,
    LOGLIKELIHOOD,
    BackendFactory,
    BackendInfo,
    Generation,
    GenerationConfig,
    Loglikelihood,
    apply_stop,
)
from harness.backends.openai_http import EndpointError, RetryPolicy, api_key, post_json, post_stream
from harness.errors import ConfigError, HarnessError
from harness.progress import progress

log = logging.getLogger(__name__)


class OpenAIBackend:
    """A model behind an OpenAI-compatible /v1 endpoint."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, api: str = "completions",
                 max_concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 4, backoff_s: float = 1.0):
        self.base_url, self.model, self.api = base_url.rstrip("/"), model, api
        self.key = api_key(api_key_env, "options.api_key_env")
        self.max_concurrency = max_concurrency
        self.policy = RetryPolicy(timeout_s, max_retries, backoff_s)
        self.token_counts = "server"
        self.info = BackendInfo(name="openai", device="remote", dtype="served",
                                details={"base_url": base_url, "model": model, "api": api},
                                # Prompt log-probabilities come only from the completions API.
                                capabilities=frozenset({GENERATE, LOGLIKELIHOOD} if api == "completions" else {GENERATE}))

    # -- generation ----------------------------------------------------------------------------
    def generate(self, prompts: list[str], config: GenerationConfig) -> list[Generation]:
        workers = max(1, min(config.batch_size, self.max_concurrency))
        results: list[Generation | None] = [None] * len(prompts)
        call_start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(self._one, p, config, config.seed + i, call_start): i for i, p in enumerate(prompts)}
            try:
                for future in progress(as_completed(futures), desc="generate", unit="request", total=len(prompts)):
                    results[futures[future]] = future.result()
            except EndpointError as exc:
                for f in futures:
                    f.cancel()
                raise HarnessError(f"{self.base_url}: generation request for model {self.model} failed: {exc}",
                                   hint="outputs received so far are checkpointed; rerun the same command to resume") from None
        if self.token_counts != "server":
            self.info.details["token_counts"] = self.token_counts
        return results  # type: ignore[return-value]

    def send(self, prompt: str, config: GenerationConfig, seed: int, since: float) -> Generation:
        """One streamed request without retries (a load test counts a refused request as failed,
        not as a slower one), its time to first token and latency measured from `since` (a
        time.perf_counter() instant: a load task's scheduled arrival). EndpointError when it fails."""
        return self._one(prompt, config, seed, since, RetryPolicy(self.policy.timeout_s, 0, 0.0))

    def _one(self, prompt: str, config: GenerationConfig, seed: int, call_start: float,
             policy: RetryPolicy | None = None) -> Generation:
        body = {"model": self.model, "max_tokens": config.max_new_tokens, "temperature": config.temperature,
                "top_p": config.top_p if config.temperature > 0 else 1.0, "seed": seed,
                "stream_options": {"include_usage": True}}
        if config.stop:
            body["stop"] = list(config.stop)
        # Not in OpenAI's own API, but vLLM, llama.cpp's server and Ollama's OpenAI layer take
        # them; sent only when set, so a server that refuses them says so rather than ignoring.
        if config.top_k:
            body["top_k"] = config.top_k
        if config.repetition_penalty != 1.0:
            body["repetition_penalty"] = config.repetition_penalty
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        events, sent, _ = post_stream(self._url(), body, self.key, policy or self.policy)
        end = time.perf_counter()
        pieces, first, usage = [], None, None
        for ev in events:
            usage = ev.data.get("usage") or usage
            for choice in ev.data.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") if self.api == "chat" else choice.get("text")
                if piece:
                    pieces.append(piece)
                    first = first or ev.at
        text = apply_stop("".join(pieces), config.stop)
        if usage and "completion_tokens" in usage:
            n_prompt, n_out = int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"])
        else:
            # No usage from the server: count words, and say so in the run's backend details.
            self.token_counts = "whitespace words (the server sent no usage)"
            n_prompt, n_out = len(prompt.split()), len(text.split())
        return Generation(text, n_prompt, n_out, end - sent, (first or end) - call_start, end - call_start)

    def _url(self) -> str:
        return f"{self.base_url}/chat/completions" if self.api == "chat" else f"{self.base_url}/completions"

    # -- log-likelihood ----------------------------------------------------------------------
    def loglikelihood(self, requests: list[tuple[str, str]], on_done=None) -> list[Loglikelihood]:
        """log P(continuation | context) from the prompt log-probabilities the server echoes."""
        if self.api != "completions":
            raise ConfigError(f"{self.base_url}: multiple choice by log-likelihood needs the completions API "
                              "(prompt logprobs); this model is configured with api: chat",
                              hint="set options.api: completions (vLLM, llama_cpp.server), or evaluate it with generation tasks")
        results: list[Loglikelihood | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            futures = {pool.submit(self._score, c, x): i for i, (c, x) in enumerate(requests)}
            try:
                for future in progress(as_completed(futures), desc="loglikelihood", unit="request", total=len(requests)):
                    i = futures[future]
                    results[i] = future.result()
                    if on_done is not None:
                        on_done({i: results[i]})
            except EndpointError as exc:
                for f in futures:
                    f.cancel()
                raise HarnessError(f"{self.base_url}: log-likelihood request for model {self.model} failed: {exc}") from None
        return results  # type: ignore[return-value]

    def _score(self, context: str, continuation: str) -> Loglikelihood:
        # lm-eval's convention: trailing spaces of the context belong to the continuation.
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        prompt = context + continuation
        body = {"model": self.model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 1}
        payload, _ = post_json(self._url(), body, self.key, self.policy)
        try:
            lp = payload["choices"][0]["logprobs"]
            tokens, logprobs, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
            tops = lp.get("top_logprobs") or [None] * len(tokens)
        except (KeyError, IndexError, TypeError):
            lp = None
        if lp is None or not tokens or len(offsets) != len(tokens) or offsets[0] > 0:  # no echo: only the new token
            raise ConfigError(f"{self.base_url}: the server returned no prompt log-probabilities for model {self.model} "
                              "(completions with echo and logprobs)",
                              hint="multiple choice needs a server that echoes prompt logprobs: vLLM, or llama_cpp.server "
                                   "started with --logits_all true; evaluate this model with generation tasks otherwise")
        total, greedy, n = 0.0, True, 0
        for tok, value, offset, top in zip(tokens, logprobs, offsets, tops):
            if offset < len(context) or offset >= len(prompt):
                continue  # context tokens, and the one token generated after the prompt
            if value is None:
                raise ConfigError(f"{self.base_url}: the server gave no log-probability for a continuation token {tok!r}")
            total += float(value)
            n += 1
            if top:
                greedy = greedy and max(top.items(), key=lambda kv: kv[1])[0] == tok
        if n == 0:
            raise ConfigError(f"{self.base_url}: no token of the continuation {continuation!r} starts after the context "
                              "(the server's tokenizer merged it into the context's last token)")
        return Loglikelihood(total, greedy, n)

    def close(self) -> None:
        pass


def check_options(options: dict, where: str) -> None:
    """base_url and model are required; api is chat or completions; numbers are numbers."""
    for key in ("base_url", "model"):
        if not isinstance(options.get(key), str) or not options.get(key):
            raise ConfigError(f"{where}.{key}: the openai backend needs {key} (e.g. base_url: http://127.0.0.1:8000/v1, "
                              "model: the name the server serves)")
    if not str(options["base_url"]).startswith(("http://", "https://")):
        raise ConfigError(f"{where}.base_url: expected an http:// or https:// URL, got {options['base_url']!r}")
    if options.get("api", "completions") not in ("chat", "completions"):
        raise ConfigError(f"{where}.api: expected chat or completions, got {options['api']!r}")
    for key in ("timeout_s", "backoff_s"):
        if key in options and (not isinstance(options[key], (int, float)) or isinstance(options[key], bool) or options[key] <= 0):
            raise ConfigError(f"{where}.{key}: expected a positive number of seconds, got {options[key]!r}")
    if "max_retries" in options and (not isinstance(options["max_retries"], int) or options["max_retries"] < 0):
        raise ConfigError(f"{where}.max_retries: expected a whole number >= 0, got {options['max_retries']!r}")


def open_model(model, options: dict | None = None) -> OpenAIBackend:
    return OpenAIBackend(**(options or {}))


FACTORY = BackendFactory(open_model, frozenset({"base_url", "model", "api_key_env", "api", "max_concurrency", "timeout_s",
                                                "max_retries", "backoff_s"}),
                         "an OpenAI-compatible server (hosted API, vllm serve, llama.cpp server, Ollama, mlx_lm.server)",
                         integer_options=frozenset({"max_concurrency"}), check=check_options)
