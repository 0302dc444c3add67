"""Test helpers for alerts: an in-memory transport, a manual clock, and ``capture_alerts()``.

Test that your code raises the right alert, with no network::

    from opswatch.alerts.testing import capture_alerts

    with capture_alerts() as alerts:
        log.error("Payment failed", operation="payment.stripe.charge", amount=100)
    assert alerts[0].title == "Payment Failure"

Test a channel or a notifier against scripted answers::

    transport = MemoryTransport([Answer(503), Answer(200, "ok")])
    notifier = Notifier([SlackChannel("https://hooks.slack.com/services/T/B/X", transport=transport)])
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import orjson

from .._runtime import STATE
from .channels.base import Answer, Channel, TransportError
from .delivery import Notifier
from .message import Alert
from .routing import Router, parse_routes, router_from_settings
from .sink import AlertSink


@dataclasses.dataclass(frozen=True)
class SentRequest:
    """One request a ``MemoryTransport`` received."""

    url: str
    body: bytes
    headers: Mapping[str, str]

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


ScriptedAnswer = Answer | Exception | Callable[[SentRequest], Answer]


class MemoryTransport:
    """A transport that records every request and answers from a script.

    ``answers`` are used in order, the last one repeating; each is an ``Answer``, an exception to raise
    (``TransportError("refused")`` for "no answer"), or a function of the request. Default: 200 ``ok``.
    """

    def __init__(self, answers: Sequence[ScriptedAnswer] = ()) -> None:
        self.answers = list(answers) or [Answer(200, "ok")]
        self.requests: list[SentRequest] = []
        self._lock = threading.Lock()
        self.closed = False

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        request = SentRequest(url, body, dict(headers))
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
            answer = self.answers[min(index, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def close(self) -> None:
        self.closed = True


class ManualClock:
    """A clock that moves only when told (``advance``). The worker's waits end when the clock reaches
    their end or new work arrives; real time plays no part, so tests run 10 minutes in milliseconds."""

    def __init__(self, start: float = 1_000.0, wall: float = 1_700_000_000.0) -> None:
        self._now = start
        self._offset = wall - start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float | None, wake: threading.Event) -> None:
        if seconds is None:
            wake.wait()
            return
        end = self._now + seconds
        while self._now < end and not wake.is_set():
            wake.wait(0.002)


class MemoryChannel(Channel):
    """A channel that keeps every alert it is given and answers 200."""

    kind: ClassVar[str] = "memory"

    def __init__(self, name: str = "memory") -> None:
        super().__init__("http://memory.invalid/", name=name, transport=MemoryTransport())
        self.alerts: list[Alert] = []

    def encode(self, alert: Alert, text_only: bool) -> tuple[bytes, dict[str, str]]:
        self.alerts.append(alert)
        return b"", {}


class CapturedAlerts(Sequence[Alert]):
    """The alerts a ``capture_alerts`` block produced, in order (each alert once, whatever its channels).
    Reading it first waits for delivery of what is pending."""

    def __init__(self, notifier: Notifier, channels: Sequence[MemoryChannel]) -> None:
        self.notifier = notifier
        self._channels = channels

    @property
    def alerts(self) -> list[Alert]:
        """Every alert delivered so far (after a flush)."""
        self.notifier.flush(5.0)
        seen: set[int] = set()
        out: list[Alert] = []
        for channel in self._channels:
            for alert in channel.alerts:
                if id(alert) not in seen:
                    seen.add(id(alert))
                    out.append(alert)
        return sorted(out, key=lambda a: a.timestamp)

    def by_channel(self, name: str) -> list[Alert]:
        """The alerts delivered to channel ``name``."""
        self.notifier.flush(5.0)
        return next((list(c.alerts) for c in self._channels if c.name == name), [])

    def __getitem__(self, index: Any) -> Any:
        return self.alerts[index]

    def __len__(self) -> int:
        return len(self.alerts)

    def __repr__(self) -> str:
        return f"<CapturedAlerts {[a.title for a in self.alerts]}>"


@contextlib.contextmanager
def capture_alerts(
    routes: Sequence[Mapping[str, Any]] | None = None,
    *,
    repeat_interval: float = 0.0,
) -> Iterator[CapturedAlerts]:
    """Route what the block logs through the alert routes into memory (no network, no pacing).

    ``routes``: route tables (default: the configured routes, else the seed's table). ``repeat_interval``
    is 0 by default so every alert shows; pass a number to test repeat counting. ``send_slack_notification``
    inside the block is captured too (on the ``slack`` channel).
    """
    runtime = STATE.get()
    router = (
        Router(parse_routes(routes, setting="routes"))
        if routes is not None
        else router_from_settings(runtime.settings)
    )
    names = {"slack"} | {name for route in router.routes for name in (route.channels or ())}
    channels = [MemoryChannel(name) for name in sorted(names)]
    notifier = Notifier(channels, pace=0.0, repeat_interval=repeat_interval, name="opswatch-alerts-capture")
    sink = AlertSink(notifier, router)
    runtime.add_sink(sink)
    # the capture sink must be found first by send_slack_notification
    runtime.sinks = [sink, *(s for s in runtime.sinks if s is not sink)]
    try:
        yield CapturedAlerts(notifier, channels)
    finally:
        runtime.remove_sink(sink)
        notifier.flush(5.0)
        notifier.close(1.0)


__all__ = [
    "Answer",
    "CapturedAlerts",
    "ManualClock",
    "MemoryChannel",
    "MemoryTransport",
    "SentRequest",
    "TransportError",
    "capture_alerts",
]
