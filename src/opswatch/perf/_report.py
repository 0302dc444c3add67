"""Turn one measured duration into one record, by the thresholds of its kind.

- at or below slow: ``debug`` ``operation="perf.<kind>.<name>"`` with ``duration_ms``;
- above slow: ``warn`` "Significant performance degradation", ``operation="performance.warn.<name>"``;
- above critical: ``error`` "Critical performance degradation",
  ``operation="performance.critical.<kind>.<name>"`` (external calls stay at ``warn``).

Slow and critical records carry the seed's ``durationMs``, ``thresholdMs`` (the slow threshold) and
``slowdownFactor`` (duration / slow threshold, formatted ``"3.00"``), plus ``duration_ms`` so that one
column answers for every measurement. A failed call adds ``outcome="error"`` and ``error_type``; the
exception itself is the caller's to log (it is re-raised), so it is not attached twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._runtime import STATE
from ..record import DEBUG, ERROR, WARN
from ..tracing._http import measured_span, spans_wanted
from . import _config

#: ``record["logger"]`` for every performance record.
LOGGER = "perf"

_FALLBACK = _config.DEFAULT_THRESHOLDS["api"]


def _whole(value: float) -> float | int:
    rounded = round(value)
    return rounded if rounded == value else round(value, 3)


def report(
    kind: str,
    name: str,
    seconds: float,
    fields: Mapping[str, Any] | None = None,
    error: BaseException | None = None,
    slow_ms: float | None = None,
    critical_ms: float | None = None,
    *,
    span: bool = True,
) -> float:
    """Write the record for one measurement of ``seconds``; return the duration in milliseconds.

    ``slow_ms``/``critical_ms`` override the configured thresholds for this call. With ``span`` (the
    default) the measurement is also a span when a sink takes spans (``opswatch.tracing``). Never raises.
    """
    if span and spans_wanted():
        measured_span(kind, name, seconds, error)
    ms = seconds * 1000.0
    if slow_ms is None or critical_ms is None:
        config = _config.CURRENT
        configured = (config.operations.get(name) if config.operations else None) or config.kinds.get(
            kind, _FALLBACK
        )
        slow = configured.slow_ms if slow_ms is None else slow_ms
        critical = configured.critical_ms if critical_ms is None else critical_ms
    else:
        slow, critical = slow_ms, critical_ms
    if ms <= slow and STATE.min_level > DEBUG:
        return ms  # the common case: nobody collects debug records, so build none
    try:
        if ms <= slow:
            record: dict[str, Any] = {"operation": f"perf.{kind}.{name}", "duration_ms": round(ms, 3)}
            levelno, message = DEBUG, f"{name} took {ms:.1f} ms"
        else:
            if ms > critical and kind != "external":
                levelno, message = ERROR, "Critical performance degradation"
                operation = f"performance.critical.{kind}.{name}"
            else:
                levelno, message = WARN, "Significant performance degradation"
                operation = f"performance.warn.{name}"
            if levelno < STATE.min_level:
                return ms
            record = {
                "operation": operation,
                "durationMs": _whole(round(ms, 3)),
                "thresholdMs": _whole(slow),
                "slowdownFactor": f"{ms / slow:.2f}",
                "duration_ms": round(ms, 3),
            }
        if fields:
            record = {**fields, **record}
        if error is not None:
            record["outcome"] = "error"
            record["error_type"] = type(error).__name__
        STATE.emit(levelno, LOGGER, message, None, record, None)
    except Exception:  # monitoring never breaks the measured code
        pass
    return ms
