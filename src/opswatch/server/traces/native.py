"""The SDK's spans: native records of kind ``span`` (``opswatch.tracing``) to span rows.

A span record carries ``trace_id``, ``span_id``, ``parent_span_id``, ``name``, ``span_kind``,
``start_unix_nano``, ``duration_ms``, ``status``, ``status_message`` and ``attributes``, plus the
record's usual ``service``, ``environment``, ``release`` and ``host``. Such records go to the spans
table, not to ``logs``; one that cannot be stored is a rejection at its index in the batch. A record with
``"sampled": false`` is a span the SDK's head sampling left out, sent for tail sampling (``tail.py``).
"""

from __future__ import annotations

from typing import Any

from ..ingest.records import Refused, Rejection
from .model import span_row
from .tail import SAMPLED


def split_spans(
    records: list[dict[str, Any]], earlier: list[Rejection], received_at: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Rejection]]:
    """``records`` without the spans, the spans as rows, and the spans refused, each with its index in
    the batch (``earlier``: the batch's lines refused before, which the records do not include)."""
    if not any(record.get("kind") == "span" for record in records):
        return records, [], []
    kept: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    refused: list[Rejection] = []
    skipped = {rejection.index for rejection in earlier}
    lines = (i for i in range(len(records) + len(earlier)) if i not in skipped)
    for index, record in zip(lines, records, strict=False):
        if record.get("kind") != "span":
            kept.append(record)
            continue
        try:
            rows.append(_row(record, received_at))
        except Refused as err:
            refused.append(Rejection(index, err.code, str(err)))
    return kept, rows, refused


def _row(record: dict[str, Any], received_at: str) -> dict[str, Any]:
    start = record.get("start_unix_nano")
    duration = record.get("duration_ms")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
        raise Refused("invalid_span", f"duration_ms must be a number >= 0, got {duration!r:.40}")
    attributes = record.get("attributes")
    row = span_row(
        trace_id=record.get("trace_id"),
        span_id=record.get("span_id"),
        parent_span_id=record.get("parent_span_id"),
        name=record.get("name", ""),
        kind=str(record.get("span_kind", "internal")),
        start_ns=start,
        end_ns=start + round(duration * 1e6) if type(start) is int else None,
        status=str(record.get("status", "unset")),
        status_message=record.get("status_message"),
        resource=record,
        attributes=attributes if isinstance(attributes, dict) else {},
        received_at=received_at,
    )
    if record.get("sampled") is False:  # tail sampling: held until its trace is decided (``tail.py``)
        row[SAMPLED] = False
    return row
