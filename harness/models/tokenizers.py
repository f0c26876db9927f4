"""Tokenizers of local model directories, loaded fast.

Gemma's 262k-token tokenizer takes about 2.7 s through `AutoTokenizer.from_pretrained`, most of it
transformers parsing the 33 MB tokenizer.json in Python three times; every process of a demo
(build, run, judge) pays it again. Unpickling the loaded object takes about 1.2 s (the Rust
tokenizer parses its own state once). So a large tokenizer is loaded once per machine and version
and kept as a pickle under $HARNESS_CACHE/tokenizers, and once per process in memory.

The pickle is written by harness itself into its own cache directory (the same trust as the
converted checkpoints beside it) and keyed by the tokenizer's files (name, size, modification
time) and the transformers/tokenizers versions, so an edited tokenizer or an upgrade loads afresh.
A cache file that fails to load is logged and replaced, never trusted half-way.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import tempfile
from pathlib import Path

from harness.hashing import stable_hash
from harness.models.weights import cache_dir

log = logging.getLogger(__name__)

PICKLE_MIN_BYTES = 4 << 20
"""Tokenizers whose tokenizer.json is smaller load in well under a second: not worth a cache file."""

_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
          "chat_template.jinja", "chat_template.json", "config.json")


def load_tokenizer(model_dir: str | Path):
    """A fresh tokenizer for a local model directory (the caller may change it: padding side,
    pad token). Same object as `AutoTokenizer.from_pretrained(model_dir)`, from the cache when
    the directory's tokenizer is large."""
    from transformers import AutoTokenizer

    path = Path(model_dir).resolve()
    key = _cache_key(path)
    if key is None:
        return AutoTokenizer.from_pretrained(str(path))

    file = cache_dir() / "tokenizers" / f"{key}.pkl"
    if file.exists():
        try:
            return pickle.loads(file.read_bytes())
        except Exception as exc:  # a truncated or stale file: rebuilt below, and said
            log.warning("tokenizer cache %s unreadable (%s); loading %s afresh", file, exc, path)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    try:
        _store(tokenizer, file)
    except OSError as exc:  # a read-only or full cache only costs speed: say so and go on
        log.warning("tokenizer cache %s not written (%s); %s loads at full cost each time", file, exc, path)
    return tokenizer


def _store(tokenizer, file: Path) -> None:
    """Written beside and renamed: a reader never sees half a file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(tokenizer, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def shared_tokenizer(model_dir: str | Path):
    """The tokenizer of a model directory, loaded once per process (a run opens the same base for
    every variant, the judge and the fidelity checks). Backends only set padding on it, the same
    way every time; anything that changes it otherwise takes `load_tokenizer`."""
    path = Path(model_dir).resolve()
    return _shared(str(path), _stamp(path))


@functools.lru_cache(maxsize=4)
def _shared(path: str, stamp: str):
    return load_tokenizer(path)


def _stamp(path: Path) -> str:
    parts = []
    for name in _FILES:
        f = path / name
        if f.exists():
            st = f.stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _cache_key(path: Path) -> str | None:
    """The cache key of a directory's tokenizer, or None where it is not worth caching."""
    main = path / "tokenizer.json"
    if not main.exists() or main.stat().st_size < PICKLE_MIN_BYTES:
        return None
    import tokenizers
    import transformers

    return stable_hash({"dir": str(path), "files": _stamp(path), "transformers": transformers.__version__,
                        "tokenizers": tokenizers.__version__})
