"""Span records as OTLP protobuf: what ``opswatch.sinks.otlp`` posts to ``<endpoint>/v1/traces``.

The records are the ones every span sink gets (``opswatch.tracing._span.span_record``: already redacted),
so nothing is redacted here and nothing unredacted can leave. Each record becomes one serialized
``Span`` message (``span_line``, run on the transport's thread); a batch of them becomes one
``ExportTraceServiceRequest`` under the process's resource (``service.name``,
``deployment.environment.name``, ``service.version``, ``host.name``, ``process.pid`` and the
``telemetry.sdk.*`` attributes) and the instrumentation scope ``opswatch``. Attribute values map to
OTLP's ``AnyValue`` (lists and dicts nested up to ``MAX_DEPTH`` levels, the SDK's limit for any field,
deeper ones as text; integers beyond int64 and unknown objects as text, ``None`` as an empty value).

Encoding uses the generated classes of ``opentelemetry-proto`` (the specification's own ``.proto``
files), the same package the server decodes with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from .._limits import MAX_DEPTH
from .._version import __version__

_INT64: Final = 2**63
_KINDS: Final = {
    "internal": Span.SPAN_KIND_INTERNAL,
    "server": Span.SPAN_KIND_SERVER,
    "client": Span.SPAN_KIND_CLIENT,
    "producer": Span.SPAN_KIND_PRODUCER,
    "consumer": Span.SPAN_KIND_CONSUMER,
}
_STATUSES: Final = {"ok": Status.STATUS_CODE_OK, "error": Status.STATUS_CODE_ERROR}
#: The scope every opswatch span is exported under.
SCOPE_NAME: Final = "opswatch"


def resource_attributes(service: str, environment: str, release: str | None, host: str) -> dict[str, Any]:
    """The resource of this process's spans, by OTel's semantic-convention names (``process.pid`` is
    added when a batch is encoded, so a forked child reports its own)."""
    attributes: dict[str, Any] = {
        "service.name": service,
        "deployment.environment.name": environment,
        "host.name": host,
        "telemetry.sdk.name": "opswatch",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": __version__,
    }
    if release:
        attributes["service.version"] = release
    return attributes


def span_line(record: Mapping[str, Any]) -> bytes | None:
    """One span record as a serialized OTLP ``Span``; None for any other record or a span whose ids
    are not hex (such a record never comes from ``opswatch.span``)."""
    if record.get("kind") != "span":
        return None
    try:
        start = int(record["start_unix_nano"])
        span = Span(
            trace_id=bytes.fromhex(record["trace_id"]),
            span_id=bytes.fromhex(record["span_id"]),
            name=str(record.get("name", "")),
            kind=_KINDS.get(record.get("span_kind", ""), Span.SPAN_KIND_INTERNAL),
            start_time_unix_nano=start,
            end_time_unix_nano=start + round(float(record.get("duration_ms", 0.0)) * 1e6),
        )
        parent = record.get("parent_span_id")
        if parent:
            span.parent_span_id = bytes.fromhex(parent)
    except (KeyError, TypeError, ValueError):
        return None
    attributes = record.get("attributes")
    if isinstance(attributes, Mapping):
        _fill(span.attributes, attributes, 0)
    code = _STATUSES.get(record.get("status", ""))
    if code is not None:
        span.status.code = code
        message = record.get("status_message")
        if message:
            span.status.message = str(message)
    serialized: bytes = span.SerializeToString()
    return serialized


def request_body(resource: Mapping[str, Any], lines: list[bytes]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding the serialized spans ``lines`` under ``resource``."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add()
    _fill(spans.resource.attributes, {**resource, "process.pid": os.getpid()}, 0)
    scope = spans.scope_spans.add()
    scope.scope.name = SCOPE_NAME
    scope.scope.version = __version__
    for line in lines:
        scope.spans.add().MergeFromString(line)
    body: bytes = request.SerializeToString()
    return body


def request_lines(body: bytes) -> list[bytes] | None:
    """The serialized spans of a request body (to split a batch), or None when it is not one."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception:  # google.protobuf.message.DecodeError, and the C implementation's own
        return None
    return [
        span.SerializeToString()
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def rejected_spans(body: bytes) -> tuple[int, str]:
    """``partial_success`` of an ``ExportTraceServiceResponse``: spans rejected and why ((0, "") for an
    empty or unreadable answer: a 2xx means the batch was taken)."""
    response = ExportTraceServiceResponse()
    try:
        response.ParseFromString(body)
    except Exception:
        return 0, ""
    partial = response.partial_success
    return max(0, int(partial.rejected_spans)), str(partial.error_message)


def status_message(body: bytes) -> str | None:
    """The ``message`` (field 2) of a ``google.rpc.Status`` answer, read from the wire format by hand
    (OTLP's error answers; the generated class is not part of ``opentelemetry-proto``); None if absent."""
    position = 0
    try:
        while position < len(body):
            key, position = _varint(body, position)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, position = _varint(body, position)
            elif wire == 2:
                size, position = _varint(body, position)
                if field == 2:
                    return body[position:position + size].decode("utf-8", "replace")
                position += size
            else:
                return None
    except IndexError:
        return None
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fill(target: Any, values: Mapping[Any, Any], depth: int) -> None:
    """Append ``values`` as ``KeyValue``s to the repeated field ``target``."""
    for key, value in values.items():
        pair: KeyValue = target.add()
        pair.key = str(key)
        _set(pair.value, value, depth)


def _set(target: AnyValue, value: Any, depth: int) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -_INT64 <= value < _INT64:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif depth >= MAX_DEPTH:
        target.string_value = str(value)
    elif isinstance(value, (list, tuple)):
        array = target.array_value
        array.SetInParent()  # an empty list is an empty array, not an empty value
        for item in value:
            _set(array.values.add(), item, depth + 1)
    elif isinstance(value, Mapping):
        target.kvlist_value.SetInParent()
        _fill(target.kvlist_value.values, value, depth + 1)
    else:
        target.string_value = str(value)
