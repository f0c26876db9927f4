"""The llama.cpp backend (llama-cpp-python, extra `harness[llama-cpp]`): a GGUF file evaluated as
it ships, quantized weights and llama.cpp's own kernels and tokenizer included, so a Q4_K_M
deployment's quality loss is measured rather than assumed.

Log-likelihoods follow lm-eval's definition as the hf backend does (context/continuation split,
left truncation to the context window, summed log-softmax over the continuation, greedy check),
computed from llama.cpp's logits: on a GGUF holding unquantized weights they match the hf
backend within float error (tests/test_llama_cpp.py). Inputs are decoded in lexicographic order
and the KV cache keeps the longest shared prefix, so options that share their question (and
few-shot examples that share a prompt head) are not recomputed.

Generation decodes in a second, unified-cache context over the same weights
(llama_cpp_batch.py), one sequence at a time by default. With the option `n_parallel: N`, up to N
prompts (and at most the task's `batch_size`) are decoded together, each its own sequence: one
pass over the weights advances every unfinished output, for 1.2-1.6x the throughput on a CPU. On
quantized files llama.cpp picks its matrix kernels by batch shape, so a batched output can differ
from the one-at-a-time output (measured on the demo's Q4_K_M fine-tune: 5-12 of 16 greedy texts
the same; identical on f16/f32 files), which is why batching is opt-in. An output's latency is its
batch's wall time divided by its size (as the hf backend counts it); its request latency and time
to first token are its own, from the call's start."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import cast

from harness.backends.base import (
    BackendFactory,
    BackendInfo,
    Generation,
    GenerationConfig,
    Loglikelihood,
    apply_stop,
    plan_scoring,
    split_pair,
)
from harness.backends.llama_cpp_batch import BatchedDecoder
from harness.errors import ConfigError, require
from harness.progress import progress

log = logging.getLogger(__name__)


class LlamaCppBackend:
    """A GGUF file in llama.cpp (CPU; `n_gpu_layers` offloads when llama.cpp was built with CUDA/Metal)."""

    def __init__(self, gguf: str | Path, n_ctx: int = 2048, n_threads: int | None = None, n_batch: int = 512,
                 n_gpu_layers: int = 0, lora: str | Path | None = None, n_parallel: int = 1):
        llama_cpp = require("llama_cpp", "the llama_cpp backend", "llama-cpp")
        start = time.perf_counter()
        self.llm = llama_cpp.Llama(str(gguf), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
                                   n_threads=n_threads or os.cpu_count(), n_gpu_layers=n_gpu_layers,
                                   # A full-size sliding-window cache, so a shared prefix can be kept
                                   # while the rest is dropped (Gemma 3 has sliding-window layers).
                                   swa_full=True, verbose=False,
                                   # a GGUF LoRA applied at load, over the (quantized) base
                                   **({"lora_path": str(lora)} if lora else {}))
        if n_parallel < 1:
            raise ConfigError(f"llama_cpp option n_parallel must be at least 1, got {n_parallel}")
        self.n_ctx, self.n_batch, self.n_parallel = n_ctx, n_batch, n_parallel
        self._decoder: BatchedDecoder | None = None  # the batched-generation context, made on first use
        self._cached: list[int] = []  # the tokens whose keys and values the cache holds now
        file_type = gguf_file_type(self.llm.metadata)
        log.info("loaded %s (%s) in llama.cpp in %.1fs", Path(gguf).name, file_type, time.perf_counter() - start)
        self.info = BackendInfo(name="llama_cpp", device="cuda" if n_gpu_layers else "cpu", dtype=file_type,
                                details={"gguf": str(gguf), "n_ctx": n_ctx, "n_parallel": n_parallel,
                                         "llama_cpp": llama_cpp.__version__,
                                         **({"lora": str(lora)} if lora else {})})

    # -- tokenisation, as lm-eval's HFLM does it -------------------------------------------
    def _encode(self, text: str, bos: bool = True) -> list[int]:
        # Special tokens in the text are parsed as such (a chat template's `<start_of_turn>`), as
        # a transformers tokenizer parses them; a text that starts with BOS gets no second one.
        bos_text = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "replace") \
            if self.llm.token_bos() >= 0 else ""
        if bos and bos_text and text.startswith(bos_text):
            bos = False
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's `_encode_pair` with llama.cpp's tokenizer."""
        bos = self.llm.token_bos()
        return split_pair(self._encode, lambda t: self._encode(t, bos=False), bos if bos >= 0 else self.llm.token_eos(),
                          context, continuation)

    # -- log-likelihood ----------------------------------------------------------------------
    def loglikelihood(self, requests: list[tuple[str, str]], on_done=None) -> list[Loglikelihood]:
        """Score (context, continuation) pairs. Requests with the same model input share one
        decode; `on_done` gets each input's finished results."""
        import numpy as np

        p = plan_scoring([self.encode_pair(c, x) for c, x in requests], self.n_ctx)
        results: list[Loglikelihood | None] = [None] * len(p.input_of)
        for i in progress(sorted(range(len(p.inputs)), key=lambda i: p.inputs[i]), desc="loglikelihood", unit="input"):
            logits = self._logits(list(p.inputs[i]), p.need[i])  # (need, vocab), the last positions
            top = logits.max(axis=-1, keepdims=True)
            lp = logits - (top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)))  # log-softmax
            done = {}
            for pos in p.asking[i]:
                cont = p.continuations[pos]
                tail = lp[-len(cont):]
                total = float(sum(tail[k, t] for k, t in enumerate(cont)))
                greedy = bool(all(int(tail[k].argmax()) == t for k, t in enumerate(cont)))
                results[pos] = done[pos] = Loglikelihood(total, greedy, len(cont))
            if on_done is not None:
                on_done(done)
        return cast(list[Loglikelihood], results)  # every position was asked for by some input

    def _logits(self, tokens: list[int], last: int):
        """Decode `tokens` (keeping the cached shared prefix) and return the logits of the last
        `last` positions as a float64 array."""
        import llama_cpp
        import numpy as np

        ctx = self.llm._ctx
        keep = 0
        for a, b in zip(self._cached, tokens):
            if a != b:
                break
            keep += 1
        keep = min(keep, len(tokens) - last)  # the positions we need logits of must be decoded
        if not ctx.kv_cache_seq_rm(0, keep, -1):
            ctx.kv_cache_seq_rm(0, 0, -1)  # this cache can't drop a suffix: start over
            keep = 0
        self._cached = tokens[:keep]
        want_from = len(tokens) - last
        n_vocab = self.llm.n_vocab()
        out = np.empty((last, n_vocab), dtype=np.float64)
        batch = self.llm._batch
        for start in range(keep, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            b = batch.batch
            b.n_tokens = len(chunk)
            for j, tok in enumerate(chunk):
                b.token[j] = tok
                b.pos[j] = start + j
                b.seq_id[j][0] = 0
                b.n_seq_id[j] = 1
                b.logits[j] = start + j >= want_from
            ctx.decode(batch)
            for j in range(len(chunk)):
                if start + j >= want_from:
                    row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, j), shape=(n_vocab,))
                    out[start + j - want_from] = row
        self._cached = list(tokens)
        # llama-cpp-python's generate() reuses its KV cache for a prompt sharing a prefix with its
        # own last tokens; this decode overwrote that cache, so it must not trust it any more.
        self.llm.n_tokens = 0
        return out

    # -- generation ----------------------------------------------------------------------------
    def generate(self, prompts: list[str], config: GenerationConfig) -> list[Generation]:
        encoded = [self._encode(p) for p in prompts]
        for ids in encoded:
            if len(ids) + config.max_new_tokens > self.n_ctx:
                raise ConfigError(f"a prompt of {len(ids)} tokens plus {config.max_new_tokens} new ones exceeds the llama_cpp "
                                  f"context window ({self.n_ctx} tokens)", hint="raise the backend option n_ctx")
        if self._decoder is None:
            self._decoder = BatchedDecoder(self.llm, self.n_ctx, self.n_batch, self.n_parallel)
        decoder = self._decoder
        results: dict[int, Generation] = {}
        call_start = time.perf_counter()
        for group in progress(self._groups(encoded, config), desc="generate", unit="batch"):
            offset = time.perf_counter() - call_start
            seqs = decoder.run([encoded[i] for i in group], [config.seed + i for i in group], config,
                                     lambda text: any(s in text for s in config.stop))
            wall = max(s.end_s or 0.0 for s in seqs)
            for i, s in zip(group, seqs):
                text = apply_stop(self.llm.detokenize(s.out).decode("utf-8", "replace"), config.stop)
                n_out = len(self._encode(text, bos=False)) if text else 0
                results[i] = Generation(text, len(encoded[i]), n_out, wall / len(group),
                                        offset + (s.first_s or wall), offset + (s.end_s or wall))
        return [results[i] for i in range(len(prompts))]

    def _groups(self, encoded: list[list[int]], config: GenerationConfig) -> list[list[int]]:
        """Prompt indices in batches of at most min(batch_size, n_parallel) sequences whose
        prompts plus new tokens fit the context's cells together, longest prompts first."""
        size = max(1, min(config.batch_size, self.n_parallel))
        groups: list[list[int]] = []
        cells = 0
        for i in sorted(range(len(encoded)), key=lambda i: -len(encoded[i])):
            need = len(encoded[i]) + config.max_new_tokens
            if not groups or len(groups[-1]) >= size or cells + need > self.n_ctx:
                groups.append([])
                cells = 0
            groups[-1].append(i)
            cells += need
        return groups

    def close(self) -> None:
        decoder = getattr(self, "_decoder", None)  # absent when __init__ failed
        if decoder is not None:
            decoder.close()
            self._decoder = None
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None


def gguf_file_type(metadata: dict) -> str:
    """The weights' type as llama.cpp names it (Q4_K_M, Q8_0, F16...), from `general.file_type`."""
    value = metadata.get("general.file_type")
    try:
        import gguf

        return gguf.LlamaFileType(int(str(value))).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except (ImportError, TypeError, ValueError):
        return f"file_type {value}" if value is not None else "unknown"


def can_serve(model) -> None:
    """llama.cpp serves a GGUF file: a GGUF base, or a `gguf` export (not adapters, not bitsandbytes)."""
    if model.gguf is None or model.adapters or model.quantization:
        what = "LoRA adapters" if model.adapters else "bitsandbytes quantization" if model.quantization else "transformers weights only"
        raise ConfigError(f"model '{model.name}' has no GGUF file to serve with llama_cpp ({what})",
                          hint="add a `gguf` variant (method: gguf) that exports it; llama_cpp serves that")


def open_model(model, options: dict | None = None) -> LlamaCppBackend:
    """A resolved model whose GGUF file llama.cpp serves (a GGUF base, or a `gguf` export)."""
    can_serve(model)
    return LlamaCppBackend(model.gguf, lora=model.gguf_lora, **(options or {}))


FACTORY = BackendFactory(open_model, frozenset({"n_ctx", "n_threads", "n_batch", "n_gpu_layers", "n_parallel"}),
                         "llama.cpp on a GGUF file, as it ships (extra: llama-cpp)",
                         integer_options=frozenset({"n_ctx", "n_threads", "n_batch", "n_parallel"}), can_serve=can_serve)
