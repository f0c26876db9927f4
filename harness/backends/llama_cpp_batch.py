"""Batched generation in llama.cpp: several prompts decoded together in one context, each its own
sequence in a unified KV cache, so one pass over the weights advances every unfinished output by a
token (llama-cpp-python's `create_completion` serves one sequence at a time).

On a CPU, decoding a small model is bound by reading its weights once per step; a step for eight
sequences costs little more than a step for one, which is where the throughput of a batch comes
from (benchmarks/gguf_serving.py measures it against one-at-a-time decoding).

Token choice is done here, from the logits llama.cpp returns: greedy is the argmax (what
llama.cpp's greedy sampler picks); sampling applies the repetition penalty (llama.cpp's rule over
the last 64 tokens), temperature, top-k and top-p, then draws with a generator seeded per prompt,
so a sampled output does not depend on which prompts share its batch."""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field

PENALTY_LAST_N = 64
"""Tokens the repetition penalty looks back over (llama.cpp's default `penalty_last_n`)."""


@dataclass
class Sequence:
    """One prompt being decoded: its seq id in the cache, its tokens so far and its timings."""

    index: int
    seq_id: int
    prompt: list[int]
    rng: object
    out: list[int] = field(default_factory=list)
    text: str = ""
    first_s: float | None = None
    end_s: float | None = None

    @property
    def done(self) -> bool:
        return self.end_s is not None


class BatchedDecoder:
    """A second llama.cpp context over an opened `Llama`'s weights (and LoRA adapter), with room
    for `n_parallel` sequences sharing its `n_ctx` cells."""

    def __init__(self, llm, n_ctx: int, n_batch: int, n_parallel: int):
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_params()
        ctypes.pointer(params)[0] = llm.context_params  # a copy: threads, batch sizes, swa_full
        params.n_ctx, params.n_seq_max, params.kv_unified = n_ctx, n_parallel, True
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        adapter = getattr(llm, "_lora_adapter", None)
        if adapter is not None:  # the GGUF LoRA the `Llama` applied to its own context
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(llm.lora_scale)
            if llama_cpp.llama_set_adapters_lora(self.ctx.ctx, adapters, 1, scales):
                raise RuntimeError("llama.cpp could not apply the LoRA adapter to the batch context")
        self.batch = _internals.LlamaBatch(n_tokens=max(n_batch, n_parallel), embd=0, n_seq_max=1, verbose=False)
        self.llm, self.n_ctx, self.n_batch, self.n_parallel = llm, n_ctx, max(n_batch, n_parallel), n_parallel
        self.vocab = llm._model.vocab
        self.n_vocab = llm.n_vocab()

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    def run(self, prompts: list[list[int]], seeds: list[int], config, stop_check) -> list[Sequence]:
        """Decode `prompts` (token lists) together until each meets an end-of-generation token,
        `config.max_new_tokens`, or a stop string (`stop_check(text)` true). Timings are seconds
        from this call's start."""
        import llama_cpp
        import numpy as np

        start = time.perf_counter()
        llama_cpp.llama_memory_clear(self.ctx.memory, True)
        seqs = [Sequence(i, i, p, np.random.default_rng(s)) for i, (p, s) in enumerate(zip(prompts, seeds))]
        greedy = config.temperature <= 0 and config.repetition_penalty == 1.0
        tokens = self._prefill(seqs, config, greedy)
        while True:
            live = [s for s in seqs if not s.done]
            now = time.perf_counter() - start
            for s, tok in zip(live, tokens):
                if s.first_s is None:
                    s.first_s = now
                if llama_cpp.llama_vocab_is_eog(self.vocab, tok):
                    s.end_s = now
                    continue
                s.out.append(tok)
                if config.stop:  # only then is the text needed while decoding
                    s.text = self.llm.detokenize(s.out).decode("utf-8", "ignore")
                if len(s.out) >= config.max_new_tokens or (config.stop and stop_check(s.text)):
                    s.end_s = now
            live = [s for s in seqs if not s.done]
            if not live:
                return seqs
            self._fill([(s.out[-1], len(s.prompt) + len(s.out) - 1, s.seq_id, True) for s in live])
            self.ctx.decode(self.batch)
            tokens = self._next(live, range(len(live)), config, greedy)

    def _prefill(self, seqs: list[Sequence], config, greedy: bool) -> list[int]:
        """Decode every prompt in `n_batch`-token chunks; the first new token of each."""
        entries = [(tok, pos, s.seq_id, pos == len(s.prompt) - 1) for s in seqs for pos, tok in enumerate(s.prompt)]
        first: list[int] = []
        done = 0
        for at in range(0, len(entries), self.n_batch):
            chunk = entries[at:at + self.n_batch]
            self._fill(chunk)
            self.ctx.decode(self.batch)
            rows = [j for j, e in enumerate(chunk) if e[3]]
            first += self._next(seqs[done:done + len(rows)], rows, config, greedy)
            done += len(rows)
        return first

    def _next(self, seqs: list[Sequence], rows, config, greedy: bool) -> list[int]:
        """The next token of each sequence from the logits at batch positions `rows`: greedy reads
        llama.cpp's logits in place (no copy of the vocabulary-wide rows)."""
        import llama_cpp
        import numpy as np

        out = []
        for s, j in zip(seqs, rows):
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx.ctx, j), shape=(self.n_vocab,))
            out.append(int(row.argmax()) if greedy else self._choose(row.copy(), s, config))
        return out

    def _fill(self, entries) -> None:
        b = self.batch.batch
        b.n_tokens = len(entries)
        for j, (tok, pos, seq, want) in enumerate(entries):
            b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = tok, pos, 1, want
            b.seq_id[j][0] = seq

    @staticmethod
    def _choose(row, s: Sequence, config) -> int:
        """The next token from one sequence's logits (see the module's docstring)."""
        import numpy as np

        if config.repetition_penalty != 1.0:
            seen = np.unique(np.array((s.prompt + s.out)[-PENALTY_LAST_N:]))
            vals = row[seen]
            row[seen] = np.where(vals > 0, vals / config.repetition_penalty, vals * config.repetition_penalty)
        if config.temperature <= 0:
            return int(row.argmax())
        scaled = row.astype(np.float64) / config.temperature
        if 0 < config.top_k < len(scaled):
            top = np.argpartition(-scaled, config.top_k)[:config.top_k]
            cand = top[np.argsort(-scaled[top])]
        else:
            cand = np.argsort(-scaled)
        p = np.exp(scaled[cand] - scaled[cand[0]])
        p /= p.sum()
        if config.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(p), config.top_p) + 1)
            cand, p = cand[:keep], p[:keep] / p[:keep].sum()
        return int(s.rng.choice(cand, p=p))  # type: ignore[attr-defined]
