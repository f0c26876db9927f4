"""The transformers backend (CPU now, CUDA when present).

Log-likelihoods follow lm-eval's HFLM exactly (tokenisation of the context/continuation
pair, left truncation, summed log-softmax over continuation tokens, greedy check), so our
acc/acc_norm are lm-eval's numbers; tests compare the two on a tiny model.
"""

from __future__ import annotations

import logging
import math
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
from harness.errors import ConfigError, MissingDependencyError
from harness.models.loading import load_causal_lm, load_quantized
from harness.models.tokenizers import shared_tokenizer
from harness.progress import progress

log = logging.getLogger(__name__)


class HFBackend:
    """A causal LM from a local directory, optionally with LoRA adapters applied in order."""

    def __init__(
        self,
        model_path: str | Path,
        adapters: list[str | Path] | tuple = (),
        dtype: str = "float32",
        device: str | None = None,
        max_length: int | None = None,
        batch_size: int | str = 8,
        model=None,
        tokenizer=None,
        quantization: dict | None = None,
        prefix_reuse: bool = True,
        device_map: str | dict | None = None,
        max_memory: dict | None = None,
    ):
        import torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # batch_size "auto": the largest that fits, starting at AUTO_BATCH_START and halved on
        # out-of-memory (the size reached and the halvings are recorded in the run's details)
        self.auto_batch = batch_size == "auto"
        self.batch_size = self.AUTO_BATCH_START if self.auto_batch else int(batch_size)
        self.halvings = 0
        if model is None:
            start = time.perf_counter()

            tokenizer = shared_tokenizer(model_path)
            if quantization is not None:
                model = load_quantized(model_path, quantization)
            else:
                model = load_causal_lm(model_path, adapters, dtype, merge_all=False, device_map=device_map, max_memory=max_memory)
            log.info("loaded %s%s in %.1fs", model_path, f" + {len(adapters)} adapter(s)" if adapters else "", time.perf_counter() - start)
        # Quantized (bitsandbytes) models and models spread by a device map are placed at load
        # time (and refuse .to()); inputs then go where the embeddings are.
        placed = quantization is not None or device_map is not None
        self.model = (model if placed else model.to(self.device)).eval()
        if device_map is not None:
            self.device = str(self.model.get_input_embeddings().weight.device)
        skinny_vocab_projection(self.model)
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_length = max_length or _model_max_length(model)
        dtype_name = quantization["scheme"] if quantization else str(next(model.parameters()).dtype).replace("torch.", "")
        # Reuse is exact or off: off for architectures whose cache is not plain attention, and
        # checked against whole-prompt scoring for the rest: on first use, and again whenever inputs
        # come longer than any checked (a window shorter than the prompts shows only then).
        self.reuse_off_because = None if prefix_reuse else "prefix_reuse: false"
        if prefix_reuse:
            self.reuse_off_because = reuse_unsupported(self.model.config)
            if self.reuse_off_because:
                log.info("prefix reuse off for %s: %s", model_path, self.reuse_off_because)
        self.reuse_verified = False
        self.reuse_checked_tokens = 0
        """The longest input the reuse check has compared so far."""
        self.info = BackendInfo(name="hf", device=self.device, dtype=dtype_name, max_length=self.max_length,
                                details={"model_path": str(model_path), "adapters": [str(a) for a in adapters], "max_length": self.max_length,
                                         "prefix_reuse": "on (checked exact on first use)" if self.reuse_off_because is None
                                         else f"off ({self.reuse_off_because})"})
        if device_map is not None:
            self.info.details.update(device_map=getattr(self.model, "hf_device_map", device_map), max_memory=max_memory)
        if self.auto_batch:
            self._record_batch_size()

    def _encode(self, text: str) -> list[int]:
        return encode_text(self.tokenizer, text)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        return encode_pair(self.tokenizer, context, continuation)

    # -- log-likelihood ----------------------------------------------------------------------
    PREFIX_MIN_TOKENS = 32
    """A prefix this long shared by two inputs is worth a forward pass of its own."""
    SHORT_PREFIX_MIN_TOKENS = 8
    SHORT_PREFIX_MIN_SAVING = 256
    """A shorter one (a 0-shot task's description, ~16 tokens) is, once it saves this many tokens."""
    REUSE_TOLERANCE = {"float32": 1e-4}
    """Largest per-position log-probability difference between reuse and whole-prompt scoring
    that counts as the same number, per compute dtype. float32 rounding alone (another matmul
    shape) moves Gemma 3 270M's by up to 3e-5; the sliding-window fault this guards against
    moved them by 0.25. Half precision rounds differently per batch shape, so it gets
    REUSE_TOLERANCE_HALF."""
    REUSE_TOLERANCE_HALF = 1e-2
    AUTO_BATCH_START = 64
    """batch_size: auto starts here and halves on out-of-memory."""

    def _record_batch_size(self) -> None:
        self.info.details["batch_size"] = {"auto": True, "start": self.AUTO_BATCH_START, "reached": self.batch_size,
                                           "halvings_on_out_of_memory": self.halvings}

    def _fitting(self, items: list, run) -> list:
        """`run(chunk)` over `items` in chunks the device holds: with batch_size auto, a chunk that
        runs out of memory is halved (and so is every later chunk) until it fits; else one call."""
        if not self.auto_batch:
            return run(items)
        out: list = []
        start = 0
        while start < len(items):
            chunk = items[start:start + self.batch_size]
            try:
                out += run(chunk)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled; the rest re-raise
                if not _out_of_memory(exc) or len(chunk) == 1:
                    raise
                self.batch_size = max(1, len(chunk) // 2)
                self.halvings += 1
                self._record_batch_size()
                log.warning("out of memory at batch size %d: halved to %d", len(chunk), self.batch_size)
                _free_device_memory()
                continue
            start += len(chunk)
        return out

    def loglikelihood(self, requests: list[tuple[str, str]], on_done=None) -> list[Loglikelihood]:
        """Batch-first scoring. Requests whose model input is identical (e.g. the four
        one-token answer letters of an MMLU item) share one forward pass. Inputs that share a
        long prefix (a few-shot head: the description and the k examples) are scored on top of
        that prefix's key/value cache, computed once; the rest are batched longest first with
        left padding. Only the positions a continuation is scored at get the vocabulary
        projection. `on_done` gets each batch's finished results."""
        import torch

        p = plan_scoring([self.encode_pair(c, x) for c, x in requests], self.max_length)
        results: list[Loglikelihood | None] = [None] * len(p.input_of)
        groups = reuse_groups(p.inputs, p.need, self.PREFIX_MIN_TOKENS, self.SHORT_PREFIX_MIN_TOKENS,
                              self.SHORT_PREFIX_MIN_SAVING) if self.reuse_off_because is None else []
        if groups:
            longest = max(groups, key=lambda g: max(len(p.inputs[i]) for i in g[1]))
            if max(len(p.inputs[i]) for i in longest[1]) > self.reuse_checked_tokens and not self._check_reuse(p, longest):
                groups = []
        grouped = {i for _, members in groups for i in members}
        plain = sorted((i for i in range(len(p.inputs)) if i not in grouped), key=lambda i: -len(p.inputs[i]))
        batches: list[tuple[int | None, int, list[int]]] = [(None, 0, plain[s:s + self.batch_size])
                                                             for s in range(0, len(plain), self.batch_size)]
        for g, (plen, members) in enumerate(groups):
            members = sorted(members, key=lambda i: -len(p.inputs[i]))
            batches += [(g, plen, members[s:s + self.batch_size]) for s in range(0, len(members), self.batch_size)]
        cache: tuple[int | None, object] = (None, None)  # the one prefix cache alive: (group, cache)
        for g, plen, batch in progress(batches, desc="loglikelihood", unit="batch"):
            if g is None:
                rows = self._fitting(batch, lambda b: self._score_left_padded([p.inputs[i] for i in b], [p.need[i] for i in b]))
            else:
                if cache[0] != g:
                    cache = (g, self._prefix_cache(p.inputs[batch[0]][:plen]))
                rows = self._fitting(batch, lambda b, c=cache[1], n=plen: self._score_on_prefix(
                    c, n, [p.inputs[i][n:] for i in b], [p.need[i] for i in b]))
            done = {}
            for lp, i in zip(rows, batch):
                for pos in p.asking[i]:
                    cont = p.continuations[pos]
                    tail = lp[-len(cont):]
                    target = torch.tensor(cont).unsqueeze(-1)
                    total = float(torch.gather(tail, 1, target).sum())
                    greedy = bool((tail.argmax(-1) == target.squeeze(-1)).all())
                    results[pos] = done[pos] = Loglikelihood(total, greedy, len(cont))
            if on_done is not None:
                on_done(done)
        return cast(list[Loglikelihood], results)  # every position was asked for by some input

    def _check_reuse(self, p, group: tuple[int, list[int]]) -> bool:
        """Score one batch of a prefix group both ways; reuse stays on for this model only when
        every scored position agrees within the dtype's tolerance (recorded in the run's
        backend details either way)."""
        import torch

        plen, members = group
        # The longest and the shortest member: a batch of two with as much padding as the group has.
        by_length = sorted(members, key=lambda i: -len(p.inputs[i]))
        batch = [by_length[0], by_length[-1]]
        need = [p.need[i] for i in batch]
        reused = self._score_on_prefix(self._prefix_cache(p.inputs[batch[0]][:plen]), plen, [p.inputs[i][plen:] for i in batch], need)
        whole = [self._score_left_padded([p.inputs[i]], [p.need[i]])[0] for i in batch]  # one prompt per pass: no padding at all
        # NaN anywhere is a disagreement, not a pass (a NaN comparison is False)
        gap = max(float(torch.nan_to_num((a - b).abs(), nan=math.inf).max()) for a, b in zip(reused, whole))
        compute = str(next(self.model.parameters()).dtype).replace("torch.", "")
        tolerance = self.REUSE_TOLERANCE.get(compute, self.REUSE_TOLERANCE_HALF)
        if not gap <= tolerance:
            self.reuse_off_because = f"reuse differs from whole-prompt scoring by {gap:.1e} (> {tolerance:g})"
            log.warning("prefix reuse off for this model: %s", self.reuse_off_because)
            self.info.details["prefix_reuse"] = f"off ({self.reuse_off_because})"
            return False
        self.reuse_verified = True
        self.reuse_checked_tokens = max(self.reuse_checked_tokens, len(p.inputs[batch[0]]))
        self.info.details["prefix_reuse"] = f"on (checked: max difference {gap:.1e} from whole-prompt scoring)"
        return True

    def _score_left_padded(self, seqs: list[tuple[int, ...]], need: list[int]) -> list:
        """Log-probabilities at the last need[r] positions of each sequence (one batch)."""
        import torch

        width, keep = max(len(s) for s in seqs), max(need)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
        # Left padding keeps every row's continuation at the end, so only the last
        # `keep` positions need the (vocabulary-sized) output projection.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             position_ids=positions.to(self.device), logits_to_keep=keep)
        lp = torch.log_softmax(out.logits.float(), dim=-1).cpu()
        return [lp[row, -n:] for row, n in enumerate(need)]

    def _prefix_cache(self, prefix: tuple[int, ...]):
        import torch

        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True, logits_to_keep=1)
        return out.cache if "cache" in out else out.past_key_values

    def _cache_kwarg(self) -> str:
        """transformers 5.2x calls the key/value cache argument `cache`; earlier versions `past_key_values`."""
        import inspect

        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model  # under a PEFT wrapper
        return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"

    def _score_on_prefix(self, prefix_cache, plen: int, suffixes: list[tuple[int, ...]], need: list[int]) -> list:
        """Log-probabilities at the last need[r] positions of prefix + suffixes[r], the prefix's
        keys and values taken from its cache (copied: the forward pass appends to it).

        Suffixes are right-padded: each row's tokens sit at the cache indices they would have in
        a whole-prompt pass (prefix, then suffix, no gap), so attention that is defined on cache
        indices (sliding windows, Gemma 3's local layers) sees exactly the keys it would see
        scoring the prompt whole; the padding comes after every real token and no real query
        attends to it. Only the positions from the earliest scored one on get the vocabulary
        projection."""
        import copy

        import torch

        width = max(len(s) for s in suffixes)
        keep = max(width - len(s) + n for s, n in zip(suffixes, need))
        ids = torch.full((len(suffixes), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(suffixes), plen + width), dtype=torch.long)
        mask[:, :plen] = 1
        positions = (plen + torch.arange(width)).repeat(len(suffixes), 1)
        for row, seq in enumerate(suffixes):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, plen:plen + len(seq)] = 1
        past = copy.deepcopy(prefix_cache)
        if len(suffixes) > 1:
            past.batch_repeat_interleave(len(suffixes))
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             position_ids=positions.to(self.device), use_cache=True, logits_to_keep=keep,
                             **{self._cache_kwarg(): past})
        lp = torch.log_softmax(out.logits.float(), dim=-1).cpu()
        first = width - keep  # the suffix index of the first kept position
        return [lp[row, len(s) - n - first:len(s) - first] for row, (s, n) in enumerate(zip(suffixes, need))]

    # -- generation ----------------------------------------------------------------------------
    def generate(self, prompts: list[str], config: GenerationConfig) -> list[Generation]:
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        results: dict[int, Generation] = {}
        if config.temperature > 0:
            torch.manual_seed(config.seed)
        size = min(config.batch_size, self.batch_size) if self.auto_batch else config.batch_size
        for start in progress(range(0, len(order), size), desc="generate", unit="batch"):
            self._fitting(order[start:start + size], lambda batch: self._generate_batch(prompts, batch, config, results))
        return [results[i] for i in range(len(prompts))]

    def _generate_batch(self, prompts: list[str], batch: list[int], config: GenerationConfig, results: dict) -> list:
        """Generate the prompts at positions `batch` together (left-padded) into `results`."""
        import torch

        tok = self.tokenizer
        # Encoded one by one as lm-eval encodes them: a prompt that already starts with BOS (a
        # chat template's rendering) gets no second one
        enc = tok.pad({"input_ids": [encode_text(tok, prompts[i]) for i in batch]}, return_tensors="pt", padding=True)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kwargs = dict(max_new_tokens=config.max_new_tokens, pad_token_id=tok.pad_token_id)
        if config.temperature > 0:
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=config.top_k or None)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if config.repetition_penalty != 1.0:
            kwargs.update(repetition_penalty=config.repetition_penalty)
        if config.stop:
            kwargs.update(stop_strings=list(config.stop), tokenizer=tok)
        timer = _FirstTokenTimer()
        t0 = timer.start = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(**enc, **kwargs, stopping_criteria=_criteria(timer))
        elapsed = time.perf_counter() - t0
        width = enc["input_ids"].shape[1]
        for row, i in enumerate(batch):
            text = apply_stop(tok.decode(out[row, width:], skip_special_tokens=True), config.stop)
            n_prompt = int(enc["attention_mask"][row].sum())
            n_out = len(tok.encode(text, add_special_tokens=False)) if text else 0
            results[i] = Generation(text, n_prompt, n_out, elapsed / len(batch), timer.ttft(elapsed), elapsed)
        return batch

    def close(self) -> None:
        import gc

        self.model = None
        gc.collect()


def _out_of_memory(exc: Exception) -> bool:
    """A CUDA (or host) out-of-memory error: the only failure batch_size auto recovers from."""
    if isinstance(exc, MemoryError):
        return True
    return type(exc).__name__ == "OutOfMemoryError" or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _FirstTokenTimer:
    """A stopping criterion that never stops: generate() calls it after each new token, so its
    first call marks the time to first token (prefill plus one decode step)."""

    def __init__(self):
        self.start = 0.0
        self.first: float | None = None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.first is None:
            self.first = time.perf_counter()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def ttft(self, elapsed: float) -> float:
        return (self.first - self.start) if self.first is not None else elapsed


def _criteria(timer):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Timed(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return timer(input_ids, scores, **kwargs)

    return StoppingCriteriaList([Timed()])


# -- tokenisation, as lm-eval's HFLM does it (shared with the vllm backend) -------------------
def encode_text(tokenizer, text: str) -> list[int]:
    """`text`'s token ids as lm-eval's HFLM encodes them (BOS added unless the text starts with it)."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos):
        # lm-eval: a string that already starts with BOS gets no second one.
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's `_encode_pair` with a transformers tokenizer."""
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return split_pair(lambda t: encode_text(tokenizer, t), lambda t: tokenizer.encode(t, add_special_tokens=False), prefix,
                      context, continuation)


SKINNY_ROWS = 128
"""Up to this many rows, the vocabulary projection is computed as W @ x^T (see skinny_vocab_projection)."""


def skinny_vocab_projection(model) -> bool:
    """Compute a CPU float32 model's vocabulary projection for a few rows (one decode step of a
    batch, the answer positions of a scoring batch) as (W @ x^T)^T rather than x @ W^T.

    Why: with a large vocabulary (Gemma: 262k x 640, 671 MB in float32) MKL's sgemm for a handful
    of rows against the transposed weight is far from the memory bound: measured on this 2-core
    CPU, 8 rows take 133 ms as `linear` and 48 ms the other way round (1 row: 64 ms either way;
    from about 200 rows on `linear` wins again). Decoding reads that matrix once per token, so it
    was most of each step. Same products, summed in another order: logits equal to ~1e-6
    relative. Returns whether the model was changed (not for a biased, quantized, adapted or
    non-CPU head)."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if type(head) is not torch.nn.Linear or head.bias is not None:
        return False
    if head.weight.device.type != "cpu" or head.weight.dtype != torch.float32:
        return False
    linear = head.forward

    def forward(x):
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] > SKINNY_ROWS:
            return linear(x)
        return (head.weight @ rows.T).T.contiguous().reshape(*x.shape[:-1], head.weight.shape[0])

    head.forward = forward
    return True


def shared_prefix_groups(inputs: list[tuple[int, ...]], need: list[int], min_tokens: int) -> list[tuple[int, list[int]]]:
    """Groups of inputs (indices) that share a prefix of at least `min_tokens` tokens, with the
    prefix length each group can reuse: short of every member's scored positions, which must be
    computed in the member's own pass. In lexicographic order a group's common prefix is that of
    its first and last member, so one walk finds them; groups of one are left out."""
    order = sorted(range(len(inputs)), key=lambda i: inputs[i])
    groups: list[tuple[int, list[int]]] = []
    members: list[int] = []
    plen = 0
    for i in order:
        cap = len(inputs[i]) - need[i]
        if members:
            first = inputs[members[0]]
            common = next((k for k, (a, b) in enumerate(zip(first, inputs[i])) if a != b), min(len(first), len(inputs[i])))
            shared = min(plen, common, cap)
            if shared >= min_tokens:
                members.append(i)
                plen = shared
                continue
            if len(members) > 1:
                groups.append((plen, members))
        members, plen = [i], cap
    if len(members) > 1:
        groups.append((plen, members))
    return groups


def reuse_groups(inputs: list[tuple[int, ...]], need: list[int], long_min: int, short_min: int,
                 short_saving: int) -> list[tuple[int, list[int]]]:
    """The prefix groups to score on a shared cache: first those sharing at least `long_min`
    tokens (few-shot heads, one per subject), then, among the inputs left, those sharing at least
    `short_min` tokens (a 0-shot task's description); in both passes only groups that save
    `short_saving` tokens or more. Two passes, so that a short prefix common to every subject
    never swallows the long per-subject heads."""
    # A group must also save enough to pay for its own passes: the options of one item sharing
    # their context (multi-token labels) would otherwise make one tiny prefix pass per item.
    groups = [(plen, m) for plen, m in shared_prefix_groups(inputs, need, long_min) if (len(m) - 1) * plen >= short_saving]
    taken = {i for _, members in groups for i in members}
    rest = [i for i in range(len(inputs)) if i not in taken]
    for plen, members in shared_prefix_groups([inputs[i] for i in rest], [need[i] for i in rest], short_min):
        if (len(members) - 1) * plen >= short_saving:
            groups.append((plen, [rest[k] for k in members]))
    return groups


REUSABLE_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})
"""Layer kinds whose key/value cache holds exactly what a whole-prompt pass computes, indexed by
position: a cached prefix plus the rest equals the whole. Recurrent or linear-attention layers
(hybrid models) keep a running state that right padding and batch copies would corrupt."""


def reuse_unsupported(config) -> str | None:
    """Why prefix reuse cannot be exact for a model of this config, or None when it can."""
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model"
    text = getattr(config, "text_config", None) or config  # multimodal wrappers keep the LM's config inside
    kinds = set(getattr(text, "layer_types", None) or ["full_attention"])
    other = sorted(kinds - REUSABLE_LAYER_TYPES)
    return f"hybrid attention (layer types {', '.join(other)})" if other else None


def _model_max_length(model) -> int:
    # lm-eval's default when the config names none is 2048; very long windows (Gemma: 32k)
    # are capped there too, since nothing in a benchmark prompt needs more.
    for attr in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(model.config, attr, None)
        if value:
            return min(int(value), 2048)
    return 2048


def open_model(model, options: dict | None = None) -> HFBackend:
    """A resolved model (base directory, adapters in order, dtype, quantization) in transformers."""
    if model.reward_head is not None:

        # Its chain is its parent's: loading it as a causal LM would silently serve the parent.
        raise ConfigError(f"{model.name}: a reward model scores outputs; it cannot generate or judge as a model")
    options = options or {}
    return HFBackend(model.base_dir, adapters=list(model.adapters), dtype=options.get("dtype", model.dtype), quantization=model.quantization,
                     max_length=options.get("max_length"), batch_size=options.get("batch_size", 8),
                     prefix_reuse=options.get("prefix_reuse", True), device_map=options.get("device_map"),
                     max_memory=options.get("max_memory"))


DTYPES = ("float32", "bfloat16", "float16")


def _check(options: dict, where: str) -> None:
    if options.get("dtype", "float32") not in DTYPES:
        raise ConfigError(f"{where}.dtype: expected one of {', '.join(DTYPES)}, got {options['dtype']!r}")
    if not isinstance(options.get("prefix_reuse", True), bool):
        raise ConfigError(f"{where}.prefix_reuse: expected true or false, got {options['prefix_reuse']!r}")
    size = options.get("batch_size", 8)
    if size != "auto" and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ConfigError(f"{where}.batch_size: expected a whole number of at least 1 or auto, got {size!r}")
    device_map = options.get("device_map")
    if device_map is not None and not isinstance(device_map, (str, dict)):
        raise ConfigError(f"{where}.device_map: expected auto, a device (cpu, cuda:0) or a module -> device mapping, "
                          f"got {device_map!r}")
    memory = options.get("max_memory")
    if memory is not None:
        if not isinstance(memory, dict) or not all(isinstance(v, (str, int)) for v in memory.values()):
            raise ConfigError(f"{where}.max_memory: expected a mapping of device to size, e.g. {{0: 20GiB, 1: 20GiB, cpu: 60GiB}}, "
                              f"got {memory!r}")
        if device_map is None:
            raise ConfigError(f"{where}.max_memory: only means something with a device_map", hint="add device_map: auto")


def _can_serve(model) -> None:
    """torch and transformers are the `models` extra: without them, say so before a run writes
    anything (found, not imported: the check costs nothing)."""
    import importlib.util

    for package in ("torch", "transformers"):
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingDependencyError(f"{model.name} (served in-process by transformers)", package, "models")


FACTORY = BackendFactory(open_model, frozenset({"max_length", "batch_size", "prefix_reuse", "dtype", "device_map", "max_memory"}),
                         "transformers in-process (CPU or CUDA; device_map: auto spreads a model over devices)",
                         integer_options=frozenset({"max_length"}), check=_check, can_serve=_can_serve)
