"""Judge clients: who answers a judge prompt. Both take a batch of calls and return one reply
per call, in order; a reply carries either text or an error, so a failed call becomes an error
row, never a dropped item or a crashed run.

- OpenAIJudge: any OpenAI-compatible /chat/completions endpoint (vLLM, llama.cpp, Ollama,
  hosted APIs), with a concurrency limit; timeouts and retries (429, 5xx, timeouts, connection
  errors) are harness.backends.openai_http's, shared with the endpoint candidate backend.
- LocalJudge: a loaded harness backend (hf or fake). `choice` mode scores the verdict tokens
  by log-likelihood; `generate` mode samples a judgment and leaves parsing to the caller.
- CachedJudge: wraps either; replies are cached in the store, keyed by the judge's identity,
  the full prompt (candidate outputs and their order included) and the sample index, each one
  committed as it arrives, so a crash loses at most the calls in flight.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from harness.backends.base import GenerationConfig
from harness.backends.openai_http import EndpointError, RetryPolicy, api_key, post_json
from harness.hashing import stable_hash
from harness.progress import progress

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class JudgeCall:
    """One judge request."""

    system: str
    user: str
    expect: str
    """'verdict' (pairwise) or 'rating' (single)."""
    dimensions: tuple[str, ...] = ()
    """Single grading per dimension: the reply should rate each of these."""
    sample_index: int = 0
    """k-th of the judge samples combined by vote (a different seed and cache entry each)."""


@dataclass(frozen=True)
class JudgeReply:
    text: str | None
    error: str | None = None
    latency_s: float = 0.0
    attempts: int = 1
    cached: bool = False


class OpenAIJudge:
    """An OpenAI-compatible chat endpoint."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, temperature: float = 0.0,
                 max_tokens: int = 512, concurrency: int = 4, timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 1.0, seed: int = 0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model

        self.api_key = api_key(api_key_env, "judge.api_key_env")
        self.temperature, self.max_tokens, self.seed, self.concurrency = temperature, max_tokens, seed, concurrency
        self.policy = RetryPolicy(timeout_s, max_retries, backoff_s)
        # The identity keys the cache and is recorded with runs: never the key.
        self.identity = {"backend": "openai", "base_url": base_url, "model": model, "temperature": temperature,
                         "max_tokens": max_tokens}

    @classmethod
    def from_spec(cls, j, seed: int = 0) -> OpenAIJudge:
        """From a suite or recipe `judge:` block (a JudgeSpec with backend: openai)."""
        return cls(j.base_url, j.model, j.api_key_env, j.temperature, j.max_tokens, j.concurrency, j.timeout_s,
                   j.max_retries, j.backoff_s, seed)

    def judge_many(self, calls: list[JudgeCall], desc: str = "judge",
                   on_reply: Callable[[int, JudgeReply], None] | None = None,
                   on_arrival: Callable[[int, JudgeReply], None] | None = None) -> list[JudgeReply]:
        """One reply per call, in order. `on_reply(index, reply)` is called in this thread as each
        call completes (the cache commits it there); `on_arrival(index, reply)` in the worker
        thread the moment the reply is in (the cache journals it there, so a reply that waits for
        the commit of an earlier one is durable already)."""
        if not calls:
            return []
        replies: list[JudgeReply | None] = [None] * len(calls)

        def one(i: int, call: JudgeCall) -> JudgeReply:
            reply = self._one(call)
            if on_arrival is not None:
                on_arrival(i, reply)
            return reply

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(one, i, call): i for i, call in enumerate(calls)}
            for future in progress(as_completed(futures), desc=desc, unit="call", total=len(calls)):
                i = futures[future]
                replies[i] = future.result()
                if on_reply is not None:
                    on_reply(i, replies[i])
        return replies  # type: ignore[return-value]

    def _one(self, call: JudgeCall) -> JudgeReply:
        body = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens,
                "seed": self.seed + call.sample_index,
                "messages": [{"role": "system", "content": call.system}, {"role": "user", "content": call.user}]}
        start = time.perf_counter()
        try:
            payload, attempts = post_json(self.url, body, self.api_key, self.policy)
        except EndpointError as exc:
            return JudgeReply(None, str(exc), time.perf_counter() - start, exc.attempts)
        try:
            text = payload["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise ValueError("message.content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # A 200 with a body that is not a chat completion: the server is wrong, not busy.
            return JudgeReply(None, f"malformed response: {exc}", time.perf_counter() - start, attempts)
        return JudgeReply(text, None, time.perf_counter() - start, attempts)


VERDICT_OPTIONS = ("A", "B", "C")
RATING_OPTIONS = tuple(str(i) for i in range(1, 11))


class LocalJudge:
    """A model of the models file, loaded through its backend, as the judge."""

    def __init__(self, backend, model_key: str, mode: str = "choice", temperature: float = 0.0, max_tokens: int = 512,
                 seed: int = 0, batch_size: int = 8):
        self.backend, self.mode = backend, mode
        self.temperature, self.max_tokens, self.seed, self.batch_size = temperature, max_tokens, seed, batch_size
        self.identity = {"backend": "local", "model": model_key, "mode": mode,
                         **({"temperature": temperature, "max_tokens": max_tokens} if mode == "generate" else {})}

    @staticmethod
    def text_of(call: JudgeCall) -> str:
        # Base models have no chat roles: the system text simply comes first.
        return f"{call.system}\n\n{call.user}"

    CHUNK = 64
    """Calls scored together before their replies are handed on (and cached): a crash loses at
    most one chunk's work."""

    def judge_many(self, calls: list[JudgeCall], desc: str = "judge",
                   on_reply: Callable[[int, JudgeReply], None] | None = None,
                   on_arrival: Callable[[int, JudgeReply], None] | None = None) -> list[JudgeReply]:
        """One reply per call, in order; `on_arrival` then `on_reply` as each chunk's replies are in."""
        replies: list[JudgeReply] = []
        for start in progress(range(0, len(calls), self.CHUNK), desc=desc, unit="chunk"):
            chunk = calls[start:start + self.CHUNK]
            got = self._generate(chunk) if self.mode == "generate" else self._choice(chunk)
            for offset, reply in enumerate(got):
                if on_arrival is not None:
                    on_arrival(start + offset, reply)
                if on_reply is not None:
                    on_reply(start + offset, reply)
            replies += got
        return replies

    def _generate(self, calls: list[JudgeCall]) -> list[JudgeReply]:
        replies: list[JudgeReply | None] = [None] * len(calls)
        # One batch per sample index, so each of the k votes gets its own seed.
        for k in sorted({c.sample_index for c in calls}):
            idx = [i for i, c in enumerate(calls) if c.sample_index == k]
            config = GenerationConfig(self.max_tokens, self.temperature, 1.0, (), self.batch_size, self.seed + k)
            t0 = time.perf_counter()
            outs = self.backend.generate([self.text_of(calls[i]) for i in idx], config)
            per = (time.perf_counter() - t0) / len(idx)
            for i, out in zip(idx, outs):
                replies[i] = JudgeReply(out.text, None, per)
        return replies  # type: ignore[return-value]

    def _choice(self, calls: list[JudgeCall]) -> list[JudgeReply]:
        requests: list[tuple[str, str]] = []
        plan: list[list[tuple[str, tuple[str, ...]]]] = []
        for call in calls:
            text = self.text_of(call)
            if call.expect == "verdict":
                heads = [("Verdict", VERDICT_OPTIONS)]
            elif call.dimensions:
                heads = [(d, RATING_OPTIONS) for d in call.dimensions]
            else:
                heads = [("Rating", RATING_OPTIONS)]
            plan.append(heads)
            for head, options in heads:
                requests += [(f"{text}\n\n{head}: [[", o) for o in options]
        t0 = time.perf_counter()
        results = self.backend.loglikelihood(requests)
        per = (time.perf_counter() - t0) / len(calls)
        replies, pos = [], 0
        for call, heads in zip(calls, plan):
            lines = []
            for head, options in heads:
                logprobs = [r.logprob for r in results[pos:pos + len(options)]]
                pos += len(options)
                if options == RATING_OPTIONS:
                    # "1" is also the first token of "10": P(rating 1) = P("1") - P("10").
                    one, ten = math.exp(logprobs[0]), math.exp(logprobs[9])
                    logprobs[0] = math.log(max(one - ten, 1e-30))
                probs = _softmax(logprobs)
                if call.expect == "verdict":
                    best = max(range(len(options)), key=lambda i: (probs[i], -i))
                    shown = " ".join(f"{o}={p:.2f}" for o, p in zip(options, probs))
                    lines.append(f"{head}: [[{options[best]}]] (p {shown})")
                else:
                    # Probability-weighted rating (as G-Eval): a small model's argmax is nearly
                    # constant, its expectation still orders answers.
                    lines.append(f"{head}: [[{sum(int(o) * p for o, p in zip(options, probs)):.2f}]]")
            replies.append(JudgeReply("\n".join(lines), None, per))
        return replies


def _softmax(logprobs: list[float]) -> list[float]:
    top = max(logprobs)
    exps = [math.exp(x - top) for x in logprobs]
    total = sum(exps)
    return [e / total for e in exps]


class CachedJudge:
    """Serve repeated calls from the store's judge_cache; only successful replies are cached,
    so a call that failed is tried again on the next run."""

    def __init__(self, inner, store):
        self.inner, self.store = inner, store
        self.identity = inner.identity
        self.calls_made = 0

    def key(self, call: JudgeCall) -> str:
        return stable_hash({"judge": self.identity, "system": call.system, "user": call.user, "expect": call.expect,
                            "dimensions": list(call.dimensions), "sample_index": call.sample_index}, length=32)

    def judge_many(self, calls: list[JudgeCall], desc: str = "judge") -> list[JudgeReply]:
        keys = [self.key(c) for c in calls]
        hits = self.store.judge_cache_get(sorted(set(keys)))
        todo = sorted({k: i for i, k in enumerate(keys) if k not in hits}.values())
        judge_hash = stable_hash(self.identity)

        def journal(j: int, reply: JudgeReply) -> None:
            # Durable the moment it arrives (the store's journal, any thread); failures are not
            # cached, so the next run asks again.
            if reply.error is None:
                self.store.journal_judge(keys[todo[j]], judge_hash, reply.text)

        def commit(j: int, reply: JudgeReply) -> None:
            if reply.error is None:
                self.store.judge_cache_put([(keys[todo[j]], judge_hash, reply.text)])

        fresh = self.inner.judge_many([calls[i] for i in todo], desc=desc, on_reply=commit, on_arrival=journal) if todo else []
        self.calls_made += len(todo)
        by_key = {keys[i]: r for i, r in zip(todo, fresh)}
        log.info("%s: %d judge calls made, %d answered from the cache (or by an identical prompt in this batch)",
                 desc, len(todo), len(calls) - len(todo))
        return [JudgeReply(hits[k], None, 0.0, 0, True) if k in hits else by_key[k] for k in keys]
