"""One settings object for the SDK: explicit arguments win over the environment, which wins over defaults.

``Settings.load(**overrides)`` is the only place the SDK reads the environment. Every field is listed in
the README's configuration table (a test keeps the two in step). A bad value raises ``ConfigError`` naming
the setting and the environment variable it came from, so ``opswatch.init()`` fails loudly and early.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from .record import DEBUG, INFO, parse_level


class ConfigError(ValueError):
    """A setting has a bad value. ``setting`` names it; the message says what is wrong and what is allowed."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"opswatch setting {setting}: {problem}")
        self.setting = setting
        self.problem = problem


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


@dataclasses.dataclass(frozen=True)
class Dsn:
    """A parsed DSN, ``scheme://KEY[:secret]@host[:port][/prefix]/PROJECT`` (the Sentry shape)."""

    scheme: str
    key: str
    host: str
    port: int
    prefix: str
    project: str

    @property
    def base_url(self) -> str:
        """``scheme://host:port/prefix`` with no trailing slash."""
        return f"{self.scheme}://{self.host}:{self.port}{self.prefix}"

    @classmethod
    def parse(cls, value: str, setting: str = "dsn") -> Dsn:
        """Parse ``value`` or raise ``ConfigError`` naming ``setting`` (the message never echoes the key)."""
        parts = _split_url(value.strip(), setting)
        if parts.scheme not in ("http", "https"):
            raise ConfigError(
                setting, f"{_url_shape(value)} is not a DSN: expected http(s)://KEY@HOST[:PORT]/PROJECT"
            )
        if not parts.username:
            raise ConfigError(setting, "the DSN has no key (expected http(s)://KEY@HOST[:PORT]/PROJECT)")
        if not parts.hostname:
            raise ConfigError(setting, "the DSN has no host")
        path = parts.path.rstrip("/")
        prefix, _, project = path.rpartition("/")
        if not project:
            raise ConfigError(setting, "the DSN has no project (expected .../PROJECT at the end)")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as err:
            raise ConfigError(setting, f"bad port in DSN: {err}") from None
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        return cls(parts.scheme, parts.username, host, port, prefix, project)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the SDK can be told. Field docs double as the README's configuration table."""

    #: Name of the service that logs (``OPSWATCH_SERVICE``); defaults to the program's name.
    service: str = ""
    #: ``production``, ``staging``, ``development`` ... (``OPSWATCH_ENVIRONMENT``, then ``ENVIRONMENT``).
    environment: str = "development"
    #: Version of the code that runs (``OPSWATCH_RELEASE``).
    release: str | None = None
    #: Console level (``OPSWATCH_LOG_LEVEL``): trace, debug, info, warn, error, fatal.
    level: int = INFO
    #: Console format (``OPSWATCH_LOG_FORMAT``): ``pretty``, ``json`` or ``auto`` (pretty on a terminal
    #: outside production, JSON otherwise).
    format: Literal["pretty", "json", "auto"] = "auto"
    #: Where the console writes; ``None`` means stdout.
    stream: IO[str] | None = None
    #: Colour in pretty output: ``True``, ``False`` or ``None`` for "when the stream is a terminal"
    #: (``NO_COLOR`` turns it off).
    color: bool | None = None
    #: Write to the console at all.
    console: bool = True
    #: Redact secrets and PII before any sink (on by default; turning it off is for benchmarks).
    redact: bool = True
    #: Extra paths to redact, pino style: ``user.address``, ``*.ssn``, ``items[*].secret``.
    redact_paths: tuple[str, ...] = ()
    #: Extra key words to treat as secret, on top of the built-in list.
    redact_keys: tuple[str, ...] = ()
    #: What happens at a redacted path: ``censor`` (replace) or ``remove`` (drop the key).
    redact_mode: Literal["censor", "remove"] = "censor"
    #: The text that replaces a secret.
    censor: str = "[REDACTED]"
    #: Mask email addresses as ``j***@example.com``.
    mask_emails: bool = True
    #: Censor phone numbers in text (international ``+...`` and North American forms); off by default.
    redact_phones: bool = False
    #: Censor IPv4 and IPv6 addresses in text; off by default (operators need them more often than not).
    redact_ips: bool = False
    #: Route records from the stdlib ``logging`` module through opswatch.
    capture_stdlib: bool = True
    #: Deliver pending records at SIGTERM (``OPSWATCH_FLUSH_ON_SIGTERM``): hooks the signal, chaining to
    #: the handler already there. Off: the signal is left alone and only ``atexit`` flushes.
    flush_on_sigterm: bool = True
    #: Where to ship records (``OPSWATCH_DSN``): ``http://KEY@HOST:PORT/PROJECT``.
    dsn: Dsn | None = None
    #: Lowest level shipped to the opswatch server (``OPSWATCH_SERVER_LEVEL``).
    server_level: int = DEBUG
    #: Directory for the transport's disk spool when the server is unreachable (``OPSWATCH_SPOOL_DIR``).
    spool_dir: str | None = None
    #: Sentry DSN to forward errors and check-ins to (``SENTRY_DSN``).
    sentry_dsn: str | None = None
    #: Forward to Sentry (``SENTRY_ENABLED``); default: only in production.
    sentry_enabled: bool | None = None
    #: Slack incoming webhook for the app's own critical alerts (``SLACK_WEBHOOK_URL``).
    slack_webhook_url: str | None = None
    #: Generic JSON webhook for alerts, signed the Standard Webhooks way (``OPSWATCH_ALERT_WEBHOOK_URL``).
    alert_webhook_url: str | None = None
    #: Secret for signing the generic webhook (``OPSWATCH_ALERT_WEBHOOK_SECRET``).
    alert_webhook_secret: str | None = None
    #: SMTP server for alert email (``OPSWATCH_SMTP_URL``): ``smtp://user:pass@host:587`` (STARTTLS) or
    #: ``smtps://user:pass@host:465`` (TLS).
    smtp_url: str | None = None
    #: CA bundle (PEM) that the SMTP server's certificate must verify against (``OPSWATCH_SMTP_CA_FILE``);
    #: default: the system's CAs.
    smtp_ca_file: str | None = None
    #: Sender address of alert email (``OPSWATCH_EMAIL_FROM``).
    email_from: str | None = None
    #: Recipients of alert email (``OPSWATCH_EMAIL_TO``, comma-separated).
    email_to: tuple[str, ...] = ()
    #: Send alerts (``OPSWATCH_ALERTS_ENABLED``); default: only in production.
    alerts_enabled: bool | None = None
    #: Alert routes (list of dicts); ``None`` means the seed's default table.
    alert_routes: tuple[Mapping[str, Any], ...] | None = None
    #: TOML file with alert routes (``OPSWATCH_ALERTS_FILE``).
    alerts_file: str | None = None
    #: Bearer secret that cron endpoints check (``CRON_SECRET``).
    cron_secret: str | None = None
    #: Host name put on every record.
    host: str = ""
    #: Where outgoing httpx/requests calls carry trace headers (``OPSWATCH_TRACE_PROPAGATION_TARGETS``,
    #: comma-separated): regular expressions searched in the URL's origin ``scheme://host[:port]``, as
    #: Sentry's option of that name. Empty (the default): no header ever leaves, and httpx/requests are
    #: left alone.
    trace_propagation_targets: tuple[str, ...] = ()
    #: Share of new traces whose spans are kept, 0 to 1 (``OPSWATCH_TRACES_SAMPLE_RATE``); a caller's
    #: sampled flag wins. Log records carry the trace id either way.
    traces_sample_rate: float = 1.0
    #: Send the spans of traces not sampled to the opswatch server too, marked ``"sampled": false``, so
    #: that it keeps errors and slow traces whatever the rate (``OPSWATCH_TRACES_TAIL_SAMPLING``).
    #: Default (``None``): on whenever a server sink is configured. Off: unsampled traces build no span.
    traces_tail_sampling: bool | None = None
    #: Export spans as OTLP/HTTP protobuf to this collector base URL (``OPSWATCH_OTLP_ENDPOINT``): they go
    #: to ``<endpoint>/v1/traces``.
    otlp_endpoint: str | None = None
    #: Headers of the OTLP export (``OPSWATCH_OTLP_HEADERS``: ``key=value,key2=value2``, values
    #: percent-encoded, as ``OTEL_EXPORTER_OTLP_HEADERS``); an argument may also be a dict.
    otlp_headers: tuple[tuple[str, str], ...] = ()

    @property
    def is_production(self) -> bool:
        """True when the environment is ``production`` or ``prod``."""
        return self.environment.lower() in ("production", "prod")

    @property
    def sentry_active(self) -> bool:
        """Whether errors and check-ins go to Sentry."""
        enabled = self.is_production if self.sentry_enabled is None else self.sentry_enabled
        return bool(self.sentry_dsn) and enabled

    @property
    def alerts_active(self) -> bool:
        """Whether error and fatal records are routed to alert channels."""
        enabled = self.is_production if self.alerts_enabled is None else self.alerts_enabled
        return enabled and bool(self.slack_webhook_url or self.alert_webhook_url or self.smtp_url)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``overrides`` > ``environ`` (default ``os.environ``) > defaults.

        Raises ``ConfigError`` naming the first bad or unknown setting.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in dataclasses.fields(cls)}
        for name in overrides:
            if name not in known:
                raise ConfigError(name, _unknown(name, known))
        values: dict[str, Any] = {}
        for name, (variables, kind) in _FROM_ENV.items():
            for variable in variables:
                raw = env.get(variable)
                if raw is not None and raw != "":
                    values[name] = _convert(name, variable, kind, raw)
                    break
        for name, value in overrides.items():
            values[name] = _convert(name, name, _KINDS.get(name, "any"), value)
        values.setdefault("service", _default_service())
        values.setdefault("host", socket.gethostname())
        if values.get("release") is None:
            values["release"] = None
        return cls(**values)


# setting -> (environment variables in order of preference, kind)
_FROM_ENV: dict[str, tuple[tuple[str, ...], str]] = {
    "service": (("OPSWATCH_SERVICE",), "str"),
    "environment": (("OPSWATCH_ENVIRONMENT", "ENVIRONMENT"), "str"),
    "release": (("OPSWATCH_RELEASE",), "str"),
    "level": (("OPSWATCH_LOG_LEVEL",), "level"),
    "format": (("OPSWATCH_LOG_FORMAT",), "format"),
    "dsn": (("OPSWATCH_DSN",), "dsn"),
    "server_level": (("OPSWATCH_SERVER_LEVEL",), "level"),
    "spool_dir": (("OPSWATCH_SPOOL_DIR",), "str"),
    "sentry_dsn": (("SENTRY_DSN",), "str"),
    "sentry_enabled": (("SENTRY_ENABLED",), "bool"),
    "slack_webhook_url": (("SLACK_WEBHOOK_URL",), "url"),
    "alert_webhook_url": (("OPSWATCH_ALERT_WEBHOOK_URL",), "url"),
    "alert_webhook_secret": (("OPSWATCH_ALERT_WEBHOOK_SECRET",), "str"),
    "smtp_url": (("OPSWATCH_SMTP_URL",), "smtp_url"),
    "smtp_ca_file": (("OPSWATCH_SMTP_CA_FILE",), "str"),
    "email_from": (("OPSWATCH_EMAIL_FROM",), "str"),
    "email_to": (("OPSWATCH_EMAIL_TO",), "addresses"),
    "alerts_enabled": (("OPSWATCH_ALERTS_ENABLED",), "bool"),
    "alerts_file": (("OPSWATCH_ALERTS_FILE",), "str"),
    "cron_secret": (("CRON_SECRET",), "str"),
    "flush_on_sigterm": (("OPSWATCH_FLUSH_ON_SIGTERM",), "bool"),
    "trace_propagation_targets": (("OPSWATCH_TRACE_PROPAGATION_TARGETS",), "regexes"),
    "traces_sample_rate": (("OPSWATCH_TRACES_SAMPLE_RATE",), "rate"),
    "traces_tail_sampling": (("OPSWATCH_TRACES_TAIL_SAMPLING",), "optional_bool"),
    "otlp_endpoint": (("OPSWATCH_OTLP_ENDPOINT",), "url"),
    "otlp_headers": (("OPSWATCH_OTLP_HEADERS",), "headers"),
}

_KINDS: dict[str, str] = {name: kind for name, (_, kind) in _FROM_ENV.items()} | {
    "stream": "stream",
    "color": "optional_bool",
    "console": "bool",
    "redact": "bool",
    "redact_paths": "paths",
    "redact_keys": "str_tuple",
    "redact_mode": "redact_mode",
    "censor": "str",
    "mask_emails": "bool",
    "redact_phones": "bool",
    "redact_ips": "bool",
    "capture_stdlib": "bool",
    "alert_routes": "routes",
    "host": "str",
}


def _unknown(name: str, known: set[str]) -> str:
    """"unknown setting; did you mean service?" (difflib's closest names), else the known ones."""
    close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.6)
    if close:
        return f"unknown setting; did you mean {' or '.join(close)}?"
    return f"unknown setting (known: {', '.join(sorted(known))})"


def _default_service() -> str:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    name = argv0.removesuffix(".py")
    return name if name and name not in ("-c", "-m", "python", "python3") else "python"


def _split_url(value: str, setting: str) -> SplitResult:
    try:
        return urlsplit(value)
    except ValueError as err:  # "Invalid IPv6 URL" and the like
        raise ConfigError(setting, f"not a valid URL ({err})") from None


def _url_shape(value: Any) -> str:
    """What a bad URL or DSN looks like, without echoing it: webhook URLs and DSNs carry secrets."""
    if not isinstance(value, str):
        return type(value).__name__
    try:
        scheme = urlsplit(value).scheme
    except ValueError:
        scheme = ""
    return f"a URL with scheme {scheme!r}" if scheme else "text with no http(s):// scheme"


def _convert(name: str, source: str, kind: str, value: Any) -> Any:
    """Turn a raw value into the setting's type; ``source`` is what the user wrote (argument or variable)."""
    where = name if source == name else f"{name} (from {source})"
    if kind == "str":
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(where, f"expected text, got {type(value).__name__}")
        return value
    if kind == "level":
        try:
            return parse_level(value)
        except ValueError as err:
            raise ConfigError(where, str(err)) from None
    if kind == "format":
        if value not in ("pretty", "json", "auto"):
            raise ConfigError(where, f"unknown format {value!r} (expected pretty, json or auto)")
        return value
    if kind in ("bool", "optional_bool"):
        if value is None and kind == "optional_bool":
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise ConfigError(where, f"expected true or false, got {value!r}")
    if kind == "dsn":
        if value is None or isinstance(value, Dsn):
            return value
        if not isinstance(value, str):
            raise ConfigError(where, f"expected a DSN string, got {type(value).__name__}")
        return Dsn.parse(value, where)
    if kind == "url":
        if value is None:
            return None
        if not isinstance(value, str) or _split_url(value, where).scheme not in ("http", "https"):
            raise ConfigError(where, f"expected an http(s) URL, got {_url_shape(value)}")
        if not urlsplit(value).hostname:
            raise ConfigError(where, "the URL has no host")
        return value
    if kind in ("smtp_url", "addresses"):
        from .alerts.channels.email import check_recipients, parse_smtp_url

        if kind == "addresses":
            return () if value in ((), [], None) else check_recipients(value, where)
        if value is not None:
            parse_smtp_url(value, where)  # checked now; the password stays in the URL, never echoed
        return value
    if kind == "stream":
        if value is not None and not callable(getattr(value, "write", None)):
            raise ConfigError(where, "expected a writable text stream (an object with .write())")
        return value
    if kind == "str_tuple":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
            raise ConfigError(where, "expected a list of strings")
        return tuple(value)
    if kind == "paths":
        from .redact import parse_path

        paths = _convert(name, source, "str_tuple", value)
        for path in paths:
            try:
                parse_path(path)
            except ValueError as err:
                raise ConfigError(where, str(err)) from None
        return paths
    if kind == "regexes":
        return _regexes(where, source, value)
    if kind == "rate":
        return _rate(where, value)
    if kind == "headers":
        return _headers(where, value)
    if kind == "redact_mode":
        if value not in ("censor", "remove"):
            raise ConfigError(where, f"expected 'censor' or 'remove', got {value!r}")
        return value
    if kind == "routes":
        if value is None:
            return None
        if not isinstance(value, Sequence) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(where, "expected a list of route tables (dicts)")
        return tuple(value)
    return value


def _regexes(where: str, source: str, value: Any) -> tuple[str, ...]:
    """Patterns from a list (an argument: strings or compiled patterns) or a comma-separated variable."""
    if isinstance(value, str):  # a variable lists patterns split by commas; an argument is one pattern
        value = [part for part in value.split(",") if part.strip()] if source != where else [value]
    if isinstance(value, re.Pattern):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, (str, re.Pattern)) for v in value):
        raise ConfigError(where, "expected a list of strings or regular expressions")
    patterns = tuple(v.pattern if isinstance(v, re.Pattern) else v.strip() for v in value)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ConfigError(where, f"{pattern!r} is not a valid regular expression ({err})") from None
    return patterns


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _headers(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    """``key=value,key2=value2`` (values percent-decoded, as ``OTEL_EXPORTER_OTLP_HEADERS``), or a dict.

    Errors name the header, never its value (headers carry credentials).
    """
    if isinstance(value, str):
        pairs: list[tuple[str, str]] = []
        for number, item in enumerate(value.split(","), 1):
            if not item.strip():
                continue
            name, equals, text = item.partition("=")
            if not equals:
                raise ConfigError(where, f"item {number} has no '=' (expected key=value,key2=value2)")
            pairs.append((unquote(name.strip()), unquote(text.strip())))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Sequence) and all(isinstance(v, Sequence) and len(v) == 2 for v in value):
        pairs = [(v[0], v[1]) for v in value]
    else:
        raise ConfigError(where, f"expected key=value,key2=value2 or a dict, got {type(value).__name__}")
    for name, text in pairs:
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigError(where, f"{str(name)[:40]!r} is not a valid header name")
        if not isinstance(text, str) or any(c in text for c in "\r\n\0"):
            raise ConfigError(where, f"the value of header {name!r} must be text on one line")
    return tuple(pairs)


def _rate(where: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ConfigError(where, f"expected a number from 0 to 1, got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= rate <= 1.0:
        raise ConfigError(where, f"expected a number from 0 to 1, got {value!r}")
    return rate
