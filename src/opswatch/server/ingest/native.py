"""The native wire format: NDJSON, one record per line, as the SDK's transport sends it.

``parse_batch`` checks each line on its own: a line that is not JSON, not an object, too large or
otherwise refused becomes a ``Rejection`` with the line's index (blank lines are not events and have no
index), and every other line becomes a normalized record. Lines in pino's shape (the Node.js logger's
own NDJSON, see ``pino``) are read as pino writes them, with an id derived from the line and its position.
Nothing here raises for bad events; only a batch with more events than ``MAX_EVENTS_PER_BATCH`` is refused
whole.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from .. import limits
from .body import IngestError
from .pino import is_pino, to_record
from .records import Refused, Rejection, normalize
from .sentry_mapping import derived_event_id


@dataclasses.dataclass
class ParsedBatch:
    """Records that passed, and the rejections, of one request."""

    records: list[dict[str, Any]]
    rejected: list[Rejection]

    @property
    def total(self) -> int:
        """How many events the request held."""
        return len(self.records) + len(self.rejected)


def parse_batch(body: bytes, received_epoch: float, received_at: str) -> ParsedBatch:
    """Parse and check an NDJSON body; raise ``IngestError`` (413) when it has too many events."""
    lines = body.split(b"\n")
    if len(lines) > limits.MAX_EVENTS_PER_BATCH:
        count = sum(1 for line in lines if line.strip())
        if count > limits.MAX_EVENTS_PER_BATCH:
            raise IngestError(
                413,
                "too_many_events",
                f"the batch has {count:,} events, over the limit of {limits.MAX_EVENTS_PER_BATCH:,}",
            )
    records: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    max_bytes = limits.MAX_EVENT_BYTES
    loads = orjson.loads
    index = -1
    for line in lines:
        if not line or line.isspace():
            continue
        index += 1
        if len(line) > max_bytes:
            rejected.append(
                Rejection(
                    index, "too_large", f"the event is {len(line):,} bytes, over the limit of {max_bytes:,}"
                )
            )
            continue
        try:
            record = loads(line)
        except orjson.JSONDecodeError as err:
            rejected.append(Rejection(index, "invalid_json", f"not valid JSON: {err}"))
            continue
        if type(record) is not dict:
            rejected.append(Rejection(index, "not_an_object", "an event must be a JSON object"))
            continue
        if is_pino(record):
            to_record(record)
            if "event_id" not in record:  # the same line sent again is the same event
                record["event_id"] = derived_event_id(line, index)
        try:
            normalize(record, received_epoch, received_at)
        except Refused as refused:
            rejected.append(Rejection(index, refused.code, str(refused)))
            continue
        records.append(record)
    return ParsedBatch(records, rejected)
