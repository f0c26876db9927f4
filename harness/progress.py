"""Progress bars and logging, configured once by the CLI."""

from __future__ import annotations

import logging
import os
import sys


def progress_enabled() -> bool:
    """Bars are shown when stderr is a terminal; HARNESS_PROGRESS=1 or 0 forces them on or off."""
    force = os.environ.get("HARNESS_PROGRESS")
    return force == "1" or (force != "0" and sys.stderr.isatty())


def progress(iterable, desc: str, unit: str = "it", total: int | None = None):
    """A tqdm bar on stderr when progress_enabled(); plain iteration otherwise."""
    if not progress_enabled():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=False, dynamic_ncols=True)


def setup_logging(verbose: int = 0) -> None:
    """INFO for harness by default; -v adds DEBUG; third-party libraries stay at WARNING."""
    level = logging.DEBUG if verbose > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("harness").setLevel(level)
