"""Spans in the SDK: ``opswatch.span(name, **attributes)`` and the current trace.

``span`` measures a piece of work as one span of a distributed trace, the way ``track_performance``
measures it as one duration: as ``with opswatch.span("charge", amount=5):``, ``async with``, or as a
decorator (plain and ``async def`` functions). Inside it, every record logged carries its ``trace_id``
and ``span_id``, and spans started inside are its children. The first span of a trace takes the
``trace_id``/``span_id`` already bound in the context (the web middleware binds an incoming W3C
``traceparent`` there), so a request's spans continue the caller's trace.

With no opswatch span open and no trace bound, an OpenTelemetry span current in the app
(``opentelemetry-api``) is the parent, and records carry its ids (``_otel``).

When a span ends it is sent, as a native record of kind ``span`` (redacted like every record), to the
sinks that take spans: the server sink, which stores it in the server's ``spans`` table, and the OTLP
sink (``otlp_endpoint``), which exports it to a collector. A span of a trace not sampled goes only to
sinks doing tail sampling (the server sink, unless ``traces_tail_sampling`` is off), marked
``"sampled": false``. Tracked calls build no span when no sink takes it. An exception inside a span
marks it ``error`` with the exception's type and message and is re-raised; monitoring itself never
raises into the app.
"""

from ._span import Span, current_span, span

__all__ = ["Span", "current_span", "span"]
