"""Files written whole or not at all: reports, gate summaries, exports, sheets, cards.

Each is written under a temporary name in the same folder, then renamed over the target (a rename
within one filesystem is atomic), so a reader never sees half a file and a failure (a full disk, a
target that is a directory, an error while rendering) leaves the target as it was and no temporary
file behind."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import ConfigError


def temporary_name(path: Path) -> Path:
    """A hidden sibling of `path`, unique to this process, on the same filesystem."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_target(path: Path, what: str, hint: str = "pass another path", directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write (a file, or with `directory` a folder the caller creates,
    which may replace an empty one); on success it replaces `path`, on any error it is removed. An
    OSError (a full disk, a folder where a file was meant, no permission) becomes a ConfigError
    naming `path` and what was being written."""
    if path.is_dir() and not path.is_symlink() and not directory:
        raise ConfigError(f"{path}: cannot write the {what}: it is a directory", hint=hint)
    tmp = temporary_name(path)
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]  # folders this write makes
    done = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if tmp.exists() or tmp.is_symlink():
            os.replace(tmp, path)
        done = True
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the {what}: {exc.strerror or exc}", hint=hint) from None
    finally:
        _remove(tmp)
        if not done:  # an error leaves no new empty folder behind either
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()


def write_atomic(path: Path, data: str | bytes, what: str, hint: str = "pass another path") -> Path:
    """Write `data` (text as UTF-8) to `path` whole or not at all."""
    with atomic_target(path, what, hint) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return path
