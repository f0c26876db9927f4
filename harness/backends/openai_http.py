"""HTTP to OpenAI-compatible servers (hosted APIs, `vllm serve`, llama.cpp's server, Ollama,
`mlx_lm.server`), shared by the judge client and the endpoint candidate backend: one place for
timeouts, retries (tenacity: exponential backoff, or the server's Retry-After) and the rule of
what is worth retrying (429, 5xx, timeouts, dropped connections) and what is not (400, 401, 404:
asking again gives the same answer).

Plain urllib, no SDK: the requests are small, and streaming (server-sent events) is a loop over
lines."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from harness.errors import ConfigError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(Exception):
    """A request that failed for good: `attempts` were made, the last failing with this message."""

    def __init__(self, message: str, attempts: int, retryable: bool = False):
        super().__init__(message)
        self.attempts, self.retryable = attempts, retryable


class _Transient(Exception):
    """A failure worth another attempt (carries the server's Retry-After, if it sent one)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `max_retries` more attempts after the first, `backoff_s` * 2**n between
    them unless the server says Retry-After (capped at 30 s), `timeout_s` per attempt."""

    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0


def api_key(env_name: str | None, where: str) -> str | None:
    """The API key from the environment variable the config names (never from a file, never stored)."""
    if not env_name:
        return None
    if env_name not in os.environ:
        raise ConfigError(f"{where}: environment variable {env_name} is not set",
                          hint=f"export {env_name}=... (the key is read at run time and never stored)")
    return os.environ[env_name]


def headers(key: str | None) -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = f"Bearer {key}"
    return h


def _wait(policy: RetryPolicy):
    """tenacity wait: the server's Retry-After when it gave one, else exponential backoff."""
    def wait(state) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        return policy.backoff_s * (2 ** (state.attempt_number - 1))
    return wait


def _retrying(policy: RetryPolicy):
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

    return Retrying(stop=stop_after_attempt(policy.max_retries + 1), wait=_wait(policy),
                    retry=retry_if_exception_type(_Transient), reraise=True,
                    before_sleep=lambda s: log.debug("request failed (%s); retry %d",
                                                          s.outcome.exception() if s.outcome else None, s.attempt_number))


def _open(url: str, body: dict, key: str | None, timeout_s: float):
    """One attempt: the open response, or _Transient / EndpointError."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers(key), method="POST")
    try:
        return urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace").strip() if exc.fp else ""
        message = f"HTTP {exc.code}: {detail}"
        if exc.code in RETRY_STATUS:
            raise _Transient(message, _retry_after(exc.headers.get("Retry-After") if exc.headers else None)) from None
        raise EndpointError(message, 1) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise _Transient(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None


def _with_retries(policy: RetryPolicy, attempt_fn):
    """Run `attempt_fn(attempt_number)` until it returns, retrying on _Transient; every failure
    that ends it is an EndpointError carrying the number of attempts made."""
    attempts = 0
    try:
        for attempt in _retrying(policy):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                return attempt_fn(attempts)
    except _Transient as exc:
        raise EndpointError(f"{exc} (after {attempts} attempts)", attempts, retryable=True) from None
    except EndpointError as exc:
        exc.attempts = attempts
        raise
    raise AssertionError("unreachable")


def post_json(url: str, body: dict, key: str | None, policy: RetryPolicy) -> tuple[dict, int]:
    """POST `body`, return (the JSON reply, attempts made). Raises EndpointError when every
    attempt failed or the failure is not worth retrying."""
    def attempt(n: int) -> tuple[dict, int]:
        try:
            with _open(url, body, key, policy.timeout_s) as resp:
                raw = resp.read()
        except (TimeoutError, ConnectionError, OSError) as exc:  # the body, not the headers, timed out
            raise _Transient(f"{type(exc).__name__}: {exc}") from None
        try:
            return json.loads(raw.decode("utf-8")), n
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EndpointError(f"malformed response: not JSON ({exc})", n) from None

    return _with_retries(policy, attempt)


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event's JSON payload, with the time it arrived."""

    data: dict
    at: float


def post_stream(url: str, body: dict, key: str | None, policy: RetryPolicy) -> tuple[list[StreamEvent], float, int]:
    """POST a streaming request (`"stream": true`); return (its events, the time the request was
    sent, attempts). A request is retried only until its stream has started: a stream cut midway
    is an error (replaying it would double-count tokens and time)."""
    def attempt(n: int) -> tuple[list[StreamEvent], float, int]:
        sent = time.perf_counter()
        with _open(url, {**body, "stream": True}, key, policy.timeout_s) as resp:
            try:
                return list(_events(resp)), sent, n
            except (TimeoutError, ConnectionError, OSError) as exc:
                raise EndpointError(f"stream cut: {type(exc).__name__}: {exc}", n) from None

    return _with_retries(policy, attempt)


def _events(resp) -> Iterator[StreamEvent]:
    for raw in resp:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue  # blank separators, comments (": keep-alive"), event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            yield StreamEvent(json.loads(payload), time.perf_counter())
        except json.JSONDecodeError as exc:
            raise EndpointError(f"malformed stream event: {payload[:80]!r} ({exc})", 1) from None


def _retry_after(value: str | None) -> float | None:
    try:
        return min(30.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
