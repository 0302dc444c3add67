"""Sentry envelopes: the framing, and turning their items into records.

An envelope is a JSON header line, then items: a JSON item header line and a payload. With ``length`` in
the item header the payload is exactly that many bytes (and may hold newlines); without it, the payload
runs to the next newline. The newline after the last payload is optional, blank lines between items are
tolerated. Item types we keep: ``event``, ``transaction``, ``log``, ``check_in``; every other type
(attachments, sessions, client reports, profiles, replays ...) is skipped without touching the rest.

The legacy ``/store/`` endpoint takes one event as a bare JSON body (very old clients base64 and zlib it).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

import orjson

from .. import limits
from ..traces import sentry as traces_sentry
from . import sentry_mapping
from .body import IngestError, decompress
from .records import Refused, Rejection, normalize


class EnvelopeError(IngestError):
    """The envelope's framing is broken: nothing in it can be trusted (400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, "bad_envelope", reason)


@dataclasses.dataclass
class Item:
    """One envelope item: its header and raw payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        """The item type (``event``, ``log`` ...); empty when the header has none."""
        value = self.headers.get("type")
        return value if isinstance(value, str) else ""


@dataclasses.dataclass
class Envelope:
    """A parsed envelope."""

    headers: dict[str, Any]
    items: list[Item]


@dataclasses.dataclass
class SentryBatch:
    """What an envelope yields: records, rejections (by item index) and the id to answer with."""

    records: list[dict[str, Any]]
    rejected: list[Rejection]
    event_id: str | None
    skipped: int = 0
    #: The DSN in the envelope header (tunnelled envelopes authenticate with it).
    dsn: str | None = None
    #: Span rows (``opswatch.server.traces``) from transactions and span items, and the spans refused.
    spans: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    span_refusals: list[Refused] = dataclasses.field(default_factory=list)
    #: The type of every item skipped (for ``opswatch_sentry_items_skipped_total``).
    skipped_types: list[str] = dataclasses.field(default_factory=list)


def parse_envelope(body: bytes) -> Envelope:
    """Split ``body`` into its header and items; raise ``EnvelopeError`` for broken framing."""
    end = body.find(b"\n")
    header_line = body if end < 0 else body[:end]
    pos = len(body) if end < 0 else end + 1
    headers = _json_object(header_line, "the envelope header")
    items: list[Item] = []
    size = len(body)
    while pos < size:
        end = body.find(b"\n", pos)
        line = body[pos:] if end < 0 else body[pos:end]
        pos = size if end < 0 else end + 1
        if not line.strip():
            continue
        index = len(items)
        if index >= limits.MAX_ENVELOPE_ITEMS:
            raise IngestError(
                413, "too_many_items", f"the envelope has more than {limits.MAX_ENVELOPE_ITEMS:,} items"
            )
        item_headers = _json_object(line, f"the header of item {index}")
        length = item_headers.get("length")
        if length is not None:
            if type(length) is not int or length < 0:
                raise EnvelopeError(f"item {index}: length must be a whole number of bytes")
            if pos + length > size:
                raise EnvelopeError(f"item {index}: length {length} runs past the end of the envelope")
            payload = body[pos : pos + length]
            pos += length
            if pos < size:
                if body[pos : pos + 1] == b"\r":
                    pos += 1
                if pos < size and body[pos : pos + 1] != b"\n":
                    raise EnvelopeError(f"item {index}: the payload is not followed by a newline")
                pos += 1
        else:
            end = body.find(b"\n", pos)
            payload = body[pos:] if end < 0 else body[pos:end]
            pos = size if end < 0 else end + 1
        items.append(Item(item_headers, payload))
    return Envelope(headers, items)


def read_envelope(body: bytes, received_epoch: float, received_at: str) -> SentryBatch:
    """Parse an envelope and map every kept item to records; bad items become rejections."""
    envelope = parse_envelope(body)
    header_id = envelope.headers.get("event_id")
    batch = SentryBatch([], [], header_id if isinstance(header_id, str) else None)
    dsn = envelope.headers.get("dsn")
    batch.dsn = dsn if isinstance(dsn, str) else None
    log_count = 0
    for index, item in enumerate(envelope.items):
        kind = item.type
        mapper = _MAPPERS.get(kind)
        if kind in traces_sentry.SPAN_ITEM_TYPES:
            _read_span_item(batch, index, item, received_at)
            continue
        if mapper is None:
            batch.skipped += 1
            batch.skipped_types.append(kind or "(none)")
            continue
        limit = _ITEM_LIMITS[kind]
        if len(item.payload) > limit:
            batch.rejected.append(
                Rejection(
                    index,
                    "too_large",
                    f"the {kind} item is {len(item.payload):,} bytes, over the limit of {limit:,}",
                )
            )
            continue
        try:
            payload = _loads(item.payload, f"the {kind} item")
            records = mapper(payload, item.payload)
            if kind == "log":
                log_count += len(records)
                if log_count > limits.MAX_EVENTS_PER_BATCH:
                    raise Refused(
                        "too_many_events",
                        f"the envelope holds more than {limits.MAX_EVENTS_PER_BATCH:,} log records",
                    )
            for record in records:
                normalize(record, received_epoch, received_at, bounded=sentry_mapping.BOUNDED_FIELDS)
        except Refused as refused:
            batch.rejected.append(Rejection(index, refused.code, f"item {index} ({kind}): {refused}"))
            continue
        batch.records.extend(records)
        if kind == "transaction":
            _add_spans(batch, traces_sentry.transaction_spans(payload, received_at))
        if batch.event_id is None and kind in ("event", "transaction") and records:
            batch.event_id = records[0]["event_id"]
    return batch


def read_store_body(body: bytes, received_epoch: float, received_at: str) -> SentryBatch:
    """The legacy ``/store/`` body: one event as JSON (or base64 of zlib of JSON, from old clients)."""
    stripped = body.lstrip()
    if stripped[:1] != b"{":
        try:
            packed = base64.b64decode(stripped, validate=False)
        except (binascii.Error, ValueError):
            raise IngestError(400, "invalid_json", "the body is not a JSON event") from None
        body = decompress(packed, "deflate", limits.MAX_EVENT_BYTES)
    if len(body) > limits.MAX_EVENT_BYTES:
        raise IngestError(
            413, "too_large", f"the event is over the limit of {limits.MAX_EVENT_BYTES:,} bytes"
        )
    try:
        payload = _loads(body, "the event")
        mapper = (
            sentry_mapping.map_transaction
            if payload.get("type") == "transaction"
            else sentry_mapping.map_event
        )
        record = mapper(payload, body)[0]
        normalize(record, received_epoch, received_at, bounded=sentry_mapping.BOUNDED_FIELDS)
    except Refused as refused:
        return SentryBatch([], [Rejection(0, refused.code, str(refused))], None)
    return SentryBatch([record], [], record["event_id"])


def _read_span_item(batch: SentryBatch, index: int, item: Item, received_at: str) -> None:
    """A ``span`` item's spans into ``batch.spans`` (a bad item is one refusal, the rest goes on)."""
    limit = limits.MAX_LOG_CONTAINER_BYTES
    try:
        if len(item.payload) > limit:
            size = len(item.payload)
            raise Refused("too_large", f"the span item is {size:,} bytes, over the limit of {limit:,}")
        _add_spans(batch, traces_sentry.span_item_spans(_loads(item.payload, "the span item"), received_at))
    except Refused as refused:
        batch.span_refusals.append(Refused(refused.code, f"item {index} (span): {refused}"))


def _add_spans(batch: SentryBatch, found: tuple[list[dict[str, Any]], list[Refused]]) -> None:
    rows, refusals = found
    batch.spans.extend(rows)
    batch.span_refusals.extend(refusals)
    if len(batch.spans) > limits.MAX_SPANS_PER_REQUEST:
        raise IngestError(
            413, "too_many_spans", f"the envelope holds more than {limits.MAX_SPANS_PER_REQUEST:,} spans"
        )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise EnvelopeError(f"{what} is not valid JSON") from None
    if type(value) is not dict:
        raise EnvelopeError(f"{what} is not a JSON object")
    return value


def _loads(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise Refused("invalid_json", f"{what} is not valid JSON: {err}") from None
    if type(value) is not dict:
        raise Refused("not_an_object", f"{what} is not a JSON object")
    return value


_ITEM_LIMITS = {
    "event": limits.MAX_EVENT_BYTES,
    "transaction": limits.MAX_EVENT_BYTES,
    "log": limits.MAX_LOG_CONTAINER_BYTES,
    "check_in": limits.MAX_CHECK_IN_BYTES,
}

_MAPPERS = {
    "event": sentry_mapping.map_event,
    "transaction": sentry_mapping.map_transaction,
    "log": sentry_mapping.map_logs,
    "check_in": sentry_mapping.map_check_in,
}
