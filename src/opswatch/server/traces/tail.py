"""Tail sampling on the server: spans the SDK did not sample wait here until their trace is decided.

With tail sampling on, the SDK sends the spans of traces its head rate left out as native span records
marked ``"sampled": false`` (spans without the mark, and every OTLP and Sentry span, are sampled). The
server holds those spans in memory, per trace, and keeps the **whole trace** as soon as one of these is
true of it:

* a span of the trace is sampled (another service, or the app, decided to keep it);
* a span of the trace has error status;
* the trace lasts longer than the slow threshold (``OPSWATCH_TRACES_SLOW_MS``, the seed's 1,000 ms): from
  the earliest start to the latest end of the spans seen.

Kept, the held spans are written with the request that decided it (durable before its answer), and the
trace's later spans are written as they come, whatever their mark, until it has been quiet for the wait.
A trace none of that happened to by the time it has been quiet for ``OPSWATCH_TRACES_TAIL_WAIT`` seconds
(no span of it arrived) is dropped; its spans are counted in ``/metrics`` as
``opswatch_spans_sampled_out_total{reason="quiet"}``. Memory is bounded (``limits.TRACES_TAIL_*``): past
the spans or traces held, the traces quiet the longest are decided early (``reason="full"``), and a
trace past its own bound drops what it held so far (``reason="trace_full"``). On shutdown the server
decides what it holds with what it knows (``reason="shutdown"``): held spans are unsampled and did not
qualify, so they go.

A held span is in memory only: a server that is killed loses the spans it holds, which are spans the
SDK's head sampling would have dropped anyway.

``TailSampler`` is the decision, with an injected clock; ``TailJob`` runs its expiry in the background
(``ServerContext.background``); ``sampler(ctx)`` is the server's one sampler.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .. import limits
from ..metrics import Counter, Gauge
from .counters import once

if TYPE_CHECKING:
    from ..context import ServerContext

#: The row key ``native.py`` sets to False on a span the SDK did not sample; popped before storing.
SAMPLED: Final = "sampled"

TraceKey = tuple[int, str]


@dataclasses.dataclass
class _Held:
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    first_ns: int = 0
    last_ns: int = 0


class TailSampler:
    """The decisions (see the module docstring). Thread-safe; ``clock`` is monotonic seconds."""

    def __init__(
        self,
        *,
        wait: float,
        slow_ms: float,
        sampled_out: Counter | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_spans: int = limits.TRACES_TAIL_MAX_SPANS,
        max_traces: int = limits.TRACES_TAIL_MAX_TRACES,
        max_spans_per_trace: int = limits.TRACES_TAIL_MAX_SPANS_PER_TRACE,
    ) -> None:
        self.wait = wait
        self.slow_ns = round(slow_ms * 1e6)
        self.sampled_out = sampled_out or Counter("opswatch_spans_sampled_out_total", "")
        self._clock = clock
        self._max_spans = max_spans
        self._max_traces = max_traces
        self._max_per_trace = max_spans_per_trace
        self._lock = threading.Lock()
        #: Traces held, least recently active first; the value holds the spans.
        self._held: collections.OrderedDict[TraceKey, _Held] = collections.OrderedDict()
        #: When each held or kept trace last had a span, least recently active first.
        self._seen: collections.OrderedDict[TraceKey, float] = collections.OrderedDict()
        self._kept: set[TraceKey] = set()
        self._spans = 0

    @property
    def held_spans(self) -> int:
        """Spans held now."""
        return self._spans

    @property
    def held_traces(self) -> int:
        """Traces with spans held now."""
        return len(self._held)

    def offer(self, project_id: int, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """Take a batch's span rows; return those to store now (with the held spans of the traces this
        batch decided to keep) and how many of ``rows`` are held. Removes the ``sampled`` mark."""
        if not self._seen and not any(row.get(SAMPLED) is False for row in rows):
            return rows, 0  # the usual case: no tail sampling going on, nothing to look up
        now = self._clock()
        out: list[dict[str, Any]] = []
        with self._lock:
            for row in rows:
                sampled = row.pop(SAMPLED, True) is not False
                key = (project_id, row["trace_id"])
                self._touch(key, now)
                if key in self._kept:
                    out.append(row)
                elif sampled or row.get("status") == "error":
                    out.extend(self._keep(key))
                    out.append(row)
                else:
                    self._hold(key, row, out)
            self._expire(now)
            self._bound()
        going = {id(row) for row in out}
        return out, sum(id(row) not in going for row in rows)

    def expire(self) -> int:
        """Decide the traces quiet for ``wait`` seconds (drop the held ones); return the spans dropped."""
        with self._lock:
            return self._expire(self._clock())

    def drain(self) -> int:
        """Decide everything held (shutdown): drop it; return the spans dropped."""
        with self._lock:
            dropped = 0
            for key in list(self._held):
                dropped += self._drop(key, "shutdown")
            self._seen.clear()
            self._kept.clear()
            return dropped

    # -- under the lock ------------------------------------------------------------------------------

    def _touch(self, key: TraceKey, now: float) -> None:
        self._seen[key] = now
        self._seen.move_to_end(key)

    def _keep(self, key: TraceKey) -> list[dict[str, Any]]:
        self._kept.add(key)
        held = self._held.pop(key, None)
        if held is None:
            return []
        self._spans -= len(held.rows)
        return held.rows

    def _hold(self, key: TraceKey, row: dict[str, Any], out: list[dict[str, Any]]) -> None:
        """Hold ``row``; when it makes its trace slow enough to keep, the trace's held spans (it among
        them) go to ``out``."""
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held()
        elif len(held.rows) >= self._max_per_trace:
            self._drop(key, "trace_full")
            held = self._held[key] = _Held()
        self._held.move_to_end(key)
        start = _start_ns(row["timestamp"])
        end = start + round(float(row.get("duration_ms") or 0) * 1e6)
        held.first_ns = start if not held.rows else min(held.first_ns, start)
        held.last_ns = end if not held.rows else max(held.last_ns, end)
        held.rows.append(row)
        self._spans += 1
        if held.last_ns - held.first_ns > self.slow_ns:
            out.extend(self._keep(key))

    def _drop(self, key: TraceKey, reason: str) -> int:
        held = self._held.pop(key, None)
        if held is None:
            return 0
        self._spans -= len(held.rows)
        self.sampled_out.inc(len(held.rows), reason=reason)
        return len(held.rows)

    def _expire(self, now: float) -> int:
        dropped = 0
        while self._seen:
            key, last = next(iter(self._seen.items()))
            if now - last < self.wait:
                break
            del self._seen[key]
            self._kept.discard(key)
            dropped += self._drop(key, "quiet")
        return dropped

    def _bound(self) -> None:
        """Past the spans or traces held, decide the least recently active traces early."""
        while self._held and (self._spans > self._max_spans or len(self._held) > self._max_traces):
            key = next(iter(self._held))
            self._drop(key, "full")
            self._seen.pop(key, None)
        while len(self._seen) > self._max_traces * 2:  # kept traces remembered, bounded too
            key, _ = self._seen.popitem(last=False)
            self._kept.discard(key)
            self._drop(key, "full")


def _start_ns(stamp: str) -> int:
    """A row's ``timestamp`` (RFC 3339 UTC, ``model.format_nanos``) as epoch nanoseconds."""
    moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment - _EPOCH) // datetime.timedelta(microseconds=1) * 1000


_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class TailJob:
    """Expires quiet traces every ``tick`` seconds on its own thread; on ``stop`` drains the sampler."""

    def __init__(self, sampler: TailSampler, tick: float) -> None:
        self.sampler = sampler
        self.tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the expiry thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="opswatch-tail-sampling", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then decide what the sampler still holds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sampler.drain()

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self.sampler.expire()


_KEY = "opswatch.traces.tail"


def sampler(ctx: ServerContext) -> TailSampler:
    """The context's sampler (``install`` makes it; made here too for a context without subsystems)."""
    return once(ctx, _KEY, TailSampler, _make_sampler)


def _make_sampler(ctx: ServerContext) -> TailSampler:
    counter = Counter(
        "opswatch_spans_sampled_out_total",
        "Spans the SDK did not sample whose trace was not kept (tail sampling), by reason.",
    )
    made = TailSampler(
        wait=ctx.settings.traces_tail_wait, slow_ms=ctx.settings.traces_slow_ms, sampled_out=counter
    )
    ctx.metrics.add(counter)
    ctx.metrics.add(
        Gauge("opswatch_spans_held", "Unsampled spans held for tail sampling.", lambda: made.held_spans)
    )
    return made


def install(ctx: ServerContext) -> None:
    """Make the server's sampler and add its expiry worker to ``ctx.background``."""
    made = sampler(ctx)
    ctx.background.append(TailJob(made, tick=min(1.0, made.wait / 4)))
