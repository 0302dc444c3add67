"""OTLP traces (``ExportTraceServiceRequest``) to span rows, from protobuf or from OTLP/JSON.

Protobuf is decoded with the generated classes of ``opentelemetry-proto`` (the specification's own
``.proto`` files), span attributes from their raw bytes with a memo (``otlp_wire``); OTLP/JSON is read
with orjson and walked by hand, because its ids are hex and not the base64 that protobuf's JSON mapping
would read them as. Both walks yield the same rows:

* resource attributes: ``service.name`` -> ``service``, ``deployment.environment.name`` (or the older
  ``deployment.environment``) -> ``environment``, ``service.version`` -> ``release``, ``host.name`` ->
  ``host``; the other resource attributes are kept under the span attribute ``resource`` (an object);
* the instrumentation scope as the attributes ``otel.scope.name`` and ``otel.scope.version``;
* span kind and status codes as ``model.SPAN_KINDS`` / ``model.STATUSES`` (unspecified kind: internal);
* attribute values as JSON values (``intValue`` as integers, ``bytesValue`` as base64 text, arrays and
  key-value lists nested up to ``MAX_VALUE_DEPTH`` levels);
* events as ``{"name", "timestamp", "attributes"}``, links as ``{"trace_id", "span_id", "attributes"}``.

A span that cannot be stored (bad id, end before start, name too long ...) is rejected on its own: the
answer's ``partial_success`` counts it and names the first reasons, as the OTLP specification asks.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .. import limits
from ..ingest.body import IngestError
from ..ingest.records import Refused
from .model import ResourceColumns, binary_span_row, format_nanos, resource_columns, span_row
from .otlp_wire import Attributes, ExportTraceServiceRequest

#: Deepest nesting of array and key-value-list attribute values.
MAX_VALUE_DEPTH: Final = 16
#: Reasons named in ``partial_success.error_message`` (the count covers all).
_REASONS_SHOWN: Final = 3

_KINDS: Final = ("internal", "internal", "server", "client", "producer", "consumer")
_STATUSES: Final = ("unset", "ok", "error")
_KIND_NAMES: Final = {f"SPAN_KIND_{kind.upper()}": kind for kind in _KINDS[1:]}
_STATUS_NAMES: Final = {f"STATUS_CODE_{status.upper()}": status for status in _STATUSES}
_RESOURCE_FIELDS: Final = {
    "service.name": "service",
    "deployment.environment.name": "environment",
    "deployment.environment": "environment",
    "service.version": "release",
    "host.name": "host",
}


@dataclasses.dataclass
class Decoded:
    """Rows (spans, or log records) from one request, and how many were rejected with which reasons."""

    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = dataclasses.field(default_factory=list)
    codes: list[str] = dataclasses.field(default_factory=list)

    def reject(self, refused: Refused) -> None:
        self.rejected += 1
        self.codes.append(refused.code)
        if len(self.reasons) < _REASONS_SHOWN:
            self.reasons.append(str(refused))


def is_json(content_type: str | None) -> bool:
    """Whether a request's ``Content-Type`` is OTLP/JSON (else protobuf); 415 for anything else."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json":
        return True
    if media in ("application/x-protobuf", "application/protobuf"):
        return False
    raise IngestError(
        415, "unsupported_media_type", "OTLP bodies are application/x-protobuf or application/json"
    )


def decode_traces(body: bytes, *, json: bool, received_at: str) -> Decoded:
    """Span rows from an ``ExportTraceServiceRequest`` body; ``IngestError`` if it cannot be read."""
    if json:
        return _from_json(json_request(body), received_at)
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
        return _from_protobuf(request, received_at)  # a span's attributes are parsed as it is read
    except (DecodeError, RecursionError):
        raise IngestError(400, "invalid_protobuf", "the body is not an ExportTraceServiceRequest") from None


def answer(decoded: Decoded, *, json: bool) -> bytes:
    """The ``ExportTraceServiceResponse`` for a request, in the request's encoding."""
    message = "; ".join(decoded.reasons)
    if json:
        partial = (
            {"partialSuccess": {"rejectedSpans": str(decoded.rejected), "errorMessage": message}}
            if decoded.rejected
            else {}
        )
        return orjson.dumps(partial)
    response = ExportTraceServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = message
    encoded: bytes = response.SerializeToString()
    return encoded


def resource_fields(attributes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resource attributes split into the row's fields (service ...) and the rest."""
    fields: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in attributes.items():
        field = _RESOURCE_FIELDS.get(key)
        if field is None:
            rest[key] = value
        elif key != "deployment.environment" or field not in fields:
            fields[field] = value
    return fields, rest


def _count(decoded: Decoded) -> None:
    if len(decoded.rows) + decoded.rejected > limits.MAX_SPANS_PER_REQUEST:
        raise IngestError(
            413, "too_many_spans", f"the request holds more than {limits.MAX_SPANS_PER_REQUEST:,} spans"
        )


# -- protobuf -----------------------------------------------------------------------------------------


def pb_value(value: Any, depth: int = 0) -> Any:
    which = value.WhichOneof("value")
    if which in ("array_value", "kvlist_value"):
        if depth >= MAX_VALUE_DEPTH:
            raise Refused(
                "invalid_span", f"an attribute value is nested deeper than {MAX_VALUE_DEPTH} levels"
            )
        if which == "array_value":
            return [pb_value(item, depth + 1) for item in value.array_value.values]
        return {kv.key: pb_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which) if which else None


def pb_attributes(pairs: Iterable[Any], out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Key-value pairs as a dict (added to ``out`` when given)."""
    out = {} if out is None else out
    for kv in pairs:
        value = kv.value
        if value.WhichOneof("value") == "string_value":  # most values: read inline
            out[kv.key] = value.string_value
        else:
            out[kv.key] = pb_value(value)
    return out


#: Span attributes arrive as raw ``KeyValue`` bytes (``otlp_wire``); each distinct one is decoded once.
_SPAN_ATTRIBUTES: Final = Attributes(pb_value)


def _from_protobuf(request: Any, received_at: str) -> Decoded:
    decoded = Decoded()
    for resource_spans in request.resource_spans:
        try:
            resource, rest = resource_fields(pb_attributes(resource_spans.resource.attributes))
        except Refused as refused:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with contextlib.suppress(Refused):  # still parsed: bad bytes fail the request
                        _SPAN_ATTRIBUTES.read(span.attributes, {})
                    decoded.reject(refused)
            continue
        where = resource_columns(resource)
        for scope_spans in resource_spans.scope_spans:
            scope = _scope(scope_spans.scope.name, scope_spans.scope.version, rest)
            for span in scope_spans.spans:
                try:
                    decoded.rows.append(_pb_span(span, scope, resource, where, received_at))
                except Refused as refused:
                    decoded.reject(refused)
            _count(decoded)
    return decoded


def _pb_span(
    span: Any, scope: dict[str, Any], resource: dict[str, Any], where: ResourceColumns, received_at: str
) -> dict[str, Any]:
    status = span.status
    code = status.code
    kind = span.kind
    events = span.events  # read once: each access makes a container object
    links = span.links
    return binary_span_row(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        kind=_KINDS[kind] if 0 <= kind < len(_KINDS) else "internal",
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status=_STATUSES[code] if 0 <= code < len(_STATUSES) else "unset",
        status_message=status.message,
        resource=resource,
        where=where,
        attributes=_SPAN_ATTRIBUTES.read(span.attributes, dict(scope)),
        events=[_event(e.name, e.time_unix_nano, pb_attributes(e.attributes)) for e in events]
        if events
        else None,
        links=[_link(k.trace_id.hex(), k.span_id.hex(), pb_attributes(k.attributes)) for k in links]
        if links
        else None,
        received_at=received_at,
    )


# -- OTLP/JSON ----------------------------------------------------------------------------------------


def json_request(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise IngestError(400, "invalid_json", f"the body is not valid JSON: {err}") from None
    if type(value) is not dict:
        raise IngestError(400, "invalid_json", "the body is not a JSON object (ExportTraceServiceRequest)")
    return value


def json_list(node: Mapping[str, Any], key: str) -> list[Any]:
    value = node.get(key)
    if value is None:
        return []
    if type(value) is not list:
        raise Refused("invalid_span", f"{key} must be a list")
    return value


def json_object(node: Any, key: str) -> dict[str, Any]:
    value = node.get(key) if type(node) is dict else None
    return value if type(value) is dict else {}


def json_value(value: Any, depth: int = 0) -> Any:
    if type(value) is not dict or not value:
        return None
    name, inner = next(iter(value.items()))
    if name in ("arrayValue", "kvlistValue"):
        if depth >= MAX_VALUE_DEPTH:
            raise Refused(
                "invalid_span", f"an attribute value is nested deeper than {MAX_VALUE_DEPTH} levels"
            )
        items = json_list(inner, "values") if type(inner) is dict else []
        if name == "arrayValue":
            return [json_value(item, depth + 1) for item in items]
        return json_attributes(items, depth + 1)
    if name == "intValue":
        return nanos(inner, "intValue") if not isinstance(inner, int) else inner
    if name == "doubleValue" and isinstance(inner, str):
        return inner  # "NaN", "Infinity": kept as the text JSON allows
    return inner


def json_attributes(pairs: list[Any], depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if type(pair) is dict and isinstance(pair.get("key"), str):
            out[pair["key"]] = json_value(pair.get("value"), depth)
    return out


def nanos(value: Any, field: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise Refused("invalid_span", f"{field} must be a whole number (as a number or text), got {value!r:.40}")


def _enum(value: Any, names: Mapping[str, str], values: tuple[str, ...], default: str) -> str:
    if type(value) is int and 0 <= value < len(values):
        return values[value]
    if isinstance(value, str):
        return names.get(value, default)
    return default


def _from_json(request: dict[str, Any], received_at: str) -> Decoded:
    decoded = Decoded()
    try:
        groups = json_list(request, "resourceSpans")
    except Refused as refused:
        raise IngestError(400, "invalid_json", str(refused)) from None
    for resource_spans in groups:
        try:
            if type(resource_spans) is not dict:
                raise Refused("invalid_span", "resourceSpans holds something other than an object")
            resource_attributes = json_attributes(
                json_list(json_object(resource_spans, "resource"), "attributes")
            )
            resource, rest = resource_fields(resource_attributes)
            scope_groups = json_list(resource_spans, "scopeSpans")
        except Refused as refused:
            decoded.reject(refused)
            continue
        for scope_spans in scope_groups:
            scope_node = json_object(scope_spans, "scope")
            scope = _scope(scope_node.get("name"), scope_node.get("version"), rest)
            spans = scope_spans.get("spans") if type(scope_spans) is dict else None
            for span in spans if type(spans) is list else []:
                try:
                    decoded.rows.append(_json_span(span, scope, resource, received_at))
                except Refused as refused:
                    decoded.reject(refused)
            _count(decoded)
    return decoded


def _json_span(
    span: Any, scope: dict[str, Any], resource: dict[str, Any], received_at: str
) -> dict[str, Any]:
    if type(span) is not dict:
        raise Refused("invalid_span", "a span must be a JSON object")
    status = json_object(span, "status")
    events = []
    for event in json_list(span, "events"):
        event = event if type(event) is dict else {}
        events.append(
            _event(
                event.get("name"),
                nanos(event.get("timeUnixNano"), "events.timeUnixNano"),
                json_attributes(json_list(event, "attributes")),
            )
        )
    links = []
    for link in json_list(span, "links"):
        link = link if type(link) is dict else {}
        links.append(
            _link(link.get("traceId"), link.get("spanId"), json_attributes(json_list(link, "attributes")))
        )
    return span_row(
        trace_id=span.get("traceId"),
        span_id=span.get("spanId"),
        parent_span_id=span.get("parentSpanId"),
        name=span.get("name", ""),
        kind=_enum(span.get("kind"), _KIND_NAMES, _KINDS, "internal"),
        start_ns=nanos(span.get("startTimeUnixNano"), "startTimeUnixNano"),
        end_ns=nanos(span.get("endTimeUnixNano"), "endTimeUnixNano"),
        status=_enum(status.get("code"), _STATUS_NAMES, _STATUSES, "unset"),
        status_message=status.get("message"),
        resource=resource,
        attributes={**scope, **json_attributes(json_list(span, "attributes"))},
        events=events,
        links=links,
        received_at=received_at,
    )


# -- shared -------------------------------------------------------------------------------------------


def _scope(name: Any, version: Any, resource_rest: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["otel.scope.name"] = name
    if version:
        out["otel.scope.version"] = version
    if resource_rest:
        out["resource"] = resource_rest
    return out


def _event(name: Any, at_ns: int, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(name or ""),
        "timestamp": format_nanos(at_ns) if at_ns > 0 else None,
        "attributes": attributes,
    }


def _link(trace_id: Any, span_id: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"trace_id": trace_id, "span_id": span_id, "attributes": attributes}
