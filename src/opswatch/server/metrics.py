"""The server's own counters, rendered in the Prometheus text format for ``GET /metrics``.

Deliberately tiny (no client library): counters and histograms keyed by a fixed, small set of label
values (rejection reasons are codes such as ``too_large``, never free text), plus gauges read from
callbacks at scrape time (queue depth, store size). Updates are thread-safe.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

Labels = tuple[tuple[str, str], ...]

#: Seconds; spans a group commit of a few events (ms) to a stalled disk (seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Counter:
    """A monotonically increasing count per label set."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` to the series with ``labels``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, **labels: str) -> float:
        """The current value of one series (0 when never incremented)."""
        return self._values.get(tuple(sorted(labels.items())), 0)

    def total(self) -> float:
        """The sum over every series."""
        return sum(self._values.values())

    def series(self) -> dict[Labels, float]:
        """Every series' value now, by labels (a copy)."""
        with self._lock:
            return dict(self._values)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield f"{self.name}{_labels(labels)} {_number(value)}"


class Histogram:
    """Observations in fixed buckets, with their sum and count."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help_text
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)
        self._sum = 0.0
        self._count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Record one observation."""
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value
            self._count += 1

    @property
    def count(self) -> int:
        """How many observations were recorded."""
        return self._count

    def state(self) -> tuple[list[int], float, int]:
        """The bucket counts, sum and count now (a copy): what ``merge`` adds to another histogram."""
        with self._lock:
            return list(self._counts), self._sum, self._count

    def merge(self, counts: list[int], total: float, count: int) -> None:
        """Add observations made elsewhere (another process's ``state``, or the change in it)."""
        with self._lock:
            for index, value in enumerate(counts[: len(self._counts)]):
                self._counts[index] += value
            self._sum += total
            self._count += count

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            counts, total, count = list(self._counts), self._sum, self._count
        running = 0
        for bound, bucket_count in zip(self.buckets, counts, strict=False):
            running += bucket_count
            yield f'{self.name}_bucket{{le="{_number(bound)}"}} {running}'
        yield f'{self.name}_bucket{{le="+Inf"}} {count}'
        yield f"{self.name}_sum {_number(total)}"
        yield f"{self.name}_count {count}"


class Gauge:
    """A value read from a callback at scrape time; a callback that fails is left out of the scrape."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float | None]) -> None:
        self.name = name
        self.help = help_text
        self.read = read

    def render(self) -> Iterable[str]:
        try:
            value = self.read()
        except Exception:
            return
        if value is None:
            return
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {_number(value)}"


class Renderable(Protocol):
    """Anything that renders itself as lines of the text format."""

    def render(self) -> Iterable[str]: ...


class StatsGauges:
    """Gauges ``<prefix><name>`` for every number a ``read()`` mapping holds, read once per scrape."""

    def __init__(self, prefix: str, help_text: str, read: Callable[[], Mapping[str, object]]) -> None:
        self.prefix = prefix
        self.help = help_text
        self.read = read

    def render(self) -> Iterable[str]:
        try:
            stats = dict(self.read())
        except Exception:
            return
        for name, value in sorted(stats.items()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            metric = self.prefix + "".join(c if c.isalnum() else "_" for c in str(name).lower())
            yield f"# HELP {metric} {self.help} ({name})"
            yield f"# TYPE {metric} gauge"
            yield f"{metric} {_number(value)}"


class Metrics:
    """The server's metrics. Subsystems may add their own with ``add``."""

    def __init__(self) -> None:
        self.accepted = Counter("opswatch_events_accepted_total", "Events stored, by source and kind.")
        self.duplicates = Counter(
            "opswatch_events_duplicate_total", "Events skipped because their event_id was stored already."
        )
        self.rejected = Counter("opswatch_events_rejected_total", "Events refused at ingest, by reason.")
        self.requests = Counter("opswatch_ingest_requests_total", "Ingest requests, by endpoint and status.")
        self.hook_failures = Counter(
            "opswatch_hook_failures_total", "Ingest hooks that raised (issue grouping, check-ins), by hook."
        )
        self.hook_records_failed = Counter(
            "opswatch_hook_records_failed_total", "Stored records an ingest hook could not process, by hook."
        )
        self.batch_latency = Histogram(
            "opswatch_batch_commit_seconds", "Time to make one group commit durable, in seconds."
        )
        self.request_latency = Histogram(
            "opswatch_ingest_request_seconds", "Time from a full ingest body to its answer, in seconds."
        )
        self.client_dropped = Counter(
            "opswatch_client_dropped_total", "Records SDKs reported dropping before sending, by reason."
        )
        self._extra: list[Renderable] = []

    def add(self, metric: Renderable) -> None:
        """Include another metric in the scrape (subsystems' own counters and gauges)."""
        self._extra.append(metric)

    def render(self) -> str:
        """The whole scrape in the Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        own: list[Renderable] = [
            self.accepted,
            self.duplicates,
            self.rejected,
            self.requests,
            self.hook_failures,
            self.hook_records_failed,
            self.batch_latency,
            self.request_latency,
            self.client_dropped,
        ]
        for metric in own + self._extra:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
