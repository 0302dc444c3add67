"""OTLP/HTTP failure answers: a ``google.rpc.Status`` body in the request's encoding, as the spec asks.

The OTLP specification (``otlp.md``, "Failures" under OTLP/HTTP) says every 4xx and 5xx answer carries a
``google.rpc.Status`` describing the problem, protobuf-encoded for a protobuf request and JSON-encoded
(protobuf's JSON mapping: ``{"code": 3, "message": "..."}``) for an OTLP/JSON one, with the request's
``Content-Type``. Throttling answers (429, 503) keep their ``Retry-After`` header, which OTLP exporters
honour, and also carry a ``google.rpc.RetryInfo`` detail with the same delay (the form OTLP/gRPC uses).

``status_answer(response, json=...)`` turns the ingest layer's ``{"detail": reason}`` answer into that
form; a 2xx answer and the 499 nobody reads pass through unchanged. The HTTP status picks the Status
``code`` (``google.rpc.Code``): 400, 413 and 415 are ``INVALID_ARGUMENT``, 401 ``UNAUTHENTICATED``, 404
``NOT_FOUND``, 408 ``DEADLINE_EXCEEDED``, 429 ``RESOURCE_EXHAUSTED``, 503 ``UNAVAILABLE``, any other
``INTERNAL``.
"""

from __future__ import annotations

from typing import Final

import orjson
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from starlette.responses import Response

_CODES: Final = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    404: code_pb2.NOT_FOUND,
    408: code_pb2.DEADLINE_EXCEEDED,
    413: code_pb2.INVALID_ARGUMENT,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}
_RETRY_INFO_TYPE: Final = "type.googleapis.com/google.rpc.RetryInfo"


def status_answer(response: Response, *, json: bool) -> Response:
    """``response`` with a ``google.rpc.Status`` body when it is a failure (see the module docstring)."""
    if response.status_code < 400 or response.status_code == 499:
        return response
    try:
        detail = str(orjson.loads(bytes(response.body)).get("detail", ""))
    except (orjson.JSONDecodeError, AttributeError):
        detail = ""
    code = _CODES.get(response.status_code, code_pb2.INTERNAL)
    retry_after = response.headers.get("retry-after")
    seconds = int(retry_after) if retry_after and retry_after.isdigit() else None
    headers = {"Retry-After": retry_after} if retry_after else None
    if json:
        body: dict[str, object] = {"code": code, "message": detail}
        if seconds is not None:
            body["details"] = [{"@type": _RETRY_INFO_TYPE, "retryDelay": f"{seconds}s"}]
        return Response(orjson.dumps(body), response.status_code, headers, media_type="application/json")
    status = status_pb2.Status(code=code, message=detail)
    if seconds is not None:
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds)))
    encoded: bytes = status.SerializeToString()
    return Response(encoded, response.status_code, headers, media_type="application/x-protobuf")
