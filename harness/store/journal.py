"""The writer session's journal, `<store>.journal`: finished work made durable the moment it
arrives, before the store commits it.

A DuckDB commit costs tens of milliseconds (open, write, checkpoint, close, so that readers can
open the store between commits), so a run commits finished items at most about once a second, and
a judge batch's replies arrive faster than they can be committed one by one. A kill in between
would redo items and pay again for answered judge calls. So every finished unit and every judge
reply is first appended to this file, one JSON line each (a write of microseconds; judge replies,
which cost money, are also fsync'ed). The store commits them as before; the next writer session
on the store, and this one when it closes, copy whatever the journal holds into the store and
remove the file. A line cut short by the kill is ignored: its work was still in flight.

Only a writer session (the one holding the store's session lock) writes or replays the journal,
so two processes never touch it at once."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from pathlib import Path
from typing import TextIO

from harness.errors import StoreError

log = logging.getLogger(__name__)


def journal_path(store_path: Path) -> Path:
    """Where a store's journal lives: next to it, `<store>.journal`."""
    return store_path.with_name(store_path.name + ".journal")


class Journal:
    """Append-only JSON lines, safe to append from several threads (the judge's workers)."""

    def __init__(self, store_path: Path):
        self.store_path = store_path
        self.path = journal_path(store_path)
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def append(self, record: dict, sync: bool = False) -> None:
        """Write one record and hand it to the OS (it survives the process being killed); with
        `sync`, also to the disk (it survives a power cut)."""
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            try:
                if self._file is None:
                    self._file = open(self.path, "a", encoding="utf-8")
                self._file.write(line)
                self._file.flush()
                if sync:
                    os.fsync(self._file.fileno())
            except OSError as exc:
                full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
                raise StoreError(f"{self.store_path}: {'the disk is full' if full else 'cannot write'} (writing its journal "
                                 f"{self.path.name}: {exc.strerror}); the store keeps what was committed before",
                                 hint="free some space (or raise the file-size limit) and run the command again: "
                                      "it resumes from what was committed") from None

    def records(self) -> list[dict]:
        """Every whole record in the file (a line cut short by a kill is left out)."""
        if not self.path.is_file():
            return []
        out = []
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # the last line, cut short by the kill: its work was in flight
                    log.info("%s: line %d was cut short; left out", self.path, n)
        return out

    def remove(self) -> None:
        """Close and delete the file (after its records are in the store)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
