"""What a ``log.error`` that triggers an alert costs the application while the webhook hangs.

A local HTTP server accepts connections and never answers (the worst case for a webhook: no error, no
timeout until ours). We time, in µs per call:

- ``log.error`` with the console only (JSON to /dev/null): the baseline;
- the same ``log.error`` routed to a Slack alert, while the queue still has room and once it is full
  (the alert is dropped and counted);
- ``send_slack_notification`` with a template;
- for contrast, posting the alert synchronously from the caller (what a naive integration does), with a
  1-second timeout: the caller waits for the whole timeout.

Run: ``.venv/bin/python benchmarks/bench_alerts.py [--calls N]``. Numbers are machine-dependent; nothing
here is asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

import httpx

import opswatch
from opswatch.alerts.limits import QUEUE_SIZE


class HungServer:
    """Accepts TCP connections and reads forever without answering."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/services/T/B/X"
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)

    def close(self) -> None:
        self.stop.set()
        for conn in self.conns:
            conn.close()
        self.sock.close()


def per_call(fn: Callable[[int], None], calls: int) -> float:
    """µs per call of ``fn(i)`` over ``calls`` calls (best of three rounds)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    devnull = open(os.devnull, "w")  # noqa: SIM115
    server = HungServer()
    rows: list[tuple[str, float]] = []
    try:
        opswatch.init(console=True, format="json", stream=devnull, capture_stdlib=False)
        log = opswatch.get_logger("donations")

        def error(i: int) -> None:
            log.error("Payment failed", operation="payment.stripe.charge", amount=100, attempt=i)

        rows.append(("log.error, console only (baseline)", per_call(error, args.calls)))

        # while the queue has room: each call queues one record (routing happens on the worker, which is
        # stuck in the hung request). Best of three fresh inits, each warmed up until the worker hangs.
        filling = float("inf")
        for _ in range(3):
            opswatch.init(
                console=True,
                format="json",
                stream=devnull,
                capture_stdlib=False,
                alerts_enabled=True,
                slack_webhook_url=server.url,
            )
            log = opswatch.get_logger("donations")
            connected = len(server.conns)
            error(-1)
            while len(server.conns) == connected:
                time.sleep(0.01)
            time.sleep(0.05)
            start = time.perf_counter()
            for i in range(QUEUE_SIZE - 10):
                error(i)
            filling = min(filling, (time.perf_counter() - start) / (QUEUE_SIZE - 10) * 1e6)
        rows.append((f"log.error + alert, hung webhook, queue filling ({QUEUE_SIZE - 10} calls)", filling))
        full = per_call(error, args.calls)
        rows.append(("log.error + alert, hung webhook, queue full (dropped, counted)", full))

        alert = opswatch.SlackNotifications.payment_failed(amount=100, church_name="First Baptist", error="x")
        sent = per_call(lambda i: opswatch.send_slack_notification(alert), 2_000)
        rows.append(("send_slack_notification, hung webhook (queue full)", sent))
        from opswatch._runtime import STATE
        from opswatch.alerts import Notifier, Router, SlackChannel, default_routes
        from opswatch.alerts.sink import AlertSink

        sink = next(s for s in STATE.get().sinks if isinstance(s, AlertSink))
        stats = sink.stats()
        opswatch.shutdown(timeout=0.1)

        # the sink's write() alone, on a record from the pipeline, with room in a (large) queue
        record = {
            "level": "error",
            "logger": "donations",
            "message": "Payment failed",
            "operation": "payment.stripe.charge",
            "amount": 100,
        }
        alone = AlertSink(
            Notifier([SlackChannel(server.url)], queue_size=10 * args.calls), Router(default_routes())
        )
        connected = len(server.conns)
        alone.write(record)
        while len(server.conns) == connected:
            time.sleep(0.01)
        rows.append(
            (
                "AlertSink.write alone, hung webhook, queue has room",
                per_call(lambda i: alone.write(record), args.calls),
            )
        )
        alone.close(0.1)

        with httpx.Client(timeout=1.0) as client:

            def synchronous(i: int) -> None:
                with contextlib.suppress(httpx.HTTPError):
                    client.post(server.url, json={"text": "Payment failed"})

            start = time.perf_counter()
            for i in range(3):
                synchronous(i)
            naive = (time.perf_counter() - start) / 3 * 1e6
            rows.append(("naive: synchronous post per error, 1 s timeout", naive))
    finally:
        server.close()
        devnull.close()

    baseline = rows[0][1]
    width = max(len(name) for name, _ in rows)
    print(f"{'case'.ljust(width)}  {'µs/call':>12}  {'vs baseline':>12}")
    for name, micros in rows:
        print(f"{name.ljust(width)}  {micros:12.2f}  {micros / baseline:11.2f}x")
    print(
        f"\nalert sink after the run: queued={stats['queued']} dropped={stats['dropped']} sent={stats['sent']}"
    )


if __name__ == "__main__":
    main()
