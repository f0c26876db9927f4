"""Item-level resume: the finished work units of a task run (a generated output, an item's option
log-likelihoods, a timed group of latency requests) are committed to the store's `checkpoints`
table as they finish: every `every_items` units (but not more often than every `min_s` seconds,
so a fast backend doesn't spend its time committing; a commit costs about 30 ms) and at least
every `every_s` seconds (default 1). Before that, each unit is appended to the store's journal the
moment it finishes (store/journal.py), so a kill loses only the units in flight. A rerun with the
same run key asks the backend only for the units not stored yet. The run itself (and so what
reports and gates read) is written only when every unit is done, in the transaction that
removes its checkpoint."""

from __future__ import annotations

import json
import logging
import os
import time

from harness.errors import ConfigError, StoreError
from harness.store.db import LOCKED

log = logging.getLogger(__name__)

WALL_UNIT = "__wall_s__"
"""A checkpoint's bookkeeping unit: seconds of work it holds, so a resumed run's wall_s counts the
interrupted process's work too (not the time between the crash and the rerun)."""

DEFAULT_EVERY_ITEMS = 16
DEFAULT_EVERY_S = 1.0
DEFAULT_MIN_S = 1.0


def _setting(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number", hint=f"unset {name} to use the default, or set a number") from None
    if not value >= minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum:g}", hint=f"unset {name} to use the default")
    return value


def every_items() -> int:
    """Units between commits: $HARNESS_CHECKPOINT_ITEMS, else DEFAULT_EVERY_ITEMS."""
    return int(_setting("HARNESS_CHECKPOINT_ITEMS", DEFAULT_EVERY_ITEMS, 1))


def every_seconds() -> float:
    """Longest time between commits: $HARNESS_CHECKPOINT_SECONDS, else DEFAULT_EVERY_S."""
    return _setting("HARNESS_CHECKPOINT_SECONDS", DEFAULT_EVERY_S, 0)


def min_seconds() -> float:
    """Shortest time between commits: $HARNESS_CHECKPOINT_MIN_SECONDS, else DEFAULT_MIN_S."""
    return _setting("HARNESS_CHECKPOINT_MIN_SECONDS", DEFAULT_MIN_S, 0)


class Checkpoint:
    """The stored units of one task run (keyed by its run key), and the ones still to commit."""

    def __init__(self, store, run_key: str, fresh: bool = False, pool: str | None = None):
        self.store, self.run_key = store, run_key
        self.every_items, self.every_s, self.min_s = every_items(), every_seconds(), min_seconds()
        self.pooled = 0
        if fresh:  # --force: start over
            store.checkpoint_clear(run_key)
            self.done: dict[str, object] = {}
        else:
            self.done = {unit: json.loads(payload) for unit, payload in store.checkpoint_get(run_key).items()}
            if pool is not None:  # items a smaller --limit run of the same task and model finished
                shared = {u: json.loads(p) for u, p in store.checkpoint_get(pool).items() if u != WALL_UNIT and u not in self.done}
                self.pooled = len(shared)
                self.done.update(shared)
        self.earlier_s = float(self.done.pop(WALL_UNIT, 0.0))
        self.resumed = len(self.done) - self.pooled
        self._pending: list[tuple[str, str]] = []
        self._start = self._last = time.monotonic()

    def wall_s(self) -> float:
        """Seconds of work on this run: the interrupted runs' and this process's."""
        return self.earlier_s + time.monotonic() - self._start

    def get(self, unit: str):
        """The payload stored for `unit`, or None when it is still to do."""
        return self.done.get(unit)

    def add(self, unit: str, payload) -> None:
        """Record a finished unit: durable at once in the store's journal, committed when enough
        units or time have gone by."""
        self.done[unit] = payload
        text = json.dumps(payload)
        self.store.journal_unit(self.run_key, unit, text)
        self._pending.append((unit, text))
        since = time.monotonic() - self._last
        if (len(self._pending) >= self.every_items and since >= self.min_s) or since >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Commit the pending units. A store held by another process past the lock wait doesn't
        stop the run: the units stay pending (said in the log) and go with the next commit."""
        if not self._pending:
            return

        try:
            self.store.checkpoint_put(self.run_key, self._pending + [(WALL_UNIT, json.dumps(self.wall_s()))])
        except StoreError as exc:
            if LOCKED not in exc.message:
                raise
            log.warning("checkpoint of %d unit(s) not committed yet (%s); retrying with the next one", len(self._pending), exc)
            return
        log.debug("checkpoint: committed %d unit(s) of run %s", len(self._pending), self.run_key[:12])
        self._pending = []
        self._last = time.monotonic()

    def said_resumed(self, what: str) -> None:
        """Log what an interrupted run left to resume from."""
        if self.resumed:
            log.info("%s: resuming from a checkpoint: %d unit(s) (%.0fs of work) stored by an interrupted run",
                     what, self.resumed, self.earlier_s)
        if self.pooled:
            log.info("%s: %d item(s) already evaluated by a smaller --limit run of the same task and model", what, self.pooled)
