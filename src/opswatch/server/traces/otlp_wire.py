"""Span attributes read from their protobuf bytes, each distinct attribute decoded once.

Reading an attribute through the generated classes costs several wrapper objects and look-ups
(``kv.value``, ``WhichOneof``, ``string_value``), and a span's attributes repeat from span to span
(``http.request.method: GET``, ``db.system: postgresql``, the same route, the same query text). So the
request is parsed with a private copy of OTLP's schema in which ``Span.attributes`` is declared as
``repeated bytes`` (a ``KeyValue`` and a ``bytes`` field share protobuf's length-delimited wire form): a
span's attributes arrive as the raw bytes of each ``KeyValue``, and ``Attributes.read`` maps each to its
key and value through a bounded memo, parsing only the ones it has not seen.

The result is the same as reading the real classes (``otlp.pb_attributes``): the same keys, values and
order, an attribute that is not a valid ``KeyValue`` fails the whole request as ``invalid_protobuf`` (as
the real parse does), and array and key-value-list values are decoded afresh every time (they are
mutable and checked for depth), so only scalar values are shared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

#: Distinct attributes remembered (then the memo starts over), and the longest one remembered (at most
#: about 10 MB held).
MEMO_SIZE: Final = 20_000
MEMO_MAX_BYTES: Final = 256

_REQUEST: Final = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"


def _file(module: Any) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    return proto


def _request_class() -> Any:
    """``ExportTraceServiceRequest`` from a private pool whose ``Span.attributes`` is ``repeated bytes``."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file(common_pb2))
    pool.Add(_file(resource_pb2))
    trace = _file(trace_pb2)
    (span,) = (message for message in trace.message_type if message.name == "Span")
    (field,) = (field for field in span.field if field.name == "attributes")
    field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    field.ClearField("type_name")
    pool.Add(trace)
    pool.Add(_file(trace_service_pb2))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(_REQUEST))


#: The request class to parse bodies with (everything but ``Span.attributes`` as in the real schema).
ExportTraceServiceRequest: Final = _request_class()


class Attributes:
    """Maps raw ``KeyValue`` bytes to ``(key, value)``; ``decode(value)`` reads a non-scalar value.

    Safe across threads (the memo is only added to or cleared whole, under a lock).
    """

    def __init__(self, decode: Any, *, size: int = MEMO_SIZE, max_bytes: int = MEMO_MAX_BYTES) -> None:
        self._decode = decode
        self._size = size
        self._max_bytes = max_bytes
        self._memo: dict[bytes, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def read(self, pairs: Iterable[bytes], out: dict[str, Any]) -> dict[str, Any]:
        """Add the attributes to ``out`` (later keys win, as in a dict built in order) and return it.

        Raises ``DecodeError`` for bytes that are not a ``KeyValue``; ``decode`` may raise too
        (``Refused`` for a value nested too deep)."""
        memo = self._memo
        for raw in pairs:
            hit = memo.get(raw)
            if hit is None:
                hit = self._parse(raw)
            out[hit[0]] = hit[1]
        return out

    def _parse(self, raw: bytes) -> tuple[str, Any]:
        pair = common_pb2.KeyValue()
        pair.ParseFromString(raw)
        value = pair.value
        which = value.WhichOneof("value")
        if which == "string_value":
            found: tuple[str, Any] = (pair.key, value.string_value)
        elif which in ("array_value", "kvlist_value"):
            return pair.key, self._decode(value)  # mutable: never shared
        else:
            found = (pair.key, self._decode(value))
        if len(raw) <= self._max_bytes:
            with self._lock:
                if len(self._memo) >= self._size:
                    self._memo = {}
                self._memo[raw] = found
        return found


__all__ = ["Attributes", "DecodeError", "ExportTraceServiceRequest"]
