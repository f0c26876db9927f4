"""llama.cpp's own tools for making GGUF files: its HF -> GGUF converter (`convert_hf_to_gguf.py`,
shipped in the llama-cpp-python sdist, installed beside the venv by
`scripts/install_llama_cpp_converter.py`) and its quantizer (`llama_model_quantize`, in the
llama-cpp-python package). Using llama.cpp's code rather than our own writer means the files are
the ones a llama.cpp or Ollama deployment would make."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import ConfigError, HarnessError, require

log = logging.getLogger(__name__)

CONVERTER_ENV = "HARNESS_LLAMA_CPP_CONVERTER"

QUANT_TYPES = {"Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K", "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
               "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0"}
"""llama.cpp quantization types the `gguf` recipe offers, by the names llama.cpp's tools use."""


def converter_path() -> Path:
    """llama.cpp's convert_hf_to_gguf.py: $HARNESS_LLAMA_CPP_CONVERTER, else the copy installed in
    the environment's share/harness/llama.cpp."""
    path = Path(os.environ.get(CONVERTER_ENV) or Path(sys.prefix) / "share" / "harness" / "llama.cpp" / "convert_hf_to_gguf.py")
    if not path.is_file():
        raise ConfigError(f"llama.cpp's converter convert_hf_to_gguf.py is not installed ({path})",
                          hint="run `make llama-cpp` (or `python scripts/install_llama_cpp_converter.py`), "
                               f"or point {CONVERTER_ENV} at a llama.cpp checkout's convert_hf_to_gguf.py")
    return path


def convert_hf(model_dir: Path, out: Path, outtype: str = "f16", tokenizer_pre: str | None = None) -> float:
    """Convert a transformers directory to one GGUF file with llama.cpp's converter (in a child
    process: it holds a copy of the weights). Returns the seconds it took."""
    converter = converter_path()
    cmd = [sys.executable, "-m", "harness.models.gguf_convert", str(converter), tokenizer_pre or "",
           str(model_dir), "--outfile", str(out), "--outtype", outtype]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        hint = ("the converter does not know this tokenizer's pre-tokenizer: set the recipe's tokenizer_pre "
                "(e.g. gpt-2 for a GPT-2 byte-level BPE)") if "pre-tokenizer was not recognized" in tail else None
        raise HarnessError(f"llama.cpp's converter failed on {model_dir} (exit {proc.returncode}):\n{tail}", hint=hint)
    return time.perf_counter() - start


def lora_converter_path() -> Path:
    """llama.cpp's convert_lora_to_gguf.py, beside its convert_hf_to_gguf.py."""
    lora = converter_path().with_name("convert_lora_to_gguf.py")
    if not lora.is_file():
        raise ConfigError(f"llama.cpp's LoRA converter is not installed ({lora})",
                          hint="make llama-cpp (or: python scripts/install_llama_cpp_converter.py)")
    return lora


def convert_lora(adapter_dir: Path, base_dir: Path, out: Path, outtype: str = "f16") -> float:
    """Convert a PEFT LoRA adapter to a GGUF LoRA file with llama.cpp's convert_lora_to_gguf.py
    (in a child process), for the model in `base_dir` (only its config is read). llama.cpp applies
    it at load time over a GGUF of that model, quantized or not, so the adapter's deltas are not
    rounded into the base's quantization grid. Returns the seconds it took."""
    lora = lora_converter_path()
    # absolute paths: the converter runs beside its own modules
    cmd = [sys.executable, str(lora), "--base", str(base_dir.resolve()), "--outfile", str(out.resolve()), "--outtype", outtype,
           str(adapter_dir.resolve())]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=lora.parent,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(lora.parent / "gguf-py"), str(lora.parent)])})
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise HarnessError(f"llama.cpp's LoRA converter failed on {adapter_dir} (exit {proc.returncode}):\n{tail}")
    return time.perf_counter() - start


def quantize(src: Path, dst: Path, qtype: str, threads: int | None = None) -> float:
    """Quantize a GGUF with llama.cpp's quantizer (`llama_model_quantize`). Returns seconds."""
    llama_cpp = require("llama_cpp", "quantizing GGUF files", "llama-cpp")
    if qtype not in QUANT_TYPES:
        raise ConfigError(f"unknown llama.cpp quantization type {qtype!r}; choose one of {sorted(QUANT_TYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[qtype])
    params.nthread = threads or os.cpu_count() or 1
    start = time.perf_counter()
    with _captured_output() as captured:  # llama.cpp prints a line per tensor: keep it for errors only
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0 or not dst.is_file():
        tail = "\n".join(captured.read().strip().splitlines()[-6:])
        raise HarnessError(f"llama.cpp's quantizer failed on {src} -> {qtype} (return code {rc}):\n{tail}")
    return time.perf_counter() - start


class _captured_output:
    """Redirect this process's stdout and stderr file descriptors (where C code writes) to a
    temporary file for the duration; `read()` gives what was written."""

    def __enter__(self):
        import tempfile

        sys.stdout.flush()
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile(mode="w+b")
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        return False

    def read(self) -> str:
        self.file.seek(0)
        return self.file.read().decode("utf-8", "replace")
