"""Bursts: 16 threads logging as fast as they can, counted on a real server.

Issue 15 measured 11,000 of 32,000 records stored, and ``flush()`` returning True. Now a full queue
spills to the disk spool, so with the server up nothing is lost; when the spool is full too, every
record lost is counted in ``stats()``, on stderr, in an ``opswatch.dropped`` record, in the server's
``/metrics`` and in ``flush()``'s answer.
"""

from __future__ import annotations

import os
import re
import textwrap
import threading
from pathlib import Path

import httpx
import orjson
import pytest

from deploy_helpers import count_stored, ingest, run_app, spooled, stored_numbers
from opswatch.server.testing import RunningServer
from opswatch.sinks._transport import HttpxTransport, Request, Response, TransportError
from opswatch.sinks.server import ServerSink

__all__ = ["ingest"]  # the fixture, imported for the tests below

BURST = textwrap.dedent(
    """
    import json
    import threading

    import opswatch

    opswatch.init(console=False)
    log = opswatch.get_logger("burst")
    THREADS, EACH = 16, 6250


    def run(t):
        for i in range(EACH):
            log.info("burst", operation="deploy.record", n=t * EACH + i)


    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flushed = opswatch.flush(60)
    print(json.dumps({"flushed": flushed, **opswatch.stats()}))
    """
)


@pytest.mark.slow
def test_it_delivers_a_burst_of_100_000_records_from_16_threads_without_losing_one(
    ingest: RunningServer, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    done = run_app(ingest, tmp_path, BURST, name="burst.py", timeout=120)

    assert done.returncode == 0, done.stderr
    stats = orjson.loads(done.stdout)
    numbers = {key: stats[key] for key in ("flushed", "sent", "spooled", "dropped")}
    print(f"\n[measured] 16 threads x 6,250: sent 100000, stored {len(stored_numbers(ingest))}, {numbers}")
    assert stats["dropped"] == 0, done.stderr
    assert stats["flushed"] is True
    assert stats["sent"] == 100_000
    assert stored_numbers(ingest) == list(range(100_000))
    assert spooled(spool) == []


class Gate:
    """The real HTTP transport behind a gate: while closed, every post fails as if the server were down."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.inner = HttpxTransport()

    def send(self, request: Request) -> Response:
        if not self.open.is_set():
            raise TransportError("ConnectError: the server is down (the gate is closed)")
        return self.inner.send(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.slow
def test_it_counts_every_record_a_full_spool_loses_in_every_place(
    ingest: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = Gate()
    sink = ServerSink(
        ingest.dsn,
        spool_dir=str(tmp_path / "spool"),
        transport=gate,
        max_queue=1000,
        max_spool_bytes=100_000,
        batch_interval=0.05,
        backoff_base=0.02,
        backoff_max=0.2,
    )
    try:

        def run(t: int) -> None:
            for i in range(1250):
                n = t * 1250 + i
                sink.write(
                    {
                        "timestamp": "2026-12-03T10:00:00.000Z",
                        "level": "info",
                        "message": "burst",
                        "operation": "deploy.record",
                        "n": n,
                        "padding": os.urandom(32).hex(),  # does not compress: the spool fills
                    }
                )

        threads = [threading.Thread(target=run, args=(t,)) for t in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sink.stats()["dropped"] > 0

        gate.open.set()  # the server is back
        assert not sink.flush(30.0)  # everything left was delivered, but not everything
        assert sink.flush(30)  # nothing lost since the last flush

        stats = sink.stats()
        dropped = stats["dropped"]
        assert stats["dropped_spool_full"] == dropped
        assert count_stored(ingest) + dropped == 20_000
        reports = ingest.ctx.store.tail(operation="opswatch.dropped").records
        assert reports and sum(report["dropped"] for report in reports) == dropped
        scrape = httpx.get(f"{ingest.url}/metrics").text
        found = re.search(r'opswatch_client_dropped_total\{project="\d+",reason="spool_full"\} (\d+)', scrape)
        assert found is not None and int(found.group(1)) == dropped
        # One line on stderr when drops start; each report ends an episode.
        assert capsys.readouterr().err.count("opswatch: dropping records") == len(reports)
    finally:
        sink.close(5.0)
        gate.close()  # a given transport is the giver's to close
