"""The hf backend on the tiny model: log-likelihoods equal lm-eval's HFLM, generation works."""

from __future__ import annotations

import pytest

from harness.backends.base import GenerationConfig
from harness.backends.hf import HFBackend

PAIRS = [
    ("The following are multiple choice questions.\n\nWhat is 6 x 7?\nA. 36\nB. 42\nAnswer:", " A"),
    ("The following are multiple choice questions.\n\nWhat is 6 x 7?\nA. 36\nB. 42\nAnswer:", " B"),
    ("Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:", " A rainy morning calls for a warm cup."),
    ("Morning, neighbours. ", "Our doors are open"),  # trailing space moves into the continuation
    ("", "Hello, friends."),  # empty context: the BOS token conditions
    ("Short", " and a much longer continuation with several tokens in it"),
]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return HFBackend(tiny_model_dir, max_length=128, batch_size=3)


def test_loglikelihood_matches_lm_eval_hflm(backend):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=backend.model, tokenizer=backend.tokenizer, max_length=128, batch_size=2)
    reference = lm.loglikelihood([Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(PAIRS)], disable_tqdm=True)
    ours = backend.loglikelihood(PAIRS)
    assert len(ours) == len(PAIRS)
    for (ref_lp, ref_greedy), got in zip(reference, ours):
        assert got.logprob == pytest.approx(ref_lp, abs=1e-4)
        assert got.is_greedy == ref_greedy


def test_loglikelihood_shares_forward_passes_but_not_results(backend):
    # Four one-token options on one context share a forward pass; their values must still differ.
    ctx = "What is 6 x 7?\nAnswer:"
    results = backend.loglikelihood([(ctx, f" {c}") for c in "ABCD"])
    assert len({round(r.logprob, 6) for r in results}) == 4
    singles = [backend.loglikelihood([(ctx, f" {c}")])[0].logprob for c in "ABCD"]
    assert [r.logprob for r in results] == pytest.approx(singles, abs=1e-5)


def test_left_truncation_keeps_the_continuation(tiny_model_dir):
    short = HFBackend(tiny_model_dir, max_length=16)
    long_context = "coffee " * 100
    (res,) = short.loglikelihood([(long_context, " morning")])
    assert res.n_tokens >= 1 and res.logprob < 0


def test_generate_is_deterministic_and_respects_stop(backend):
    prompts = ["Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:", "Hello"]
    config = GenerationConfig(max_new_tokens=12, stop=("\n",), batch_size=2)
    first = backend.generate(prompts, config)
    second = backend.generate(list(reversed(prompts)), config)
    assert [g.text for g in first] == [g.text for g in reversed(second)]
    for g in first:
        assert "\n" not in g.text
        assert 0 <= g.output_tokens <= 12 and g.prompt_tokens > 0 and g.latency_s >= 0


def _random_adapter(model_dir, out, seed):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    # init_lora_weights=False: B is random too, so the adapter really changes the outputs
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(str(out))
    return out


def test_an_adapter_chain_applies_every_adapter(tiny_model_dir, tmp_path):
    """base -> SFT -> DPO: both adapters must count (a PeftModel inside a PeftModel silently
    drops the inner one, which once made a DPO variant score exactly like its base)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    a1 = _random_adapter(tiny_model_dir, tmp_path / "a1", 1)
    a2 = _random_adapter(tiny_model_dir, tmp_path / "a2", 2)
    pair = [("Write a tweet for Lumen Coffee.\nBrief: rain\nTweet:", " A rainy morning calls for a warm cup.")]
    base = HFBackend(tiny_model_dir).loglikelihood(pair)[0].logprob
    one = HFBackend(tiny_model_dir, adapters=[a1]).loglikelihood(pair)[0].logprob
    chain_backend = HFBackend(tiny_model_dir, adapters=[a1, a2])
    chain = chain_backend.loglikelihood(pair)[0].logprob
    manual = PeftModel.from_pretrained(
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(a1)).merge_and_unload(), str(a2))
    manual_backend = HFBackend(tiny_model_dir, model=manual, tokenizer=chain_backend.tokenizer)
    assert chain == pytest.approx(manual_backend.loglikelihood(pair)[0].logprob, abs=1e-4)
    assert len({round(base, 3), round(one, 3), round(chain, 3)}) == 3
