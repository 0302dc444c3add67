"""The event store under the seed's queries: load rate, and what the checked SQL path costs.

Reproduces REFERENCES.md's measurement: N synthetic events (default 5 M) shaped like the seed's metrics
(donations, email campaigns, member activity, AI usage, HTTP requests, DB queries: about 40 attribute
keys in all, each event carrying 6-15 of them, logged in snake_case) are appended through
``DuckDBStore.append`` in batches of ``--batch`` rows (10 k by default: the size that fell into the
35 k rows/s trap with DuckDB's default checkpoints). Then the seed's three queries, exactly as the seed
writes them (camelCase names), run ``--repeat`` times each:

- **direct**: ``store.query(sql)``, the SQL as written, straight to DuckDB;
- **checked**: ``opswatch.server.query.run_query(store, sql)``: parse and check with sqlglot, rename,
  cap the rows, regenerate, then the same store call (what ``opswatch query`` and the API do);
- **http**: ``POST /api/0/query`` to a real server on 127.0.0.1 holding the same store (``--no-http``
  to skip).

It prints the load rate (rows/s, time inside ``append`` only), the medians in ms, and the ratios
checked/direct and http/direct (target: checked under 1.3x). Last, a layout check: the same events
copied into one flat table of typed columns (the layout REFERENCES.md timed at 11 / 15-20 / 16-23 ms on
5 M events, against 80 / 180-230 / 240-300 ms for a JSON column behind a view), and the seed's queries
on the ``logs`` view and on that table, in turns, so the ratio holds on a busy machine too.

Run: ``.venv/bin/python benchmarks/bench_query.py [--events 5000000] [--batch 10000] [--repeat 9]``.
Numbers depend on the machine (and on what else runs on it); nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from opswatch.record import format_timestamp
from opswatch.server.query import run_query
from opswatch.server.store.duckdb import EVENTS_FILENAME, DuckDBStore

SEED_QUERIES = {
    "total donations": """
SELECT SUM(amount) as total_donations
FROM logs
WHERE operation = 'metrics.donation.completed'
AND timestamp > '2025-11-01'
""",
    "campaign success rate": """
SELECT
  campaignId,
  campaignName,
  SUM(successCount) / SUM(recipientCount) * 100 as success_rate
FROM logs
WHERE operation = 'metrics.email.campaign_sent'
GROUP BY campaignId, campaignName
""",
    "top churches": """
SELECT
  churchId,
  COUNT(*) as donation_count,
  SUM(amount) as total_amount
FROM logs
WHERE operation = 'metrics.donation.completed'
GROUP BY churchId
ORDER BY total_amount DESC
LIMIT 10
""",
}

OCT_15 = 1_760_486_400.0  # 2025-10-15T00:00:00Z
SPAN = 46 * 86_400.0  # to the end of November


def synthetic_events(total: int, batch: int, seed: int = 1) -> Iterator[list[dict[str, Any]]]:
    """``total`` events in time order, ``batch`` at a time (about 40 attribute keys over 6 operations)."""
    rnd = random.Random(seed)
    churches = [f"church-{i}" for i in range(500)]
    campaigns = [(f"camp-{i}", f"Campaign {i}") for i in range(60)]
    step = SPAN / total
    ids = rnd.getrandbits(64) << 64
    for start in range(0, total, batch):
        out: list[dict[str, Any]] = []
        for i in range(start, min(start + batch, total)):
            at = OCT_15 + i * step
            stamp = format_timestamp(at)
            kind = rnd.random()
            record: dict[str, Any] = {
                "timestamp": stamp, "level": "info", "logger": "app", "event_id": f"{ids + i:032x}",
                "service": "api", "environment": "production", "release": "1.4.0", "host": "web-1",
                "pid": 4242, "project_id": 1, "kind": "log", "received_at": stamp,
            }  # fmt: skip
            church = churches[rnd.randrange(500)]
            if kind < 0.2:
                campaign = campaigns[rnd.randrange(60)][0]
                record.update(
                    operation="metrics.donation.completed", message="Donation completed",
                    donation_id=f"don-{i}", amount=round(rnd.uniform(5, 500), 2), currency="USD",
                    method="card" if kind < 0.15 else "ach", recurring=kind < 0.05, campaign_id=campaign,
                    church_id=church, donor_id=f"donor-{rnd.randrange(100_000)}",
                )  # fmt: skip
            elif kind < 0.25:
                campaign_id, campaign_name = campaigns[rnd.randrange(60)]
                recipients = rnd.randrange(10, 1000)
                successes = recipients - rnd.randrange(0, 10)
                record.update(
                    operation="metrics.email.campaign_sent", message="Campaign sent",
                    campaign_id=campaign_id, campaign_name=campaign_name, recipient_count=recipients,
                    success_count=successes, failure_count=recipients - successes, church_id=church,
                )  # fmt: skip
            elif kind < 0.40:
                record.update(
                    operation="metrics.member.activity", message="Member activity",
                    member_id=f"m-{rnd.randrange(10_000)}", action="viewed_reports", church_id=church,
                    duration=rnd.randrange(1, 600),
                )  # fmt: skip
            elif kind < 0.45:
                record.update(
                    operation="metrics.ai.report_generated", message="AI report generated",
                    report_type="donation_summary", tokens_used=rnd.randrange(100, 3000),
                    cost_usd=rnd.random() / 100, church_id=church, model="small",
                )  # fmt: skip
            elif kind < 0.80:
                record.update(
                    operation="http.request", message="GET /api/v1/items", method="GET",
                    path=f"/api/v1/items/{rnd.randrange(1000)}", route="/api/v1/items/{id}",
                    status_code=200 if kind < 0.78 else 500, duration_ms=rnd.random() * 100,
                    user_agent="Mozilla/5.0", client_ip="10.0.0.1", request_id=f"{rnd.getrandbits(64):016x}",
                    user_id=f"u-{rnd.randrange(5000)}", bytes_sent=rnd.randrange(100, 10_000),
                )  # fmt: skip
            else:
                record.update(
                    operation="db.query", message="query", query_name="donation.findMany",
                    table_name="donations", row_count=rnd.randrange(0, 100), duration_ms=rnd.random() * 20,
                    db_host="db-1", db_name="app", pool_size=10, slow=kind > 0.995, retries=0,
                    cache_hit=kind > 0.9, shard=rnd.randrange(4), tenant=church, region="us-east-1",
                )  # fmt: skip
            out.append(record)
        yield out


def medians_ms(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median ms of each run, measured in turns (a, b, c, a, b, c ...) so drift in the machine's load
    hits every path alike."""
    for run in runs.values():
        run()  # warm up: first touch of the columns, plans
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def load(store: DuckDBStore, total: int, batch: int) -> tuple[float, float, float]:
    """Append ``total`` events; return (rows/s and rows per CPU-second inside append, seconds to
    checkpoint afterwards). The CPU figure counts every thread of the process (the writer and DuckDB's
    workers), so it holds on a machine busy with other work, where wall time does not."""
    inside = 0.0
    cpu = 0.0
    done = 0
    report = max(total // 10, batch)
    for events in synthetic_events(total, batch):
        started, started_cpu = time.perf_counter(), time.process_time()
        store.append(events)
        inside += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        done += len(events)
        if done % report < batch:
            print(f"  loaded {done:>10,} events, {done / inside:,.0f} rows/s so far", flush=True)
    started = time.perf_counter()
    store.checkpoint()
    return done / inside, done / cpu, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="rows per append (default 10000)")
    parser.add_argument("--repeat", type=int, default=9, help="runs per query (median reported)")
    parser.add_argument("--data-dir", type=Path, help="keep the store here (reused when it exists)")
    parser.add_argument("--no-http", action="store_true", help="skip the POST /api/0/query column")
    parser.add_argument("--no-baseline", action="store_true", help="skip the flat typed-table comparison")
    args = parser.parse_args()

    with contextlib.ExitStack() as keep:
        directory = args.data_dir or Path(keep.enter_context(tempfile.TemporaryDirectory()))
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / EVENTS_FILENAME
        with contextlib.ExitStack() as stack:
            run_store(stack, directory, path, args)
        if not args.no_baseline:
            typed_baseline(path, args.repeat)


def run_store(stack: contextlib.ExitStack, directory: Path, path: Path, args: argparse.Namespace) -> None:
    """Load (unless the store holds events already), then time the seed's queries on each path."""
    store = DuckDBStore(path)
    stack.callback(store.close)
    rate = cpu_rate = checkpoint_s = None
    if store.stats()["events"] == 0:
        print(f"loading {args.events:,} events in appends of {args.batch:,} rows ...", flush=True)
        rate, cpu_rate, checkpoint_s = load(store, args.events, args.batch)
    stats = store.stats()
    print()
    print(f"events               {stats['events']:>14,}")
    print(f"attribute keys       {stats['attribute_keys']:>14}   promoted to columns: {stats['promoted_columns']}")
    print(f"file size            {os.path.getsize(path) / 2**20:>11.1f} MiB")
    if rate is not None:
        print(f"load rate            {rate:>14,.0f} rows/s  (appends of {args.batch:,}; then CHECKPOINT {checkpoint_s:.1f} s)")
        print(f"                     {cpu_rate:>14,.0f} rows per CPU-second, all threads (load average now {os.getloadavg()[0]:.1f})")
    print()

    http_ask: Callable[[str], Any] | None = None
    if not args.no_http:
        from opswatch.server.testing import running_server

        # retention_days: the synthetic events are dated 2025; the retention worker must not eat them.
        server = stack.enter_context(running_server(directory / "server", store=store, retention_days=36500))
        client = stack.enter_context(httpx.Client(base_url=server.url, headers=server.admin_headers, timeout=60))

        def http_ask(sql: str) -> Any:
            response = client.post("/api/0/query", json={"sql": sql})
            response.raise_for_status()
            return response.json()

    header = f"{'query':24s} {'direct ms':>10s} {'checked ms':>11s} {'ratio':>6s}"
    if http_ask:
        header += f" {'http ms':>9s} {'ratio':>6s}"
    print(header)
    for name, sql in SEED_QUERIES.items():
        runs: dict[str, Callable[[], Any]] = {
            "direct": lambda sql=sql: store.query(sql, max_rows=10_000, timeout=60),
            "checked": lambda sql=sql: run_query(store, sql),
        }
        if http_ask:
            runs["http"] = lambda sql=sql: http_ask(sql)
        ms = medians_ms(runs, args.repeat)
        line = f"{name:24s} {ms['direct']:10.1f} {ms['checked']:11.1f} {ms['checked'] / ms['direct']:6.2f}"
        if http_ask:
            line += f" {ms['http']:9.1f} {ms['http'] / ms['direct']:6.2f}"
        print(line, flush=True)
    first = run_query(store, SEED_QUERIES["top churches"])
    print()
    print("top churches, first row:", first.rows[0] if first.rows else None)



def typed_baseline(path: Path, repeat: int) -> None:
    """The same events copied into one flat table of typed columns (the layout REFERENCES.md timed at
    11 / 15-20 / 16-23 ms), and the seed's queries on both, in turns: what the store's layout costs."""
    import duckdb

    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE OR REPLACE TABLE bench_typed AS SELECT * EXCLUDE (attributes) FROM logs")
        conn.execute("CHECKPOINT")
        print()
        print(f"{'layout check':24s} {'logs view':>10s} {'flat table':>11s} {'ratio':>6s}")
        for name, sql in SEED_QUERIES.items():
            flat = sql.replace("FROM logs", "FROM bench_typed")
            runs: dict[str, Callable[[], Any]] = {
                "view": lambda sql=sql: conn.execute(sql).fetchall(),
                "flat": lambda flat=flat: conn.execute(flat).fetchall(),
            }
            ms = medians_ms(runs, repeat)
            print(f"{name:24s} {ms['view']:10.1f} {ms['flat']:11.1f} {ms['view'] / ms['flat']:6.2f}", flush=True)
        conn.execute("DROP TABLE bench_typed")
        conn.execute("CHECKPOINT")


if __name__ == "__main__":
    main()
