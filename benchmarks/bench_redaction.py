"""Redaction cost, in one process: the server's redaction on arrival and the SDK's redaction of a record.

Workloads (every string is new to the redactor in every round, as live traffic is, so the verdict cache
does not hide the pattern search):

* **log records**: bench_ingest's ~300-byte business records, as the SDK's transport sends them;
* **sentry errors**: bench_ingest's ~5 KB Sentry error events, mapped to records as ingest maps them;
* **app lines**: ordinary log lines with no secret in them (access lines with query strings, SQL,
  durations, uuids, paths, versions), each with its own numbers;
* **sdk record**: the SDK's ``Redactor.redact`` on an app line with bench_logger's payload fields.

Prints the best (lowest) CPU µs per record over the rounds. To compare two versions of the code in the
same conditions, run it alternately with ``PYTHONPATH`` pointing at each version's ``src``:

    .venv/bin/python benchmarks/bench_redaction.py [--records 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(__file__))

from bench_ingest import log_record, sentry_event
from opswatch.redact import Redactor
from opswatch.server.ingest.sentry_mapping import map_event
from opswatch.server.redaction import ServerRedactor

_LINES = (
    "GET /api/donations?page={i}&limit=50&sort=created_at 200 in {ms}ms",
    "POST /api/churches/{i}/donations 201 in {ms}ms (user 7{i})",
    "SELECT id, amount, currency FROM donations WHERE church_id = {i} AND status = 'completed' LIMIT 50",
    "retrying webhook delivery {u} (attempt 3 of 5) after {ms} ms",
    "cache miss for key church:{i}:settings, loading from database",
    "worker pool resized to {ms} threads, queue depth {i}",
    "uploaded /srv/app/media/receipts/{i}/receipt-2025-11.pdf ({ms} KB)",
    "payment intent pi_{u} status changed to succeeded at 2025-11-01T02:00:{s}.123Z",
    "release 1.4.{s} deployed to web-{s}, build {i}, duration {ms}s",
    "donor {i} updated preferences: newsletter=true, receipts=monthly",
)


def app_line(index: int) -> str:
    template = _LINES[index % len(_LINES)]
    return template.format(i=index, ms=index % 997, s=index % 60, u=uuid.UUID(int=index * 7919).hex)


def build(records: int, rounds: int) -> dict[str, list[list[Any]]]:
    """Per workload, one list of inputs per round (none repeats across rounds)."""
    run = os.urandom(4).hex()
    out: dict[str, list[list[Any]]] = {"log records": [], "sentry errors": [], "app lines": [], "sdk record": []}
    payload = {
        "operation": "donations.create.success",
        "amount": 100,
        "currency": "USD",
        "payment": {"card_number": "4242 4242 4242 4242", "password": "hunter2", "method": "card"},
    }
    for r in range(rounds):
        base = r * records
        out["log records"].append([log_record(base + i, run) for i in range(records)])
        sentry = []
        for i in range(base, base + records // 10):
            event = sentry_event(i, run)
            sentry.extend(map_event(event, orjson.dumps(event)))
        out["sentry errors"].append(sentry)
        out["app lines"].append([{"message": app_line(base + i), "level": "info"} for i in range(records)])
        out["sdk record"].append(
            [{"message": app_line(base + i), "donation_id": f"don_{base + i:x}", **payload} for i in range(records)]
        )
    return out


def measure(fn: Callable[[Any], Any], batches: list[list[Any]]) -> float:
    """Best (lowest) CPU µs per item over the batches (one batch per round)."""
    best = float("inf")
    for batch in batches:
        start = time.process_time()
        for item in batch:
            fn(item)
        best = min(best, (time.process_time() - start) / len(batch) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    inputs = build(args.records, args.rounds)
    server = ServerRedactor()
    sdk = Redactor()
    print(f"µs per record (CPU, best of {args.rounds} rounds); opswatch from {sys.modules[Redactor.__module__].__file__}")
    for name, batches in inputs.items():
        fn = sdk.redact if name == "sdk record" else server.redact_record
        print(f"{name:<16}{measure(fn, batches):>9.2f}")


if __name__ == "__main__":
    main()
