"""Importance-matrix quantization with llama.cpp's own tools: `llama-imatrix` runs the unquantized
GGUF over calibration text and records, per weight matrix, how strongly each input column is
used; `llama-quantize --imatrix` then spends the quantization error where it matters least. With
calibration text from the variant's own training data, the directions the fine-tune moved are the
ones the 4-bit grid keeps.

llama-cpp-python ships neither tool (its library has the quantizer, not the imatrix code, and its
`llama_model_quantize` takes the matrix only as a C++ map), so `make llama-cpp` builds both from
the same llama.cpp source (scripts/install_llama_cpp_tools.py) into the environment's
share/harness/llama.cpp/bin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import ConfigError, HarnessError

TOOLS_ENV = "HARNESS_LLAMA_CPP_TOOLS"


def tool_path(name: str) -> Path:
    """A llama.cpp tool (llama-imatrix, llama-quantize): $HARNESS_LLAMA_CPP_TOOLS/NAME, else the
    build installed in the environment's share/harness/llama.cpp/bin."""
    folder = Path(os.environ.get(TOOLS_ENV) or Path(sys.prefix) / "share" / "harness" / "llama.cpp" / "bin")
    path = folder / name
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ConfigError(f"llama.cpp's {name} is not installed ({path}); importance-matrix quantization needs it",
                          hint="run `make llama-cpp` (it builds llama-imatrix and llama-quantize, about 5 minutes the "
                               f"first time), or point {TOOLS_ENV} at a llama.cpp build's bin folder")
    return path


def _run(cmd: list[str], what: str, out: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise HarnessError(f"llama.cpp's {what} failed (exit {proc.returncode}): {' '.join(cmd[:1])}\n{tail}")
    return time.perf_counter() - start


def compute_imatrix(model: Path, text: Path, out: Path, ctx: int, threads: int | None = None) -> float:
    """Run `llama-imatrix` over `text` in chunks of `ctx` tokens (no perplexity pass) into `out`
    (GGUF imatrix format). Returns seconds."""
    cmd = [str(tool_path("llama-imatrix")), "-m", str(model), "-f", str(text), "-o", str(out), "-c", str(ctx),
           "-b", str(ctx), "--no-ppl", "-t", str(threads or os.cpu_count() or 1), "--parse-special"]
    return _run(cmd, "llama-imatrix", out)


def quantize_with_imatrix(src: Path, dst: Path, qtype: str, imatrix: Path, threads: int | None = None) -> float:
    """Quantize `src` to `qtype` with `llama-quantize --imatrix`. Returns seconds."""
    cmd = [str(tool_path("llama-quantize")), "--imatrix", str(imatrix), str(src), str(dst), qtype,
           str(threads or os.cpu_count() or 1)]
    return _run(cmd, "llama-quantize", dst)
