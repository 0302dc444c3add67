"""The server's settings: explicit arguments win over the environment, which wins over defaults.

``ServerSettings.load(**overrides)`` is the only place the server reads its environment. A bad value
raises ``opswatch.ConfigError`` naming the setting (and the variable it came from), so ``opswatch serve``
fails at start, not at the first request. The admin token, when not given, is generated once and kept in
``<data_dir>/admin_token`` (mode 0600) so that restarts keep it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import FALSE_WORDS, TRUE_WORDS, ConfigError
from . import limits
from ._files import private_dir


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Everything ``opswatch serve`` can be told."""

    #: Directory holding the event store, the state store and the admin token (``OPSWATCH_DATA_DIR``).
    data_dir: Path = Path("opswatch-data")
    #: Interface to bind (``OPSWATCH_HOST``); 127.0.0.1 unless told otherwise.
    host: str = "127.0.0.1"
    #: Port to listen on (``OPSWATCH_PORT``).
    port: int = 8321
    #: Bearer token for the query and management API (``OPSWATCH_ADMIN_TOKEN``); generated and kept in
    #: the data directory when not given.
    admin_token: str = ""
    #: SQLAlchemy URL of the state store (``OPSWATCH_DATABASE_URL``); default SQLite in the data dir.
    database_url: str = ""
    #: URL of an external event store (``OPSWATCH_EVENTS_URL``, ClickHouse later); default the embedded
    #: DuckDB file in the data dir.
    events_url: str | None = None
    #: Days events are kept (``OPSWATCH_RETENTION_DAYS``).
    retention_days: int = 30
    #: Days spans are kept (``OPSWATCH_SPANS_RETENTION_DAYS``); traces are many times the volume of logs.
    spans_retention_days: int = 14
    #: Seconds a trace holding unsampled spans must be quiet before it is decided, kept or dropped
    #: (``OPSWATCH_TRACES_TAIL_WAIT``; tail sampling, see "Tracing").
    traces_tail_wait: float = limits.TRACES_TAIL_WAIT_SECONDS
    #: A trace lasting longer than this many milliseconds is kept by tail sampling
    #: (``OPSWATCH_TRACES_SLOW_MS``).
    traces_slow_ms: int = limits.TRACES_SLOW_MS
    #: Base URL put in the DSNs the server prints (``OPSWATCH_PUBLIC_URL``); default from host and port.
    public_url: str | None = None
    #: Slack incoming webhook for the server's notifications (``SLACK_WEBHOOK_URL``).
    slack_webhook_url: str | None = None
    #: Generic JSON webhook for the server's notifications (``OPSWATCH_ALERT_WEBHOOK_URL``).
    alert_webhook_url: str | None = None
    #: Secret that signs the generic webhook (``OPSWATCH_ALERT_WEBHOOK_SECRET``).
    alert_webhook_secret: str | None = None
    #: SMTP server for the server's notification email (``OPSWATCH_SMTP_URL``): ``smtp://user:pass@host:587``
    #: (STARTTLS) or ``smtps://user:pass@host:465`` (TLS).
    smtp_url: str | None = None
    #: CA bundle (PEM) the SMTP server's certificate must verify against (``OPSWATCH_SMTP_CA_FILE``).
    smtp_ca_file: str | None = None
    #: Sender address of notification email (``OPSWATCH_EMAIL_FROM``).
    email_from: str | None = None
    #: Recipients of notification email (``OPSWATCH_EMAIL_TO``, comma-separated).
    email_to: tuple[str, ...] = ()
    #: Events waiting for the durable append before ingest answers 429 (``OPSWATCH_MAX_PENDING_EVENTS``).
    max_pending_events: int = limits.MAX_PENDING_EVENTS
    #: Redact what arrives before it is stored (``OPSWATCH_SERVER_REDACT``); on unless benchmarking.
    redact: bool = True
    #: Announce a new issue (``OPSWATCH_NOTIFY_NEW_ISSUES``).
    notify_new_issues: bool = True
    #: Announce an issue that came back after it was resolved (``OPSWATCH_NOTIFY_REGRESSED_ISSUES``).
    notify_regressed_issues: bool = True
    #: Announce a cron monitor that becomes failing, and its recovery (``OPSWATCH_NOTIFY_CRON_FAILURES``).
    notify_cron_failures: bool = True
    #: Resolve an issue by itself after this many days without events (``OPSWATCH_ISSUE_AUTO_RESOLVE_DAYS``);
    #: 0 never does.
    issue_auto_resolve_days: int = 0
    #: Memory DuckDB may use for the event store (``OPSWATCH_QUERY_MEMORY_LIMIT``, e.g. ``1GB``):
    #: queries past it spill to disk or fail with a clear error instead of growing the server.
    query_memory_limit: str = limits.QUERY_MEMORY_LIMIT
    #: Disk a query may spill to (``OPSWATCH_QUERY_TEMP_LIMIT``, e.g. ``4GB``; DuckDB's
    #: ``max_temp_directory_size``).
    query_temp_limit: str = limits.QUERY_TEMP_LIMIT
    #: Seconds a client may take to send a request's headers (``OPSWATCH_HEADER_TIMEOUT``).
    header_timeout: float = limits.HEADER_TIMEOUT_SECONDS
    #: Seconds the body of an ingest request may take to arrive (``OPSWATCH_BODY_TIMEOUT``).
    body_timeout: float = limits.BODY_TIMEOUT_SECONDS
    #: Seconds an idle keep-alive connection stays open (``OPSWATCH_KEEPALIVE_TIMEOUT``).
    keepalive_timeout: float = limits.KEEPALIVE_TIMEOUT_SECONDS
    #: Connections and requests served at once; more are answered 503 (``OPSWATCH_MAX_CONNECTIONS``).
    max_connections: int = limits.MAX_CONNECTIONS
    #: Processes that take HTTP (``OPSWATCH_WORKERS``): 1 serves everything in one process; N > 1 starts
    #: N ingest workers beside the process that owns the stores (``opswatch.server.workers``).
    workers: int = 1
    #: TOML file of alert rules (``OPSWATCH_RULES_FILE``); read at start, see "Server alert rules".
    rules_file: Path | None = None
    #: Ship the default rules (high error rate per service, API p95) (``OPSWATCH_RULES_DEFAULTS``).
    rules_defaults: bool = True
    #: Seconds between evaluation rounds of the alert rules (``OPSWATCH_RULES_INTERVAL``).
    rules_interval: int = 60
    #: Seconds a rule's window ends before now, so events still in flight count
    #: (``OPSWATCH_RULES_INGEST_DELAY``).
    rules_ingest_delay: int = 30
    #: Seconds a new notification group waits for more alerts before it is sent
    #: (``OPSWATCH_RULES_GROUP_WAIT``).
    rules_group_wait: int = 30
    #: Seconds between two messages of one group when something changed (``OPSWATCH_RULES_GROUP_INTERVAL``).
    rules_group_interval: int = 300
    #: Seconds after which a still-firing alert is announced again (``OPSWATCH_RULES_REPEAT_INTERVAL``).
    rules_repeat_interval: int = 14_400
    #: Run the singletons (cron clock, rules, sweeper) only in the replica holding the lease in the state
    #: store (``OPSWATCH_LEADER_ELECTION``): ``on``, ``off``, or ``auto`` (on when ``database_url`` is set).
    leader_election: str = "auto"
    #: Seconds within which another replica takes over when the leader dies (``OPSWATCH_LEADER_LEASE``).
    leader_lease: float = limits.LEADER_LEASE_SECONDS
    #: Seconds between lease renewals and polls (``OPSWATCH_LEADER_RENEW``); at most ``leader_lease / 6``.
    leader_renew: float = limits.LEADER_RENEW_SECONDS

    def __post_init__(self) -> None:
        if self.leader_renew * 6 > self.leader_lease:
            raise ConfigError(
                "leader_renew",
                f"expected at most leader_lease / 6 = {self.leader_lease / 6:g} seconds (the leader needs "
                f"two more tries to renew before it must stop), got {self.leader_renew:g}",
            )

    @property
    def state_url(self) -> str:
        """The state store's URL: ``database_url`` or SQLite at ``<data_dir>/state.db``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def events_path(self) -> Path:
        """The embedded event store's file."""
        return self.data_dir / "events.duckdb"

    @property
    def base_url(self) -> str:
        """Where clients reach this server: ``public_url`` or ``http://host:port``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def dsn(self, key: str, project_id: int) -> str:
        """The DSN an app uses to send to ``project_id`` with ingest ``key``."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{key}@{parts.netloc}{parts.path}/{project_id}"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Build settings from ``overrides`` > ``environ`` (default ``os.environ``) > defaults.

        ``None`` in ``overrides`` means "not given" (so argparse defaults of ``None`` fall through to the
        environment). Creates the data directory and, when no admin token is given, reads or creates
        ``<data_dir>/admin_token``. Raises ``ConfigError`` naming the first bad or unknown setting.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, variable in _FROM_ENV.items():
            raw = env.get(variable)
            if raw is not None and raw != "":
                values[name] = _convert(name, f"{name} (from {variable})", raw)
        for name, value in overrides.items():
            if name not in known:
                raise ConfigError(name, f"unknown server setting (known: {', '.join(sorted(known))})")
            if value is not None:
                values[name] = _convert(name, name, value)
        settings = cls(**values)
        return settings._with_token()

    def _with_token(self) -> ServerSettings:
        try:
            private_dir(self.data_dir)
        except OSError as err:
            raise ConfigError("data_dir", f"cannot create {self.data_dir}: {err.strerror}") from None
        if self.admin_token:
            return self
        return dataclasses.replace(self, admin_token=_stored_token(self.data_dir))


_FROM_ENV: dict[str, str] = {
    "data_dir": "OPSWATCH_DATA_DIR",
    "host": "OPSWATCH_HOST",
    "port": "OPSWATCH_PORT",
    "admin_token": "OPSWATCH_ADMIN_TOKEN",
    "database_url": "OPSWATCH_DATABASE_URL",
    "events_url": "OPSWATCH_EVENTS_URL",
    "retention_days": "OPSWATCH_RETENTION_DAYS",
    "spans_retention_days": "OPSWATCH_SPANS_RETENTION_DAYS",
    "traces_tail_wait": "OPSWATCH_TRACES_TAIL_WAIT",
    "traces_slow_ms": "OPSWATCH_TRACES_SLOW_MS",
    "public_url": "OPSWATCH_PUBLIC_URL",
    "slack_webhook_url": "SLACK_WEBHOOK_URL",
    "alert_webhook_url": "OPSWATCH_ALERT_WEBHOOK_URL",
    "alert_webhook_secret": "OPSWATCH_ALERT_WEBHOOK_SECRET",
    "smtp_url": "OPSWATCH_SMTP_URL",
    "smtp_ca_file": "OPSWATCH_SMTP_CA_FILE",
    "email_from": "OPSWATCH_EMAIL_FROM",
    "email_to": "OPSWATCH_EMAIL_TO",
    "max_pending_events": "OPSWATCH_MAX_PENDING_EVENTS",
    "redact": "OPSWATCH_SERVER_REDACT",
    "notify_new_issues": "OPSWATCH_NOTIFY_NEW_ISSUES",
    "notify_regressed_issues": "OPSWATCH_NOTIFY_REGRESSED_ISSUES",
    "notify_cron_failures": "OPSWATCH_NOTIFY_CRON_FAILURES",
    "issue_auto_resolve_days": "OPSWATCH_ISSUE_AUTO_RESOLVE_DAYS",
    "query_memory_limit": "OPSWATCH_QUERY_MEMORY_LIMIT",
    "query_temp_limit": "OPSWATCH_QUERY_TEMP_LIMIT",
    "header_timeout": "OPSWATCH_HEADER_TIMEOUT",
    "body_timeout": "OPSWATCH_BODY_TIMEOUT",
    "keepalive_timeout": "OPSWATCH_KEEPALIVE_TIMEOUT",
    "max_connections": "OPSWATCH_MAX_CONNECTIONS",
    "workers": "OPSWATCH_WORKERS",
    "rules_file": "OPSWATCH_RULES_FILE",
    "rules_defaults": "OPSWATCH_RULES_DEFAULTS",
    "rules_interval": "OPSWATCH_RULES_INTERVAL",
    "rules_ingest_delay": "OPSWATCH_RULES_INGEST_DELAY",
    "rules_group_wait": "OPSWATCH_RULES_GROUP_WAIT",
    "rules_group_interval": "OPSWATCH_RULES_GROUP_INTERVAL",
    "rules_repeat_interval": "OPSWATCH_RULES_REPEAT_INTERVAL",
    "leader_election": "OPSWATCH_LEADER_ELECTION",
    "leader_lease": "OPSWATCH_LEADER_LEASE",
    "leader_renew": "OPSWATCH_LEADER_RENEW",
}

_BOOLEANS = frozenset(
    {"redact", "notify_new_issues", "notify_regressed_issues", "notify_cron_failures", "rules_defaults"}
)
_NUMBERS: dict[str, tuple[int, int]] = {
    "port": (0, 65535),
    "retention_days": (1, 36500),
    "spans_retention_days": (1, 36500),
    "traces_slow_ms": (1, 86_400_000),
    "max_pending_events": (1, 10**8),
    "issue_auto_resolve_days": (0, 36500),
    "max_connections": (1, 1_000_000),
    "workers": (1, limits.MAX_WORKERS),
    "rules_interval": (1, 86_400),
    "rules_ingest_delay": (0, 3_600),
    "rules_group_wait": (0, 86_400),
    "rules_group_interval": (0, 86_400),
    "rules_repeat_interval": (60, 30 * 86_400),
}
_SECONDS: dict[str, tuple[float, float]] = {
    "header_timeout": (0.1, 3600.0),
    "body_timeout": (0.1, 3600.0),
    "keepalive_timeout": (1.0, 3600.0),
    "traces_tail_wait": (0.1, 3600.0),
    "leader_lease": (limits.LEADER_LEASE_MIN_SECONDS, limits.LEADER_LEASE_MAX_SECONDS),
    "leader_renew": (limits.LEADER_RENEW_MIN_SECONDS, limits.LEADER_LEASE_MAX_SECONDS / 6),
}
_SIZES = frozenset({"query_memory_limit", "query_temp_limit"})
_SIZE = re.compile(r"[0-9]+(?:\.[0-9]+)?\s*(?:[KMGT]i?B|B)", re.IGNORECASE)


def _stored_token(data_dir: Path) -> str:
    """Read ``<data_dir>/admin_token``, creating it (0600) with a new random token the first time."""
    path = data_dir / "admin_token"
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    except OSError as err:
        raise ConfigError("admin_token", f"cannot read {path}: {err.strerror}") from None
    # token_urlsafe may start with "-", which a command line reads as an option (``--token -x...``).
    token = "ow" + secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    except OSError as err:
        raise ConfigError("admin_token", f"cannot write {path}: {err.strerror}") from None
    return token


def _convert(name: str, where: str, value: Any) -> Any:
    """Turn a raw value into the setting's type, or raise ``ConfigError`` naming ``where``."""
    if name in ("data_dir", "rules_file"):
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            wanted = "a directory path" if name == "data_dir" else "a file path"
            raise ConfigError(where, f"expected {wanted}")
        return Path(value).expanduser()
    if name in _NUMBERS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(where, f"expected a whole number, got {value!r}") from None
        low, high = _NUMBERS[name]
        if not low <= number <= high:
            raise ConfigError(where, f"expected {low}..{high}, got {number}")
        return number
    if name in _SECONDS:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ConfigError(where, f"expected seconds, got {value!r}") from None
        low_s, high_s = _SECONDS[name]
        if not low_s <= seconds <= high_s:  # also refuses nan
            raise ConfigError(where, f"expected {low_s:g}..{high_s:g} seconds, got {value!r}")
        return seconds
    if name in _SIZES:
        if not isinstance(value, str) or not _SIZE.fullmatch(value.strip()):
            raise ConfigError(where, f"expected a size such as 512MB or 2GB, got {value!r}")
        return value.strip()
    if name in ("smtp_url", "email_to"):
        from ..alerts.channels.email import check_recipients, parse_smtp_url

        if name == "email_to":
            return check_recipients(value, where)
        parse_smtp_url(value, where)
        return value
    if name in _BOOLEANS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise ConfigError(where, f"expected true or false, got {value!r}")
    if not isinstance(value, str):
        raise ConfigError(where, f"expected text, got {type(value).__name__}")
    if name in ("public_url", "slack_webhook_url", "alert_webhook_url"):
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(where, f"expected an http(s) URL with a host, got {value!r}")
    if name == "leader_election":
        word = value.strip().lower()
        mode = "on" if word in TRUE_WORDS else "off" if word in FALSE_WORDS else word
        if mode not in ("auto", "on", "off"):
            raise ConfigError(where, f"expected auto, on or off, got {value!r}")
        return mode
    if name == "host" and not value.strip():
        raise ConfigError(where, "expected an interface address such as 127.0.0.1")
    return value
