"""``cron_job`` and ``execute_cron_job``: run a job and report it to every monitoring destination.

One core serves every shape (decorator, ``with``, ``async with``, a call; sync and async): ``_begin``
sends the ``in_progress`` check-in and the seed's ``cron.<slug>.start`` record, ``_end`` sends ``ok`` or
``error`` with the duration and the ``.complete`` or ``.error`` record. Only the waiting differs between
sync and async. The job's return value and exception pass through unchanged; monitoring itself never
raises into the job (a bad configuration does, once, when the job is decorated).

Each run is also a span (``opswatch.tracing``): kind ``internal``, named after the slug, with the
attributes ``opswatch.cron.monitor_slug`` and ``opswatch.cron.run_id`` (the check-in id), ``error`` when
the run fails. It is current from before the start record to after the check-in that ends the run, so
every record written during the run carries its ``trace_id``/``span_id``.

Check-ins are records like any other (see ``opswatch.crons`` for their fields), so they reach the
opswatch server through the transport's batching and spool, and Sentry through the Sentry sink. They are
not printed on the console: the start/complete/error records already tell people what happened.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Literal, ParamSpec, TypeVar, cast, overload

from .._runtime import STATE, _internal_error
from ..config import ConfigError
from ..log import get_logger
from ..record import INFO
from ..sinks import Sink
from ..tracing._span import Span, _end, _start, finish, leave
from .config import MonitorConfig, validate_slug
from .schedule import Schedule

__all__ = ["CHECK_IN_OPERATION", "CronJob", "CronRun", "cron_job", "execute_cron_job", "send_check_in"]

P = ParamSpec("P")
R = TypeVar("R")

#: The ``operation`` of every check-in record.
CHECK_IN_OPERATION: Final = "cron.checkin"
#: The logger name of check-in records and of the seed's cron records.
CHECK_IN_LOGGER: Final = "opswatch.cron"
_LOG = get_logger("cron")
# A check-in id must survive redaction unchanged: a run of 13+ digits could look like a card number.
_DIGIT_RUN = re.compile(r"\d{13}")

Status = Literal["in_progress", "ok", "error"]


def _new_check_in_id() -> str:
    while True:
        value = uuid.uuid4().hex
        if not _DIGIT_RUN.search(value):
            return value


def _takes_check_ins(sink: Sink) -> bool:
    """Check-ins go to monitoring destinations, not to people: every sink but the console.

    A sink can say so itself with ``accepts_check_ins``; otherwise any sink taking ``info`` gets them.
    """
    flag = getattr(sink, "accepts_check_ins", None)
    if flag is not None:
        return bool(flag)
    return sink.name != "console" and sink.level <= INFO


def send_check_in(
    slug: str,
    check_in_id: str,
    status: Status,
    duration: float | None = None,
    config: MonitorConfig | None = None,
) -> None:
    """Send one check-in record to every destination that takes check-ins. Never raises."""
    try:
        runtime = STATE.runtime or STATE.get()
        fields: dict[str, Any] = {
            "operation": CHECK_IN_OPERATION,
            "kind": "check_in",
            "monitor_slug": slug,
            "check_in_id": check_in_id,
            "status": status,
        }
        if duration is not None:
            fields["duration"] = round(duration, 6)
        if config is not None:
            fields["monitor_config"] = config.to_wire()
        record = runtime.build(INFO, CHECK_IN_LOGGER, f"cron check-in {slug}: {status}", None, fields, None)
        for sink in runtime.sinks:
            if _takes_check_ins(sink):
                try:
                    sink.write(record)
                except Exception as err:
                    sink.report_failure(err)
    except Exception as err:  # monitoring never breaks the job
        _internal_error(err)


class CronRun:
    """One run of a job: its check-in id and when it started. ``with cron_job(...) as run`` gives it."""

    __slots__ = ("_started", "_tokens", "check_in_id", "job", "span", "status")

    def __init__(self, job: CronJob) -> None:
        self.job = job
        self.check_in_id = _new_check_in_id()
        self._started = time.perf_counter()
        #: ``in_progress`` until the run ends, then ``ok`` or ``error``.
        self.status: Status = "in_progress"
        #: The run's span (``opswatch.tracing``), kind internal, named after the monitor's slug; current
        #: while the run runs, so that records written inside carry its ids.
        self.span: Span | None = None
        self._tokens: tuple[Any, Any] | None = None

    def leave(self) -> None:
        """Stop the run's span being current in this context (the run goes on in an awaitable)."""
        tokens, self._tokens = self._tokens, None
        if tokens is not None:
            try:
                leave(*tokens)
            except Exception as err:
                _internal_error(err)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._started


def _failed(error: BaseException | None) -> bool:
    if error is None:
        return False
    if isinstance(error, SystemExit):  # sys.exit(0) inside a job is a successful end
        return error.code not in (None, 0)
    return True


class CronJob:
    """A monitored job: use it as a decorator, as a (sync or async) context manager, or ``run`` a function.

    Each use is one run with its own check-in id; runs may overlap (threads, tasks).
    """

    def __init__(self, slug: str, config: MonitorConfig | None) -> None:
        self.slug = validate_slug(slug)
        self.config = config
        self.operation_prefix = "cron." + slug.replace("-", "_")
        self._runs: contextvars.ContextVar[tuple[CronRun, ...]] = contextvars.ContextVar(
            f"opswatch_cron_{slug}", default=()
        )

    def __repr__(self) -> str:
        schedule = self.config.schedule.text if self.config else None
        return f"CronJob({self.slug!r}, schedule={schedule!r})"

    # -- the core --------------------------------------------------------------------------------------

    def _begin(self) -> CronRun:
        run = CronRun(self)
        try:
            attributes = {"opswatch.cron.monitor_slug": self.slug, "opswatch.cron.run_id": run.check_in_id}
            run.span, *tokens = _start(self.slug, "internal", attributes)
            run._tokens = (tokens[0], tokens[1])
        except Exception as err:
            _internal_error(err)
        try:
            fields: dict[str, Any] = {"operation": f"{self.operation_prefix}.start", "monitorSlug": self.slug}
            if self.config is not None:
                fields["schedule"] = self.config.schedule.text
            fields["checkInId"] = run.check_in_id
            _LOG.info("Cron job started", fields)
            send_check_in(self.slug, run.check_in_id, "in_progress", None, self.config)
        except Exception as err:
            _internal_error(err)
        return run

    def _end(self, run: CronRun, error: BaseException | None) -> None:
        duration = run.elapsed
        run.status = "error" if _failed(error) else "ok"
        try:
            fields = {
                "monitorSlug": self.slug,
                "durationMs": round(duration * 1000),
                "checkInId": run.check_in_id,
            }
            if run.status == "ok":
                operation = f"{self.operation_prefix}.complete"
                _LOG.info("Cron job completed successfully", {"operation": operation, **fields})
            else:
                operation = f"{self.operation_prefix}.error"
                _LOG.error("Cron job failed", {"operation": operation, **fields}, error)
            send_check_in(self.slug, run.check_in_id, run.status, duration, self.config)
        except Exception as err:
            _internal_error(err)
        tokens, run._tokens = run._tokens, None
        if run.span is not None:
            try:
                failure = error if run.status == "error" else None
                if tokens is not None:
                    _end(run.span, *tokens, failure)
                else:
                    finish(run.span, failure)
            except Exception as err:
                _internal_error(err)

    # -- context managers ------------------------------------------------------------------------------

    def __enter__(self) -> CronRun:
        run = self._begin()
        self._runs.set((*self._runs.get(), run))
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        runs = self._runs.get()
        if runs:
            self._runs.set(runs[:-1])
            self._end(runs[-1], exc)
        return False

    async def __aenter__(self) -> CronRun:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)

    # -- functions -------------------------------------------------------------------------------------

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async): every call is one monitored run."""
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigError("cron_job", f"cannot monitor the generator function {fn.__qualname__}")
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self._await(fn(*args, **kwargs))

            return run_async

        @functools.wraps(fn)
        def run_sync(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.run(fn, *args, **kwargs)

        return run_sync

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` as one monitored run and return what it returns.

        For an async function (or any function returning an awaitable) this returns a coroutine: await it;
        the run ends when the awaitable does.
        """
        if inspect.iscoroutinefunction(fn):
            return cast(R, self._await(cast(Awaitable[Any], fn(*args, **kwargs))))
        run = self._begin()
        try:
            result = fn(*args, **kwargs)
        except BaseException as err:
            self._end(run, err)
            raise
        if inspect.isawaitable(result):
            run.leave()  # awaited later, maybe in another task: the caller goes on outside the run's span
            return cast(R, self._finish_awaitable(run, result))
        self._end(run, None)
        return result

    async def _await(self, awaitable: Awaitable[R]) -> R:
        return await self._finish_awaitable(self._begin(), awaitable)

    async def _finish_awaitable(self, run: CronRun, awaitable: Awaitable[R]) -> R:
        try:
            result = await awaitable
        except BaseException as err:
            self._end(run, err)
            raise
        self._end(run, None)
        return result


def cron_job(
    slug: str,
    schedule: str | Schedule | None = None,
    *,
    max_runtime_minutes: float | None = None,
    timezone: str | None = None,
    checkin_margin: float | timedelta | None = None,
    max_runtime: float | timedelta | None = None,
    failure_threshold: int | None = None,
    recovery_threshold: int | None = None,
) -> CronJob:
    """A monitored cron job named ``slug`` (kebab-case, as Sentry wants it).

    Use it as ``@cron_job(...)`` on a sync or async function, as ``with cron_job(...) as run:`` or
    ``async with``. The configuration is validated now and raises ``opswatch.ConfigError`` naming the bad
    setting: ``schedule`` (5-field crontab, ``@daily`` ..., or ``every 10 minutes``), ``timezone`` (IANA),
    ``checkin_margin`` and ``max_runtime`` (minutes, or a ``timedelta``; ``max_runtime_minutes`` is the
    seed's name for ``max_runtime``), ``failure_threshold`` and ``recovery_threshold`` (1-720). Without a
    ``schedule`` no configuration is sent, and the monitor must already exist on the server.
    """
    if max_runtime_minutes is not None:
        if max_runtime is not None:
            raise ConfigError("max_runtime_minutes", "give max_runtime or max_runtime_minutes, not both")
        if isinstance(max_runtime_minutes, timedelta):
            raise ConfigError(
                "max_runtime_minutes", "expected minutes as a number (use max_runtime= for a timedelta)"
            )
        max_runtime = max_runtime_minutes
    extra = {
        "timezone": timezone,
        "checkin_margin": checkin_margin,
        "max_runtime": max_runtime,
        "failure_threshold": failure_threshold,
        "recovery_threshold": recovery_threshold,
    }
    if schedule is None:
        given = [name for name, value in extra.items() if value is not None]
        if given:
            raise ConfigError("schedule", f"required when {', '.join(given)} is given")
        return CronJob(slug, None)
    config = MonitorConfig.create(
        schedule,
        timezone=timezone,
        checkin_margin=checkin_margin,
        max_runtime=max_runtime,
        failure_threshold=failure_threshold,
        recovery_threshold=recovery_threshold,
    )
    return CronJob(slug, config)


@overload
def execute_cron_job(
    slug: str,
    fn: Callable[[], Coroutine[Any, Any, R]],
    schedule: str | Schedule | None = None,
    *,
    max_runtime_minutes: float | None = None,
    **config: Any,
) -> Coroutine[Any, Any, R]: ...


@overload
def execute_cron_job(
    slug: str,
    fn: Callable[[], R],
    schedule: str | Schedule | None = None,
    *,
    max_runtime_minutes: float | None = None,
    **config: Any,
) -> R: ...


def execute_cron_job(
    slug: str,
    fn: Callable[[], Any],
    schedule: str | Schedule | None = None,
    *,
    max_runtime_minutes: float | None = None,
    **config: Any,
) -> Any:
    """Run ``fn()`` as one monitored run of the job ``slug`` and return its result (the seed's
    ``executeCronJob``). For an async ``fn`` it returns a coroutine to await. ``config`` takes the same
    keywords as ``cron_job``; a bad one raises ``opswatch.ConfigError`` before ``fn`` runs.
    """
    try:
        job = cron_job(slug, schedule, max_runtime_minutes=max_runtime_minutes, **config)
    except TypeError as err:  # an unknown keyword: name it like any other bad setting
        raise ConfigError("execute_cron_job", str(err)) from None
    return job.run(fn)
