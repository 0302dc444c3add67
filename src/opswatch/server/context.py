"""``ServerContext``: everything a running server shares, built once at start and passed everywhere.

Subsystems get the context in their ``install(ctx)`` step and in every hook call; HTTP handlers get it
with ``opswatch.server.auth.get_context``. Extension points:

* ``ctx.hooks``: callables ``hook(ctx, records)`` run after every durable append with the newly stored
  records (redacted, with ``project_id``, ``kind`` and ``received_at``), on the committer thread, before
  the ingest requests are answered. They must be quick, must not change the records (every hook gets
  the same dicts) and should not raise (a hook that raises is logged and skipped; the events stay
  stored). A hook must never wait for ``ctx.pipeline``: it runs on the thread that would answer.
* ``ctx.background``: objects with ``start()`` and ``stop()``, started after the server is up and
  stopped (in reverse order) before the store closes. With leader election on (replicas sharing a state
  store), ``leader.install`` puts them behind the lease: they run in one replica at a time, and must be
  startable again after a stop. A worker every replica must run says so with ``every_replica = True``.
* ``ctx.extras``: a dict where a subsystem keeps its own state under its name.
* ``ctx.pipeline.ingest(project_id, records, source)``: for records the server writes itself
  (``state_change`` ...); the same redaction, durability and hooks as ingested ones.
* ``ctx.now()``: the clock (aware UTC ``datetime``); tests inject their own.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
from collections.abc import Callable
from typing import Any, Protocol, cast

from sqlalchemy import Engine

from ..config import ConfigError
from ..log import get_logger
from ._files import private_file
from .config import ServerSettings
from .metrics import Gauge, Metrics, StatsGauges
from .pipeline import Pipeline
from .redaction import ServerRedactor
from .state import projects
from .state.base import create_engine_for
from .state.startup import schema_lock
from .store.base import EventStore

_log = get_logger("opswatch.server")

#: ``hook(ctx, records)``: may return how many of ``records`` it could not process (counted in
#: ``/metrics`` and shown on ``/healthz``); a hook that raises failed every record it was given.
Hook = Callable[["ServerContext", list[dict[str, Any]]], int | None]


class Background(Protocol):
    """A worker that runs for the server's lifetime (cron clock, retention, auto-resolve ...)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def utcnow() -> datetime.datetime:
    """The current time as an aware UTC datetime (the default clock)."""
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(eq=False)
class ServerContext:
    """The running server's shared parts. Build it with ``open_context``."""

    settings: ServerSettings
    engine: Engine
    store: EventStore
    default_project: projects.ProjectInfo
    keys: projects.KeyCache
    metrics: Metrics
    notifier: Any | None = None
    hooks: list[Hook] = dataclasses.field(default_factory=list)
    background: list[Background] = dataclasses.field(default_factory=list)
    now: Callable[[], datetime.datetime] = utcnow
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    pipeline: Pipeline = dataclasses.field(init=False)
    _started: bool = dataclasses.field(default=False, init=False)
    _closed: bool = dataclasses.field(default=False, init=False)

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(self, ServerRedactor(enabled=self.settings.redact))

    @property
    def default_dsn(self) -> str:
        """The DSN of the default project's first key."""
        key = self.default_project.keys[0].key
        return self.settings.dsn(key, self.default_project.id)

    def start(self) -> None:
        """Start the committer and every background worker (once)."""
        if self._started:
            return
        self._started = True
        self.pipeline.start()
        for worker in self.background:
            try:
                worker.start()
            except Exception as err:
                _log.error("a background worker failed to start", {"worker": repr(worker)}, err)

    def close(self, timeout: float = 30.0) -> None:
        """Stop background workers, commit everything queued, close the store and the state engine.

        Every event that was acknowledged is durable before this returns; safe to call twice.
        """
        if self._closed:
            return
        self._closed = True
        for worker in reversed(self.background):
            try:
                worker.stop()
            except Exception as err:
                _log.error("a background worker failed to stop", {"worker": repr(worker)}, err)
        if not self.pipeline.stop(timeout):
            _log.error("events were still queued when the server stopped", {"pending": self.pipeline.pending})
        try:
            self.store.close()
        finally:
            self.engine.dispose()
            if self.notifier is not None and hasattr(self.notifier, "close"):
                try:
                    self.notifier.close(5.0)
                except Exception as err:
                    _log.error("the notifier failed to close", None, err)


def open_notifier(settings: ServerSettings) -> Any | None:
    """The alert notifier for the Slack, webhook and email settings, or None when none is set."""
    if not (settings.slack_webhook_url or settings.alert_webhook_url or settings.smtp_url):
        return None
    from ..alerts import Notifier
    from ..alerts.sink import channels_from_settings

    # channels_from_settings reads only the channel settings, which ServerSettings shares.
    return Notifier(channels_from_settings(cast(Any, settings)), name="opswatch-server-alerts")


def open_store(settings: ServerSettings) -> EventStore:
    """The event store the settings name: the embedded DuckDB file unless ``events_url`` is set.

    ``events_url`` ``clickhouse://user:pass@host:8123/db`` opens the ClickHouse store over HTTP (its native
    TTL set to ``retention_days``); another scheme, or a database that cannot be used, is a
    ``ConfigError`` naming ``events_url``.
    """
    if settings.events_url:
        if not settings.events_url.startswith(("clickhouse://", "clickhouses://")):
            raise ConfigError(
                "events_url", "expected clickhouse://user:pass@host:8123/db (only ClickHouse is supported)"
            )
        clickhouse = importlib.import_module("opswatch.server.store.clickhouse")
        try:
            external: EventStore = clickhouse.open_url(
                settings.events_url, retention_days=settings.retention_days
            )
        except clickhouse.ClickHouseStoreError as err:
            raise ConfigError("events_url", str(err)) from None
        return external
    module = importlib.import_module("opswatch.server.store.duckdb")
    store: EventStore = module.DuckDBStore(
        settings.events_path,
        memory_limit=settings.query_memory_limit,
        max_temp_directory_size=settings.query_temp_limit,
    )
    return store


def open_context(
    settings: ServerSettings,
    *,
    store: EventStore | None = None,
    now: Callable[[], datetime.datetime] | None = None,
    notifier: Any | None = None,
) -> ServerContext:
    """Open the state store (creating the default project on first start) and the event store.

    ``store`` replaces the configured event store (tests of other stores); ``now`` replaces the clock;
    ``notifier`` replaces the one built from the Slack/webhook settings (None when none is configured).
    """
    if not settings.database_url:
        private_file(settings.data_dir / "state.db")  # the ingest keys: 0600 from the start
    engine = create_engine_for(settings.state_url)
    clock = now or utcnow
    try:
        with schema_lock(engine):  # replicas starting together: one at a time creates tables
            default = projects.install(engine, clock)
        if notifier is None:
            notifier = open_notifier(settings)
        event_store = store if store is not None else open_store(settings)
    except BaseException:
        engine.dispose()
        raise
    ctx = ServerContext(
        settings=settings,
        engine=engine,
        store=event_store,
        default_project=default,
        keys=projects.KeyCache(engine),
        metrics=Metrics(),
        now=clock,
        notifier=notifier,
    )
    ctx.metrics.add(
        Gauge(
            "opswatch_ingest_queue_events",
            "Events waiting for the durable append.",
            lambda: ctx.pipeline.pending,
        )
    )
    ctx.metrics.add(StatsGauges("opswatch_store_", "The event store's figure", ctx.store.stats))
    return ctx
