"""What the ``/traces`` and ``/traces/<trace_id>`` pages show, read through the store's query interface.

``search`` finds traces by service, operation (span name), least duration, status and time range,
slowest first. ``trace_detail`` reads one trace's spans and its log records in two queries (whatever
its size: no query per span) and ``waterfall`` lays them out in one pass: spans depth-first (children
by start time) with their offsets on the trace's time axis, the critical path (``critical_path``) and
the error spans marked, and the log records placed on the same axis.

Every value put into SQL is checked first (a trace id is 32 hex digits; a text filter may not hold a
backslash or a control character, and quotes are doubled), so the same SQL means the same on every
engine behind ``opswatch.server.query``.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from markupsafe import Markup

from ..context import ServerContext
from ..query import run_query
from .render import to_epoch
from .waterfall_html import span_rows

#: Time ranges the search offers: name and seconds.
RANGES: Final = (("1h", 3600), ("6h", 6 * 3600), ("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400))
DEFAULT_RANGE: Final = "24h"
#: Span statuses the search can filter on ("" is any).
STATUSES: Final = ("", "error", "ok", "unset")
#: Traces one search shows at most.
SEARCH_ROWS: Final = 100
#: Spans and log records one trace page draws at most (past that the page says it was cut).
MAX_TRACE_SPANS: Final = 20_000
MAX_TRACE_LOGS: Final = 2_000
#: Width of the time axis in SVG user units.
AXIS: Final = 1000.0
QUERY_TIMEOUT: Final = 30.0

_EPOCH: Final = datetime.datetime(1970, 1, 1)
_TRACE_ID: Final = re.compile(r"[0-9a-f]{32}")
_BAD_TEXT: Final = re.compile(r"[\\\x00-\x1f\x7f]")


def literal(field: str, value: str) -> str:
    """``value`` as a SQL string literal; ``ValueError`` naming ``field`` for a backslash or a control
    character (engines disagree on what those mean inside a literal)."""
    if _BAD_TEXT.search(value):
        raise ValueError(f"{field}: may not contain a backslash or a control character")
    return "'" + value.replace("'", "''") + "'"


def check_trace_id(value: str) -> str:
    """The trace id in lower case; ``ValueError`` unless it is 32 hex digits."""
    lowered = value.strip().lower()
    if not _TRACE_ID.fullmatch(lowered):
        raise ValueError("trace_id: expected 32 hex digits")
    return lowered


# -- search ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TraceFilters:
    """The search's filters, checked."""

    service: str = ""
    operation: str = ""
    min_ms: float | None = None
    status: str = ""
    range: str = DEFAULT_RANGE

    @classmethod
    def parse(cls, service: str, operation: str, min_ms: str, status: str, range: str) -> TraceFilters:
        """Filters from query parameters; ``ValueError`` naming the bad one."""
        least: float | None = None
        if min_ms.strip():
            try:
                least = float(min_ms)
            except ValueError:
                raise ValueError("min_ms: expected a number of milliseconds") from None
            if not 0 <= least < 1e12:
                raise ValueError("min_ms: expected a number of milliseconds, 0 or more")
        if status not in STATUSES:
            raise ValueError("status: expected error, ok or unset")
        chosen = range or DEFAULT_RANGE
        if chosen not in dict(RANGES):
            raise ValueError(f"range: expected one of {', '.join(name for name, _ in RANGES)}")
        made = cls(service.strip()[:200], operation.strip()[:200], least, status, chosen)
        literal("service", made.service)
        literal("operation", made.operation)
        return made


def search_sql(filters: TraceFilters, now: float) -> str:
    """The SQL that finds the traces: one row per trace, slowest first."""
    since = datetime.datetime.fromtimestamp(now - dict(RANGES)[filters.range], datetime.UTC)
    window = f"timestamp >= TIMESTAMP '{since.strftime('%Y-%m-%d %H:%M:%S')}'"
    having = [window]
    if filters.service:
        having.append(f"service = {literal('service', filters.service)}")
    if filters.operation:
        having.append(f"name = {literal('operation', filters.operation)}")
    if filters.status:
        having.append(f"status = '{filters.status}'")
    least = f" HAVING max(duration_ms) >= {filters.min_ms!r}" if filters.min_ms is not None else ""
    return (
        "SELECT trace_id, min(timestamp) AS started, max(duration_ms) AS duration_ms, count(*) AS spans, "
        "sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, "
        "count(DISTINCT service) AS services "
        f"FROM spans WHERE {window} "
        f"AND trace_id IN (SELECT trace_id FROM spans WHERE {' AND '.join(having)}) "
        f"GROUP BY trace_id{least} ORDER BY duration_ms DESC, trace_id LIMIT {SEARCH_ROWS}"
    )


def search(ctx: ServerContext, filters: TraceFilters) -> list[dict[str, Any]]:
    """The traces matching ``filters``, slowest first, each with its root span's name and service."""
    found = run_query(ctx.store, search_sql(filters, ctx.now().timestamp()), max_rows=SEARCH_ROWS,
                      timeout=QUERY_TIMEOUT)
    traces = [dict(zip(found.columns, row, strict=True)) for row in found.rows]
    if not traces:
        return []
    ids = ", ".join(f"'{check_trace_id(str(t['trace_id']))}'" for t in traces)
    roots = run_query(
        ctx.store,
        "SELECT trace_id, name, service, timestamp FROM spans WHERE trace_id IN "
        f"({ids}) AND (parent_span_id IS NULL OR parent_span_id = '') ORDER BY timestamp",
        max_rows=10 * SEARCH_ROWS, timeout=QUERY_TIMEOUT,
    )
    first: dict[str, tuple[Any, Any]] = {}
    for trace_id, name, service, _ in roots.rows:
        first.setdefault(trace_id, (name, service))
    for trace in traces:
        trace["root"], trace["root_service"] = first.get(trace["trace_id"], (None, None))
        trace["errors"] = int(trace["errors"] or 0)
    return traces


# -- one trace ---------------------------------------------------------------------------------------

_SPAN_SQL: Final = (
    "SELECT span_id, parent_span_id, name, kind, status, status_message, service, timestamp, duration_ms, "
    "attributes, events FROM spans WHERE trace_id = '{trace_id}' ORDER BY timestamp, span_id LIMIT {rows}"
)
_LOG_SQL: Final = (
    "SELECT timestamp, level, message, operation, service, span_id FROM logs "
    "WHERE trace_id = '{trace_id}' ORDER BY timestamp LIMIT {rows}"
)


@dataclasses.dataclass
class Waterfall:
    """One trace laid out: ``rows`` (spans depth-first) and ``logs`` with their places on the axis."""

    trace_id: str
    rows: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    start: float
    duration_ms: float
    services: list[str]
    errors: int
    critical: int
    truncated: bool = False

    @property
    def rows_html(self) -> Markup:
        """The span rows as HTML (``waterfall_html.span_rows``)."""
        return span_rows(self.rows)


def trace_detail(ctx: ServerContext, trace_id: str) -> Waterfall:
    """The trace's waterfall, from two queries; ``LookupError`` when no span has this trace id."""
    checked = check_trace_id(trace_id)
    spans = run_query(ctx.store, _SPAN_SQL.format(trace_id=checked, rows=MAX_TRACE_SPANS + 1),
                      max_rows=MAX_TRACE_SPANS + 1, timeout=QUERY_TIMEOUT)
    if not spans.rows:
        raise LookupError(f"no spans of trace {checked}")
    logs = run_query(ctx.store, _LOG_SQL.format(trace_id=checked, rows=MAX_TRACE_LOGS),
                     max_rows=MAX_TRACE_LOGS, timeout=QUERY_TIMEOUT)
    span_rows = [dict(zip(spans.columns, row, strict=True)) for row in spans.rows[:MAX_TRACE_SPANS]]
    log_rows = [dict(zip(logs.columns, row, strict=True)) for row in logs.rows]
    made = waterfall(checked, span_rows, log_rows)
    made.truncated = len(spans.rows) > MAX_TRACE_SPANS
    return made


def _json(value: Any) -> Any:
    if isinstance(value, (str, bytes)) and value:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def waterfall(
    trace_id: str, spans: Sequence[Mapping[str, Any]], logs: Sequence[Mapping[str, Any]]
) -> Waterfall:
    """Lay out ``spans`` (rows of the spans view) and ``logs`` (rows of the logs view) in one pass.

    A span whose parent is not in the trace (or whose ancestors form a loop, which no tracer sends but a
    bad client could) is drawn at the top level. Children follow their parent,
    by start time. Offsets ``x`` and widths ``w`` are in ``AXIS`` units of the trace's time range.
    """
    nodes: dict[str, dict[str, Any]] = {}
    for span in spans:
        start = _epoch(span["timestamp"])
        duration = max(float(span["duration_ms"] or 0.0), 0.0)
        nodes.setdefault(str(span["span_id"]), {
            "span_id": str(span["span_id"]), "parent": span.get("parent_span_id") or None,
            "name": span.get("name") or "", "kind": span.get("kind") or "",
            "status": span.get("status") or "unset",
            "status_message": span.get("status_message"), "service": span.get("service") or "",
            "start": start, "end": start + duration / 1000.0, "duration_ms": duration,
            "attributes": _json(span.get("attributes")) or {}, "events": _json(span.get("events")) or [],
            "children": [], "critical": False,
        })  # fmt: skip
    tops: list[dict[str, Any]] = []
    for node in nodes.values():
        parent = nodes.get(node["parent"]) if node["parent"] else None
        (parent["children"] if parent is not None and parent is not node else tops).append(node)
    log_times = [t for t in (to_epoch(log.get("timestamp")) for log in logs) if t is not None]
    begin = min([n["start"] for n in nodes.values()] + log_times, default=0.0)
    finish = max([n["end"] for n in nodes.values()] + log_times, default=begin)
    scale = AXIS / (finish - begin) if finish > begin else 0.0
    critical_path(tops, finish)
    rows: list[dict[str, Any]] = []
    stack = [(node, 0) for node in sorted(tops, key=_by_start, reverse=True)]
    seen: set[str] = set()
    while stack or len(seen) < len(nodes):
        if not stack:  # spans whose parents form a loop: drawn from the top level
            stack.append((next(n for n in nodes.values() if n["span_id"] not in seen), 0))
        node, depth = stack.pop()
        if node["span_id"] in seen:
            continue
        seen.add(node["span_id"])
        node["depth"] = depth
        node["offset_ms"] = (node["start"] - begin) * 1000.0
        # a tenth of an axis unit: epoch seconds as floats carry ~0.2 µs of noise, which at 2 decimals
        # drew a record 60 ms into a 100 ms trace at 599.99 or 600.01 depending on the clock
        node["x"] = round((node["start"] - begin) * scale, 1)
        node["w"] = round(max((node["end"] - node["start"]) * scale, 0.5), 1)
        rows.append(node)
        stack.extend((child, depth + 1) for child in sorted(node["children"], key=_by_start, reverse=True))
    placed = []
    for log in logs:
        moment = to_epoch(log.get("timestamp"))
        offset = (moment - begin) if moment is not None else 0.0
        placed.append({**log, "offset_ms": offset * 1000.0, "x": round(offset * scale, 1)})
    services = sorted({row["service"] for row in rows if row["service"]})
    return Waterfall(
        trace_id=trace_id, rows=rows, logs=placed, start=begin, duration_ms=(finish - begin) * 1000.0,
        services=services, errors=sum(1 for row in rows if row["status"] == "error"),
        critical=sum(1 for row in rows if row["critical"]),
    )


def _epoch(value: Any) -> float:
    """Seconds since the epoch of a span's start (a naive UTC datetime from the store, quickly)."""
    if type(value) is datetime.datetime and value.tzinfo is None:
        return (value - _EPOCH).total_seconds()
    return to_epoch(value) or 0.0


def _by_start(node: Mapping[str, Any]) -> tuple[float, str]:
    return (node["start"], node["span_id"])


def critical_path(tops: Sequence[dict[str, Any]], end: float) -> None:
    """Mark (``critical``) the spans the trace's end waited on.

    Walking back from the end: among siblings, the one that ends last is on the path; the time before
    it started is then explained by the siblings that ended before, latest first. The same rule goes
    down into each marked span's children, up to that span's end. Iterative, for deep traces.
    """
    work: list[tuple[Sequence[dict[str, Any]], float]] = [(tops, end)]
    while work:
        siblings, cursor = work.pop()
        first = True
        for node in sorted(siblings, key=lambda n: (n["end"], n["start"]), reverse=True):
            if node["start"] < cursor or first:
                first = False
                node["critical"] = True
                work.append((node["children"], min(node["end"], cursor)))
                cursor = node["start"]
