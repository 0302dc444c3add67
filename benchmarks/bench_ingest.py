"""Ingest throughput: events per second from a separate client process, over HTTP, acknowledged durably.

Starts ``opswatch serve`` (a real server process, a fresh data directory), then a client process that
builds its bodies first and then sends them over keep-alive connections as fast as the server answers.
Only events the server says it stored are counted: the ``accepted`` field of each native answer (not
the events sent, and not duplicates or rejections), and for Sentry envelopes an answer with the event's
``id`` and nothing rejected. A 2xx answer means the group commit holding them is durable.

Two workloads:

* **log records**: ~300-byte records as the SDK's transport sends them (gzipped NDJSON, 1,000 a batch);
* **Sentry errors**: ~5 KB error events (an exception with 16 frames, breadcrumbs, request, user,
  contexts) in one envelope each, brotli-compressed, the way sentry-python sends them.

Targets on a 2-core machine: 25,000 log records/s and 1,000 Sentry error events/s (Bugsink states
about 30 error events/s on 2 vCPUs). Run: ``.venv/bin/python benchmarks/bench_ingest.py [--quick]``.

``--workers 1 2`` runs each workload once per worker count (``opswatch serve --workers N``) in one run
and prints each rate beside the first count's (target for Sentry errors: 2 workers >= 1.7x one). The
CPU columns say where the machine's cores went during each run, in cores: the server (the owner and its
workers together), the client (it shares the machine), and every other process on it.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import brotli
import orjson

TARGETS = {"log": 25_000, "sentry": 1_000}


# -- what the client sends ------------------------------------------------------------------------------


#: Events are dated from the start of the run, 1 ms apart, as live traffic is (a fixed date would be both
#: unrealistic and outside the server's retention window).
_START = time.time()


def _stamp(index: int) -> str:
    moment = datetime.datetime.fromtimestamp(_START + index / 1000, datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def log_record(index: int, run: str) -> dict[str, Any]:
    """A ~300-byte record like the SDK writes for a business metric."""
    return {
        "timestamp": _stamp(index),
        "level": "info",
        "logger": "donations",
        "message": "Donation completed",
        "event_id": f"{run}{index:024x}",
        "service": "donations-api",
        "environment": "production",
        "release": "1.4.2",
        "host": "web-1",
        "pid": 4242,
        "operation": "metrics.donation.completed",
        "church_id": f"church_{index % 50}",
        "amount": 25.0 + index % 100,
        "request_id": f"req-{index}",
    }


def sentry_event(index: int, run: str) -> dict[str, Any]:
    """A ~5 KB error event the way sentry-python builds one (16 frames, 8 breadcrumbs)."""
    frames = [
        {
            "filename": f"app/services/module_{i}.py",
            "abs_path": f"/srv/app/services/module_{i}.py",
            "function": f"handle_step_{i}",
            "module": f"app.services.module_{i}",
            "lineno": 100 + i,
            "context_line": f"        result = self.step_{i}(data)",
            "in_app": i > 5,
        }
        for i in range(16)
    ]
    return {
        "event_id": f"{run}{index:024x}",
        "timestamp": _stamp(index),
        "platform": "python",
        "level": "error",
        "logger": "donations.payments",
        "server_name": "web-1",
        "release": "donations@1.4.2",
        "environment": "production",
        "exception": {
            "values": [
                {
                    "type": "CardDeclined",
                    "value": f"card declined for donation {index}",
                    "module": "payments.errors",
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {"frames": frames},
                }
            ]
        },
        "tags": {"operation": "payment.stripe.charge", "church": f"church_{index % 50}"},
        "contexts": {
            "trace": {"trace_id": os.urandom(16).hex(), "span_id": os.urandom(8).hex(), "op": "http.server"},
            "runtime": {"name": "CPython", "version": "3.11.7"},
            "os": {"name": "Linux"},
        },
        "user": {"id": f"user-{index % 1000}"},
        "request": {
            "method": "POST",
            "url": "https://api.example.org/donations",
            "headers": {"User-Agent": "Mozilla/5.0", "Accept": "application/json"},
        },
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": _START + j,
                    "category": "query",
                    "message": f"SELECT * FROM donations WHERE id = {j}",
                }
                for j in range(8)
            ]
        },
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
    }


def build_requests(kind: str, count: int, host: str, key: str, run: str) -> tuple[list[bytes], int, int]:
    """Whole HTTP requests (headers and body) for ``count`` events; also the events and raw bytes."""
    requests: list[bytes] = []
    raw = 0
    if kind == "log":
        batch = 1000
        for start in range(0, count, batch):
            lines = b"".join(
                orjson.dumps(log_record(i, run)) + b"\n" for i in range(start, min(count, start + batch))
            )
            raw += len(lines)
            body = gzip.compress(lines, 6)
            head = (
                f"POST /api/1/events/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            requests.append(head.encode() + body)
    else:
        for index in range(count):
            event = orjson.dumps(sentry_event(index, run))
            raw += len(event)
            envelope = (
                orjson.dumps({"event_id": f"{run}{index:024x}", "sent_at": "2025-11-27T10:00:00Z"}) + b"\n"
            )
            envelope += orjson.dumps({"type": "event", "length": len(event)}) + b"\n" + event + b"\n"
            body = brotli.compress(envelope, quality=4)
            auth = f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.75.0"
            head = (
                f"POST /api/1/envelope/ HTTP/1.1\r\nHost: {host}\r\nX-Sentry-Auth: {auth}\r\n"
                f"Content-Type: application/x-sentry-envelope\r\nContent-Encoding: br\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            requests.append(head.encode() + body)
    return requests, count, raw


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length; return its status and body."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    buffer[:] = rest[length:]
    return status, bytes(rest[:length])


def stored(kind: str, body: bytes) -> tuple[int, int, int]:
    """What a 200 answer says was stored: (accepted, duplicates, rejected) events."""
    answer = orjson.loads(body) if body else {}
    rejected = len(answer.get("rejected") or [])
    if kind == "log":
        return int(answer.get("accepted", 0)), int(answer.get("duplicates", 0)), rejected
    return (1 if answer.get("id") and not rejected else 0), 0, rejected


def client_main(spec: dict[str, Any]) -> None:
    """The client process: build everything, say ready, wait for go, send, print the result."""
    requests, events, raw = build_requests(
        spec["kind"], spec["count"], spec["host"], spec["key"], spec["run"]
    )
    print("ready", flush=True)
    sys.stdin.readline()
    host, port = spec["host"].split(":")
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "retried": 0, "failed": 0}

    def worker() -> None:
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        try:
            while True:
                with lock:
                    index = state["next"]
                    state["next"] += 1
                if index >= len(requests):
                    return
                while True:
                    sock.sendall(requests[index])
                    status, body = read_response(sock, buffer)
                    if status == 200:
                        accepted, duplicates, rejected = stored(spec["kind"], body)
                        with lock:
                            state["accepted"] += accepted
                            state["duplicates"] += duplicates
                            state["rejected"] += rejected
                        break
                    with lock:
                        state["retried" if status == 429 else "failed"] += 1
                    if status != 429:
                        break
                    time.sleep(0.05)
        finally:
            sock.close()

    started = time.perf_counter()
    cpu_started = time.process_time()
    threads = [threading.Thread(target=worker) for _ in range(spec["connections"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "events": state["accepted"],
                "sent": events,
                "duplicates": state["duplicates"],
                "rejected": state["rejected"],
                "raw_bytes": raw,
                "requests": len(requests),
                "retried_429": state["retried"],
                "failed": state["failed"],
                "client_cpu": client_cpu,
            }
        ),
        flush=True,
    )


# -- the harness ----------------------------------------------------------------------------------------


def start_client(script: str, spec: dict[str, Any]) -> subprocess.Popen[str]:
    """``script --client SPEC`` in its own process, once it has said "ready" (it starts on "go\\n")."""
    client = subprocess.Popen(
        [sys.executable, script, "--client", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None
    assert client.stdout.readline().strip() == "ready"
    return client


def start_server(data_dir: Path, workers: int = 1) -> tuple[subprocess.Popen[str], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSWATCH_")}
    env["OPSWATCH_RETENTION_DAYS"] = "36500"
    command = os.environ.get("BENCH_SERVER_COMMAND", "-m opswatch serve").split()
    server = subprocess.Popen(
        [sys.executable, *command, "--port", "0", "--data-dir", str(data_dir)]
        + (["--workers", str(workers)] if workers > 1 else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert server.stdout is not None
    url = key = ""
    while not key:
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the server did not start")
        if "listening on" in line:
            url = line.split("listening on ")[1].split(" ")[0]
        if line.startswith("OPSWATCH_DSN="):
            key = line.split("//")[1].split("@")[0]
    threading.Thread(target=server.stdout.read, daemon=True).start()  # keep its pipe drained
    return server, url, key


def cpu_seconds(pid: int) -> float:
    """CPU seconds of process ``pid`` and of its live children (an owner's workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot (all processes)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run(kind: str, count: int, connections: int, workers: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server, url, key = start_server(Path(tmp) / "data", workers)
        try:
            spec = {
                "kind": kind,
                "count": count,
                "connections": connections,
                "key": key,
                "host": url.split("//")[1],
                "run": os.urandom(4).hex(),
            }
            client = start_client(__file__, spec)
            assert client.stdin is not None and client.stdout is not None
            if workers > 1:
                wait_for_workers(server.pid, workers)
            cpu_before, busy_before = cpu_seconds(server.pid), machine_busy_seconds()
            client.stdin.write("go\n")
            client.stdin.flush()
            result: dict[str, Any] = json.loads(client.stdout.readline())
            result["server_cpu"] = cpu_seconds(server.pid) - cpu_before
            result["machine_cpu"] = machine_busy_seconds() - busy_before
            client.wait(30)
        finally:
            server.terminate()
            server.wait(60)
    return result


def wait_for_workers(pid: int, workers: int, timeout: float = 60.0) -> None:
    """Wait until the owner ``pid`` has ``workers`` children that settled (their start is not measured)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [entry for entry in os.listdir("/proc") if entry.isdigit() and _parent_of(entry) == pid]
        if len(children) >= workers:
            time.sleep(3.0)  # their imports and the uvicorn start (a worker accepts once it is ready)
            return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not start {workers} workers")


def _parent_of(entry: str) -> int:
    try:
        return int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds each)")
    parser.add_argument("--logs", type=int, default=200_000, help="log records to send")
    parser.add_argument("--sentry", type=int, default=10_000, help="Sentry error events to send")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections (clients)")
    parser.add_argument(
        "--workers", type=int, nargs="+", help="compare these `opswatch serve --workers N` counts (e.g. 1 2)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --workers: repeat the comparison")
    parser.add_argument("--only", choices=("log", "sentry"), help="run one workload only")
    args = parser.parse_args()
    if args.client:
        client_main(json.loads(args.client))
        return
    if args.workers:
        compare_workers(args)
        return
    counts = {
        "log": args.logs // 4 if args.quick else args.logs,
        "sentry": args.sentry // 4 if args.quick else args.sentry,
    }
    print(
        f"{'workload':<16}{'events':>10}{'seconds':>9}{'events/s':>11}{'MB/s raw':>10}"
        f"{'srv CPU µs/ev':>15}{'target':>9}{'ratio':>8}"
    )
    for kind in ("log", "sentry"):
        result = run(kind, counts[kind], args.connections)
        rate = result["events"] / result["elapsed"]
        name = "log records" if kind == "log" else "Sentry errors"
        print(
            f"{name:<16}{result['events']:>10,}{result['elapsed']:>9.2f}{rate:>11,.0f}"
            f"{result['raw_bytes'] / result['elapsed'] / 1e6:>10.1f}"
            f"{result['server_cpu'] / max(result['events'], 1) * 1e6:>15.1f}"
            f"{TARGETS[kind]:>9,}{rate / TARGETS[kind]:>7.2f}x"
            + (f"  ({result['retried_429']} answers were 429, retried)" if result["retried_429"] else "")
            + (f"  ({result['failed']} requests FAILED)" if result["failed"] else "")
            + (
                f"  (sent {result['sent']:,}: {result['duplicates']:,} duplicates, "
                f"{result['rejected']:,} rejected, not counted)"
                if result["events"] != result["sent"]
                else ""
            )
        )


def compare_workers(args: argparse.Namespace) -> None:
    """One run per workload and worker count; rates beside the first count's, and where the CPU went."""
    counts = {
        "log": args.logs // 4 if args.quick else args.logs,
        "sentry": args.sentry // 4 if args.quick else args.sentry,
    }
    cores = os.cpu_count() or 1
    print(f"{cores} cores; CPU columns in cores busy during the run (server = owner + workers)")
    print(
        f"{'workload':<16}{'workers':>8}{'events':>9}{'seconds':>9}{'events/s':>10}{'vs first':>9}"
        f"{'srv µs/ev':>10}{'server':>8}{'client':>8}{'others':>8}{'client share':>14}"
    )
    for kind, _round in [
        (kind, r) for kind in ("log", "sentry") if args.only in (None, kind) for r in range(args.rounds)
    ]:
        first = 0.0
        for workers in args.workers:
            result = run(kind, counts[kind], args.connections, workers)
            elapsed = result["elapsed"]
            rate = result["events"] / elapsed
            first = first or rate
            server, client = result["server_cpu"] / elapsed, result["client_cpu"] / elapsed
            others = max(0.0, result["machine_cpu"] / elapsed - server - client)
            name = "log records" if kind == "log" else "Sentry errors"
            print(
                f"{name:<16}{workers:>8}{result['events']:>9,}{elapsed:>9.2f}{rate:>10,.0f}{rate / first:>8.2f}x"
                f"{result['server_cpu'] / max(result['events'], 1) * 1e6:>10.0f}"
                f"{server:>8.2f}{client:>8.2f}{others:>8.2f}{client / cores:>13.0%}"
                + (f"  ({result['retried_429']} answers were 429, retried)" if result["retried_429"] else "")
                + (f"  ({result['failed']} requests FAILED)" if result["failed"] else "")
                + (
                    f"  (sent {result['sent']:,}, stored {result['events']:,})"
                    if result["events"] != result["sent"]
                    else ""
                )
            )


if __name__ == "__main__":
    main()
