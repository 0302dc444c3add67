"""Test helpers for users' own tests and ours.

``capture_logs()`` collects the records a block produces, after redaction, exactly as sinks get them::

    with opswatch.testing.capture_logs() as logs:
        charge_card()
    assert logs[0]["operation"] == "payment.stripe.charge"
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ._runtime import STATE
from .record import TRACE, Record
from .sinks import Sink


class CaptureSink(Sink):
    """A sink that keeps every record in a list."""

    name = "capture"

    def __init__(self, level: int = TRACE) -> None:
        super().__init__(level)
        self.records: list[Record] = []

    def write(self, record: Record) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_logs(level: int | str = TRACE) -> Iterator[list[Record]]:
    """Collect the records logged inside the block (every level from ``level`` up) into a list."""
    from .record import parse_level

    sink = CaptureSink(parse_level(level))
    runtime = STATE.get()
    runtime.add_sink(sink)
    try:
        yield sink.records
    finally:
        runtime.remove_sink(sink)
