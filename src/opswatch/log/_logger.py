"""The Logger: one method per level, the seed's call shapes and the Python ones.

Every level method accepts, in any mix::

    log.info("message", operation="x", amount=1)                 # keyword fields
    log.info("message", {"operation": "x", "amount": 1})          # the seed's context dict
    log.error("message", {"operation": "x"}, err)                 # the seed's (msg, ctx, error)
    log.error("message", err)                                     # (msg, error)
    log.error("message", error=err, operation="x")                # error as a keyword
    log.error("message", exc_info=True)                           # the stdlib's spelling

A call below every sink's level costs one comparison. Nothing here raises into the caller.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from .._runtime import STATE
from ..record import DEBUG, ERROR, FATAL, INFO, TRACE, WARN, Record, parse_level


def _make(levelno: int, name: str) -> Any:
    def method(
        self: Logger,
        message: Any,
        context: Mapping[str, Any] | BaseException | None = None,
        error: BaseException | None = None,
        /,
        **fields: Any,
    ) -> None:
        if levelno < STATE.min_level:
            return
        if context is None and error is None and "error" not in fields and "exc_info" not in fields:
            STATE.emit(levelno, self._name, message, self._bound, fields, None)  # the common case
        else:
            self._log(levelno, message, context, error, fields)

    method.__name__ = name
    method.__qualname__ = f"Logger.{name}"
    method.__doc__ = (
        f"Log ``message`` at level {name!r}, with an optional context dict, an optional exception, "
        "and keyword fields."
    )
    return method


class Logger:
    """A named logger with bound fields. Cheap to create; ``bind`` returns a child, never mutates."""

    __slots__ = ("_bound", "_name")

    def __init__(self, name: str = "app", fields: Mapping[str, Any] | None = None) -> None:
        self._name = name
        self._bound: dict[str, Any] = dict(fields) if fields else {}

    @property
    def name(self) -> str:
        """The logger's name (``record["logger"]``)."""
        return self._name

    @property
    def bound(self) -> Mapping[str, Any]:
        """The fields this logger adds to every record."""
        return self._bound

    def bind(self, **fields: Any) -> Logger:
        """A child logger that adds ``fields`` to every record, on top of this one's."""
        return Logger(self._name, {**self._bound, **fields})

    def unbind(self, *names: str) -> Logger:
        """A child logger without the named bound fields."""
        return Logger(self._name, {k: v for k, v in self._bound.items() if k not in names})

    def child(self, suffix: str, **fields: Any) -> Logger:
        """A logger named ``<name>.<suffix>`` with this one's fields plus ``fields``."""
        return Logger(f"{self._name}.{suffix}", {**self._bound, **fields})

    trace = _make(TRACE, "trace")
    debug = _make(DEBUG, "debug")
    info = _make(INFO, "info")
    warn = _make(WARN, "warn")
    warning = _make(WARN, "warning")
    error = _make(ERROR, "error")
    fatal = _make(FATAL, "fatal")
    critical = _make(FATAL, "critical")

    def exception(
        self,
        message: Any,
        context: Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> None:
        """Log at ``error`` with the exception being handled (``sys.exception()``) attached."""
        if STATE.min_level > ERROR:
            return
        self._log(ERROR, message, context, sys.exc_info()[1], fields)

    def log(self, level: str | int, message: Any, *args: Any, **fields: Any) -> None:
        """Log at a level given by name (``"warning"``) or number."""
        try:
            levelno = parse_level(level)
        except ValueError:
            levelno = INFO
        if levelno < STATE.min_level:
            return
        context = args[0] if args else None
        error = args[1] if len(args) > 1 else None
        self._log(levelno, message, context, error, fields)

    def is_enabled_for(self, level: str | int) -> bool:
        """Whether a record at ``level`` would reach at least one sink."""
        return parse_level(level) >= STATE.min_level

    def _log(
        self,
        levelno: int,
        message: Any,
        context: Any,
        error: Any,
        fields: dict[str, Any],
    ) -> Record | None:
        if context is not None:
            if isinstance(context, BaseException):
                if error is None:
                    error = context
            elif isinstance(context, Mapping):
                fields = {**context, **fields} if fields else dict(context)
            else:
                fields = {"context": context, **fields}
        if fields:
            if "error" in fields and isinstance(fields["error"], BaseException):
                error = error or fields["error"]
                fields = {k: v for k, v in fields.items() if k != "error"}
            if "exc_info" in fields:
                exc_info = fields.pop("exc_info")
                if isinstance(exc_info, BaseException):
                    error = error or exc_info
                elif isinstance(exc_info, tuple) and len(exc_info) == 3:
                    error = error or exc_info[1]
                elif exc_info:
                    error = error or sys.exc_info()[1]
        if error is not None and not isinstance(error, BaseException):
            fields = {**fields, "error_value": error}
            error = None
        return STATE.emit(levelno, self._name, message, self._bound, fields, error)

    def __repr__(self) -> str:
        return f"<opswatch.Logger {self._name!r} bound={sorted(self._bound)}>"


_loggers: dict[str, Logger] = {}


def get_logger(name: str | None = None, **fields: Any) -> Logger:
    """A logger named ``name`` (default ``"app"``), with ``fields`` bound to every record it writes."""
    key = name or "app"
    if fields:
        return Logger(key, fields)
    logger = _loggers.get(key)
    if logger is None:
        logger = _loggers.setdefault(key, Logger(key))
    return logger
