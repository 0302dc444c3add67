"""The app's current OpenTelemetry span, when it uses ``opentelemetry-api`` (an optional import).

When an OTel span is current and no opswatch span is, opswatch's records carry the OTel span's
``trace_id``/``span_id`` (``Runtime.build``) and opswatch spans started there become its children, in
its trace, sampled as it was (``opswatch.tracing._span``). ``lookup()`` is called once per runtime:
without ``opentelemetry-api`` it returns None and nothing else is ever done (no import, no call per
record); with it, each record outside any opswatch trace reads OTel's context (a context variable), and
asks it for its span only when it is not empty.
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
        get_current = importlib.import_module("opentelemetry.context").get_current
        propagation = importlib.import_module("opentelemetry.trace.propagation")
    except ImportError:
        return None
    get_current_span = trace.get_current_span
    # The key OTel keeps the current span under: read straight from the context (a dict) when this
    # version names it as the ones tried here do, else through the public call.
    key = getattr(propagation, "_SPAN_KEY", None)
    # The last span context seen with its ids (records repeat within a span), swapped as one tuple so
    # that threads never pair one context with another's ids.
    last: list[tuple[Any, OtelIds | None]] = [(None, None)]

    def current_ids() -> OtelIds | None:
        """The current OTel span's ids and sampled flag, or None when no valid span is current."""
        try:
            current = get_current()
            if not current:  # nothing set in OTel's context: no span (the common case, read cheaply)
                return None
            span = current.get(key) if key is not None else get_current_span(current)
            if span is None:
                return None
            context = span.get_span_context()
            seen, ids = last[0]
            if context is seen:
                return ids
            ids = None
            if context.is_valid:
                ids = f"{context.trace_id:032x}", f"{context.span_id:016x}", bool(context.trace_flags & 1)
            last[0] = (context, ids)
            return ids
        except Exception:  # a broken or foreign OTel implementation never breaks a log call
            return None

    return current_ids
