"""The pipeline that turns a logging call into one redacted record and hands it to every sink.

``emit`` is the hot path: merge context and fields, redact once, add the fields every record carries,
then give the same dict to each sink whose level it reaches. Sinks never raise here: a failing sink is
counted and reported once on stderr. ``STATE`` holds the active runtime; before ``opswatch.init()`` the
first record builds one from the environment, so a program that never calls ``init`` still logs. At
exit the runtime is closed (pending records delivered for up to ``STOP_TIMEOUT`` seconds, the rest
spooled); ``_stops`` does the same at the stops that skip ``atexit`` (SIGTERM, multiprocessing children).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._context import _fields as _context_fields
from ._limits import STOP_TIMEOUT
from .config import Settings
from .record import FATAL, LEVEL_NAMES, TRACE, Record, format_millis, new_event_id, serialize_exception
from .redact import Redactor
from .sinks import Sink

_EMPTY: Mapping[str, Any] = {}
_time = time.time

SinkFactory = Callable[[Settings], "Sink | None"]

#: Optional sinks, built by ``init`` in this order when their module says they apply. Each entry is
#: ``(module, function)``; the function takes the settings and returns a sink or ``None``. Imported lazily
#: so that an app without a DSN never imports the transport.
OPTIONAL_SINKS: list[tuple[str, str]] = [
    ("opswatch.sinks.server", "from_settings"),
    ("opswatch.sinks.otlp", "from_settings"),
    ("opswatch.sinks.sentry", "from_settings"),
    ("opswatch.alerts.sink", "from_settings"),
]

class Runtime:
    """Settings, the redactor and the sinks of one ``init()``; immutable except for added sinks."""

    def __init__(self, settings: Settings, sinks: list[Sink]) -> None:
        self.settings = settings
        self.sinks = list(sinks)
        self.redactor = Redactor(
            censor=settings.censor,
            mask_emails=settings.mask_emails,
            extra_keys=settings.redact_keys,
            paths=settings.redact_paths,
            mode=settings.redact_mode,
            enabled=settings.redact,
            redact_phones=settings.redact_phones,
            redact_ips=settings.redact_ips,
        )
        self.redacting = settings.redact
        self.static: dict[str, Any] = {
            "service": settings.service,
            "environment": settings.environment,
            "release": settings.release,
            "host": settings.host,
            "pid": os.getpid(),
        }
        self._fixed_size = 5 + len(self.static)
        self._millis = -1
        self._timestamp = ""
        self.min_level = FATAL + 1
        self._recompute()
        from .tracing._otel import lookup  # here: opswatch.tracing imports this module

        #: The current OpenTelemetry span's ids, or None when ``opentelemetry-api`` is not installed.
        self.otel = lookup()

    def _recompute(self) -> None:
        self.min_level = min((s.level for s in self.sinks), default=FATAL + 1)

    def add_sink(self, sink: Sink) -> None:
        """Attach a sink (used by ``opswatch.testing``)."""
        self.sinks = [*self.sinks, sink]
        self._recompute()
        if STATE.runtime is self:  # a runtime replaced meanwhile (init inside capture_logs) no longer counts
            STATE.min_level = self.min_level

    def remove_sink(self, sink: Sink) -> None:
        """Detach a sink added with ``add_sink``."""
        self.sinks = [s for s in self.sinks if s is not sink]
        self._recompute()
        if STATE.runtime is self:  # a runtime replaced meanwhile (init inside capture_logs) no longer counts
            STATE.min_level = self.min_level

    def build(
        self,
        levelno: int,
        logger: str,
        message: Any,
        bound: Mapping[str, Any] | None,
        fields: Mapping[str, Any] | None,
        error: BaseException | None,
    ) -> Record:
        """Make the redacted record for one call (without sending it).

        This is the hot path, written flat on purpose: one merge of context, bound and call fields, one
        redaction walk over them, and one dict display for the record.
        """
        context = _context_fields.get()
        if self.otel is not None and "trace_id" not in context:  # an OTel span is the trace, if any
            ids = self.otel()
            if ids is not None:
                context = {**context, "trace_id": ids[0], "span_id": ids[1]}
        if context or bound:
            user: Mapping[str, Any] = {**context, **(bound or _EMPTY), **(fields or _EMPTY)}
        else:
            user = fields or _EMPTY  # never mutated below: the record is a new dict
        text = message if type(message) is str else _message_text(message)
        millis = int(_time() * 1000)
        if millis != self._millis:  # bursts of records share a millisecond: format it once
            self._millis, self._timestamp = millis, format_millis(millis)
        timestamp = self._timestamp
        level = LEVEL_NAMES.get(levelno) or _level_name(levelno)
        if self.redacting:
            text = self.redactor.redact_text(text)
            if user:
                user = self.redactor.redact(user)
        record: Record = {
            "timestamp": timestamp,
            "level": level,
            "logger": logger,
            "message": text,
            **user,
            "event_id": new_event_id(),
            **self.static,
        }
        if len(record) != self._fixed_size + len(user):  # a field named like a core key: core wins
            record.update(timestamp=timestamp, level=level, logger=logger, message=text)
        if error is not None:
            serialized = serialize_exception(error)
            record["error"] = self.redactor.redact(serialized) if self.redacting else serialized
        return record

    def flush(self, timeout: float | None = None) -> bool:
        """Flush every sink within ``timeout`` seconds in total; True when all are drained."""
        return self._each(timeout, "flush")

    def flush_at_stop(self, timeout: float | None = None) -> bool:
        """``Sink.flush_at_stop`` on every sink, ``timeout`` seconds in all; True when all was delivered."""
        return self._each(timeout, "flush_at_stop")

    def _each(self, timeout: float | None, method: str) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        done = True
        for sink in self.sinks:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                done = getattr(sink, method)(left) and done
            except Exception as err:
                sink.report_failure(err)
                done = False
        return done

    def close(self, timeout: float | None = None) -> None:
        """Flush and close every sink within ``timeout`` seconds in total."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for sink in self.sinks:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                sink.close(left)
            except Exception as err:
                sink.report_failure(err)


def _message_text(message: Any) -> str:
    try:
        return str(message)
    except Exception:
        return f"<unprintable {type(message).__name__}>"


def _level_name(levelno: int) -> str:
    from .record import level_name

    return level_name(levelno)


def build_sinks(settings: Settings) -> list[Sink]:
    """The console sink (unless disabled) and every optional sink that applies to ``settings``.

    When one of them fails (``ConfigError``), the ones already built are closed before the error goes on:
    a failed ``init`` leaves no transport thread or Sentry client behind.
    """
    from .sinks.console import ConsoleSink

    sinks: list[Sink] = []
    try:
        if settings.console:
            sinks.append(ConsoleSink.from_settings(settings))
        for module_name, function in OPTIONAL_SINKS:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as err:
                if err.name == module_name:  # not built yet in this checkout / extra not installed
                    continue
                raise
            sink = getattr(module, function)(settings)
            if sink is not None:
                sinks.append(sink)
    except BaseException:
        for built in sinks:
            with contextlib.suppress(Exception):
                built.close(0.5)
        raise
    return sinks


class _State:
    """The active runtime and the lowest level any sink takes (read on every logging call)."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.min_level = TRACE  # until a runtime exists, let calls through so the first one builds it
        self.lock = threading.RLock()
        #: True while the main thread closes the runtime as the process ends (``close_at_end``): a SIGTERM
        #: arriving then waits for that close (``deferred_signals``) instead of flushing on top of it.
        self.closing = False
        self.deferred_signals: list[int] = []

    def get(self) -> Runtime:
        runtime = self.runtime
        if runtime is None:
            with self.lock:
                if self.runtime is None:
                    settings = Settings.load()
                    self.install(Runtime(settings, build_sinks(settings)))
                runtime = self.runtime
                assert runtime is not None
        return runtime

    def install(self, runtime: Runtime) -> Runtime | None:
        with self.lock:
            old, self.runtime = self.runtime, runtime
            self.min_level = runtime.min_level
        from . import _stops  # imports this module: loaded here, once a runtime exists

        _stops.install(sigterm=runtime.settings.flush_on_sigterm)
        return old

    def emit(
        self,
        levelno: int,
        logger: str,
        message: Any,
        bound: Mapping[str, Any] | None,
        fields: Mapping[str, Any] | None,
        error: BaseException | None,
    ) -> Record | None:
        """Build and dispatch one record; return it, or None when no sink wanted it. Never raises."""
        try:
            runtime = self.runtime or self.get()
            if levelno < runtime.min_level:
                return None
            record = runtime.build(levelno, logger, message, bound, fields, error)
            for sink in runtime.sinks:  # every sink whose level the record reaches; a failure is counted
                if levelno >= sink.level:
                    try:
                        sink.write(record)
                    except Exception as err:
                        sink.report_failure(err)
            return record
        except Exception as err:  # the last line of defence: monitoring never breaks the app
            _internal_error(err)
            return None


STATE = _State()

_internal_reported = False


def _internal_error(err: BaseException) -> None:
    global _internal_reported
    if not _internal_reported:
        _internal_reported = True
        with contextlib.suppress(Exception):
            sys.stderr.write(f"opswatch: internal error while logging ({type(err).__name__}: {err})\n")


def _after_fork_in_child() -> None:
    runtime = STATE.runtime
    if runtime is not None:
        runtime.static = {**runtime.static, "pid": os.getpid()}


os.register_at_fork(after_in_child=_after_fork_in_child)


def close_at_end(timeout: float = STOP_TIMEOUT) -> None:
    """Close the runtime as the process ends (atexit, a multiprocessing child's finalizer); never raises.

    A SIGTERM that arrived meanwhile (and was deferred by ``_stops``) is raised again afterwards with its
    default action, so the process still ends by it.
    """
    STATE.closing = True
    runtime = STATE.runtime
    if runtime is not None:
        with contextlib.suppress(Exception):
            runtime.close(timeout)
    for signum in STATE.deferred_signals:
        with contextlib.suppress(Exception):
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)


atexit.register(close_at_end)
