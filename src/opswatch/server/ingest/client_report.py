"""Client reports: how many records an SDK lost before they could reach the server, counted in /metrics.

The Python SDK sends ``X-Opswatch-Client-Report: queue_full=12, spool_full=3`` with its next batch after
it dropped records (``opswatch.sinks._native.CLIENT_REPORT_HEADER``), as Sentry SDKs send client reports.
Only known reasons with sane counts are read: the metric's labels stay a small fixed set whatever a
client sends, and a malformed header is ignored rather than failing the batch it came with.
"""

from __future__ import annotations

from typing import Final

from ...sinks._native import CLIENT_REPORT_HEADER
from ..metrics import Counter

#: The reasons an SDK reports; anything else is ignored.
REASONS: Final = frozenset({"queue_full", "spool_full", "unstorable", "closed"})
#: Largest count believed for one reason in one report (a client cannot lose more in one run).
MAX_COUNT: Final = 10**12

HEADER: Final = CLIENT_REPORT_HEADER.lower()



def read(value: str | None) -> dict[str, int]:
    """``{reason: count}`` from a header value; unknown reasons, bad numbers and repeats are left out."""
    report: dict[str, int] = {}
    if not value or len(value) > 200:
        return report
    for part in value.split(","):
        reason, _, number = part.strip().partition("=")
        if reason in REASONS and reason not in report and number.isdigit() and int(number) <= MAX_COUNT:
            report[reason] = int(number)
    return report


def count(dropped: Counter, project_id: int, value: str | None) -> None:
    """Add a report to ``dropped`` (``Metrics.client_dropped``) once the batch it came with is durable."""
    for reason, number in read(value).items():
        if number:
            dropped.inc(number, project=str(project_id), reason=reason)
