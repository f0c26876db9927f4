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


FEWSHOT_HEAD = "The following are multiple choice questions (with answers) about coffee.\n\n" + "".join(
    f"What is {k} plus {k}?\nA. {k}\nB. {2 * k}\nC. {3 * k}\nD. {4 * k}\nAnswer: B\n\n" for k in range(1, 4))
FEWSHOT = [(FEWSHOT_HEAD + q + "\nA. yes\nB. no\nC. maybe\nD. never\nAnswer:", f" {x}")
           for q in ("Is espresso a drink?", "Which bean is roasted darker?", "Where do beans grow?") for x in "ABCD"] + [
    (FEWSHOT_HEAD + "Is a latte milky?\nAnswer:", " yes, a latte is mostly steamed milk"),  # several tokens
    (FEWSHOT_HEAD, "Brief"),  # the whole head is context: its prefix must stop short of the scored position
    ("unrelated short context", " x"),
]


@pytest.mark.parametrize("max_length", [512, 96])  # 96: left truncation cuts into the shared head
def test_shared_prefix_reuse_equals_lm_eval_and_plain_batches(tiny_model_dir, max_length):
    """Few-shot inputs share the description and the examples: scored on top of that prefix's
    cache, they equal lm-eval's HFLM and the plain left-padded batches within 1e-4."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from harness.backends.base import plan_scoring
    from harness.backends.hf import shared_prefix_groups

    reuse = HFBackend(tiny_model_dir, max_length=max_length, batch_size=3)
    plain = HFBackend(tiny_model_dir, max_length=max_length, batch_size=3, prefix_reuse=False)
    p = plan_scoring([reuse.encode_pair(c, x) for c, x in FEWSHOT], max_length)
    groups = shared_prefix_groups(p.inputs, p.need, reuse.PREFIX_MIN_TOKENS)
    assert groups and max(len(m) for _, m in groups) >= (4 if max_length == 512 else 2)  # the path under test is taken
    got, base = reuse.loglikelihood(FEWSHOT), plain.loglikelihood(FEWSHOT)
    lm = HFLM(pretrained=reuse.model, tokenizer=reuse.tokenizer, max_length=max_length, batch_size=2)
    reference = lm.loglikelihood([Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(FEWSHOT)], disable_tqdm=True)
    for a, b, (ref_lp, ref_greedy) in zip(got, base, reference):
        assert a.logprob == pytest.approx(ref_lp, abs=1e-4) and a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert a.is_greedy == ref_greedy == b.is_greedy


def test_shared_prefix_groups():
    from harness.backends.hf import shared_prefix_groups

    a = tuple(range(40))
    inputs = [a + (1, 2), a + (1, 3), a[:10] + (99,), a + (5,), (7,) * 50]
    groups = shared_prefix_groups(inputs, [1, 1, 1, 2, 1], 32)
    assert groups == [(39, [0, 1, 3])]  # a + (5,) is scored at its last 2 positions: the prefix stops before them
    # a member whose scored positions start inside the shared part shortens the group's prefix
    assert shared_prefix_groups([a + (1,), a + (2,)], [1, 5], 32) == [(36, [0, 1])]
    assert shared_prefix_groups([a + (1,), a + (2,)], [1, 10], 32) == []  # too short to be worth it


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


def test_a_short_shared_description_is_reused_without_swallowing_long_heads(tiny_model_dir):
    """0-shot items share only the task description (about a dozen tokens): worth one cached pass
    once there are enough of them; scored on it they equal the plain batches within 1e-4. A long
    few-shot head keeps its own group rather than being merged on the description."""
    from harness.backends.base import plan_scoring
    from harness.backends.hf import reuse_groups

    description = "Coffee quiz.\n\n"
    # One option an item: the tiny tokenizer splits " A" into two tokens, so an item's own
    # options would share more than 32 tokens and pair up in the first pass.
    zero_shot = [(description + f"Question {k}: is roast {k} darker than roast {k + 1}?\nAnswer:", " yes") for k in range(40)]
    head = description + "".join(f"Question {k}: is {k} less than {k + 1}?\nAnswer: A\n\n" for k in range(3))
    few_shot = [(head + f"Question {k}: is {k} odd?\nAnswer:", " yes") for k in range(5)]
    reuse = HFBackend(tiny_model_dir, max_length=512, batch_size=8)
    plain = HFBackend(tiny_model_dir, max_length=512, batch_size=8, prefix_reuse=False)
    p = plan_scoring([reuse.encode_pair(c, x) for c, x in zero_shot + few_shot], 512)
    groups = reuse_groups(p.inputs, p.need, reuse.PREFIX_MIN_TOKENS, reuse.SHORT_PREFIX_MIN_TOKENS, reuse.SHORT_PREFIX_MIN_SAVING)
    sizes = sorted((len(m), plen, min(m)) for plen, m in groups)
    assert len(sizes) == 2, sizes
    (n_few, long_plen, first_few), (n_zero, short_plen, first_zero) = sizes
    assert n_few == 5 and long_plen >= 32 and first_few == 40  # the few-shot head: its own long group
    assert n_zero == 40 and 8 <= short_plen < 32 and first_zero == 0  # the description: one short group
    got, base = reuse.loglikelihood(zero_shot), plain.loglikelihood(zero_shot)
    for a, b in zip(got, base):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4) and a.is_greedy == b.is_greedy
    # Too few items for a short prefix to pay: no group.
    q = plan_scoring([reuse.encode_pair(c, x) for c, x in zero_shot[:4]], 512)
    assert reuse_groups(q.inputs, q.need, 32, 8, 256) == []


def test_skinny_vocab_projection_gives_the_same_logits(tiny_model_dir):
    """The few-row vocabulary projection (W @ x^T) equals the model's own within float32 rounding,
    for one decode row, a batch of them and a long sequence (which keeps `linear`)."""
    import torch

    from harness.backends.hf import skinny_vocab_projection
    from harness.models.loading import load_causal_lm

    model = load_causal_lm(tiny_model_dir).eval()
    ids = torch.randint(5, 200, (3, 150))
    with torch.no_grad():
        before = [model(input_ids=ids[:1, :7]).logits, model(input_ids=ids[:, :9], logits_to_keep=1).logits,
                  model(input_ids=ids).logits]
        assert skinny_vocab_projection(model)
        after = [model(input_ids=ids[:1, :7]).logits, model(input_ids=ids[:, :9], logits_to_keep=1).logits,
                 model(input_ids=ids).logits]
    for a, b in zip(before, after):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    assert not skinny_vocab_projection(load_causal_lm(tiny_model_dir, dtype="bfloat16"))  # float32 CPU only


def test_dtype_is_a_backend_option(tiny_model_dir):
    from harness.backends.hf import FACTORY, open_model
    from harness.errors import ConfigError
    from harness.models.parent import ParentModel

    resolved = ParentModel("tiny", "-", tiny_model_dir)
    assert open_model(resolved, {"dtype": "bfloat16"}).info.dtype == "bfloat16"
    assert open_model(resolved, {}).info.dtype == "float32"
    with pytest.raises(ConfigError, match=r"base.options.dtype: expected one of float32, bfloat16, float16, got 'int4'"):
        FACTORY.check({"dtype": "int4"}, "base.options")


@pytest.fixture(scope="module")
def sliding_window_model_dir(tiny_model_dir, tmp_path_factory):
    """A tiny Gemma 3 (hybrid local/global attention, as the embedded default): three layers
    with a 16-token sliding window, one global, so every few-shot prompt is longer than the
    window and reused prefixes end far outside it."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                              sliding_window=16, layer_types=["sliding_attention"] * 3 + ["full_attention"],
                              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("sliding") / "model"
    Gemma3ForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


MIXED = FEWSHOT + [(FEWSHOT_HEAD + f"Question {k}: is a cup number {k} full?" + " word" * k + "\nAnswer:", f" {x}")
                   for k in range(1, 9) for x in "AB"]  # suffixes of many lengths: padded rows in every batch


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_prefix_reuse_is_exact_on_a_sliding_window_model_in_mixed_batches(sliding_window_model_dir, batch_size):
    """Reuse equals whole-prompt scoring (<= 1e-5) on a model whose attention window is shorter
    than its prompts, whatever the batch holds; the check on first use keeps it on."""
    from harness.backends.base import plan_scoring
    from harness.backends.hf import reuse_groups

    reuse = HFBackend(sliding_window_model_dir, max_length=512, batch_size=batch_size)
    whole = HFBackend(sliding_window_model_dir, max_length=512, batch_size=1, prefix_reuse=False)
    p = plan_scoring([reuse.encode_pair(c, x) for c, x in MIXED], 512)
    assert reuse_groups(p.inputs, p.need, reuse.PREFIX_MIN_TOKENS, reuse.SHORT_PREFIX_MIN_TOKENS, reuse.SHORT_PREFIX_MIN_SAVING)
    got, base = reuse.loglikelihood(MIXED), whole.loglikelihood(MIXED)
    assert reuse.reuse_verified and reuse.info.details["prefix_reuse"].startswith("on (checked")
    assert max(abs(a.logprob - b.logprob) for a, b in zip(got, base)) <= 1e-5
    assert [a.is_greedy for a in got] == [b.is_greedy for b in base]
    # The same request scored among different neighbours gets the same number.
    alone = reuse.loglikelihood(MIXED[5:6])[0].logprob
    assert abs(alone - got[5].logprob) <= 1e-5


def test_inexact_reuse_is_turned_off_for_the_model(tiny_model_dir, monkeypatch):
    """A reuse path that disagrees with whole-prompt scoring is not used: the backend falls back
    to plain batches, says why in its details, and the numbers are the plain ones."""
    reuse = HFBackend(tiny_model_dir, max_length=512, batch_size=3)
    plain = HFBackend(tiny_model_dir, max_length=512, batch_size=3, prefix_reuse=False)
    honest = HFBackend._score_on_prefix
    monkeypatch.setattr(HFBackend, "_score_on_prefix", lambda self, *a: [lp + 1e-3 for lp in honest(self, *a)])
    got, base = reuse.loglikelihood(FEWSHOT), plain.loglikelihood(FEWSHOT)
    assert reuse.reuse_off_because and "differs from whole-prompt scoring" in reuse.reuse_off_because
    assert reuse.info.details["prefix_reuse"].startswith("off (")
    assert [a.logprob for a in got] == pytest.approx([b.logprob for b in base], abs=1e-6)


def test_reuse_is_off_for_hybrid_recurrent_architectures():
    from types import SimpleNamespace

    from harness.backends.hf import reuse_unsupported

    assert reuse_unsupported(SimpleNamespace(layer_types=["sliding_attention", "full_attention"])) is None
    assert reuse_unsupported(SimpleNamespace()) is None  # a plain decoder
    assert "linear_attention" in reuse_unsupported(SimpleNamespace(layer_types=["linear_attention", "full_attention"]))
    assert reuse_unsupported(SimpleNamespace(is_encoder_decoder=True)) == "an encoder-decoder model"


def test_a_local_judge_score_does_not_depend_on_its_batch(sliding_window_model_dir):
    """The judge's rating path scores the same prompt to the same number alone or among others."""
    from harness.judge.clients import JudgeCall, LocalJudge

    backend = HFBackend(sliding_window_model_dir, max_length=512, batch_size=4)
    judge = LocalJudge(backend, "tiny")
    system = "You are a judge. " + "Rate the answer for accuracy and tone. " * 4
    calls = [JudgeCall(system, f"Question: brew number {k}?\nAnswer: " + "a warm cup " * k, "rating") for k in range(1, 7)]
    together = [r.text for r in judge.judge_many(calls)]
    alone = [judge.judge_many([c])[0].text for c in calls]
    assert together == alone


def test_batch_size_auto_halves_on_out_of_memory_and_records_it(tiny_model_dir, monkeypatch):
    """batch_size: auto starts at 64 and halves a batch that runs out of memory until it fits; the
    numbers are those of a fixed batch size, and the size reached is in the run's details."""
    import torch

    auto = HFBackend(tiny_model_dir, max_length=128, batch_size="auto", prefix_reuse=False)
    fixed = HFBackend(tiny_model_dir, max_length=128, batch_size=4, prefix_reuse=False)
    real_score, real_generate = HFBackend._score_left_padded, HFBackend._generate_batch

    def score(self, inputs, need):
        if self.auto_batch and len(inputs) > 5:  # "the device" holds 5 inputs
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_score(self, inputs, need)

    def generate(self, prompts, batch, config, results):
        if self.auto_batch and len(batch) > 5:
            raise RuntimeError("CUDA error: out of memory")
        return real_generate(self, prompts, batch, config, results)
    monkeypatch.setattr(HFBackend, "_score_left_padded", score)
    monkeypatch.setattr(HFBackend, "_generate_batch", generate)
    requests = PAIRS * 4
    got, want = auto.loglikelihood(requests), fixed.loglikelihood(requests)
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-5)
    # (identical inputs share one pass: the 24 requests are 6 inputs, halved once to 3)
    assert auto.info.details["batch_size"] == {"auto": True, "start": 64, "reached": 3, "halvings_on_out_of_memory": 1}
    config = GenerationConfig(max_new_tokens=4, batch_size=64)
    prompts = [c for c, _ in PAIRS] * 2
    assert [g.text for g in auto.generate(prompts, config)] == [g.text for g in fixed.generate(prompts, GenerationConfig(4, batch_size=4))]
    assert auto.batch_size == 3  # fits: no further halving
    fresh = HFBackend(tiny_model_dir, max_length=128, batch_size="auto", prefix_reuse=False)
    fresh.model = auto.model  # generation alone: 12 prompts, 12 -> 6 -> 3
    assert [g.text for g in fresh.generate(prompts, config)] == [g.text for g in fixed.generate(prompts, GenerationConfig(4, batch_size=3))]
    assert fresh.info.details["batch_size"]["reached"] == 3 and fresh.halvings == 2

    def broken(self, inputs, need):
        raise RuntimeError("shape mismatch")  # not a memory error: raised, not halved
    monkeypatch.setattr(HFBackend, "_score_left_padded", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        auto.loglikelihood(PAIRS)
