"""What the ``/performance`` page shows: RED metrics per operation, from spans.

Per (service, span name, kind) over the chosen range: spans per minute (rate), the error rate, and the
p50/p95/p99 of ``duration_ms``, slowest (p95) first; and the p95 over time in ``BUCKETS`` buckets, drawn
against the seed's thresholds for the operation's kind (``opswatch.perf.DEFAULT_THRESHOLDS``: a server
or internal span is ``api``, a client span with ``db.system`` is ``db``, another client span is
``external``). Two queries through the store's query interface, whatever the number of operations.
Below them, every "Critical performance degradation" record of the range (the SDK writes one for a call
past its critical threshold), each linked to its trace.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import Any, Final

from ...perf import DEFAULT_THRESHOLDS
from ..context import ServerContext
from ..query import run_query
from .traces import QUERY_TIMEOUT, RANGES, literal

#: Operations the page lists at most.
MAX_OPERATIONS: Final = 100
#: Buckets of the p95-over-time chart.
BUCKETS: Final = 24
#: The chart's box, in SVG user units.
WIDTH: Final = 240
HEIGHT: Final = 40

_GROUP: Final = "service, name, kind"

#: The message of the SDK's records above an operation's critical threshold (``opswatch.perf``).
CRITICAL_MESSAGE: Final = "Critical performance degradation"
#: Critical records the page lists at most.
MAX_CRITICAL: Final = 100
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


@dataclasses.dataclass(frozen=True)
class PerfFilters:
    """The page's filters, checked: a service ("" for all) and a range name from ``traces.RANGES``."""

    service: str = ""
    range: str = "24h"

    @classmethod
    def parse(cls, service: str, range: str) -> PerfFilters:
        """Filters from query parameters; ``ValueError`` naming the bad one."""
        chosen = range or "24h"
        if chosen not in dict(RANGES):
            raise ValueError(f"range: expected one of {', '.join(name for name, _ in RANGES)}")
        made = cls(service.strip()[:200], chosen)
        literal("service", made.service)
        return made


def category(kind: str, has_db: bool) -> str:
    """The seed's threshold category of a span kind: ``api``, ``db`` or ``external``."""
    if kind == "client":
        return "db" if has_db else "external"
    return "api"


def operations(ctx: ServerContext, filters: PerfFilters) -> list[dict[str, Any]]:
    """Each operation's RED numbers and its p95 chart, slowest first."""
    seconds = dict(RANGES)[filters.range]
    now = ctx.now().timestamp()
    since = datetime.datetime.fromtimestamp(now - seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    where = f"timestamp >= TIMESTAMP '{since}'"
    if filters.service:
        where += f" AND service = {literal('service', filters.service)}"
    totals = run_query(
        ctx.store,
        f"SELECT {_GROUP}, count(*) AS spans, sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, "
        "quantile_cont(duration_ms, 0.5) AS p50, quantile_cont(duration_ms, 0.95) AS p95, "
        "quantile_cont(duration_ms, 0.99) AS p99, count(attributes->>'$.\"db.system\"') AS db "
        f"FROM spans WHERE {where} GROUP BY {_GROUP} ORDER BY p95 DESC, spans DESC LIMIT {MAX_OPERATIONS}",
        max_rows=MAX_OPERATIONS, timeout=QUERY_TIMEOUT,
    )
    found = [dict(zip(totals.columns, row, strict=True)) for row in totals.rows]
    if not found:
        return []
    width = seconds / BUCKETS
    bucket = f"floor((epoch(timestamp) - {now - seconds!r}) / {width!r})"
    series = run_query(
        ctx.store,
        f"SELECT {_GROUP}, {bucket} AS bucket, quantile_cont(duration_ms, 0.95) AS p95 FROM spans "
        f"WHERE {where} GROUP BY {_GROUP}, bucket",
        max_rows=100_000, timeout=QUERY_TIMEOUT,
    )
    p95s: dict[tuple[Any, Any, Any], list[float]] = {}
    for service, name, kind, index, value in series.rows:
        if index is not None and 0 <= int(index) < BUCKETS:
            p95s.setdefault((service, name, kind), [0.0] * BUCKETS)[int(index)] = float(value or 0.0)
    minutes = seconds / 60
    for op in found:
        op["category"] = category(op["kind"] or "", bool(op.pop("db")))
        limits = DEFAULT_THRESHOLDS[op["category"]]
        op["slow_ms"], op["critical_ms"] = limits.slow_ms, limits.critical_ms
        op["rate"] = op["spans"] / minutes
        op["error_rate"] = (op["errors"] or 0) / op["spans"]
        p95 = op["p95"] or 0.0
        op["level"] = "bad" if p95 > limits.critical_ms else ("warn" if p95 > limits.slow_ms else "ok")
        op["chart"] = _chart(p95s.get((op["service"], op["name"], op["kind"]), [0.0] * BUCKETS),
                             limits.slow_ms, limits.critical_ms)
    return found


def critical_records(ctx: ServerContext, filters: PerfFilters) -> list[dict[str, Any]]:
    """The SDK's "Critical performance degradation" records in the range, newest first (at most
    ``MAX_CRITICAL``), each with ``trace`` (the link to its trace, at the span it was written in) when it
    carries a trace id."""
    seconds = dict(RANGES)[filters.range]
    since = datetime.datetime.fromtimestamp(ctx.now().timestamp() - seconds, datetime.UTC)
    where = f"message = '{CRITICAL_MESSAGE}' AND timestamp >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S}'"
    if filters.service:
        where += f" AND service = {literal('service', filters.service)}"
    found = run_query(
        ctx.store,
        "SELECT timestamp, service, operation, duration_ms, trace_id, span_id FROM logs "
        f"WHERE {where} ORDER BY timestamp DESC LIMIT {MAX_CRITICAL}",
        max_rows=MAX_CRITICAL, timeout=QUERY_TIMEOUT,
    )  # fmt: skip
    records = [dict(zip(found.columns, row, strict=True)) for row in found.rows]
    for record in records:
        trace, span = record["trace_id"] or "", record["span_id"] or ""
        record["trace"] = None
        if _TRACE_ID.fullmatch(trace):
            record["trace"] = f"/traces/{trace}" + (f"#span-{span}" if _SPAN_ID.fullmatch(span) else "")
    return records


def _chart(values: list[float], slow: float, critical: float) -> dict[str, Any]:
    """Bars of the p95 per bucket, with the slow and critical thresholds as lines, on one scale."""
    top = max([*values, critical]) * 1.05
    slot = WIDTH / len(values)

    def y(value: float) -> float:
        return round(HEIGHT - value / top * HEIGHT, 2)

    bars = [
        {"x": round(i * slot + 0.5, 2), "y": y(v), "w": round(slot - 1, 2), "h": round(HEIGHT - y(v), 2),
         "css": "bar-alert" if v > critical else ("bar-warn" if v > slow else "bar"), "value": v}
        for i, v in enumerate(values)
    ]  # fmt: skip
    return {"bars": bars, "slow_y": y(slow), "critical_y": y(critical), "width": WIDTH, "height": HEIGHT}
