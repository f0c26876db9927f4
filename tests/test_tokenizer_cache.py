"""Large tokenizers are loaded once per machine (a pickle under $HARNESS_CACHE) and once per process."""

from __future__ import annotations

import json
import logging
import shutil

import pytest


@pytest.fixture
def cached(monkeypatch, tmp_path):
    import harness.models.tokenizers as tc

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tc, "PICKLE_MIN_BYTES", 0)  # the tiny model's tokenizer is far below the real threshold
    tc._shared.cache_clear()
    yield tc, tmp_path / "cache" / "tokenizers"
    tc._shared.cache_clear()


def test_a_cached_tokenizer_is_the_same_tokenizer(cached, tiny_model_dir, tmp_path, caplog):
    from transformers import AutoTokenizer

    tc, folder = cached
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    reference = AutoTokenizer.from_pretrained(str(model_dir))
    text = "Write a tweet for Lumen Coffee.\nBrief: a rainy morning\nTweet:"
    first = tc.load_tokenizer(model_dir)
    files = list(folder.glob("*.pkl"))
    assert len(files) == 1
    second = tc.load_tokenizer(model_dir)  # from the pickle
    assert second is not first
    for tok in (first, second):
        assert tok(text)["input_ids"] == reference(text)["input_ids"]
        assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (reference.bos_token_id, reference.eos_token_id,
                                                                          reference.pad_token_id)
    assert tc.shared_tokenizer(model_dir) is tc.shared_tokenizer(model_dir)  # once per process

    files[0].write_bytes(b"not a pickle")  # a damaged cache file is said and replaced, not trusted
    with caplog.at_level(logging.WARNING, logger="harness.models.tokenizers"):
        again = tc.load_tokenizer(model_dir)
    assert "unreadable" in caplog.text and again(text)["input_ids"] == reference(text)["input_ids"]
    assert files[0].read_bytes() != b"not a pickle"

    # An edited tokenizer is another key: loaded afresh, not served from the old file.
    config = model_dir / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "model_max_length": 77}))
    assert tc.load_tokenizer(model_dir).model_max_length == 77
    assert len(list(folder.glob("*.pkl"))) == 2


def test_small_tokenizers_are_not_cached(monkeypatch, tmp_path, tiny_model_dir):
    import harness.models.tokenizers as tc

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    tc.load_tokenizer(tiny_model_dir)
    assert not (tmp_path / "cache" / "tokenizers").exists()


def test_an_unwritable_cache_costs_speed_not_the_load(monkeypatch, tmp_path, tiny_model_dir, caplog):
    import harness.models.tokenizers as tc

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("HARNESS_CACHE", str(blocker))
    monkeypatch.setattr(tc, "PICKLE_MIN_BYTES", 0)
    with caplog.at_level(logging.WARNING, logger="harness.models.tokenizers"):
        tok = tc.load_tokenizer(tiny_model_dir)
    assert tok("hello")["input_ids"] and "not written" in caplog.text
