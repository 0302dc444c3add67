"""Tail sampling on the server: spans marked ``"sampled": false`` wait per trace until the trace is quiet;
a trace with a sampled span, an error or a slow stretch is kept whole, the others are dropped and counted.
The decisions with an injected clock, then end to end through HTTP against a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from opswatch.config import ConfigError
from opswatch.server import limits
from opswatch.server.config import ServerSettings
from opswatch.server.query import run_query
from opswatch.server.testing import RunningServer, running_server
from opswatch.server.traces import tail
from opswatch.server.traces.model import span_row

START_NS = 1_764_756_000 * 10**9
MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def row(trace: int, span: int, *, at_ms: float = 0, ms: float = 5, status: str = "unset",
        sampled: bool | None = False) -> dict[str, Any]:  # fmt: skip
    start = START_NS + round(at_ms * MS)
    made = span_row(
        trace_id=f"{trace:032x}", span_id=f"{span:016x}", parent_span_id=None, name=f"op {span}",
        kind="internal", start_ns=start, end_ns=start + round(ms * MS), status=status,
        received_at="2025-12-03T10:00:00.000Z",
    )  # fmt: skip
    if sampled is not None:
        made[tail.SAMPLED] = sampled
    return made


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["span_id"][-2:] for r in rows]


def sampler(clock: Clock, **bounds: int) -> tail.TailSampler:
    return tail.TailSampler(wait=10.0, slow_ms=1000, clock=clock, **bounds)


def test_it_holds_unsampled_spans_and_drops_the_trace_once_quiet_for_the_wait() -> None:
    clock = Clock()
    made = sampler(clock)
    assert made.offer(1, [row(1, 1), row(1, 2)]) == ([], 2)
    clock.now += 9.9
    assert made.offer(1, [row(1, 3, at_ms=10)]) == ([], 1)  # the trace is still active
    clock.now += 9.9
    assert made.expire() == 0
    clock.now += 0.1
    assert made.expire() == 3
    assert (made.held_spans, made.held_traces) == (0, 0)
    assert made.sampled_out.value(reason="quiet") == 3


def test_it_keeps_the_whole_trace_when_a_span_has_error_status() -> None:
    made = sampler(Clock())
    made.offer(1, [row(1, 1), row(1, 2)])
    out, held = made.offer(1, [row(1, 3, status="error"), row(2, 4)])
    assert (ids(out), held) == (["01", "02", "03"], 1)
    assert all(tail.SAMPLED not in r for r in out)
    later, _ = made.offer(1, [row(1, 5)])  # the trace is kept: its later spans are written as they come
    assert ids(later) == ["05"]


def test_it_keeps_the_whole_trace_when_one_span_is_sampled() -> None:
    made = sampler(Clock())
    made.offer(1, [row(1, 1)])
    out, held = made.offer(1, [row(1, 2, sampled=None)])
    assert (ids(out), held) == (["01", "02"], 0)


def test_it_keeps_a_trace_lasting_longer_than_the_slow_threshold_from_first_start_to_last_end() -> None:
    made = sampler(Clock())
    assert made.offer(1, [row(1, 1, at_ms=0, ms=400), row(1, 2, at_ms=500, ms=500)]) == ([], 2)  # 1000 ms
    out, held = made.offer(1, [row(1, 3, at_ms=900, ms=101)])  # now 1001 ms
    assert (ids(out), held) == (["01", "02", "03"], 0)


def test_it_keeps_traces_of_different_projects_apart() -> None:
    made = sampler(Clock())
    made.offer(1, [row(1, 1)])
    out, _ = made.offer(2, [row(1, 2, status="error")])
    assert ids(out) == ["02"]
    assert made.held_spans == 1


def test_it_passes_sampled_batches_through_untouched_when_nothing_is_held() -> None:
    made = sampler(Clock())
    rows = [row(1, 1, sampled=None), row(2, 2, sampled=None)]
    assert made.offer(1, rows) == (rows, 0)


def test_it_drops_the_oldest_traces_early_past_the_spans_it_may_hold() -> None:
    clock = Clock()
    made = sampler(clock, max_spans=3)
    made.offer(1, [row(1, 1), row(1, 2)])
    clock.now += 1
    made.offer(1, [row(2, 3), row(2, 4)])
    assert (made.held_traces, made.held_spans) == (1, 2)
    assert made.sampled_out.value(reason="full") == 2
    out, _ = made.offer(1, [row(2, 5, status="error")])
    assert ids(out) == ["03", "04", "05"]


def test_it_holds_at_most_max_traces() -> None:
    made = sampler(Clock(), max_traces=2)
    made.offer(1, [row(1, 1), row(2, 2), row(3, 3)])
    assert made.held_traces == 2
    assert made.sampled_out.value(reason="full") == 1


def test_it_drops_what_a_trace_held_past_its_own_bound_and_holds_again() -> None:
    made = sampler(Clock(), max_spans_per_trace=2)
    made.offer(1, [row(1, 1), row(1, 2), row(1, 3)])
    assert made.held_spans == 1
    assert made.sampled_out.value(reason="trace_full") == 2


def test_on_shutdown_it_decides_what_it_holds() -> None:
    made = sampler(Clock())
    made.offer(1, [row(1, 1), row(2, 2)])
    job = tail.TailJob(made, tick=60)
    job.start()
    job.stop()
    assert made.held_spans == 0
    assert made.sampled_out.value(reason="shutdown") == 2


def test_the_limits_are_the_documented_defaults_and_the_settings_are_checked(tmp_path: Path) -> None:
    settings = ServerSettings.load(environ={}, data_dir=tmp_path)
    assert (settings.traces_tail_wait, settings.traces_slow_ms) == (limits.TRACES_TAIL_WAIT_SECONDS, 1000)
    chosen = ServerSettings.load(
        environ={"OPSWATCH_TRACES_TAIL_WAIT": "2.5", "OPSWATCH_TRACES_SLOW_MS": "300"}, data_dir=tmp_path
    )
    assert (chosen.traces_tail_wait, chosen.traces_slow_ms) == (2.5, 300)
    with pytest.raises(ConfigError, match="OPSWATCH_TRACES_TAIL_WAIT"):
        ServerSettings.load(environ={"OPSWATCH_TRACES_TAIL_WAIT": "0"}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="OPSWATCH_TRACES_SLOW_MS"):
        ServerSettings.load(environ={"OPSWATCH_TRACES_SLOW_MS": "fast"}, data_dir=tmp_path)


# -- end to end: native span records over HTTP ----------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path, traces_tail_wait=0.5, traces_slow_ms=200) as running:
        yield running


def record(trace: str, span: str, *, at_ms: float = 0, ms: float = 5, status: str = "ok",
           sampled: bool = False) -> dict[str, Any]:  # fmt: skip
    base = time.time_ns() - 60_000 * MS
    made = {"kind": "span", "trace_id": trace, "span_id": span, "name": f"step {span[-2:]}",
            "span_kind": "internal", "start_unix_nano": base + round(at_ms * MS), "duration_ms": ms,
            "status": status, "timestamp": "2025-12-03T10:00:00.000Z", "level": "info", "message": "span",
            "service": "checkout"}  # fmt: skip
    if not sampled:
        made["sampled"] = False
    return made


def send(server: RunningServer, *records: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/api/{server.project_id}/events/",
                        content=b"\n".join(orjson.dumps(r) for r in records),
                        headers={"authorization": f"Bearer {server.key}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def stored(server: RunningServer, trace: str) -> list[str]:
    found = run_query(
        server.ctx.store, f"SELECT span_id FROM spans WHERE trace_id = '{trace}' ORDER BY span_id"
    )
    return [r[0][-2:] for r in found.rows]


def sampled_out(server: RunningServer) -> float:
    total = 0.0
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("opswatch_spans_sampled_out_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_over_http_quiet_unsampled_traces_go_and_errors_slow_and_sampled_ones_stay(
    server: RunningServer,
) -> None:
    quiet, failing, slow, mixed = (f"{n:032x}" for n in (0xA1, 0xB2, 0xC3, 0xD4))
    answer = send(server, record(quiet, "00000000000000a1"), record(quiet, "00000000000000a2"),
                  record(failing, "00000000000000b1"), record(slow, "00000000000000c1", ms=150),
                  record(mixed, "00000000000000d1"))  # fmt: skip
    assert (answer["accepted"], answer["duplicates"]) == (5, 0)  # held spans are taken
    assert [stored(server, t) for t in (quiet, failing, slow, mixed)] == [[], [], [], []]
    send(server, record(failing, "00000000000000b2", status="error"),
         record(slow, "00000000000000c2", at_ms=100, ms=150),
         record(mixed, "00000000000000d2", sampled=True))  # fmt: skip
    assert stored(server, failing) == ["b1", "b2"]
    assert stored(server, slow) == ["c1", "c2"]  # 250 ms > 200 ms
    assert stored(server, mixed) == ["d1", "d2"]
    deadline = time.monotonic() + 30
    while sampled_out(server) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sampled_out(server) == 2
    assert stored(server, quiet) == []
    assert 'opswatch_spans_sampled_out_total{reason="quiet"} 2' in httpx.get(f"{server.url}/metrics").text


def test_over_http_spans_held_at_shutdown_are_decided_and_counted(tmp_path: Path) -> None:
    with running_server(tmp_path, traces_tail_wait=600) as running:
        send(running, record(f"{0xE5:032x}", "00000000000000e1"))
        held = tail.sampler(running.ctx)
        assert held.held_spans == 1
    assert (held.held_spans, held.sampled_out.value(reason="shutdown")) == (0, 1)


def test_the_default_bounds_hold_up_to_their_limit_and_decide_past_it() -> None:
    made = tail.TailSampler(wait=10.0, slow_ms=10**9, clock=Clock())
    per_trace = limits.TRACES_TAIL_MAX_SPANS_PER_TRACE
    made.offer(1, [row(1, n + 1, at_ms=n / 1000) for n in range(per_trace)])
    assert (made.held_spans, made.sampled_out.total()) == (per_trace, 0)
    made.offer(1, [row(1, per_trace + 1)])
    assert (made.held_spans, made.sampled_out.value(reason="trace_full")) == (1, per_trace)
    traces = limits.TRACES_TAIL_MAX_TRACES
    made.offer(1, [row(t + 2, 1) for t in range(traces - 1)])
    assert (made.held_traces, made.sampled_out.value(reason="full")) == (traces, 0)
    made.offer(1, [row(traces + 5, 1)])
    assert (made.held_traces, made.sampled_out.value(reason="full")) == (traces, 1)
