"""The app's current OpenTelemetry span, when it uses ``opentelemetry-api`` (an optional import).

When an OTel span is current and no opswatch span is, opswatch's records carry the OTel span's
``trace_id``/``span_id`` (``Runtime.build``) and opswatch spans started there become its children, in
its trace, sampled as it was (``opswatch.tracing._span``). ``lookup()`` is called once per runtime:
without ``opentelemetry-api`` it returns None and nothing else is ever done (no import, no call per
record); with it, each record outside any opswatch trace asks OTel for its current span (a context
variable read).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

#: ``(trace_id, span_id, sampled)`` of the current OTel span, in opswatch's hex form, or None.
OtelIds = tuple[str, str, bool]


def lookup() -> Callable[[], OtelIds | None] | None:
    """``current_ids`` when ``opentelemetry-api`` can be imported, else None."""
    try:
        trace = importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None
    get_current_span = trace.get_current_span

    def current_ids() -> OtelIds | None:
        """The current OTel span's ids and sampled flag, or None when no valid span is current."""
        try:
            context: Any = get_current_span().get_span_context()
            if not context.is_valid:
                return None
            return f"{context.trace_id:032x}", f"{context.span_id:016x}", bool(context.trace_flags & 1)
        except Exception:  # a broken or foreign OTel implementation never breaks a log call
            return None

    return current_ids
