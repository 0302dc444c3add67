"""One span row shape for every source (OTLP, Sentry, the SDK), checked before it reaches the store.

``span_row`` builds the dict ``DuckDBStore.append_spans`` takes (the columns of
``store.layout.SPAN_COLUMNS``) and raises ``Refused`` naming the field for anything it cannot store:

* ``trace_id``: 32 hex digits, ``span_id`` and ``parent_span_id``: 16 hex digits, stored in lower case
  (the form W3C ``traceparent``, OTLP/JSON and Sentry use); all-zero ids are invalid, as in W3C.
* ``start_ns``/``end_ns``: nanoseconds since the epoch; the end may not come before the start. Stored
  as the start ``timestamp`` (microseconds, UTC) and ``duration_ms``.
* ``kind``: ``internal`` | ``server`` | ``client`` | ``producer`` | ``consumer`` (OTel's span kinds).
* ``status``: ``unset`` | ``ok`` | ``error``.
* ``name``: text of at most ``limits.MAX_SPAN_NAME_CHARS`` characters (never cut: refused).

Where each source's fields come from is in its own module (``otlp.py``, ``sentry.py``).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from typing import Any, Final

from .. import limits
from ..ingest.records import Refused

SPAN_KINDS: Final = frozenset({"internal", "server", "client", "producer", "consumer"})
STATUSES: Final = frozenset({"unset", "ok", "error"})

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
#: Later than this (year 2300) is not a time a span ran at.
_MAX_NS: Final = 10_413_792_000 * 10**9


def check_id(value: Any, field: str, *, trace: bool) -> str:
    """``value`` as a lower-case hex trace id (32 digits) or span id (16); ``Refused`` otherwise."""
    pattern, digits = (_TRACE_ID, 32) if trace else (_SPAN_ID, 16)
    if type(value) is str and pattern.fullmatch(value) and value.strip("0"):  # the usual form, as it is
        return value
    text = value.lower().replace("-", "") if isinstance(value, str) else ""
    if not pattern.fullmatch(text) or not text.strip("0"):
        raise Refused("invalid_span", f"{field} must be {digits} hex digits, not all zero; got {value!r:.80}")
    return text


def format_nanos(nanos: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with microseconds: ``2026-12-03T10:00:00.123456Z``."""
    seconds, rest = divmod(nanos, 10**9)
    return _format_seconds(seconds) + f".{rest // 1000:06d}Z"


@functools.lru_cache(maxsize=4096)
def _format_seconds(seconds: int) -> str:
    """The part before the fraction (the spans of one request start within a few seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def span_row(
    *,
    trace_id: Any,
    span_id: Any,
    parent_span_id: Any,
    name: Any,
    kind: str,
    start_ns: Any,
    end_ns: Any,
    status: str = "unset",
    status_message: Any = None,
    resource: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: list[Any] | None = None,
    links: list[Any] | None = None,
    received_at: str,
    owned: bool = False,
) -> dict[str, Any]:
    """A checked span row (see the module docstring); ``resource`` gives service, environment, release
    and host. With ``owned`` the row keeps ``attributes``, ``events`` and ``links`` as given (the
    caller made them for it) instead of copies."""
    if not isinstance(name, str):
        raise Refused("invalid_span", f"name must be text, got {type(name).__name__}")
    if len(name) > limits.MAX_SPAN_NAME_CHARS:
        raise Refused(
            "too_large", f"name is {len(name):,} characters, over the limit of {limits.MAX_SPAN_NAME_CHARS:,}"
        )
    if kind not in SPAN_KINDS:
        raise Refused("invalid_span", f"kind must be one of {', '.join(sorted(SPAN_KINDS))}, got {kind!r}")
    if status not in STATUSES:
        raise Refused("invalid_span", f"status must be one of {', '.join(sorted(STATUSES))}, got {status!r}")
    for field, value in (("start", start_ns), ("end", end_ns)):
        if type(value) is not int or not 0 < value < _MAX_NS:
            raise Refused(
                "invalid_span", f"{field} time must be nanoseconds since the epoch, got {value!r:.40}"
            )
    if end_ns < start_ns:
        raise Refused("invalid_span", "the span ends before it starts")
    parent = None
    if parent_span_id not in (None, ""):
        parent = check_id(parent_span_id, "parent_span_id", trace=False)
    where = resource or {}
    return {
        "timestamp": format_nanos(start_ns),
        "duration_ms": (end_ns - start_ns) / 1e6,
        "trace_id": check_id(trace_id, "trace_id", trace=True),
        "span_id": check_id(span_id, "span_id", trace=False),
        "parent_span_id": parent,
        "name": name,
        "kind": kind,
        "status": status,
        "status_message": str(status_message) if status_message else None,
        "service": _text(where.get("service")),
        "environment": _text(where.get("environment")),
        "release": _text(where.get("release")),
        "host": _text(where.get("host")),
        "received_at": received_at,
        "attributes": attributes if owned and attributes is not None else dict(attributes or {}),
        "events": events if owned and events is not None else list(events or []),
        "links": links if owned and links is not None else list(links or []),
    }


#: A resource's ``service``, ``environment``, ``release`` and ``host`` columns (``resource_columns``).
ResourceColumns = tuple[str | None, str | None, str | None, str | None]
_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)


def resource_columns(resource: Mapping[str, Any]) -> ResourceColumns:
    """The four resource columns of ``span_row`` for ``resource``, worked out once for its spans."""
    return (
        _text(resource.get("service")),
        _text(resource.get("environment")),
        _text(resource.get("release")),
        _text(resource.get("host")),
    )


def binary_span_row(
    *,
    trace_id: bytes,
    span_id: bytes,
    parent_span_id: bytes,
    name: str,
    kind: str,
    start_ns: int,
    end_ns: int,
    status: str,
    status_message: str,
    resource: Mapping[str, Any],
    where: ResourceColumns,
    attributes: dict[str, Any],
    events: list[Any] | None,
    links: list[Any] | None,
    received_at: str,
) -> dict[str, Any]:
    """``span_row`` for binary ids (OTLP protobuf) and ``where = resource_columns(resource)``, with the
    checks a well-formed span passes made first and cheaply; any other span goes through ``span_row``
    (the same row, or the same refusal). Keeps ``attributes``, ``events`` and ``links`` as given."""
    if (
        len(trace_id) == 16
        and trace_id != _ZERO_TRACE
        and len(span_id) == 8
        and span_id != _ZERO_SPAN
        and (not parent_span_id or (len(parent_span_id) == 8 and parent_span_id != _ZERO_SPAN))
        and len(name) <= limits.MAX_SPAN_NAME_CHARS
        and kind in SPAN_KINDS
        and status in STATUSES
        and 0 < start_ns <= end_ns < _MAX_NS
    ):
        return {
            "timestamp": format_nanos(start_ns),
            "duration_ms": (end_ns - start_ns) / 1e6,
            "trace_id": trace_id.hex(),
            "span_id": span_id.hex(),
            "parent_span_id": parent_span_id.hex() if parent_span_id else None,
            "name": name,
            "kind": kind,
            "status": status,
            "status_message": status_message or None,
            "service": where[0],
            "environment": where[1],
            "release": where[2],
            "host": where[3],
            "received_at": received_at,
            "attributes": attributes,
            "events": events if events is not None else [],
            "links": links if links is not None else [],
        }
    return span_row(
        trace_id=trace_id.hex(),
        span_id=span_id.hex(),
        parent_span_id=parent_span_id.hex(),
        name=name,
        kind=kind,
        start_ns=start_ns,
        end_ns=end_ns,
        status=status,
        status_message=status_message,
        resource=resource,
        attributes=attributes,
        events=events,
        links=links,
        received_at=received_at,
        owned=True,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
