"""Progress bars and logging, configured once by the CLI (setup_logging).

The progress setting covers every bar a run can print: harness's own, and those of transformers
(weight loading), huggingface_hub (downloads), datasets and anything else drawn with tqdm. Third-
party warnings go through logging, and a third-party message (a `warnings.warn` or a log record)
that repeats is shown once: the repeats drop to DEBUG, which the CLI does not print. One int8 run
used to print the same bitsandbytes warning 11,088 times."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

WARNINGS_LOGGER = "py.warnings"
"""The logger `warnings.warn` messages go to (the name logging.captureWarnings uses)."""

NOISY_LOGGERS = ("transformers", "bitsandbytes", "accelerate", "peft", "trl", "datasets", "huggingface_hub",
                 "urllib3", "httpx", "torch", WARNINGS_LOGGER)
"""Third-party loggers kept at WARNING even when -v turns harness's own logging to DEBUG."""

PROGRESS_ENV = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")
"""Read by huggingface_hub (and transformers, through it), datasets and tqdm when they are imported:
set before the heavy imports, they turn those libraries' bars off in this process and its children."""

MAX_REMEMBERED = 10_000
"""Distinct third-party messages remembered (a bound on memory in a long run; then it starts over)."""


def progress_enabled() -> bool:
    """Bars are shown when stderr is a terminal; HARNESS_PROGRESS=1 or 0 forces them on or off."""
    force = os.environ.get("HARNESS_PROGRESS")
    return force == "1" or (force != "0" and sys.stderr.isatty())


def progress(iterable, desc: str, unit: str = "it", total: int | None = None):
    """A tqdm bar on stderr when progress_enabled(); plain iteration otherwise."""
    if not progress_enabled():
        return iterable
    from tqdm.auto import tqdm

    # disable=False explicitly: TQDM_DISABLE (set by configure_progress when bars were off) must
    # not hide a bar that the setting now asks for.
    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=False, dynamic_ncols=True, disable=False)


_env_set_by_us: set[str] = set()


def configure_progress() -> None:
    """Apply the progress setting to third-party bars too. Off: set PROGRESS_ENV (where the user
    has not set them) so libraries imported later start with their bars off, and turn off the bars
    of those already imported. On: take back only the variables an earlier call here set (the
    libraries read them once, when imported, so a process keeps their bars off after that)."""
    if progress_enabled():
        for name in sorted(_env_set_by_us):
            os.environ.pop(name, None)
        _env_set_by_us.clear()
        return
    for name in PROGRESS_ENV:
        if name not in os.environ:
            os.environ[name] = "1"
            _env_set_by_us.add(name)
    _disable_library_bars()


def _disable_library_bars() -> None:
    """Turn off the bars of transformers, huggingface_hub and datasets where already imported (a
    library imported later reads PROGRESS_ENV instead). tqdm itself reads TQDM_DISABLE only when
    imported, which the CLI's light imports never do before this."""
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None and hasattr(hub, "disable_progress_bars"):
        hub.disable_progress_bars()
    tf = sys.modules.get("transformers.utils.logging")
    if tf is not None and hasattr(tf, "disable_progress_bar"):
        tf.disable_progress_bar()
    ds = sys.modules.get("datasets.utils.logging")
    if ds is not None and hasattr(ds, "disable_progress_bar"):
        ds.disable_progress_bar()


class RepeatFilter(logging.Filter):
    """Passes the first record of each distinct third-party message (logger, level, text); a
    repeat is demoted to DEBUG, so it shows only where its logger is at DEBUG (never, by default).
    harness's own records always pass.

    The verdict is kept on the record, so a record that reaches several handlers (a library's
    own and the root's) is judged once, and printed by the first of them only."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple] = set()

    def first(self, key: tuple) -> bool:
        """Whether `key` is new (and remember it)."""
        if key in self.seen:
            return False
        if len(self.seen) >= MAX_REMEMBERED:
            self.seen.clear()
        self.seen.add(key)
        return True

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "harness" or record.name.startswith("harness."):
            return True
        repeat = getattr(record, "harness_repeat", None)
        if repeat is None:
            repeat = not self.first((record.name, record.levelno, record.getMessage()))
            record.harness_repeat = repeat
            if repeat:
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if not repeat:
            # One handler prints it: a library's own handler (transformers adds one in some
            # environments, e.g. under CI=true) and the root's would otherwise both show it.
            shown = getattr(record, "harness_shown", False)
            record.harness_shown = True
            return not shown
        logger = logging.Logger.manager.loggerDict.get(record.name)
        return isinstance(logger, logging.Logger) and logger.isEnabledFor(logging.DEBUG)


_repeats = RepeatFilter()
_previous: dict[str, Any] = {"showwarning": warnings.showwarning, "factory": logging.getLogRecordFactory()}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning: a warning goes to the log, at WARNING the first time its category,
    message and module are seen and at DEBUG after that. (Python's own once-per-location rule
    is reset whenever any library changes the warning filters, which transformers and torch do
    all the time, so it alone doesn't stop the repeats.)"""
    if file is not None:  # someone asked for a specific stream: leave it to Python
        _previous["showwarning"](message, category, filename, lineno, file, line)
        return
    first = _repeats.first((category, str(message), filename))
    text = f"{category.__name__}: {message} ({_short_path(filename)}:{lineno})"
    logging.getLogger(WARNINGS_LOGGER).log(logging.WARNING if first else logging.DEBUG, text,
                                           extra={"harness_repeat": not first})  # judged here, not again


def _short_path(filename: str) -> str:
    """A source path from its package down (site-packages/ and the like left out)."""
    marker = "site-packages" + os.sep
    return filename.split(marker, 1)[1] if marker in filename else filename


def _record_factory(*args, **kwargs) -> logging.LogRecord:
    """Every record, as it is made: a third-party one puts the repeat filter on the handlers of
    its library's own loggers that it reaches (transformers prints through a handler of its own,
    created when it is imported); the root's handler has it from setup_logging."""
    record = _previous["factory"](*args, **kwargs)
    name = record.name
    if name != "harness" and not name.startswith("harness."):
        logger = logging.Logger.manager.loggerDict.get(name)
        while isinstance(logger, logging.Logger) and logger is not logging.root:
            for h in logger.handlers:
                if _repeats not in h.filters:
                    h.addFilter(_repeats)
            logger = logger.parent if logger.propagate else None
    return record


def setup_logging(verbose: int = 0) -> None:
    """INFO for harness by default; -v adds DEBUG; third-party libraries stay at WARNING, each of
    their messages shown once. Also applies the progress setting to every bar (configure_progress)."""
    level = logging.DEBUG if verbose > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(_repeats)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("harness").setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _repeats.seen.clear()
    if logging.getLogRecordFactory() is not _record_factory:
        _previous["factory"] = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_record_factory)
    if warnings.showwarning is not _show_warning:
        _previous["showwarning"] = warnings.showwarning
        warnings.showwarning = _show_warning
    configure_progress()
