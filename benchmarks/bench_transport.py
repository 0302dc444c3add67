"""The server transport (OPSWATCH_DSN): what it costs the app per log call, and how fast it delivers.

Table 1, µs per ``log.info`` call (same payload as bench_logger: a message, an operation, four fields and
a nested dict with secrets), measured in bursts the queue can hold and with the flush between bursts left
out of the timing: console JSON to /dev/null alone, console plus the server sink, the server sink alone,
and the server sink alone while the server is down (records go to the disk spool). "cpu/rec" is the whole
process's CPU time per record, background thread included (serialize, gzip, HTTP), over the same run.

Table 2, records/s delivered: ``ServerSink.write`` of N ready records, then ``flush``; the clock stops
when the server has acknowledged everything. The receiver is a minimal native-protocol server in a
separate process (gunzip, count lines, answer 200), so this measures the transport, not a store. The
last row sends the same records to ``opswatch serve`` in its own process: a 200 there means durable in
DuckDB, so that row measures the server's ingest as much as the transport.

    .venv/bin/python benchmarks/bench_transport.py [--calls 5000] [--bursts 10] [--records 100000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import opswatch
from opswatch._runtime import STATE
from opswatch.sinks.server import ServerSink

PAYLOAD: dict[str, Any] = {
    "operation": "donations.create.success",
    "donation_id": "don_8f2c1a",
    "amount": 100,
    "currency": "USD",
    "church_id": "church-123",
    "payment": {"card_number": "4242 4242 4242 4242", "password": "hunter2", "method": "card"},
}
MESSAGE = "Donation created successfully"

RECEIVER = textwrap.dedent(
    """
    import gzip, http.server, sys
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes
        def log_message(self, *args):
            pass
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            n = gzip.decompress(body).count(b"\\n")
            answer = b'{"accepted": %d, "duplicates": 0, "rejected": []}' % n
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@contextmanager
def receiver() -> Iterator[str]:
    """A native-protocol receiver in its own process; yields its DSN."""
    process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://benchkey@127.0.0.1:{port}/1"
    finally:
        process.terminate()
        process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def closed_port_dsn() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://benchkey@127.0.0.1:{sock.getsockname()[1]}/1"


def per_call(calls: int, bursts: int, wait: float, **settings: Any) -> tuple[float, float]:
    """(µs per call on the caller's thread, CPU µs per record for the whole process)."""
    opswatch.init(capture_stdlib=False, **settings)
    log = opswatch.get_logger("bench")
    for _ in range(200):
        log.info(MESSAGE, PAYLOAD)
    opswatch.flush(wait)
    spent = 0.0
    cpu_start = time.process_time()
    for _ in range(bursts):
        start = time.perf_counter()
        for _ in range(calls):
            log.info(MESSAGE, PAYLOAD)
        spent += time.perf_counter() - start
        opswatch.flush(wait)
    cpu = time.process_time() - cpu_start
    dropped = sum(s.dropped for s in STATE.runtime.sinks) if STATE.runtime else 0
    opswatch.shutdown(2)
    if dropped:
        print(f"  (warning: {dropped} records dropped in this run)")
    total = calls * bursts
    return spent / total * 1e6, cpu / total * 1e6


def records(n: int) -> list[dict[str, Any]]:
    """N records as the pipeline builds them (redacted, with event ids)."""
    from opswatch.testing import capture_logs

    opswatch.init(console=False, capture_stdlib=False)
    log = opswatch.get_logger("bench")
    with capture_logs() as logs:
        for i in range(n):
            log.info(MESSAGE, PAYLOAD, seq=i)
    opswatch.shutdown(1)
    return logs


def throughput(dsn: str, batch: list[dict[str, Any]], spool_dir: str, **options: Any) -> dict[str, float]:
    sink = ServerSink(dsn, spool_dir=spool_dir, max_queue=len(batch) + 1, **options)
    try:
        start = time.perf_counter()
        cpu_start = time.process_time()
        for record in batch:
            sink.write(record)
        queued = time.perf_counter() - start
        ok = sink.flush(120)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        stats = sink.stats()
    finally:
        sink.close(5)
    if not ok or stats["sent"] != len(batch):
        print(f"  (warning: flush={ok}, sent {stats['sent']} of {len(batch)})")
    return {
        "rec/s": len(batch) / elapsed,
        "write µs": queued / len(batch) * 1e6,
        "cpu µs/rec": cpu / len(batch) * 1e6,
        "batches": stats["batches"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="log calls per burst (under the queue bound)")
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="table 1 keeps each setup's best round")
    parser.add_argument("--records", type=int, default=100_000, help="records for the delivery run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull, receiver() as dsn:
        print(
            f"1. µs per log.info call ({args.calls} calls x {args.bursts} bursts, best of {args.rounds} rounds,"
            f" Python {sys.version.split()[0]})"
        )
        down = closed_port_dsn()
        rows = [
            ("console JSON only", {"stream": devnull, "format": "json"}),
            ("console JSON + server sink", {"stream": devnull, "format": "json", "dsn": dsn}),
            ("server sink only", {"console": False, "dsn": dsn}),
            ("server sink only, server down", {"console": False, "dsn": down}),
        ]
        best: dict[str, tuple[float, float]] = {}
        for round_number in range(args.rounds):
            for label, settings in rows:
                spool = os.path.join(tmp, f"{round_number}-{label.replace(' ', '_')}")
                wait = 0.2 if settings.get("dsn") == down else 10.0
                call, cpu = per_call(args.calls, args.bursts, wait, spool_dir=spool, **settings)
                old = best.get(label)
                best[label] = (min(call, old[0]), min(cpu, old[1])) if old else (call, cpu)
        base = best[rows[0][0]]
        print(f"   {'setup':<32}{'µs/call':>10}{'cpu µs/rec':>12}{'ratio':>8}")
        for label, _ in rows:
            call, cpu = best[label]
            print(f"   {label:<32}{call:>10.2f}{cpu:>12.2f}{call / base[0]:>7.2f}x")

        print(f"\n2. delivery: {args.records:,} records written at once, then flush (local receiver process)")
        batch = records(args.records)
        print(f"   {'target':<32}{'rec/s':>10}{'write µs':>10}{'cpu µs/rec':>12}{'batches':>9}")
        targets: list[tuple[str, str, dict[str, Any]]] = [
            ("receiver, gzip 1 (default)", dsn, {}),
            ("receiver, gzip 6", dsn, {"compresslevel": 6}),
        ]
        real = real_server(tmp)
        with real as real_dsn:
            if real_dsn:
                targets.append(("opswatch serve (durable store)", real_dsn, {}))
            for label, target, options in targets:
                result = throughput(target, batch, os.path.join(tmp, f"t-{len(label)}"), **options)
                print(
                    f"   {label:<32}{result['rec/s']:>10,.0f}{result['write µs']:>10.2f}"
                    f"{result['cpu µs/rec']:>12.2f}{result['batches']:>9.0f}"
                )


@contextmanager
def real_server(tmp: str) -> Iterator[str | None]:
    """``opswatch serve --port 0`` in its own process (when the server is installed); yields its DSN."""
    try:
        import opswatch.cli.serve  # noqa: F401
    except ImportError:
        yield None
        return
    log_path = os.path.join(tmp, "serve.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "opswatch", "serve", "--port", "0", "--data-dir", os.path.join(tmp, "data")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        dsn = None
        while dsn is None and time.monotonic() < deadline and process.poll() is None:
            with open(log_path) as out:
                dsn = next((line.split("=", 1)[1].strip() for line in out if line.startswith("OPSWATCH_DSN=")), None)
            time.sleep(0.1)
        yield dsn
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
