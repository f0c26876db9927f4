"""The vLLM backend (extra `harness[vllm]`, CUDA only): vLLM's offline engine in-process, the
serving stack most GPU deployments use, with its continuous batching and paged attention.

- LoRA: the variant's last adapter is served as a LoRA request over the base, as a vLLM server
  would serve it. An adapter chain (base -> SFT -> DPO) is folded first: every adapter but the
  last is merged into a checkpoint cached under $HARNESS_CACHE/vllm-folded, because the DPO
  adapter was trained on the SFT-merged weights and applying it to the bare base is another model.
- Multiple choice: the prompt log-probabilities vLLM computes (`prompt_logprobs`) for the same
  token ids the hf backend would score (lm-eval's context/continuation split, with the model's
  tokenizer), so per-option log-likelihoods are comparable with hf's.
- Without CUDA, or without vllm installed, opening it is a clear error; nothing falls back."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from harness.backends.base import (
    BackendFactory,
    BackendInfo,
    Generation,
    GenerationConfig,
    Loglikelihood,
    apply_stop,
)
from harness.backends.hf import encode_pair, encode_text
from harness.errors import ConfigError, require
from harness.models import weights
from harness.models.loading import load_causal_lm

log = logging.getLogger(__name__)


def fold_adapters(base_dir: Path, adapters: tuple[Path, ...] | list[Path]) -> Path:
    """A checkpoint with `adapters` merged in order (cached by their paths' content keys)."""

    if not adapters:
        return Path(base_dir)
    key = hashlib.sha256("\n".join(str(Path(p).resolve()) for p in [base_dir, *adapters]).encode()).hexdigest()[:16]
    out = weights.cache_dir() / "vllm-folded" / key
    if (out / "config.json").is_file():
        return out
    from transformers import AutoTokenizer

    log.info("folding %d adapter(s) into %s for vLLM", len(adapters), out)
    model = load_causal_lm(base_dir, adapters, "float32", merge_all=True)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(base_dir)).save_pretrained(tmp)
    tmp.rename(out)
    return out


class VLLMBackend:
    """A model in vLLM's offline engine, its last adapter (if any) served as LoRA."""

    def __init__(self, model_dir: Path, adapter: Path | None = None, dtype: str = "bfloat16", max_length: int = 2048,
                 gpu_memory_utilization: float = 0.5, max_lora_rank: int = 64, seed: int = 0, tensor_parallel_size: int = 1,
                 pipeline_parallel_size: int = 1):
        torch = require("torch", "the vllm backend", "vllm")
        if not torch.cuda.is_available():
            raise ConfigError("the vllm backend needs a CUDA GPU, and none is visible",
                              hint="serve this model with backend: hf (or llama_cpp for a GGUF) on this machine")
        vllm = require("vllm", "the vllm backend", "vllm")
        from transformers import AutoTokenizer

        start = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.llm = vllm.LLM(model=str(model_dir), dtype=dtype, max_model_len=max_length, seed=seed,
                            gpu_memory_utilization=gpu_memory_utilization, enable_lora=adapter is not None,
                            max_lora_rank=max_lora_rank, tensor_parallel_size=tensor_parallel_size,
                            pipeline_parallel_size=pipeline_parallel_size,
                            # Inside a Ray replica the engine's workers are its own processes on the
                            # replica's GPUs; vLLM's Ray executor would ask the cluster for more
                            **({"distributed_executor_backend": "mp"} if tensor_parallel_size * pipeline_parallel_size > 1 else {}))
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest(Path(adapter).name, 1, str(adapter))
        self.max_length = max_length
        log.info("loaded %s in vLLM%s in %.1fs", model_dir, " + LoRA" if adapter else "", time.perf_counter() - start)
        self.info = BackendInfo(name="vllm", device="cuda", dtype=dtype, max_length=max_length,
                                details={"model_path": str(model_dir), "lora": str(adapter) if adapter else None,
                                         "vllm": vllm.__version__, "tensor_parallel_size": tensor_parallel_size,
                                         "pipeline_parallel_size": pipeline_parallel_size})

    def generate(self, prompts: list[str], config: GenerationConfig) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # One seed per prompt, so that n draws of one prompt in a call are n different samples.
        params = [SamplingParams(max_tokens=config.max_new_tokens, temperature=config.temperature,
                                 top_p=config.top_p if config.temperature > 0 else 1.0, stop=list(config.stop) or None,
                                 top_k=config.top_k if config.top_k > 0 else -1, repetition_penalty=config.repetition_penalty,
                                 seed=config.seed + k if config.temperature > 0 else None) for k in range(len(prompts))]
        t0 = time.perf_counter()
        # Token ids, encoded as for log-likelihoods: a prompt that starts with BOS (a chat
        # template's rendering) gets no second one, which vLLM's own tokenisation would add
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=encode_text(self.tokenizer, p)) for p in prompts], params,
                                 lora_request=self.lora, use_tqdm=False)
        elapsed = time.perf_counter() - t0
        results = []
        for out in outs:
            text = apply_stop(out.outputs[0].text, config.stop)
            metrics = getattr(out, "metrics", None)
            first = getattr(metrics, "first_token_time", None) if metrics else None
            arrival = getattr(metrics, "arrival_time", None) if metrics else None
            ttft = (first - arrival) if first is not None and arrival is not None else None
            results.append(Generation(text, len(out.prompt_token_ids), len(out.outputs[0].token_ids),
                                      elapsed / len(prompts), ttft, elapsed))
        return results

    def loglikelihood(self, requests: list[tuple[str, str]], on_done=None) -> list[Loglikelihood]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        encoded = [encode_pair(self.tokenizer, c, x) for c, x in requests]
        inputs = [(ctx + cont)[-self.max_length:] for ctx, cont in encoded]
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in inputs], params,
                                 lora_request=self.lora, use_tqdm=False)
        results = []
        for (_ctx, cont), ids, out in zip(encoded, inputs, outs):
            total, greedy = 0.0, True
            for pos in range(len(ids) - len(cont), len(ids)):
                entry = out.prompt_logprobs[pos][ids[pos]]  # the actual token is always included
                total += float(entry.logprob)
                greedy = greedy and entry.rank == 1
            results.append(Loglikelihood(total, greedy, len(cont)))
        if on_done is not None:
            on_done(dict(enumerate(results)))
        return results

    def close(self) -> None:
        import gc

        self.llm = None
        gc.collect()


def can_serve(model) -> None:
    """vLLM serves transformers checkpoints and LoRA adapters, not bitsandbytes or GGUF artifacts."""
    if model.quantization is not None or (model.gguf is not None and not (Path(model.base_dir) / "config.json").is_file()):
        raise ConfigError(f"model '{model.name}': the vllm backend serves transformers checkpoints and LoRA adapters, "
                          "not bitsandbytes or GGUF artifacts", hint="serve it with hf (bitsandbytes) or llama_cpp (GGUF)")


def open_model(model, options: dict | None = None) -> VLLMBackend:
    """A resolved model (base directory and adapters) in vLLM."""
    can_serve(model)
    options = dict(options or {})
    adapters = list(model.adapters)
    base = fold_adapters(model.base_dir, adapters[:-1]) if len(adapters) > 1 else Path(model.base_dir)
    return VLLMBackend(base, adapters[-1] if adapters else None, **options)


FACTORY = BackendFactory(open_model, frozenset({"dtype", "max_length", "gpu_memory_utilization", "max_lora_rank", "seed",
                                                "tensor_parallel_size", "pipeline_parallel_size"}),
                         "vLLM's offline engine on CUDA, LoRA adapters served as LoRA; tensor/pipeline parallel over "
                         "a replica's GPUs, data parallel as resources.num_replicas (extra: vllm)",
                         integer_options=frozenset({"max_length", "max_lora_rank", "tensor_parallel_size", "pipeline_parallel_size"}),
                         can_serve=can_serve)
