"""What the issues subsystem costs on the ingest path: grouping per event, and counting batches of error
events into issues in SQLite (the hook runs on the committer thread after every durable append).

Events are Sentry-shaped error records as ingest stores them (a 3-exception chain, 25 frames each, about
5 KB of JSON), spread over a chosen number of distinct issues. Prints µs per event for grouping, events/s
for ``IssueService.record`` at several batch sizes and issue spreads, and the ratio to the server's
target of 1,000 Sentry error events/s.

    .venv/bin/python benchmarks/bench_issues.py [--events 20000]
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from opswatch.server.issues.grouping import group
from opswatch.server.issues.service import IssueService, install_tables
from opswatch.server.state.base import create_engine_for

TARGET_EVENTS_PER_SECOND = 1_000


def frames(seed: int) -> list[dict[str, Any]]:
    return [
        {
            "file": f"/srv/app/donations/module_{seed}_{i}.py",
            "line": 10 + i,
            "function": f"handler_{seed}_{i}",
            "module": f"donations.module_{seed}_{i}",
            "in_app": i % 3 != 0,
            "context_line": "    result = process(payment, amount=amount, church=church)",
        }
        for i in range(25)
    ]


def event(n: int, issue: int, now: datetime.datetime) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": "ConnectionError",
        "message": f"reset by peer {n}",
        "stack": frames(issue + 2),
    }
    error = {
        "type": "StripeError",
        "message": f"card ch_{n:024d} declined",
        "stack": frames(issue + 1),
        "cause": error,
    }
    error = {
        "type": "PaymentError",
        "message": f"Payment failed for donation {n}",
        "stack": frames(issue),
        "cause": error,
    }
    return {
        "event_id": f"{n:032x}",
        "timestamp": now.isoformat(),
        "level": "error",
        "message": f"Payment failed for donation {n}",
        "logger": "donations",
        "operation": "payment.stripe.charge",
        "release": "2.4.1",
        "environment": "production",
        "project_id": 1,
        "kind": "error",
        "error": error,
        "tags": {"church_id": f"church-{n % 50}"},
    }


def bench_grouping(events: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for record in events:
        group(record)
    return (time.perf_counter() - started) / len(events) * 1e6


def bench_record(events: list[dict[str, Any]], batch: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine_for(f"sqlite:///{Path(tmp) / 'state.db'}")
            install_tables(engine)
            service = IssueService(engine)
            started = time.perf_counter()
            for start in range(0, len(events), batch):
                service.record(events[start : start + batch])
            rates.append(len(events) / (time.perf_counter() - started))
            engine.dispose()
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.UTC)
    rng = random.Random(7)
    print(f"events: {args.events:,}, event size ~{len(orjson.dumps(event(1, 1, now))):,} bytes\n")
    print(f"{'case':<44}{'result':>16}{'vs 1,000/s':>12}")
    spread_events = {
        spread: [event(n, rng.randrange(spread), now) for n in range(args.events)] for spread in (1, 50, 1000)
    }
    micro = bench_grouping(spread_events[50][:5000])
    print(f"{'group() per event':<44}{micro:>13.1f} µs{1e6 / micro / TARGET_EVENTS_PER_SECOND:>11.1f}x")
    for spread, events in spread_events.items():
        for batch in (1, 10, 100, 1000):
            if batch == 1 and spread != 50:
                continue
            count = min(len(events), 2000) if batch == 1 else len(events)
            rate = bench_record(events[:count], batch, args.rounds)
            label = f"record(), batch {batch:>4}, {spread:>4} issue(s)"
            print(f"{label:<44}{rate:>12,.0f} ev/s{rate / TARGET_EVENTS_PER_SECOND:>11.1f}x")


if __name__ == "__main__":
    main()
