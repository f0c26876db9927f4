"""Content hashes and provenance recorded with every run and build."""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any


def stable_hash(value: Any, length: int = 16) -> str:
    """sha256 of a canonical JSON rendering (sorted keys), truncated to `length` hex digits."""
    blob = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The harness checkout's commit (with '+dirty' when modified), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the given distributions ('-' when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


EVAL_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "sacrebleu", "rouge-score")
"""Libraries whose versions can change stored rows: part of every run key and recorded with the run."""
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve")
"""Instruction sets CPU kernels dispatch on (bitsandbytes' int8/4-bit kernels, oneDNN): the same
weights can give other outputs on a CPU with other ones."""


@lru_cache(maxsize=1)
def eval_libraries() -> dict[str, str]:
    """What a run's rows depend on besides its inputs: installed versions of EVAL_LIBRARIES
    ('-' when absent), and the machine's architecture and CPU_FEATURES."""
    import platform

    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags |= set(line.split(":", 1)[1].split())
    except OSError:
        pass  # not Linux: the architecture alone
    cpu = " ".join([platform.machine()] + [f for f in CPU_FEATURES if f in flags])
    return {**library_versions(*EVAL_LIBRARIES), "cpu": cpu}
