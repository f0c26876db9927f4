"""The vllm backend: without CUDA it is a clear error (never a silent fallback); the adapter-chain
folding it serves from is exact (checked on the CPU); on a GPU with vllm installed (-m gpu),
multiple-choice log-likelihoods match the hf backend."""

from __future__ import annotations

import pytest

from harness.cli import main
from tests.conftest import write


def _adapter(model_dir, out, seed: int):
    """A LoRA adapter with random (non-zero) weights, so it changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(out)
    return out


@pytest.fixture
def chain(tiny_model_dir, tmp_path):
    pytest.importorskip("peft", reason="peft is not installed (extra: train)")
    return _adapter(tiny_model_dir, tmp_path / "a1", 1), _adapter(tiny_model_dir, tmp_path / "a2", 2)


def test_folding_a_chain_keeps_what_the_chain_computes(tiny_model_dir, chain, tmp_path, monkeypatch):
    """vLLM serves one LoRA over a base: the chain base -> a1 -> a2 becomes (base + a1 merged) -> a2.
    Serving a2 on the bare base instead (the old GPU script's bug) is another model."""
    from harness.backends.hf import HFBackend
    from harness.backends.vllm import fold_adapters

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    pair = [("Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup.")]
    want = HFBackend(tiny_model_dir, adapters=list(chain)).loglikelihood(pair)[0].logprob
    folded = fold_adapters(tiny_model_dir, chain[:1])
    assert fold_adapters(tiny_model_dir, chain[:1]) == folded  # cached
    got = HFBackend(folded, adapters=[chain[1]]).loglikelihood(pair)[0].logprob
    bare = HFBackend(tiny_model_dir, adapters=[chain[1]]).loglikelihood(pair)[0].logprob
    assert got == pytest.approx(want, abs=1e-4)
    assert abs(bare - want) > 1e-3


def test_without_cuda_the_vllm_backend_is_a_clear_error(workspace, tiny_model_dir, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    models = write(workspace / "models" / "m.yaml", f"base: {{name: tiny, source: hf_dir, path: {tiny_model_dir}, backend: vllm}}\n")
    assert main(["run", str(workspace / "suites" / "mc.yaml"), "--models", str(models), "--store", str(workspace / "h.duckdb")]) == 2
    assert "but this machine has no CUDA GPUs" in capsys.readouterr().err  # checked before anything loads


@pytest.mark.gpu
def test_vllm_log_likelihoods_match_hf_on_cuda(tiny_model_dir):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("vllm", reason="vllm is not installed (extra: vllm)")
    from harness.backends.hf import HFBackend
    from harness.backends.vllm import VLLMBackend

    requests = [("Question: what is two plus two?\nAnswer:", f" {x}") for x in "ABCD"]
    got = VLLMBackend(tiny_model_dir, dtype="float32", max_length=256).loglikelihood(requests)
    want = HFBackend(tiny_model_dir).loglikelihood(requests)
    for a, b in zip(got, want):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-2) and a.n_tokens == b.n_tokens
