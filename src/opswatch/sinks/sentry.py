"""The Sentry sink: error and fatal records become Sentry events, check-in records Sentry check-ins.

Active when ``SENTRY_DSN`` is set and forwarding is on (production, or ``SENTRY_ENABLED=true``; see
``Settings.sentry_active``). It uses ``sentry-sdk`` as the transport: if the application already called
``sentry_sdk.init`` its client is used as it is; otherwise the sink initializes one with the settings'
DSN, environment and release and none of sentry-sdk's integrations (opswatch already captures logging,
and Sentry's would send the same error twice).

Events are built from the record, never from the live exception, and sent without the application's
Sentry scope (breadcrumbs, user, request data) or a live stack: the record is already redacted, so
what reaches Sentry is exactly what every other sink saw. ``error`` (``{type, message, stack, cause}``)
becomes Sentry's ``exception`` (oldest first, frames caller to callee), ``operation`` a tag, the other
fields the ``fields`` context; an error logged without an exception is sent as a message event.
``write`` only hands the event to sentry-sdk's background worker; it never does network I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ..config import ConfigError, Settings
from ..record import CORE_FIELDS, ERROR, Record
from . import Sink

if TYPE_CHECKING:
    import sentry_sdk

__all__ = ["SentrySink", "build_event", "from_settings"]

#: Sentry drops tag values longer than this.
MAX_TAG_LENGTH: Final = 200

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
#: Fields that become tags (searchable in Sentry) rather than context.
_TAG_FIELDS: Final = ("operation", "request_id", "service")
#: Fields that have their own place in a Sentry event.
_PLACED: Final = frozenset(CORE_FIELDS) | {"error", "fingerprint", "trace_id", "span_id", *_TAG_FIELDS}

# Clients this module created (by id): a later sink may replace them, and closes only what it made.
_OWN_CLIENTS: set[int] = set()


def from_settings(settings: Settings) -> Sink | None:
    """The Sentry sink when ``settings.sentry_active``; ``None`` otherwise.

    Raises ``ConfigError`` naming ``sentry_dsn`` when sentry-sdk is missing or rejects the DSN.
    """
    if not settings.sentry_active:
        return None
    try:
        import sentry_sdk
    except ImportError:
        raise ConfigError(
            "sentry_dsn", "forwarding to Sentry needs sentry-sdk: pip install 'opswatch[sentry]'"
        ) from None
    current = sentry_sdk.get_client()
    if current.is_active() and id(current) not in _OWN_CLIENTS:
        return SentrySink(current, owned=False)
    try:
        sentry_sdk.init(
            dsn=settings.sentry_dsn,
            environment=settings.environment,
            release=settings.release,
            server_name=settings.host or None,
            default_integrations=False,
            auto_enabling_integrations=False,
            auto_session_tracking=False,
            send_client_reports=False,
        )
    except Exception as err:
        raise ConfigError("sentry_dsn", f"sentry-sdk refused the DSN: {err}") from None
    client = sentry_sdk.get_client()
    _OWN_CLIENTS.add(id(client))
    return SentrySink(client, owned=True)


class SentrySink(Sink):
    """Hands error/fatal records and check-ins to sentry-sdk. ``owned``: this sink initialized the client."""

    name = "sentry"
    #: Check-in records come here whatever the level (see ``opswatch.crons``).
    accepts_check_ins = True

    def __init__(self, client: sentry_sdk.client.BaseClient, *, owned: bool, level: int = ERROR) -> None:
        super().__init__(level)
        self._client = client
        self._owned = owned
        self._closed = False

    def write(self, record: Record) -> None:
        """Queue ``record`` for Sentry: a check-in, or an event for error and fatal records."""
        if self._closed:
            self.dropped += 1
            return
        if record.get("kind") == "check_in":
            self._check_in(record)
            return
        logger = record.get("logger")
        if isinstance(logger, str) and logger.startswith("sentry_sdk"):
            return  # sentry-sdk's own complaints, through the stdlib bridge: sending them could loop
        event: Any = build_event(record)  # a plain dict with the keys of sentry-sdk's Event TypedDict
        if "exception" not in event:
            # An (empty) threads list stops ``attach_stacktrace`` adding the live stack, locals included.
            event["threads"] = {"values": []}
        # Straight to the client, with no scope: the app's scopes (breadcrumbs, user, request data, event
        # processors) are not redacted and have no place on an event built from a redacted record.
        if self._client.capture_event(event, scope=None) is None:
            self.dropped += 1

    def _check_in(self, record: Record) -> None:
        from sentry_sdk.crons import capture_checkin

        from ..crons.config import MonitorConfig

        raw = record.get("monitor_config")
        monitor_config = MonitorConfig.from_wire(raw).to_sentry_monitor_config() if raw else None
        duration = record.get("duration")
        capture_checkin(
            monitor_slug=record.get("monitor_slug"),
            check_in_id=record.get("check_in_id"),
            status=record.get("status"),
            duration=duration if isinstance(duration, int | float) else None,
            monitor_config=monitor_config,  # type: ignore[arg-type]  # sentry-sdk's TypedDict is stricter
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for sentry-sdk to send what is queued."""
        if not self._closed:
            self._client.flush(timeout=2.0 if timeout is None else timeout)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Flush; close the client (and uninstall it) only if this sink created it."""
        if self._closed:
            return
        self._closed = True
        if not self._owned:
            self._client.flush(timeout=2.0 if timeout is None else timeout)
            return
        import sentry_sdk

        self._client.close(timeout=2.0 if timeout is None else timeout)
        _OWN_CLIENTS.discard(id(self._client))
        if sentry_sdk.get_client() is self._client:
            sentry_sdk.get_global_scope().set_client(None)


# -- record -> Sentry event --------------------------------------------------------------------------


def build_event(record: Record) -> dict[str, Any]:
    """The Sentry event for an error or fatal record (a pure function of the record)."""
    event_id = record.get("event_id")
    message = record.get("message")
    text = message if isinstance(message, str) else str(message)
    valid_id = isinstance(event_id, str) and _HEX32.fullmatch(event_id) is not None
    event: dict[str, Any] = {
        "event_id": event_id if valid_id else uuid.uuid4().hex,
        "level": "fatal" if record.get("level") == "fatal" else "error",
        "platform": "python",
        "logentry": {"message": text, "formatted": text},
    }
    for source, target in (
        ("timestamp", "timestamp"),
        ("logger", "logger"),
        ("environment", "environment"),
        ("release", "release"),
        ("host", "server_name"),
    ):
        value = record.get(source)
        if isinstance(value, str) and value:
            event[target] = value
    tags = {name: _tag(record[name]) for name in _TAG_FIELDS if record.get(name) not in (None, "")}
    if tags:
        event["tags"] = tags
    contexts: dict[str, Any] = {}
    fields = {key: value for key, value in record.items() if key not in _PLACED}
    if fields:
        contexts["fields"] = fields
    trace_id, span_id = record.get("trace_id"), record.get("span_id")
    if isinstance(trace_id, str) and _HEX32.fullmatch(trace_id):
        trace: dict[str, str] = {"trace_id": trace_id}
        if isinstance(span_id, str) and _HEX16.fullmatch(span_id):
            trace["span_id"] = span_id
        contexts["trace"] = trace
    if contexts:
        event["contexts"] = contexts
    fingerprint = record.get("fingerprint")
    if isinstance(fingerprint, list | tuple) and fingerprint and all(isinstance(p, str) for p in fingerprint):
        event["fingerprint"] = list(fingerprint)
    error = record.get("error")
    if isinstance(error, Mapping) and error.get("type"):
        event["exception"] = {"values": _exceptions(error)}
    elif error is not None:  # an error given as a plain field (the seed's "wrong format"): keep it visible
        contexts.setdefault("fields", {})["error"] = error
        event["contexts"] = contexts
    return event


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_TAG_LENGTH]


def _exceptions(error: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Our chain (raised first, ``cause`` nested) as Sentry's list (oldest first, raised last)."""
    chain: list[Mapping[str, Any]] = []
    node: Any = error
    while isinstance(node, Mapping) and node.get("type") and len(chain) < 20:
        chain.append(node)
        node = node.get("cause")
    values = []
    for index, item in enumerate(chain):  # the raised exception is 0; each cause points at its parent
        module, _, kind = str(item["type"]).rpartition(".")
        value: dict[str, Any] = {"type": kind, "value": str(item.get("message", ""))}
        if module:
            value["module"] = module
        frames = [_frame(frame) for frame in item.get("stack") or () if isinstance(frame, Mapping)]
        if frames:
            value["stacktrace"] = {"frames": frames}
        mechanism: dict[str, Any] = {"type": "opswatch", "handled": True, "exception_id": index}
        if index:
            mechanism["parent_id"] = index - 1
        value["mechanism"] = mechanism
        values.append(value)
    values.reverse()
    return values


def _frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    file = frame.get("file")
    if isinstance(file, str):
        result["filename"] = file
        if file.startswith("/"):  # the SDK shows app paths relative to the project: not an absolute path
            result["abs_path"] = file
    for source, target in (("function", "function"), ("module", "module"), ("line", "lineno")):
        value = frame.get(source)
        if value is not None:
            result[target] = value
    if isinstance(frame.get("in_app"), bool):
        result["in_app"] = frame["in_app"]
    # Source lines were captured (bounded, redacted) with the record; Sentry shows them as they are.
    if isinstance(frame.get("context_line"), str):
        result["context_line"] = frame["context_line"]
        for key in ("pre_context", "post_context"):
            if isinstance(frame.get(key), list):
                result[key] = frame[key]
    return result
