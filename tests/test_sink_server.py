"""The server sink (OPSWATCH_DSN transport), against a real HTTP server on 127.0.0.1 in a thread.

The cast: "the ingest server" is a small ``http.server`` speaking the native protocol (gunzip, NDJSON,
Bearer key, dedupe by ``event_id``) that answers as each test scripts it: 200, 503s, 429 with
Retry-After, 413 past a batch size, 400, per-record rejections, or not at all (a closed port).
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import opswatch
from opswatch.config import ConfigError, Settings
from opswatch.sinks._transport import MemoryTransport, Request, Response
from opswatch.sinks.server import THREAD_NAME, ServerSink, from_settings

KEY = "ingestkey"

Script = tuple[int, dict[str, str], bytes]


class IngestServer:
    """The ingest server: a threaded HTTP server that stores native batches and answers as scripted."""

    def __init__(self, port: int = 0) -> None:
        self.script: list[Script] = []  # one answer per request, consumed first; then the protocol
        self.reject: Callable[[dict[str, Any]], str | None] = lambda event: None
        self.max_lines: int | None = None  # answer 413 to bigger batches
        self.hang: threading.Event | None = None  # when set, requests wait for it
        self.requests: list[dict[str, Any]] = []
        self.events: dict[str, dict[str, Any]] = {}  # event_id -> event, in arrival order
        self.stored: list[str] = []  # every stored event_id, repeats included (must have none)
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, headers, answer = owner.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (a test closed it mid-request)
                    self.wfile.write(answer)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def dsn(self) -> str:
        return f"http://{KEY}@127.0.0.1:{self.port}/1"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Script:
        lowered = {k.lower(): v for k, v in headers.items()}
        data = gzip.decompress(body) if lowered.get("content-encoding") == "gzip" else body
        events = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        with self._lock:
            self.requests.append(
                {"time": time.monotonic(), "path": path, "headers": lowered, "events": events}
            )
        if self.hang is not None:
            self.hang.wait(10)
        with self._lock:
            if self.script:
                return self.script.pop(0)
        if path != "/api/1/events/":
            return 404, {}, b'{"detail": "no such project"}'
        if lowered.get("authorization") != f"Bearer {KEY}":
            return 401, {}, b'{"detail": "bad key"}'
        if self.max_lines is not None and len(events) > self.max_lines:
            return 413, {}, b'{"detail": "too many events in one batch"}'
        accepted = duplicates = 0
        rejected = []
        with self._lock:
            for index, event in enumerate(events):
                why = self.reject(event)
                if why:
                    rejected.append({"index": index, "reason": why})
                elif event["event_id"] in self.events:
                    duplicates += 1
                else:
                    self.events[event["event_id"]] = event
                    self.stored.append(event["event_id"])
                    accepted += 1
        answer = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}
        if rejected and not accepted and not duplicates:  # as the real server: 400 when nothing is valid
            return 400, {}, orjson.dumps({"detail": "no event in the batch is valid", **answer})
        return 200, {}, orjson.dumps(answer)

    def messages(self) -> list[str]:
        with self._lock:
            return [event["message"] for event in self.events.values()]

    def stop(self) -> None:
        if self.hang is not None:
            self.hang.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def record(message: str, **fields: Any) -> dict[str, Any]:
    return {"timestamp": "2025-11-01T02:00:00.000Z", "level": "info", "message": message, **fields}


@pytest.fixture
def server() -> Iterator[IngestServer]:
    ingest = IngestServer()
    yield ingest
    ingest.stop()


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[Callable[..., ServerSink]]:
    """``make_sink(dsn, **options)``: a sink with short intervals and a spool in the test's tmp dir."""
    sinks: list[ServerSink] = []

    def make(dsn: str, **options: Any) -> ServerSink:
        options.setdefault("spool_dir", str(tmp_path / "spool"))
        options.setdefault("batch_interval", 0.05)
        options.setdefault("backoff_base", 0.02)
        options.setdefault("backoff_max", 0.2)
        options.setdefault("timeout", 5.0)
        sink = ServerSink(dsn, **options)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=2.0)


def spooled_files(path: Path) -> list[str]:
    """Batch files in a spool directory, claimed ones (``<name>.<pid>.sending``) included."""
    names = [p.name for p in path.iterdir()] if path.exists() else []
    return sorted(name for name in names if ".ndjson.gz" in name and not name.startswith("."))


# -- delivering ---------------------------------------------------------------------------------------


def test_it_posts_gzipped_ndjson_with_the_bearer_key(server: IngestServer, make_sink: Any) -> None:
    sink = make_sink(server.dsn)
    for n in range(3):
        sink.write(record(f"donation {n}", event_id=f"{n:032x}", amount=n))

    assert sink.flush(30)

    (request,) = server.requests
    assert request["path"] == "/api/1/events/"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["headers"]["content-encoding"] == "gzip"
    assert request["headers"]["content-type"] == "application/x-ndjson"
    assert [e["message"] for e in request["events"]] == ["donation 0", "donation 1", "donation 2"]
    assert request["events"][2] == record("donation 2", event_id=f"{2:032x}", amount=2)
    assert sink.stats()["sent"] == 3 and sink.stats()["accepted"] == 3


def test_it_gives_an_event_id_to_a_record_without_one(server: IngestServer, make_sink: Any) -> None:
    sink = make_sink(server.dsn)
    original = record("no id")
    sink.write(original)

    assert sink.flush(30)

    (event,) = server.events.values()
    assert len(event["event_id"]) == 32
    assert "event_id" not in original  # the record given to the sink is never changed


def test_it_batches_by_count(server: IngestServer, make_sink: Any) -> None:
    sink = make_sink(server.dsn, batch_size=10, batch_interval=60.0)
    for n in range(25):
        sink.write(record(f"r{n}"))

    assert wait_for(lambda: len(server.requests) == 2)
    assert [len(r["events"]) for r in server.requests] == [10, 10]
    assert sink.flush(30)
    assert [len(r["events"]) for r in server.requests] == [10, 10, 5]
    assert server.messages() == [f"r{n}" for n in range(25)]


def test_it_batches_by_bytes(server: IngestServer, make_sink: Any) -> None:
    sink = make_sink(server.dsn, batch_bytes=1000, batch_interval=60.0)
    for n in range(10):
        sink.write(record(f"r{n}", blob="x" * 300))

    assert sink.flush(30)

    assert all(len(r["events"]) <= 2 for r in server.requests)
    assert server.messages() == [f"r{n}" for n in range(10)]


def test_it_sends_a_partial_batch_after_the_interval_without_a_flush(
    server: IngestServer, make_sink: Any
) -> None:
    sink = make_sink(server.dsn, batch_size=1000, batch_interval=0.05)
    sink.write(record("lonely"))

    assert wait_for(lambda: server.messages() == ["lonely"])


# -- retrying -----------------------------------------------------------------------------------------


def test_it_retries_5xx_with_the_same_event_ids_and_stores_nothing_twice(
    server: IngestServer, make_sink: Any
) -> None:
    server.script = [(503, {}, b'{"detail": "busy"}'), (502, {}, b"bad gateway")]
    sink = make_sink(server.dsn)
    for n in range(5):
        sink.write(record(f"r{n}"))

    assert sink.flush(30)

    assert len(server.requests) == 3
    ids = [[e["event_id"] for e in r["events"]] for r in server.requests]
    assert ids[0] == ids[1] == ids[2]
    assert server.messages() == [f"r{n}" for n in range(5)]
    assert sink.stats()["retries"] == 2 and sink.stats()["send_errors"] == 2


def test_it_stores_nothing_twice_when_an_answer_is_lost(server: IngestServer, make_sink: Any) -> None:
    # The server stored the batch but the answer said 500 (a proxy timed out): the retry is a duplicate.
    sink = make_sink(server.dsn)
    original = server.handle

    def store_then_fail(path: str, headers: dict[str, str], body: bytes) -> Script:
        server.handle = original  # type: ignore[method-assign]
        original(path, headers, body)
        return 500, {}, b"upstream timed out"

    server.handle = store_then_fail  # type: ignore[method-assign]
    for n in range(4):
        sink.write(record(f"r{n}"))

    assert sink.flush(30)

    assert len(server.stored) == 4
    assert sink.stats()["duplicates"] == 4


def test_it_honours_retry_after_on_429(server: IngestServer, make_sink: Any) -> None:
    server.script = [(429, {"Retry-After": "0.3"}, b'{"detail": "slow down"}')]
    sink = make_sink(server.dsn, backoff_base=0.01)
    sink.write(record("patient"))

    assert sink.flush(30)

    first, second = server.requests
    assert second["time"] - first["time"] >= 0.3
    assert server.messages() == ["patient"]


def test_it_retries_a_408(server: IngestServer, make_sink: Any) -> None:
    server.script = [(408, {}, b"")]
    sink = make_sink(server.dsn)
    sink.write(record("again"))

    assert sink.flush(30)
    assert server.messages() == ["again"]


def test_it_spools_while_the_server_is_down_and_replays_in_order_when_it_returns(
    tmp_path: Path, make_sink: Any
) -> None:
    port = free_port()
    sink = make_sink(f"http://{KEY}@127.0.0.1:{port}/1")
    for n in range(3):
        sink.write(record(f"first {n}"))
    assert not sink.flush(0.3)
    for n in range(3):
        sink.write(record(f"second {n}"))
    assert not sink.flush(0.3)

    assert len(spooled_files(tmp_path / "spool")) >= 2
    assert sink.stats()["backlog_records"] == 6

    returned = IngestServer(port)
    try:
        assert sink.flush(30)
        assert returned.messages() == [f"first {n}" for n in range(3)] + [f"second {n}" for n in range(3)]
        assert spooled_files(tmp_path / "spool") == []
        assert sink.stats()["backlog_records"] == 0
    finally:
        sink.close(2.0)
        returned.stop()


def test_it_keeps_spooled_batches_for_the_next_run(tmp_path: Path, make_sink: Any) -> None:
    port = free_port()
    first_run = make_sink(f"http://{KEY}@127.0.0.1:{port}/1")
    first_run.write(record("from the first run"))
    first_run.close(timeout=1.0)
    assert len(spooled_files(tmp_path / "spool")) == 1

    returned = IngestServer(port)
    try:
        second_run = make_sink(f"http://{KEY}@127.0.0.1:{port}/1")
        assert second_run.flush(30)
        assert returned.messages() == ["from the first run"]
    finally:
        returned.stop()


def test_it_drops_the_oldest_spooled_batches_past_the_bound_and_counts_them(
    tmp_path: Path, make_sink: Any
) -> None:
    port = free_port()
    sink = make_sink(f"http://{KEY}@127.0.0.1:{port}/1", max_spool_bytes=600, backoff_base=5.0)
    for n in range(6):
        sink.write(record(f"batch {n}", padding=os.urandom(100).hex()))  # ~250 bytes gzipped each
        sink.flush(0.1)

    stats = sink.stats()
    assert stats["dropped_spool_full"] > 0
    assert stats["dropped"] == stats["dropped_spool_full"]
    assert stats["backlog_bytes"] <= 600
    kept = stats["backlog_records"]

    returned = IngestServer(port)
    try:
        sink.close(0)  # stop retrying on the long backoff; the next run replays the spool
        replay = make_sink(f"http://{KEY}@127.0.0.1:{port}/1")
        assert replay.flush(30)
        messages = returned.messages()
        # The drop report may reach the spool before the close, or not: either way it counts the drops.
        reports = [m for m in messages if m.startswith("opswatch dropped")]
        assert all(0 < int(m.split()[2]) <= stats["dropped"] for m in reports)
        assert [m for m in messages if m not in reports] == [f"batch {n}" for n in range(6 - kept, 6)]
    finally:
        returned.stop()


def test_it_keeps_failed_batches_in_memory_without_a_spool(make_sink: Any) -> None:
    port = free_port()
    sink = make_sink(f"http://{KEY}@127.0.0.1:{port}/1", spool=False)
    sink.write(record("held"))
    assert not sink.flush(0.2)
    assert sink.stats()["spool_dir"] is None

    returned = IngestServer(port)
    try:
        assert sink.flush(30)
        assert returned.messages() == ["held"]
    finally:
        sink.close(1.0)
        returned.stop()


# -- refusing -----------------------------------------------------------------------------------------


def test_it_drops_a_batch_refused_with_a_4xx_says_so_once_and_carries_on(
    server: IngestServer, make_sink: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script = [(400, {}, b'{"detail": "no valid events"}'), (400, {}, b'{"detail": "again"}')]
    sink = make_sink(server.dsn, batch_interval=60.0)
    sink.write(record("refused 1"))
    assert not sink.flush(5.0)
    sink.write(record("refused 2"))
    assert not sink.flush(5.0)
    sink.write(record("kept"))
    assert sink.flush(30)  # nothing lost since the previous flush

    assert server.messages() == ["kept"]
    stats = sink.stats()
    assert stats["refused"] == 2 and stats["retries"] == 0
    err = capsys.readouterr().err
    assert err.count("refused a batch") == 1
    assert "HTTP 400" in err and "no valid events" in err


def test_it_does_not_retry_a_bad_key_and_its_flush_says_so(
    server: IngestServer, make_sink: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = make_sink(f"http://wrongkey@127.0.0.1:{server.port}/1")
    sink.write(record("unauthorized"))
    assert not sink.flush(5.0)
    sink.write(record("unauthorized again"))
    assert not sink.flush(5.0)

    assert len(server.requests) == 2
    assert sink.stats()["refused"] == 2 and sink.stats()["last_status"] == 401
    err = capsys.readouterr().err
    assert err.count("HTTP 401") == 1
    assert "bad key" in err and "OPSWATCH_DSN" in err


def test_it_returns_false_from_flush_for_an_unknown_project_and_says_why_once(
    server: IngestServer, make_sink: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = make_sink(f"http://{KEY}@127.0.0.1:{server.port}/99")
    for n in range(3):
        sink.write(record(f"nowhere {n}"))
        assert not sink.flush(5.0)

    assert sink.stats()["refused"] == 3 and sink.stats()["last_status"] == 404
    err = capsys.readouterr().err
    assert err.count("HTTP 404") == 1 and "no such project" in err


def test_it_counts_records_the_server_rejects_by_index(
    server: IngestServer, make_sink: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reject = lambda event: "amount is not a number" if event.get("amount") == "lots" else None
    sink = make_sink(server.dsn)
    sink.write(record("ok 1", amount=1))
    sink.write(record("bad", amount="lots"))
    sink.write(record("ok 2", amount=2))

    assert not sink.flush(5.0)  # one record did not make it

    assert server.messages() == ["ok 1", "ok 2"]
    stats = sink.stats()
    assert (stats["accepted"], stats["rejected"]) == (2, 1)
    assert "index 1: amount is not a number" in capsys.readouterr().err


def test_it_counts_a_batch_of_only_invalid_records_as_rejected_and_moves_on(
    server: IngestServer, make_sink: Any
) -> None:
    server.reject = lambda event: "no message" if event["message"] == "" else None
    sink = make_sink(server.dsn, batch_interval=60.0)
    sink.write(record(""))
    sink.write(record(""))
    assert not sink.flush(5.0)
    sink.write(record("valid"))
    assert sink.flush(30)

    assert server.messages() == ["valid"]
    stats = sink.stats()
    assert (stats["rejected"], stats["refused"], stats["retries"]) == (2, 0, 0)
    assert stats["last_status"] == 200


def test_it_splits_a_batch_the_server_finds_too_large(server: IngestServer, make_sink: Any) -> None:
    server.max_lines = 2
    sink = make_sink(server.dsn, batch_interval=60.0)
    for n in range(7):
        sink.write(record(f"r{n}"))

    assert sink.flush(30)

    assert server.messages() == [f"r{n}" for n in range(7)]
    assert sink.stats()["refused"] == 0


# -- bounds and failures ------------------------------------------------------------------------------


def test_it_spills_a_full_queue_to_the_spool_instead_of_dropping(tmp_path: Path, make_sink: Any) -> None:
    port = free_port()
    sink = make_sink(f"http://{KEY}@127.0.0.1:{port}/1", max_queue=5, batch_size=5, batch_interval=60.0)
    for n in range(23):
        sink.write(record(f"r{n}"))

    stats = sink.stats()
    assert stats["dropped"] == 0
    assert stats["queued"] <= 5
    assert stats["queued"] + stats["backlog_records"] == 23
    assert spooled_files(tmp_path / "spool")

    returned = IngestServer(port)
    try:
        assert sink.flush(30)
        assert sorted(returned.messages()) == sorted(f"r{n}" for n in range(23))
        assert len(returned.stored) == 23
    finally:
        sink.close(2.0)
        returned.stop()


def test_it_counts_every_drop_in_stats_stderr_flush_a_record_and_a_client_report(
    tmp_path: Path, make_sink: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    sink = make_sink(
        f"http://{KEY}@127.0.0.1:{port}/1",
        max_queue=5,
        batch_size=5,
        max_spool_bytes=700,
        batch_interval=60.0,
    )
    for n in range(40):  # the server is down: the spool takes what it can, the oldest batches go
        sink.write(record(f"r{n}", padding=os.urandom(60).hex()))
    stats = sink.stats()
    dropped = stats["dropped"]
    assert dropped > 0 and stats["dropped_spool_full"] == dropped
    assert capsys.readouterr().err.count("opswatch: dropping records") == 1

    returned = IngestServer(port)
    try:
        assert not sink.flush(5.0)  # everything left was delivered, but some records were lost
        assert sink.flush(30)  # nothing lost since
        reports = [e for e in returned.events.values() if e.get("operation") == "opswatch.dropped"]
        (report,) = reports
        assert report["dropped"] == dropped and report["dropped_spool_full"] == dropped
        assert report["level"] == "warn" and report["logger"] == "opswatch"
        delivered = [e for e in returned.events.values() if e.get("operation") != "opswatch.dropped"]
        assert len(delivered) + dropped == 40
        headers = [r["headers"].get("x-opswatch-client-report") for r in returned.requests]
        told = [h for h in headers if h]
        assert told[0] == f"spool_full={dropped}"
    finally:
        sink.close(2.0)
        returned.stop()


def test_it_drops_a_record_only_when_the_spool_cannot_take_the_spill(tmp_path: Path, make_sink: Any) -> None:
    port = free_port()
    sink = make_sink(f"http://{KEY}@127.0.0.1:{port}/1", max_queue=5, batch_size=5, batch_interval=60.0)
    spool = tmp_path / "spool"
    for name in os.listdir(spool):
        os.unlink(spool / name)
    spool.rmdir()
    spool.write_text("a file where the spool was")  # every write to the spool fails now

    for n in range(6):
        sink.write(record(f"r{n}"))

    stats = sink.stats()
    assert stats["dropped_unstorable"] == 5  # the spilled batch could not be stored
    assert stats["dropped_queue_full"] == 1  # nor could the record that wanted its room
    assert stats["dropped"] == 6
    assert not sink.flush(0.2)


def test_it_flushes_at_a_stop_spools_what_is_left_and_stays_open(
    server: IngestServer, tmp_path: Path, make_sink: Any
) -> None:
    server.hang = threading.Event()
    sink = make_sink(server.dsn, batch_interval=60.0)
    sink.write(record("in flight"))
    sink.write(record("queued"))

    assert not sink.flush_at_stop(0.3)  # the server hangs: nothing is delivered in time

    assert sink.stats()["backlog_records"] >= 2  # both wait on disk for the next run
    server.hang.set()
    server.hang = None
    sink.write(record("after the stop"))  # sent at once now: no batch interval to wait for
    assert wait_for(lambda: "after the stop" in server.messages())
    assert sink.flush(30)
    assert sorted(server.messages()) == ["after the stop", "in flight", "queued"]


def test_it_delivers_every_record_once_when_many_threads_log(server: IngestServer, make_sink: Any) -> None:
    sink = make_sink(server.dsn, batch_size=100, max_queue=100_000)

    def log_many(thread: int) -> None:
        for n in range(2000):
            sink.write(record(f"t{thread} r{n}", event_id=f"{thread:016x}{n:016x}"))

    threads = [threading.Thread(target=log_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sink.flush(10.0)
    assert len(server.events) == len(server.stored) == 8000
    for t in range(4):  # each thread's records arrive in the order it logged them
        mine = [m for m in server.messages() if m.startswith(f"t{t} ")]
        assert mine == [f"t{t} r{n}" for n in range(2000)]


def test_it_never_raises_into_the_app_when_the_transport_breaks(
    make_sink: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = True

    def handler(request: Request) -> Response:
        if broken:
            raise RuntimeError("transport bug")
        return Response(200, {}, b'{"accepted": 1, "duplicates": 0, "rejected": []}')

    transport = MemoryTransport(handler)
    sink = make_sink("http://k@127.0.0.1:9/1", transport=transport)
    sink.write(record("survives"))
    assert not sink.flush(0.3)
    assert sink.stats()["failures"] >= 1
    assert "RuntimeError: transport bug" in capsys.readouterr().err

    broken = False
    assert sink.flush(30)
    assert sink.stats()["sent"] == 1


def test_it_spools_the_batch_of_a_request_that_outlives_close(
    server: IngestServer, tmp_path: Path, make_sink: Any
) -> None:
    server.hang = threading.Event()
    sink = make_sink(server.dsn)
    sink.write(record("in flight"))
    assert wait_for(lambda: len(server.requests) == 1)

    sink.close(timeout=0.2)

    assert len(spooled_files(tmp_path / "spool")) == 1
    sink.write(record("after close"))
    assert sink.stats()["dropped_closed"] == 1


def test_it_names_its_thread_so_the_stdlib_bridge_ignores_its_logs(server: IngestServer, tmp_path: Path) -> None:
    import logging

    opswatch.init(dsn=server.dsn, console=False, server_level="trace", spool_dir=str(tmp_path / "s"))
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    logging.getLogger("httpcore").setLevel(logging.DEBUG)
    try:
        opswatch.get_logger("app").info("hello")
        assert opswatch.flush(30)
        assert any(t.name == THREAD_NAME for t in threading.enumerate())
        assert THREAD_NAME.startswith("opswatch-")
        assert {e["logger"] for e in server.events.values()} == {"app"}
    finally:
        logging.getLogger("httpx").setLevel(logging.NOTSET)
        logging.getLogger("httpcore").setLevel(logging.NOTSET)


# -- settings and init --------------------------------------------------------------------------------


def test_it_is_built_from_settings_only_when_a_dsn_is_set(tmp_path: Path) -> None:
    assert from_settings(Settings.load(environ={})) is None

    settings = Settings.load(
        environ={}, dsn="http://k@127.0.0.1:9/7", server_level="warn", spool_dir=str(tmp_path)
    )
    sink = from_settings(settings)
    try:
        assert isinstance(sink, ServerSink)
        assert sink.level == 30
        assert sink.url == "http://127.0.0.1:9/api/7/events/"
        assert sink.spool_dir == str(tmp_path)
    finally:
        assert sink is not None
        sink.close(0.5)


def test_it_fails_at_construction_naming_a_bad_setting(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    with pytest.raises(ConfigError) as caught:
        ServerSink("http://k@127.0.0.1:9/1", spool_dir=str(a_file))
    assert caught.value.setting == "spool_dir"
    with pytest.raises(ConfigError) as caught:
        ServerSink("http://k@127.0.0.1:9/1", spool_dir=str(tmp_path), batch_size=0)
    assert caught.value.setting == "batch_size"


def test_it_ships_redacted_records_logged_through_opswatch_init(server: IngestServer, tmp_path: Path) -> None:
    opswatch.init(dsn=server.dsn, console=False, spool_dir=str(tmp_path / "spool"))
    log = opswatch.get_logger("donations")
    log.info("Donation created", operation="donations.create.success", amount=25, password="hunter2")
    log.debug("debug reaches the server too")

    assert opswatch.flush(30)

    first, second = server.events.values()
    assert first["operation"] == "donations.create.success"
    assert first["password"] == "[REDACTED]"
    assert first["logger"] == "donations" and first["pid"] == os.getpid()
    assert second["message"] == "debug reaches the server too"


def test_it_takes_only_records_at_the_server_level(server: IngestServer, tmp_path: Path) -> None:
    opswatch.init(dsn=server.dsn, console=False, server_level="error", spool_dir=str(tmp_path / "spool"))
    log = opswatch.get_logger("app")
    log.info("stays home")
    log.error("goes out")

    assert opswatch.flush(30)
    assert server.messages() == ["goes out"]


# -- fork ---------------------------------------------------------------------------------------------

FORK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import opswatch
    from opswatch._runtime import STATE

    opswatch.init(dsn=sys.argv[1], console=False, spool_dir=sys.argv[2], capture_stdlib=False)
    (sink,) = [s for s in STATE.runtime.sinks if s.name == "server"]
    sink.batch_interval = 60.0  # only flush sends, so what each process sends is exact
    log = opswatch.get_logger("app")
    log.info("parent before fork")
    assert opswatch.flush(30)
    log.info("parent queued at fork")

    pid = os.fork()
    if pid == 0:
        try:
            log.info("child")
            ok = opswatch.flush(5)
            stats = sink.stats()
            os._exit(0 if ok and stats["sent"] == 1 else 3)
        except BaseException:
            os._exit(4)

    ok = opswatch.flush(5)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"ok": ok, "child": os.waitstatus_to_exitcode(status), "child_pid": pid,
                      "sent": sink.stats()["sent"]}))
    opswatch.shutdown(2)
    """
)


@pytest.mark.slow
def test_it_survives_fork_with_a_fresh_queue_and_thread_in_the_child(
    server: IngestServer, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, server.dsn, str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert result["ok"] and result["child"] == 0 and result["sent"] == 2
    assert sorted(server.messages()) == sorted(["parent before fork", "parent queued at fork", "child"])
    assert len(server.stored) == 3
    (child_event,) = [e for e in server.events.values() if e["message"] == "child"]
    assert child_event["pid"] == result["child_pid"]


# -- end to end, into the real server -----------------------------------------------------------------


@pytest.mark.slow
def test_it_delivers_through_opswatch_init_into_a_real_server_exactly_once(tmp_path: Path) -> None:
    from opswatch.server.testing import running_server
    from opswatch.testing import capture_logs

    with running_server(tmp_path / "server") as server:
        opswatch.init(dsn=server.dsn, console=False, spool_dir=str(tmp_path / "spool"))
        log = opswatch.get_logger("donations")
        with capture_logs() as sent:
            log.info(
                "Donation created successfully",
                operation="donations.create.success",
                amount=25,
                church_id="church-1",
                card="4242 4242 4242 4242",
            )
        assert opswatch.flush(10.0)

        (stored,) = server.ctx.store.tail(operation="donations.create.success").records
        assert stored["message"] == "Donation created successfully"
        assert stored["amount"] == 25 and stored["church_id"] == "church-1"
        assert "4242 4242 4242 4242" not in orjson.dumps(stored).decode()

        # A retry of the same record (a lost answer, a replayed spool) is a duplicate, not a second event.
        again = ServerSink(server.dsn, spool_dir=str(tmp_path / "spool2"), batch_interval=0.05)
        try:
            again.write(sent[0])
            assert again.flush(10.0)
            assert again.stats()["duplicates"] == 1
        finally:
            again.close(2.0)
        assert len(server.ctx.store.tail(operation="donations.create.success").records) == 1
        opswatch.shutdown(2.0)


def test_it_stops_its_thread_when_a_later_sink_fails_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        opswatch.init(
            dsn="http://k@127.0.0.1:9/1",
            spool_dir=str(tmp_path / "spool"),
            console=False,
            sentry_dsn="https://key@sentry.example.com/not-a-number",
            sentry_enabled=True,
        )
    assert caught.value.setting == "sentry_dsn"
    deadline = time.monotonic() + 30
    while any(t.name == THREAD_NAME for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())


# -- opswatch.stats() ---------------------------------------------------------------------------------


def test_it_tells_what_became_of_every_record_through_opswatch_stats(
    server: IngestServer, tmp_path: Path
) -> None:
    opswatch.init(dsn=server.dsn, console=False, spool_dir=str(tmp_path / "spool"))
    opswatch.get_logger("app").info("counted")
    assert opswatch.flush(30)

    stats = opswatch.stats()
    assert (stats["queued"], stats["spooled"], stats["sent"], stats["dropped"]) == (0, 0, 1, 0)
    assert stats["refused"] == 0 and stats["last_error"] is None
    assert stats["sinks"]["server"]["accepted"] == 1

    opswatch.init(dsn=f"http://wrongkey@127.0.0.1:{server.port}/1", console=False, spool_dir=str(tmp_path / "s2"))
    opswatch.get_logger("app").info("refused")
    assert not opswatch.flush(5.0)

    stats = opswatch.stats()
    assert stats["refused"] == 1 and stats["sent"] == 0
    assert stats["last_error"] == "HTTP 401: bad key"


@pytest.mark.slow
def test_it_gives_a_hung_server_stop_timeout_seconds_at_a_stop_then_spools(
    server: IngestServer, tmp_path: Path
) -> None:
    from opswatch._limits import STOP_TIMEOUT
    from opswatch.integrations.asgi import flush_on_shutdown

    server.hang = threading.Event()
    opswatch.init(dsn=server.dsn, console=False, spool_dir=str(tmp_path / "spool"))
    opswatch.get_logger("app").info("stuck")
    started = time.monotonic()

    assert not flush_on_shutdown()

    assert time.monotonic() - started >= STOP_TIMEOUT  # the whole limit, not less
    assert len(spooled_files(tmp_path / "spool")) == 1  # then it waits on disk for the next run
    server.hang.set()
    server.hang = None
