"""A deterministic fake backend shipped in the library, so the real pipeline runs end to end
in tests and dry runs without a model (in the spirit of inspect_ai's mockllm)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from harness.backends.base import (
    BackendFactory,
    BackendInfo,
    Generation,
    GenerationConfig,
    Loglikelihood,
    apply_stop,
)


def _unit(text: str) -> float:
    """A stable pseudo-random number in [0, 1) derived from text."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@dataclass
class FakeBackend:
    """Options (all optional):

    - outputs: list of strings returned in order, cycling (scripted generations);
    - responses: mapping of substring -> output; the first substring found in the prompt wins;
    - default_output: returned when nothing else matches (default: a hash-derived phrase);
    - favour: continuations that get +10 log-likelihood (to script multiple-choice answers);
    - delay_s: seconds slept per generated output (and per scored continuation);
    - latencies: scripted per-output latencies in seconds, cycling (reported, not slept, so
      latency statistics are exact in tests); time to first token is reported as 10% of it;
    - call_log: a file each generate/loglikelihood call appends a line to (`generate 8`), so the
      backend work of several processes (a killed run and its resume) can be counted;
    - progress_log: a file each finished output or scored continuation appends a line to, so a
      test can count the work finished before a kill (not just asked for).
    """

    outputs: list[str] | None = None
    responses: dict[str, str] | None = None
    default_output: str | None = None
    favour: list[str] | None = None
    delay_s: float = 0.0
    latencies: list[float] | None = None
    call_log: str | None = None
    progress_log: str | None = None
    name: str = "fake"

    def __post_init__(self):
        self.info = BackendInfo(name="fake", device="none", dtype="none")
        self._cursor = 0
        self._latency_cursor = 0
        self.calls: list[tuple[str, int]] = []

    def generate(self, prompts: list[str], config: GenerationConfig) -> list[Generation]:
        self._record("generate", len(prompts))
        results = []
        for prompt in prompts:
            start = time.perf_counter()
            if self.delay_s:
                time.sleep(self.delay_s)
            text = apply_stop(self._output_for(prompt), config.stop)
            words = text.split()
            if self.latencies:
                latency = self.latencies[self._latency_cursor % len(self.latencies)]
                self._latency_cursor += 1
            else:
                latency = time.perf_counter() - start
            results.append(Generation(text, len(prompt.split()), len(words), latency, 0.1 * latency, latency))
            self._finished()
        if self.latencies:
            # A batch is served together: each caller waits for the slowest output of the batch.
            wait = max(r.request_latency_s or 0.0 for r in results) if results else 0.0
            results = [Generation(r.text, r.prompt_tokens, r.output_tokens, wait / len(results), 0.1 * wait, wait) for r in results]
        return results

    def _record(self, kind: str, n: int) -> None:
        self.calls.append((kind, n))
        if self.call_log:
            with open(self.call_log, "a") as f:
                f.write(f"{kind} {n}\n")

    def _finished(self) -> None:
        if self.progress_log:
            with open(self.progress_log, "a") as f:
                f.write("1\n")

    def _output_for(self, prompt: str) -> str:
        if self.responses:
            for needle, out in self.responses.items():
                if needle in prompt:
                    return out
        if self.outputs:
            out = self.outputs[self._cursor % len(self.outputs)]
            self._cursor += 1
            return out
        if self.default_output is not None:
            return self.default_output
        words = ["bright", "coffee", "morning", "roast", "fresh", "cup", "team", "today", "new", "warm"]
        h = hashlib.sha256((self.name + prompt).encode()).digest()
        return " ".join(words[b % len(words)] for b in h[:8])

    def loglikelihood(self, requests: list[tuple[str, str]], on_done=None) -> list[Loglikelihood]:
        self._record("loglikelihood", len(requests))
        favour = set(self.favour or [])
        out = []
        for k, (context, continuation) in enumerate(requests):
            if self.delay_s:
                time.sleep(self.delay_s)
            lp = -1.0 - 5.0 * _unit(self.name + context + "\x00" + continuation)
            if continuation.strip() in favour or continuation in favour:
                lp += 10.0
            out.append(Loglikelihood(lp, lp > -1.5, max(1, len(continuation.split()))))
            self._finished()
            if on_done is not None:
                on_done({k: out[-1]})
        return out

    def close(self) -> None:
        pass


def _open(model, options: dict) -> FakeBackend:
    return FakeBackend(name=model.name, **options)


FACTORY = BackendFactory(_open, frozenset({"outputs", "responses", "default_output", "favour", "delay_s", "latencies", "call_log", "progress_log"}),
                         "deterministic fake model (tests, dry runs)")
