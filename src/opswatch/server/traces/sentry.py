"""Sentry's spans to span rows: the spans of ``transaction`` items, and span streaming (``span`` items).

* A **transaction** (classic tracing; sentry-sdk for Python, ``@sentry/node`` with
  ``traceLifecycle: 'static'``) becomes its root span (``contexts.trace`` with the transaction's name,
  ``start_timestamp`` and ``timestamp``) plus one span per entry of ``spans`` (its ``description``, or its
  ``op`` when it has none). The transaction's ``environment``, ``release``, ``server_name`` (host) and a
  ``service`` tag apply to all of them.
* A **span item** (``application/vnd.sentry.items.span.v2+json``, ``@sentry/node`` 11's default) holds
  ``{"items": [...]}``, each with ``trace_id``, ``span_id``, ``parent_span_id``, ``name``, ``status``,
  ``start_timestamp``/``end_timestamp`` (epoch seconds) and typed ``attributes``
  (``{"key": {"type": ..., "value": ...}}``, stored as their values); ``sentry.environment``,
  ``sentry.release`` and ``service.name`` attributes give the row's fields.

Sentry has operations (``op``: ``http.server``, ``db.query`` ...) where OTel has kinds: the op is kept
as the attribute ``sentry.op`` and gives the kind (``http.server`` -> server, ``http.client``/``db*`` ->
client, ``queue.publish`` -> producer, ``queue.process`` -> consumer, else internal). Sentry's status
``ok`` is ok, any other status (``internal_error``, ``deadline_exceeded`` ...) is error, kept as the
status message.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

from ..ingest.records import Refused
from .model import span_row

#: Envelope item types that carry spans and nothing else.
SPAN_ITEM_TYPES: Final = frozenset({"span"})

_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def transaction_spans(
    event: Mapping[str, Any], received_at: str
) -> tuple[list[dict[str, Any]], list[Refused]]:
    """The root span and the child spans of a transaction event; refusals for the spans left out."""
    rows: list[dict[str, Any]] = []
    refused: list[Refused] = []
    trace = _mapping(_mapping(event.get("contexts")).get("trace"))
    tags = _mapping(event.get("tags"))
    resource = {
        "service": tags.get("service"),
        "environment": event.get("environment"),
        "release": event.get("release"),
        "host": event.get("server_name"),
    }
    trace_id = trace.get("trace_id")
    root = (trace, event.get("transaction") or trace.get("op"), trace_id, event.get("start_timestamp"),
            event.get("timestamp"))  # fmt: skip
    children = event.get("spans")
    for span in [root, *(children if isinstance(children, list) else [])]:
        try:
            if isinstance(span, tuple):
                node, name, span_trace, start, end = span
            elif isinstance(span, Mapping):
                node, name, span_trace = span, span.get("description") or span.get("op"), span.get("trace_id")
                start, end = span.get("start_timestamp"), span.get("timestamp")
            else:
                raise Refused("invalid_span", "a span must be a JSON object")
            rows.append(
                _row(node, name=name or "", trace_id=span_trace or trace_id, start=start, end=end,
                     resource=resource, received_at=received_at)
            )  # fmt: skip
        except Refused as err:
            refused.append(err)
    return rows, refused


def span_item_spans(
    payload: Mapping[str, Any], received_at: str
) -> tuple[list[dict[str, Any]], list[Refused]]:
    """The spans of a span v2 item; refusals for the spans left out."""
    rows: list[dict[str, Any]] = []
    refused: list[Refused] = []
    items = payload.get("items")
    if not isinstance(items, list):
        return rows, [Refused("invalid_span", "the span item has no items list")]
    for item in items:
        try:
            if not isinstance(item, Mapping):
                raise Refused("invalid_span", "a span must be a JSON object")
            attributes = _typed_values(item.get("attributes"))
            resource = {
                "service": attributes.get("service.name"),
                "environment": attributes.get("sentry.environment"),
                "release": attributes.get("sentry.release"),
                "host": attributes.get("host.name") or attributes.get("server.address"),
            }
            links = item.get("links")
            rows.append(
                span_row(
                    trace_id=item.get("trace_id"),
                    span_id=item.get("span_id"),
                    parent_span_id=item.get("parent_span_id"),
                    name=item.get("name") if item.get("name") is not None else "",
                    kind=_kind(item.get("kind"), attributes.get("sentry.op")),
                    start_ns=_nanos(item.get("start_timestamp"), "start_timestamp"),
                    end_ns=_nanos(item.get("end_timestamp"), "end_timestamp"),
                    status="ok" if item.get("status") == "ok" else "error" if item.get("status") else "unset",
                    status_message=None,
                    resource=resource,
                    attributes=attributes,
                    links=[
                        {**link, "attributes": _typed_values(link.get("attributes"))}
                        for link in (links if isinstance(links, list) else [])
                        if isinstance(link, Mapping)
                    ],
                    received_at=received_at,
                )
            )
        except Refused as err:
            refused.append(err)
    return rows, refused


def _row(
    span: Mapping[str, Any],
    *,
    name: Any,
    trace_id: Any,
    start: Any,
    end: Any,
    resource: Mapping[str, Any],
    received_at: str,
) -> dict[str, Any]:
    op = span.get("op")
    attributes: dict[str, Any] = {}
    for key in ("data", "tags"):
        extra = span.get(key)
        if isinstance(extra, Mapping):
            attributes.update(extra)
    if isinstance(op, str) and op:
        attributes["sentry.op"] = op
    if isinstance(span.get("origin"), str):
        attributes["sentry.origin"] = span["origin"]
    status = span.get("status")
    return span_row(
        trace_id=trace_id,
        span_id=span.get("span_id"),
        parent_span_id=span.get("parent_span_id"),
        name=name,
        kind=_kind(None, op),
        start_ns=_nanos(start, "start_timestamp"),
        end_ns=_nanos(end, "timestamp"),
        status="unset" if not status else "ok" if status == "ok" else "error",
        status_message=status if status and status != "ok" else None,
        resource=resource,
        attributes=attributes,
        received_at=received_at,
    )


def _kind(kind: Any, op: Any) -> str:
    if kind in ("server", "client", "producer", "consumer", "internal"):
        return str(kind)
    text = op if isinstance(op, str) else ""
    if text == "http.server" or text.startswith("function."):
        return "server"
    if text == "http.client" or text.startswith("db") or text.startswith("cache"):
        return "client"
    if text == "queue.publish":
        return "producer"
    if text == "queue.process":
        return "consumer"
    return "internal"


def _nanos(value: Any, field: str) -> int:
    """Epoch nanoseconds from Sentry's seconds (a number) or RFC 3339 text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value * 1e6) * 1000
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return (moment - _EPOCH) // datetime.timedelta(microseconds=1) * 1000
    raise Refused("invalid_span", f"{field} must be epoch seconds or RFC 3339 text, got {value!r:.40}")


def _typed_values(attributes: Any) -> dict[str, Any]:
    """``{"key": {"type": "string", "value": "x"}}`` -> ``{"key": "x"}`` (plain values kept as they are)."""
    if not isinstance(attributes, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        out[str(key)] = value.get("value") if isinstance(value, Mapping) and "value" in value else value
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
