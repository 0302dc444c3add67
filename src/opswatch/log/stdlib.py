"""The bridge from the stdlib ``logging`` module: its records flow through the opswatch pipeline.

``install()`` puts one ``OpswatchHandler`` on the root logger and takes the root's other handlers off
(remembered, and put back by ``uninstall()``), so every line is printed once, by opswatch, with one
timestamp. Loggers that do not propagate (uvicorn's, for example) get the handler too when they are named
in ``install(loggers=...)``; their own stream handlers are replaced the same way.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .._runtime import STATE
from ..record import DEBUG, ERROR, FATAL, INFO, TRACE, WARN

#: Attributes every ``logging.LogRecord`` has; anything else on a record came from ``extra=``. Also
#: uvicorn's ``color_message``: the same message again with ANSI colour codes, for its own formatter.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)

#: Loggers that configure their own handlers and do not propagate; the bridge takes them over too.
DEFAULT_NON_PROPAGATING = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")


def _levelno(stdlib_level: int) -> int:
    if stdlib_level >= logging.CRITICAL:
        return FATAL
    if stdlib_level >= logging.ERROR:
        return ERROR
    if stdlib_level >= logging.WARNING:
        return WARN
    if stdlib_level >= logging.INFO:
        return INFO
    if stdlib_level >= logging.DEBUG:
        return DEBUG
    return TRACE


class OpswatchHandler(logging.Handler):
    """A ``logging.Handler`` that turns each ``LogRecord`` into an opswatch record."""

    _busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        # A record logged while opswatch itself is handling one (a library logging from inside a sink)
        # would loop; drop it.
        if getattr(self._busy, "active", False) or threading.current_thread().name.startswith("opswatch"):
            return  # opswatch's own worker threads (transport, alerts) must not log into themselves
        self._busy.active = True
        try:
            levelno = _levelno(record.levelno)
            if levelno < STATE.min_level:
                return
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            fields: dict[str, Any] = {
                key: value for key, value in record.__dict__.items() if key not in _STANDARD_ATTRS
            }
            error = record.exc_info[1] if record.exc_info else None
            if error is not None and getattr(error, "__opswatch_logged__", False):
                return  # a framework's "Internal Server Error" line for an exception our middleware logged
            if record.stack_info:
                fields["stack_info"] = record.stack_info
            STATE.emit(levelno, record.name, message, None, fields, error)
        except Exception:
            pass  # the stdlib's handleError would print a traceback into the app's stderr
        finally:
            self._busy.active = False


_installed: OpswatchHandler | None = None
_saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
#: ``(level the root had, level install gave it)`` when install lowered the root's default level.
_root_level: tuple[int, int] | None = None


def install(level: int = logging.NOTSET, loggers: tuple[str, ...] = DEFAULT_NON_PROPAGATING) -> None:
    """Route stdlib logging through opswatch (idempotent)."""
    global _installed, _root_level
    if _installed is not None:
        return
    handler = OpswatchHandler(level)
    root = logging.getLogger()
    targets = [root, *(logging.getLogger(name) for name in loggers)]
    for target in targets:
        if target is not root and target.propagate and not target.handlers:
            continue  # it reaches the root's handler already
        _saved.append((target, list(target.handlers), target.propagate))
        for old in list(target.handlers):
            if isinstance(old, logging.StreamHandler) and not isinstance(old, logging.FileHandler):
                target.removeHandler(old)
        target.addHandler(handler)
        if target is not root:
            target.propagate = False
    if root.level == logging.WARNING:  # the untouched default; let info through as opswatch's default does
        lowered = logging.DEBUG if STATE.min_level <= DEBUG else logging.INFO
        _root_level = (root.level, lowered)
        root.setLevel(lowered)
    _installed = handler


def uninstall() -> None:
    """Undo ``install``: remove the handler, put the saved handlers back and the root's level (unless the
    application changed it meanwhile)."""
    global _installed, _root_level
    if _installed is None:
        return
    if _root_level is not None:
        root = logging.getLogger()
        if root.level == _root_level[1]:
            root.setLevel(_root_level[0])
        _root_level = None
    for target, handlers, propagate in _saved:
        target.removeHandler(_installed)
        for handler in handlers:
            if handler not in target.handlers:
                target.addHandler(handler)
        target.propagate = propagate
    _saved.clear()
    _installed = None
