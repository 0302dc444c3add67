"""How alert delivery reports about itself: once, through the ``opswatch.alerts`` logger or stderr."""

from __future__ import annotations

import contextlib
import sys
from typing import Any


def say(level: str, message: str, **fields: Any) -> None:
    """Log through opswatch as ``opswatch.alerts`` (the alert sink ignores that logger, so no loop),
    unless no runtime is installed (at exit: logging would build a fresh one)."""
    from .._runtime import STATE
    from ..log import get_logger

    if STATE.runtime is not None:
        get_logger("opswatch.alerts").log(level, message, **fields)


_internal_reported = False


def report_internal(err: BaseException) -> None:
    """Print the first internal error of alert delivery on stderr (never through the logger: it could
    loop); later ones are only counted by the notifier."""
    global _internal_reported
    if _internal_reported:
        return
    _internal_reported = True
    with contextlib.suppress(Exception):
        sys.stderr.write(f"opswatch: internal error in alert delivery ({type(err).__name__}: {err})\n")
