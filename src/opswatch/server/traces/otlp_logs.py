"""OTLP logs (``ExportLogsServiceRequest``) to native log records, from protobuf or OTLP/JSON.

Each log record becomes one record of the ``logs`` table, as the SDK's own would be:

* ``timeUnixNano`` (or ``observedTimeUnixNano`` when the time is unknown) -> ``timestamp``;
* ``severityNumber`` -> ``level`` (OTel's four numbers per level: 1-4 trace ... 21-24 fatal), else
  ``severityText``, else ``info``;
* ``body`` -> ``message`` (text as it is, any other value as JSON);
* ``traceId``/``spanId`` -> ``trace_id``/``span_id`` (hex), so the records join ``spans``;
* the resource's ``service.name``, ``deployment.environment[.name]``, ``service.version``, ``host.name``
  -> ``service``, ``environment``, ``release``, ``host``; the scope's name -> ``logger``;
* attributes -> fields under their own names (a name the record already has is left out);
* ``event_id``: derived from the request body and the record's position, so a retried export stores
  nothing twice.

A record that cannot be stored is counted in ``partial_success.rejected_log_records``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from ...record import format_millis
from .. import limits
from ..ingest.body import IngestError
from ..ingest.records import Refused, canonical_level, normalize
from ..ingest.sentry_mapping import derived_event_id
from .otlp import (
    Decoded,
    json_attributes,
    json_list,
    json_object,
    json_request,
    json_value,
    nanos,
    pb_attributes,
    pb_value,
    resource_fields,
)

_LEVELS: Final = ("trace", "debug", "info", "warn", "error", "fatal")


def decode_logs(body: bytes, *, json: bool, received_epoch: float, received_at: str) -> Decoded:
    """Records (``rows``) from an ``ExportLogsServiceRequest`` body; ``IngestError`` if it cannot be read."""
    decoded = Decoded()
    for index, fields in enumerate(_json_logs(json_request(body)) if json else _pb_logs(_parse(body))):
        if index >= limits.MAX_EVENTS_PER_BATCH:
            raise IngestError(
                413,
                "too_many_events",
                f"the request holds more than {limits.MAX_EVENTS_PER_BATCH:,} log records",
            )
        try:
            record = _record(fields, body, index)
            normalize(record, received_epoch, received_at)
        except Refused as refused:
            decoded.reject(Refused(refused.code, f"log record {index}: {refused}"))
            continue
        decoded.rows.append(record)
    return decoded


def answer_logs(decoded: Decoded, *, json: bool) -> bytes:
    """The ``ExportLogsServiceResponse`` for a request, in the request's encoding."""
    message = "; ".join(decoded.reasons)
    if json:
        partial = {"rejectedLogRecords": str(decoded.rejected), "errorMessage": message}
        return orjson.dumps({"partialSuccess": partial} if decoded.rejected else {})
    response = ExportLogsServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_log_records = decoded.rejected
        response.partial_success.error_message = message
    encoded: bytes = response.SerializeToString()
    return encoded


def _parse(body: bytes) -> Any:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError):
        raise IngestError(400, "invalid_protobuf", "the body is not an ExportLogsServiceRequest") from None
    return request


def _record(fields: dict[str, Any], body: bytes, index: int) -> dict[str, Any]:
    """A native record from one log record's pieces (see the module docstring)."""
    at = _time(fields["time"], "timeUnixNano") or _time(fields["observed"], "observedTimeUnixNano")
    message = fields["body"]
    record: dict[str, Any] = {
        "event_id": derived_event_id(body, index),
        "source": "otlp",
        "message": message
        if isinstance(message, str)
        else ("" if message is None else orjson.dumps(message).decode()),
    }
    if at:
        record["timestamp"] = format_millis(at // 1_000_000)
    severity = fields["severity"]
    if isinstance(severity, int) and 1 <= severity <= 24:
        record["level"] = _LEVELS[(severity - 1) // 4]
    elif fields["severity_text"]:
        record["level"] = canonical_level(fields["severity_text"])
    else:
        record["level"] = "info"
    for key in ("trace_id", "span_id"):
        if fields[key]:
            record[key] = fields[key]
    if fields["scope"]:
        record["logger"] = fields["scope"]
    for key, value in fields["resource"].items():
        if value:
            record[key] = value
    for key, value in fields["attributes"].items():
        record.setdefault(key, value)
    return record


def _pb_logs(request: Any) -> Iterator[dict[str, Any]]:
    for resource_logs in request.resource_logs:
        resource = resource_fields(pb_attributes(resource_logs.resource.attributes))[0]
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                yield {
                    "time": log.time_unix_nano,
                    "observed": log.observed_time_unix_nano,
                    "severity": log.severity_number,
                    "severity_text": log.severity_text,
                    "body": pb_value(log.body),
                    "trace_id": log.trace_id.hex(),
                    "span_id": log.span_id.hex(),
                    "scope": scope_logs.scope.name,
                    "resource": resource,
                    "attributes": pb_attributes(log.attributes),
                }


def _json_logs(request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_logs in _objects(request, "resourceLogs"):
        resource_node = json_object(resource_logs, "resource")
        resource = resource_fields(json_attributes(_objects(resource_node, "attributes")))[0]
        for scope_logs in _objects(resource_logs, "scopeLogs"):
            scope = json_object(scope_logs, "scope").get("name")
            for log in _objects(scope_logs, "logRecords"):
                yield {
                    "time": log.get("timeUnixNano"),
                    "observed": log.get("observedTimeUnixNano"),
                    "severity": log.get("severityNumber"),
                    "severity_text": log.get("severityText")
                    if isinstance(log.get("severityText"), str)
                    else None,
                    "body": json_value(log.get("body")),
                    "trace_id": log.get("traceId") if isinstance(log.get("traceId"), str) else None,
                    "span_id": log.get("spanId") if isinstance(log.get("spanId"), str) else None,
                    "scope": scope if isinstance(scope, str) else None,
                    "resource": resource,
                    "attributes": json_attributes(_objects(log, "attributes")),
                }


def _objects(node: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    try:
        return [item for item in json_list(node, key) if type(item) is dict]
    except Refused as refused:
        raise IngestError(400, "invalid_json", str(refused)) from None


def _time(value: Any, field: str) -> int:
    """Epoch nanoseconds, 0 when not given; ``Refused`` naming the field for anything else."""
    return 0 if value is None else nanos(value, field)
