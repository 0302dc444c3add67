"""Span attributes read from raw bytes (``traces.otlp_wire``) are exactly what the generated classes give."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from opswatch.server.ingest.body import IngestError
from opswatch.server.traces.otlp import decode_traces, pb_attributes

NOW = time.time_ns()
AT = "2026-12-03T10:00:00.000000Z"

keys = st.sampled_from(["http.route", "db.system", "password", "url.full", "", "k"])
scalars = st.one_of(
    st.text(max_size=20).map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: AnyValue(int_value=n)),
    st.floats(allow_nan=False).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)


def _array(items: list[AnyValue]) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend(items)
    return value


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    value = AnyValue()
    value.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in pairs)
    return value


values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3).map(_array) | st.lists(st.tuples(keys, inner), max_size=3).map(_kvlist)
    ),
    max_leaves=6,
)
attribute_lists = st.lists(st.tuples(keys, values), max_size=6)


def _request(spans_attributes: list[list[tuple[str, AnyValue]]]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for number, pairs in enumerate(spans_attributes):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = b"\x01" * 16, bytes([0, 0, 0, 0, 0, 0, 0, number + 1]), "s"
        span.start_time_unix_nano = span.end_time_unix_nano = NOW
        span.attributes.extend(KeyValue(key=k, value=v) for k, v in pairs)
    return request


@settings(max_examples=200, deadline=None)
@given(st.lists(attribute_lists, min_size=1, max_size=4))
def test_it_reads_span_attributes_as_the_generated_classes_do(spans_attributes: Any) -> None:
    request = _request(spans_attributes)
    rows = decode_traces(request.SerializeToString(), json=False, received_at=AT).rows
    expected = [pb_attributes(span.attributes) for span in request.resource_spans[0].scope_spans[0].spans]
    assert [row["attributes"] for row in rows] == expected
    # the same bytes again come from the memo: still equal, and no list or dict is shared between rows
    again = decode_traces(request.SerializeToString(), json=False, received_at=AT).rows
    assert [row["attributes"] for row in again] == expected
    for first, second in zip(rows, again, strict=True):
        for key, value in first["attributes"].items():
            if isinstance(value, (list, dict)):
                assert second["attributes"][key] is not value


def test_it_refuses_a_request_whose_span_attribute_is_not_a_key_value() -> None:
    body = bytearray(_request([[("k", AnyValue(string_value="v"))]]).SerializeToString())
    good = KeyValue(key="k", value=AnyValue(string_value="v")).SerializeToString()
    at = body.index(good)
    body[at : at + 1] = b"\x18"  # field 3 as a varint with no value: not a KeyValue
    with pytest.raises(IngestError) as raised:
        decode_traces(bytes(body), json=False, received_at=AT)
    assert raised.value.code == "invalid_protobuf"


def test_it_rejects_only_the_span_whose_attribute_is_nested_too_deep() -> None:
    deep = AnyValue(string_value="leaf")
    for _ in range(20):
        deep = _array([deep])
    request = _request([[("k", deep)], [("k", AnyValue(string_value="fine"))]])
    decoded = decode_traces(request.SerializeToString(), json=False, received_at=AT)
    assert decoded.rejected == 1
    assert [row["attributes"] for row in decoded.rows] == [{"k": "fine"}]
