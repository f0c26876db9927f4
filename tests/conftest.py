"""Shared fixtures: a tiny causal LM built in-process, and small workspaces on disk.

The tiny model is a 2-layer Llama with a byte-level BPE tokenizer trained (in ~0.1 s) on
the shipped brand corpus, so the real transformers / peft / trl code paths run in seconds."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def corpus_lines() -> list[str]:
    lines = []
    for split in ("train", "validation", "test"):
        for line in (REPO / "data" / "brand" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            lines += [row["topic"], row["tweet"], f"Write a tweet for Lumen Coffee.\nBrief: {row['topic']}\nTweet: {row['tweet']}"]
    for path in sorted((REPO / "data" / "mmlu_sample").rglob("*.csv")):
        lines += path.read_text(encoding="utf-8").splitlines()
    lines += ["The following are multiple choice questions (with answers) about", "Answer: A", "Answer: B", "Answer: C", "Answer: D"]
    return lines


def make_tiny_model(path: Path, seed: int = 0, layers: int = 2) -> Path:
    """Save a tiny Llama + BPE tokenizer (BOS added, like Gemma's) under `path`."""
    import torch
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<pad>", "<bos>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=bos, eos_token_id=tok.token_to_id("<eos>"), pad_token_id=tok.token_to_id("<pad>"),
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def make_tiny_tweeter(path: Path, steps: int = 300, seed: int = 0) -> Path:
    """The tiny model trained `steps` steps (batch 16, ~6 s) on the brand's training briefs and
    tweets, so it samples tweet-like text (openers, hashtags, emoji) instead of near-uniform tokens:
    a policy that RL can move in seconds."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_tiny_model(path, seed=seed)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    rows = [json.loads(line) for line in (REPO / "data" / "brand" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = [f"Brief: {r['topic']}\nTweet: {r['tweet']}{tok.eos_token}" for r in rows]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    draw = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        enc = tok([texts[i] for i in torch.randint(len(texts), (16,), generator=draw)], return_tensors="pt", padding=True)
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        model(**enc, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


MC_SUITE = """
name: mc
tasks:
  - name: quiz
    type: multiple_choice
    data: {format: mmlu_csv, path: @DATA@, split: test, subjects: [arithmetic, world_geography]}
    fewshot: {k: 2, split: dev}
    prompt:
      description: "The following are multiple choice questions (with answers) about {{ subject }}.\\n\\n"
      template: "{{ question }}\\nA. {{ choices[0] }}\\nB. {{ choices[1] }}\\nC. {{ choices[2] }}\\nD. {{ choices[3] }}\\nAnswer:"
    scorers: [acc, acc_norm]
"""

GEN_SUITE = """
name: gen
tasks:
  - name: tweets
    type: generation
    data: {format: jsonl, path: @DATA@, limit: 6}
    id_field: id
    prompt:
      template: "Write a tweet for Lumen Coffee.\\nBrief: {{ topic }}\\nTweet:"
      reference: "{{ tweet }}"
    generation: {max_new_tokens: 8, stop: ["\\n"], batch_size: 4}
    scorers: [rouge, bleu, chrf, exact_match]
"""


@pytest.fixture
def workspace(tmp_path) -> Path:
    """suites/ (mc + gen over shipped data) in a temp dir; models/ and reports/ are per test."""
    write(tmp_path / "suites" / "mc.yaml", MC_SUITE.replace("@DATA@", str(REPO / "data" / "mmlu_sample")))
    write(tmp_path / "suites" / "gen.yaml", GEN_SUITE.replace("@DATA@", str(REPO / "data" / "brand" / "test.jsonl")))
    return tmp_path


@pytest.fixture
def scripted_latency(tmp_path):
    """A latency task on the fake backend with scripted latencies 0.1..1.0 s (10 items, 4 output
    tokens each, concurrency 1 and 5, 3.6 per hour): run it with `scripted_latency(store)`."""
    items = [{"id": f"i{k}", "topic": "x " * (k + 1)} for k in range(10)]
    write(tmp_path / "d.jsonl", "\n".join(json.dumps(i) for i in items) + "\n")
    latencies = [0.1 * (k + 1) for k in range(10)]
    models = write(tmp_path / "m.yaml", f"base: {{name: fake-l, source: fake, options: {{latencies: {latencies}, default_output: 'a b c d'}}}}\n")
    suite = write(tmp_path / "s.yaml", """
        name: serve
        tasks:
          - name: serving
            type: latency
            data: {format: jsonl, path: d.jsonl}
            id_field: id
            prompt: {template: "{{ topic }}"}
            latency: {concurrency: [1, 5], warmup: 0, price_per_hour: 3.6}
        """)

    def run(store: Path) -> int:
        from harness.cli import main

        return main(["run", str(suite), "--models", str(models), "--store", str(store)])

    return run


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance for the session (2 CPUs, as on CI): its GCS address. `harness run
    --ray` in this process joins it; a subprocess joins it with `--ray ADDRESS`."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, namespace="harness", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
