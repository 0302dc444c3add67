"""The OTLP sink: opswatch's spans, as OTLP/HTTP protobuf, to any OpenTelemetry collector.

``OPSWATCH_OTLP_ENDPOINT`` (a base URL, as ``OTEL_EXPORTER_OTLP_ENDPOINT``) turns it on: spans are
posted to ``<endpoint>/v1/traces`` with ``Content-Type: application/x-protobuf``, gzipped, with the
headers of ``OPSWATCH_OTLP_HEADERS`` (``key=value,key2=value2``, as ``OTEL_EXPORTER_OTLP_HEADERS``).

Promises (the server sink's, whose machinery it shares: ``opswatch.sinks.server.BatchSink``):

- it takes spans only, never log records or check-ins, and only spans of sampled traces (a trace not
  sampled may still reach an opswatch server for tail sampling, never a collector);
- ``write`` queues the (already redacted) span record and returns: the encoding to protobuf, the gzip
  and the post happen on the ``opswatch-transport`` thread, in batches;
- a collector that is down or answers 429/5xx gets the batch again later (backoff, ``Retry-After``, the
  disk spool); a refusal (other 4xx) or a ``partial_success`` rejection is counted; every loss shows in
  ``opswatch.stats()["sinks"]["otlp"]`` and makes ``flush()`` return False.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Mapping
from typing import Any, Final

from ..config import ConfigError, Settings
from ..record import FATAL, Record
from . import Sink
from ._delivery import Delivery
from ._native import Answer
from ._transport import Response
from .server import BatchSink

#: Above every level: the sink gets no log records through ``emit``, only spans through ``send``.
NO_RECORDS: Final = FATAL + 1
#: The path OTLP/HTTP exporters append to a base endpoint for traces.
TRACES_PATH: Final = "/v1/traces"
#: Headers the sink sets itself (lower case): a configured one of these names is left out.
_OURS: Final = frozenset({"content-type", "content-encoding", "content-length"})


def from_settings(settings: Settings) -> OtlpSink | None:
    """The OTLP sink when ``settings.otlp_endpoint`` is set, else None.

    Raises ``ConfigError`` naming ``otlp_endpoint`` when the ``opentelemetry-proto`` package (the
    ``otlp`` extra) is missing, or ``spool_dir`` when the spool cannot be used.
    """
    if settings.otlp_endpoint is None:
        return None
    try:
        from ..tracing import _otlp
    except ImportError:
        raise ConfigError(
            "otlp_endpoint",
            "OTLP export needs the opentelemetry-proto package: pip install 'opswatch[otlp]'",
        ) from None
    resource = _otlp.resource_attributes(settings.service, settings.environment, settings.release,
                                         settings.host)  # fmt: skip
    spool_dir = os.path.join(settings.spool_dir, "otlp") if settings.spool_dir else None
    return OtlpSink(settings.otlp_endpoint, dict(settings.otlp_headers), resource=resource,
                    spool_dir=spool_dir)  # fmt: skip


def traces_url(endpoint: str) -> str:
    """``<endpoint>/v1/traces`` (an endpoint that already ends in ``/v1/traces`` is taken as it is)."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


class OtlpDelivery(Delivery):
    """Batches as ``ExportTraceServiceRequest`` protobuf, answers as OTLP's (``partial_success``,
    ``google.rpc.Status``)."""

    client_reports = False  # an opswatch header means nothing to a collector

    def __init__(self, owner: Sink, *args: Any, **options: Any) -> None:
        from ..tracing import _otlp  # imported with the sink, never by an app that does not export

        self.codec = _otlp
        self.resource: Mapping[str, Any] = getattr(owner, "resource", {})
        super().__init__(owner, *args, **options)

    def encode(self, lines: list[bytes]) -> bytes:
        return super().encode([self.codec.request_body(self.resource, lines)])

    def decode(self, body: bytes) -> list[bytes] | None:
        try:
            return self.codec.request_lines(gzip.decompress(body))
        except (OSError, EOFError):
            return None

    def parse_answer(self, response: Response, count: int) -> Answer:
        rejected, why = self.codec.rejected_spans(response.body)
        rejected = min(rejected, count)
        return Answer(count - rejected, 0, [(None, why or "rejected by the collector")] * rejected)

    def reason(self, response: Response | None) -> str:
        if response is not None and "protobuf" in response.headers.get("content-type", ""):
            message = self.codec.status_message(response.body)
            if message is not None:
                return message[:200] or "no reason given"
        return super().reason(response)

    def refusal_hint(self, status: int) -> str:
        if status in (401, 403):
            return ": check the credentials in OPSWATCH_OTLP_HEADERS"
        if status == 404:
            return ": check OPSWATCH_OTLP_ENDPOINT (the collector's base URL; /v1/traces is added)"
        return ""


class OtlpSink(BatchSink):
    """Exports sampled spans as OTLP/HTTP protobuf; see the module docstring."""

    name = "otlp"
    accepts_check_ins = False
    accepts_spans = True
    accepts_unsampled_spans = False
    delivery_class = OtlpDelivery

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        *,
        resource: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """Export to ``endpoint`` (the collector's base URL) with ``headers`` (auth ...) under the
        ``resource`` attributes; ``options`` are ``BatchSink``'s (spool, transport, bounds). Raises
        ``ConfigError`` naming the argument when one is bad."""
        from ..tracing._otlp import span_line

        self._span_line = span_line
        url = traces_url(endpoint)
        #: The resource attributes of every request (``process.pid`` is added when a batch is encoded).
        self.resource: dict[str, Any] = dict(resource or {})
        wanted = {
            **{key: value for key, value in (headers or {}).items() if key.lower() not in _OURS},
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        }
        # The default spool directory is private to the endpoint and its credentials (hashed there).
        identity = url + "#" + hashlib.sha256(repr(sorted(wanted.items())).encode()).hexdigest()
        options.setdefault("level", NO_RECORDS)
        super().__init__(url, wanted, identity, **options)

    def _line(self, record: Record) -> bytes | None:
        """The record as a serialized OTLP ``Span`` (None for anything that is not a span)."""
        return self._span_line(record)

    def _announce_drops(self) -> None:
        """Drops are counted in ``stats()``; a collector of traces gets no ``opswatch.dropped`` log record."""
