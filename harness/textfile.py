"""The user's files. Reading text (suites, models, reports, data, anchors, sheets): UTF-8 or a
clear error that names the file, the byte offset and the line of the first undecodable byte.
Writing outputs (reports, gate summaries, exports, sheets, cards) whole or not at all: under a
temporary name in the same folder, then renamed over the target (atomic within one filesystem),
so a reader never sees half a file and a failure (a full disk, a target that is a directory, an
error while rendering) leaves the target as it was and no temporary file or new folder behind."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import ConfigError

MAX_DEPTH = 100
"""Lists and mappings nested deeper than this in a user's file (YAML or JSON) are refused: no file
harness reads nests past ten levels, and parsing, validating and hashing recurse, so a few thousand
levels would exhaust Python's stack."""


def nesting_depth(value: object) -> int:
    """How deep lists and mappings nest in a parsed JSON value (a scalar: 0), without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((c, depth + 1) for c in (node.values() if isinstance(node, dict) else node))
    return deepest


def is_file(path: Path) -> bool:
    """path.is_file(), except that a path the system can't look up (a name longer than the file
    system allows, a folder that can't be searched) is no file instead of an OSError."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False


def is_dir(path: Path) -> bool:
    """path.is_dir(), with is_file's leniency."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def read_text(path: Path) -> str:
    """The file's text. Not UTF-8 is a ConfigError with the byte offset, line and column; a file
    that can't be read (permissions, a name too long) a ConfigError saying why."""
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{path}: byte {exc.start} (line {line}, column {column}): not UTF-8 text "
                          f"(byte 0x{data[exc.start]:02x}; {exc.reason})",
                          hint=f"save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.{path.suffix.lstrip('.')}") from None
    return text.removeprefix("\ufeff")  # a BOM is not content


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line, row)]) of a CSV file with a header row. A row with more or fewer values
    than the header is a ConfigError naming its line and column."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        header = list(reader.fieldnames or [])
        rows = list(_dict_rows(path, reader, header))
    except csv.Error as exc:  # the DictReader's own line_num is updated after a row, the reader's as it reads
        raise csv_error(path, reader.reader.line_num, exc) from None
    return header, rows


def csv_error(path: Path, line: int, exc: Exception) -> ConfigError:
    """The ConfigError for what Python's csv reader refuses (a value over its size limit)."""
    return ConfigError(f"{path}: line {line}: not readable as CSV ({exc})",
                       hint="a quote that opens a value and is never closed makes the rest of the file one value; "
                            "a quote inside a quoted value is written twice (\"\")")


def _dict_rows(path: Path, reader, header: list[str]):
    for row in reader:
        if None in row:
            raise ConfigError(f"{path}: line {reader.line_num}, column {len(header) + 1}: more values than header columns ({len(header)})")
        missing = [i for i, name in enumerate(header) if row[name] is None]
        if missing:
            i = missing[0]
            raise ConfigError(f"{path}: line {reader.line_num}, column {i + 1} ({header[i]}): missing value "
                              f"(the header has {len(header)} columns, this row {i})",
                              hint="an empty value is written as an empty field between commas")
        yield reader.line_num, row


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
