"""The backend contract. A backend declares its capabilities (BackendInfo.capabilities), a run checks
them against what each task kind needs, and a call of one it lacks is an error: nothing falls
back silently."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

GENERATE = "generate"
"""Capability: generate(prompts, config)."""
LOGLIKELIHOOD = "loglikelihood"
"""Capability: loglikelihood(pairs) (multiple choice, classification, perplexity)."""
REPLAY = "replay"
"""Capability: replay((item id, turn) pairs): stored answers, not a model (answer sets)."""


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings passed to generate()."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    batch_size: int = 8
    seed: int = 1234
    top_k: int = 0
    """0: no limit."""
    repetition_penalty: float = 1.0
    """1: off."""


@dataclass(frozen=True)
class Generation:
    """One generated output with its accounting."""

    text: str
    prompt_tokens: int
    output_tokens: int
    latency_s: float
    """Wall time of the batch this output was generated in, divided by the batch size."""
    ttft_s: float | None = None
    """Time to first token: from the call until the batch's first new token existed."""
    request_latency_s: float | None = None
    """What the caller waited for this output: the whole batch's wall time."""


@dataclass(frozen=True)
class Loglikelihood:
    """log P(continuation | context) summed over the continuation's tokens (lm-eval's definition)."""

    logprob: float
    is_greedy: bool
    """Whether greedy decoding would have produced exactly this continuation."""
    n_tokens: int


@dataclass(frozen=True)
class BackendInfo:
    """What is recorded with each run about the serving side."""

    name: str
    device: str = "cpu"
    dtype: str = "float32"
    details: dict = field(default_factory=dict, hash=False)
    capabilities: frozenset[str] = frozenset({GENERATE, LOGLIKELIHOOD})
    """What this opened backend can do (GENERATE, LOGLIKELIHOOD, REPLAY): declared, so callers
    check a capability instead of probing for methods."""
    max_length: int | None = None
    """The longest token sequence it scores in one window, where it has one."""


@runtime_checkable
class Backend(Protocol):
    """What the evaluator needs from a model."""

    info: BackendInfo

    def generate(self, prompts: list[str], config: GenerationConfig) -> list[Generation]:
        """Generate one output per prompt."""
        ...

    def loglikelihood(self, requests: list[tuple[str, str]], on_done=None) -> list[Loglikelihood]:
        """Score many (context, continuation) pairs at once. `on_done`, when given, is called
        with {request index: result} as results become final (after each batch), so callers
        can checkpoint while one call batches across all requests."""
        ...

    def close(self) -> None:
        """Release memory."""
        ...


def token_count_note(backend) -> dict:
    """{"token_counts": how} when the backend could not count tokens itself (an endpoint that sent
    no usage counts words), for the details of every sample it produced; else {}."""
    how = backend.info.details.get("token_counts")
    return {"token_counts": how} if how else {}


def apply_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut `text` at the earliest stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def split_pair(encode: Callable[[str], list[int]], encode_plain: Callable[[str], list[int]], prefix: int,
               context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's `_encode_pair`, for any tokenizer: trailing spaces of the context move to the
    continuation; the whole is encoded (`encode`, with BOS) and split after the context's tokens.
    An empty context scores the continuation (`encode_plain`, no BOS) after `prefix` (BOS, else EOS)."""
    if context == "":
        cont = encode_plain(continuation)
        return ([prefix], cont) if prefix != cont[0] else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(context + continuation)
    ctx = encode(context)
    return ctx, whole[len(ctx):]


@dataclass(frozen=True)
class ScoringPlan:
    """Log-likelihood requests grouped by the model input they need (lm-eval's truncation:
    (context + continuation)[-(max_length + 1):][:-1]): requests with the same input, such as
    the four one-token answer letters of an MMLU item, share one forward pass."""

    inputs: list[tuple[int, ...]]
    """The distinct model inputs."""
    continuations: list[list[int]]
    """Per request: its continuation's tokens."""
    input_of: list[int]
    """Per request: the index of its input."""
    need: list[int]
    """Per input: how many trailing positions its requests score."""
    asking: dict[int, list[int]]
    """Per input: the requests that share it."""


def plan_scoring(encoded: list[tuple[list[int], list[int]]], max_length: int) -> ScoringPlan:
    """Group (context tokens, continuation tokens) pairs by the model input each needs."""
    index: dict[tuple[int, ...], int] = {}
    input_of, continuations = [], []
    for ctx, cont in encoded:
        if not cont:
            raise ValueError("empty continuation after tokenisation")
        inp = tuple((ctx + cont)[-(max_length + 1):][:-1])
        input_of.append(index.setdefault(inp, len(index)))
        continuations.append(cont)
    need = [0] * len(index)
    asking: dict[int, list[int]] = {}
    for pos, (idx, cont) in enumerate(zip(input_of, continuations)):
        need[idx] = max(need[idx], len(cont))
        asking.setdefault(idx, []).append(pos)
    return ScoringPlan(list(index), continuations, input_of, need, asking)


@dataclass(frozen=True)
class BackendFactory:
    """A registered backend (registry kind `backend`): how to open a resolved model with it.
    `open(model, options)` gets a harness.models.parent.ParentModel (base directory, adapters, dtype,
    quantization) and the models file's `options` for the base."""

    open: Callable[[Any, dict], Backend]
    options: frozenset[str]
    """The `options` keys it accepts; any other is an error at validation."""
    description: str = ""
    integer_options: frozenset[str] = frozenset()
    """Options that must be whole numbers >= 1."""
    check: Callable[[dict, str], None] | None = None
    """Further checks of a model's options at validation (`check(options, where)` raises
    ConfigError), e.g. options the backend can't do without."""
    can_serve: Callable[[Any], None] | None = None
    """`can_serve(model)` raises ConfigError when this backend can't load the resolved model
    (llama.cpp needs a GGUF file): checked before a run writes anything."""
