"""Trace context across processes: reading W3C and Sentry headers, writing them on outgoing calls, and
the head-sampling decision.

Incoming: a W3C ``traceparent`` (with its ``tracestate``, kept to be forwarded) or, when there is none,
Sentry's ``sentry-trace: <trace id>-<span id>[-<sampled>]`` with the ``sentry-*`` items of ``baggage``
(Sentry's dynamic sampling context, forwarded unchanged so the whole trace keeps the head's decision).
The caller's sampled flag wins; without one, ``traces_sample_rate`` decides.

Outgoing: ``traceparent`` (plus the incoming ``tracestate``), ``sentry-trace`` and ``baggage``, always
all of them, as Sentry's SDK does, so a downstream service continues the trace whichever SDK it runs.
They are added only for URLs whose origin (``scheme://host[:port]``, no path, no query) matches one of
``trace_propagation_targets`` (``re.search``); with no targets nothing is ever added.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from .._limits import MAX_BAGGAGE_CHARS, MAX_TRACESTATE_CHARS
from .._runtime import STATE

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_SENTRY_TRACE = re.compile(r"[ \t]*([0-9a-f]{32})-([0-9a-f]{16})(?:-([01]))?[ \t]*")

#: Header names written on outgoing calls (lower case), in the order they are added.
OUTGOING: Final = ("traceparent", "tracestate", "sentry-trace", "baggage")

_random = random.random


@dataclass(frozen=True, slots=True)
class Incoming:
    """The caller's trace context: ids, its sampling decision (None: not said), what to forward."""

    trace_id: str
    span_id: str
    sampled: bool | None
    tracestate: str | None = None
    baggage: str | None = None


def _traceparent(value: str) -> tuple[str, str, bool] | None:
    value = value.strip()
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    rest = value[match.end():]
    if version == "ff" or (version == "00" and rest) or (rest and not rest.startswith("-")):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def sentry_items(baggage: str | None) -> str | None:
    """The ``sentry-*`` members of a ``baggage`` header, comma-joined, or None."""
    if not baggage or len(baggage) > MAX_BAGGAGE_CHARS:
        return None
    items = [item.strip() for item in baggage.split(",") if item.strip().startswith("sentry-")]
    return ",".join(items) or None


def parse_incoming(
    traceparent: str | None,
    tracestate: str | None = None,
    sentry_trace: str | None = None,
    baggage: str | None = None,
) -> Incoming | None:
    """The trace context a request's headers carry, or None when neither header is valid.

    A valid ``traceparent`` wins over ``sentry-trace``; ``tracestate`` is kept only with it (and only up to
    ``MAX_TRACESTATE_CHARS``), the ``sentry-*`` baggage only with ``sentry-trace``.
    """
    if traceparent:
        parsed = _traceparent(traceparent)
        if parsed is not None:
            state = tracestate.strip() if tracestate else None
            if state and len(state) > MAX_TRACESTATE_CHARS:
                state = None
            return Incoming(*parsed, tracestate=state or None, baggage=sentry_items(baggage))
    if sentry_trace:
        match = _SENTRY_TRACE.fullmatch(sentry_trace)
        if match is not None and match[1] != "0" * 32 and match[2] != "0" * 16:
            flag = match[3]
            return Incoming(match[1], match[2], None if flag is None else flag == "1",
                            baggage=sentry_items(baggage))  # fmt: skip
    return None


def sample_rate() -> float:
    """``traces_sample_rate`` of the running configuration (1.0 before ``init``)."""
    runtime = STATE.runtime
    return 1.0 if runtime is None else runtime.settings.traces_sample_rate


def head_decision() -> bool:
    """Sample a new trace? True with probability ``traces_sample_rate``."""
    rate = sample_rate()
    return rate >= 1.0 or (rate > 0.0 and _random() < rate)


_compiled: tuple[tuple[str, ...], tuple[re.Pattern[str], ...]] = ((), ())


def targets() -> Sequence[re.Pattern[str]]:
    """The compiled ``trace_propagation_targets`` of the running configuration (compiled once per list)."""
    global _compiled
    runtime = STATE.runtime
    if runtime is None:
        return ()
    wanted = runtime.settings.trace_propagation_targets
    if _compiled[0] is not wanted:
        _compiled = (wanted, tuple(re.compile(target) for target in wanted))
    return _compiled[1]


def propagates_to(url: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    """Whether trace headers may go to ``url``: its origin matches one of ``patterns``."""
    if not patterns:
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return False
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    return any(pattern.search(origin) for pattern in patterns)


def outgoing_headers(
    trace_id: str, span_id: str, sampled: bool, tracestate: str | None, baggage: str | None,
    existing_baggage: str | None,
) -> dict[str, str]:  # fmt: skip
    """The headers to add to an outgoing call made in span ``span_id`` of ``trace_id``.

    ``baggage`` is the incoming Sentry items (forwarded as received); without them this process heads
    the trace and writes its own (trace id, sample rate, decision). The request's own non-Sentry baggage
    (``existing_baggage``) is kept in front.
    """
    headers = {
        "traceparent": f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}",
        "sentry-trace": f"{trace_id}-{span_id}-{'1' if sampled else '0'}",
    }
    if tracestate:
        headers["tracestate"] = tracestate
    ours = baggage or (
        f"sentry-trace_id={trace_id},sentry-sample_rate={sample_rate():g},"
        f"sentry-sampled={'true' if sampled else 'false'}"
    )
    theirs = [
        item.strip() for item in (existing_baggage or "").split(",")
        if item.strip() and not item.strip().startswith("sentry-")
    ]  # fmt: skip
    headers["baggage"] = ",".join([*theirs, ours])
    return headers


def redacted_url(url: str) -> str:
    """``url`` for ``url.full``: no user or password, every query value replaced by ``REDACTED``."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
    except ValueError:
        return "[invalid url]"
    query = "&".join(
        f"{pair.split('=', 1)[0]}=REDACTED" if "=" in pair else pair
        for pair in parts.query.split("&") if pair
    )  # fmt: skip
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
