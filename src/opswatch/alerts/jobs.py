"""What goes into the notifier's queue, and the ticket a caller gets back.

A ``Request`` is one alert for some channels, with the key that recognises its repeats. Anything with an
``expand()`` method returning requests can be queued (a ``Job``): the alert sink queues the raw record and
routing happens on the worker thread, so the application's ``log.error`` pays for one queue append.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import Literal, Protocol

from .message import Alert

State = Literal["queued", "delivered", "suppressed", "failed", "dropped", "partial", "skipped"]


class Delivery:
    """The fate of one alert given to ``Notifier.send``: ``state`` and, per channel, ``results``.

    States: ``queued`` (not decided yet), ``delivered`` (every channel said yes), ``suppressed`` (a repeat
    inside the repeat interval: counted, announced later with "N more since"), ``failed`` (a permanent
    error or retries exhausted; ``error`` says why), ``dropped`` (the queue was full, or shutdown came
    first), ``partial`` (some channels delivered, some did not), ``skipped`` (no channel to send to).
    """

    def __init__(self, alert: Alert, channels: Iterable[str]) -> None:
        self.alert = alert
        self.state: State = "queued"
        self.error: str | None = None
        self.results: dict[str, State] = {}
        self._waiting = set(channels)
        self._done = threading.Event()
        if not self._waiting:
            self._complete("skipped")

    @property
    def done(self) -> bool:
        """True once the state is final."""
        return self._done.is_set()

    @property
    def ok(self) -> bool:
        """Delivered, or counted as a repeat of a delivered alert."""
        return self.state in ("delivered", "suppressed")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the state is final; True when it is (not necessarily delivered: see ``ok``)."""
        return self._done.wait(timeout)

    def settle(self, channel: str, state: State, error: str | None = None) -> None:
        """Record what happened on ``channel`` (called by the worker)."""
        if channel not in self._waiting:
            return
        self._waiting.discard(channel)
        self.results[channel] = state
        if error and self.error is None:
            self.error = f"{channel}: {error}"
        if not self._waiting:
            states = set(self.results.values())
            if len(states) == 1:
                self._complete(states.pop())
            elif "delivered" in states:
                self._complete("partial")
            else:
                self._complete("failed")

    def finish(self, state: State, error: str | None = None) -> None:
        """Settle every channel still waiting with ``state``."""
        for channel in list(self._waiting):
            self.settle(channel, state, error)
        if not self.done:
            self._complete(state)

    def _complete(self, state: State) -> None:
        self.state = state
        self._done.set()

    def __repr__(self) -> str:
        return f"<Delivery {self.alert.title!r} {self.state}>"


@dataclasses.dataclass
class Request:
    """One alert for ``channels`` (None: every channel); ``key`` recognises repeats (route + fingerprint)."""

    alert: Alert
    key: str
    channels: tuple[str, ...] | None = None
    delivery: Delivery | None = None

    def expand(self) -> Iterable[Request]:
        """A request is a job of one request."""
        return (self,)


class Job(Protocol):
    """Queued work: turned into requests on the worker thread."""

    def expand(self) -> Iterable[Request]: ...
