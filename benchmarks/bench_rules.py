"""Alert rules at scale: one evaluation round of 1,000 rules, with and without rollups; what rollups cost.

Issue 12, "Measured". ``--events`` synthetic events (default 5 M) spread over ``--days`` days (30), shaped
like a church platform's services (8 services, 40 operations, requests with durations, some errors,
donations with an amount), are generated in batches and appended through the store's own write path
(``DuckDBStore.append``, not HTTP) to **two** stores in the same run, in turns: one keeping per-minute
rollups (the default), one opened with ``rollups=False``. Ingest throughput is events per second of
CPU (process time, all threads) and of wall time spent inside ``append``; their ratio is what rollup
maintenance costs (target: under 5 %). Neither store checkpoints when idle while loading (the other
store's commits would be timed with it); each checkpoints at its WAL threshold inside its own ``append``.

Then ``--rules`` rules (default mix: 700 rollup-based thresholds grouped by service or operation, 200
SQL rules, 100 absence rules; ``--mix rollup=700,sql=200,absence=100``; change/anomaly kinds can be
added to ``RULE_KINDS`` when they exist) are evaluated by ``RuleService.run_once`` on the rollup store,
state in a SQLite file, twice per source: with ``RollupSource`` (rollups where they answer) and with
``EventQuerySource`` (every rule a query over raw events). The first round of a source checks and
caches each rule's statement; the second is the steady state. Printed: CPU time (process time) and
wall time of each round, the time inside the signal source, and the ratios (target: a round under 2 s
of CPU on this 2-core machine).

Run: ``.venv/bin/python benchmarks/bench_rules.py [--events 5000000] [--days 30] [--batch 10000]
[--mix rollup=700,sql=200,absence=100] [--distinct-sql]``; ``--events 200000`` for a quick run. Numbers
depend on the machine and on what else runs on it; nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opswatch.record import format_timestamp
from opswatch.server.rules.load import rule_from_mapping
from opswatch.server.rules.model import Observation, Rule
from opswatch.server.rules.rollup_signals import RollupSource
from opswatch.server.rules.service import RuleService
from opswatch.server.rules.signals import EventQuerySource, SignalSource
from opswatch.server.state import rules as rule_tables
from opswatch.server.state.base import create_engine_for
from opswatch.server.store.duckdb import DuckDBStore

SERVICES = [f"svc-{i}" for i in range(8)]
OPERATIONS = {service: [f"{service}.op-{j}" for j in range(5)] for service in SERVICES}
ALL_OPERATIONS = [op for ops in OPERATIONS.values() for op in ops]
LEVELS = ["info"] * 90 + ["warning"] * 6 + ["error"] * 3 + ["fatal"]
#: No idle checkpoints while loading: one store's writer idles while the other commits, and its idle
#: checkpoint would be timed as the other store's ingest (each store checkpoints at its WAL threshold).
QUIET = 1e9
END = 1_796_000_400.0  # 2026-11-30T01:00:00Z: the data ends here, the rules are evaluated here


def batches(total: int, days: float, size: int, seed: int = 7) -> Iterator[list[dict[str, Any]]]:
    """``total`` events in time order over ``days`` days before ``END``, ``size`` at a time."""
    rng = random.Random(seed)
    start = END - days * 86_400
    step = days * 86_400 / total
    ids = itertools.count(1)
    batch: list[dict[str, Any]] = []
    for n in range(total):
        at = start + n * step + rng.random() * step
        service = rng.choice(SERVICES)
        operation = rng.choice(OPERATIONS[service])
        level = rng.choice(LEVELS)
        record: dict[str, Any] = {
            "timestamp": format_timestamp(at),
            "level": level,
            "logger": service,
            "message": "request" if level == "info" else "request failed",
            "operation": operation,
            "service": service,
            "environment": "production" if n % 10 else "staging",
            "project_id": 1,
            "kind": "error" if level in ("error", "fatal") else "log",
            "event_id": f"{next(ids):032x}",
            "received_at": format_timestamp(at),
            "duration_ms": round(rng.lognormvariate(4.5, 1.0), 3),
            "user_id": f"u{rng.randrange(5000)}",
        }
        if operation.endswith("op-0"):
            record["amount"] = round(rng.uniform(5, 500), 2)
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- rules ---------------------------------------------------------------------------------------------


def rollup_rules(count: int) -> list[dict[str, Any]]:
    """Thresholds the rollup answers: every signal it takes, by service or by operation."""
    signals = ["count", "rate", "error_ratio", "avg", "max", "p95", "p99"]
    wheres = [None, "environment = 'production'", "level IN ('error', 'fatal')", "service = 'svc-3'"]
    windows = ["5m", "10m", "15m", "1h"]
    found = []
    for n in range(count):
        signal = signals[n % len(signals)]
        keys: dict[str, Any] = {
            "name": f"rollup-{n}",
            "signal": signal,
            "group_by": ["service" if n % 2 else "operation"],
            "window": windows[n % len(windows)],
            "critical": "> 1e12",
        }
        if signal in ("avg", "max"):
            keys["field"] = "duration_ms"
        where = wheres[(n // 7) % len(wheres)]
        if where:
            keys["where"] = where
        found.append(keys)
    return found


def sql_rules(count: int, *, distinct: bool = False) -> list[dict[str, Any]]:
    """SQL rules over the window (``EventQuerySource`` in both rounds). Four statements over two windows:
    rules with the same statement and window share one run; ``distinct`` makes every statement its own
    (the same work behind a filter that keeps every row), so each rule runs its own."""
    statements = [
        "SELECT service, COUNT(*) FILTER (WHERE level = 'error') AS value, COUNT(*) AS events FROM logs GROUP BY service",
        "SELECT operation, SUM(amount) AS value FROM logs WHERE amount IS NOT NULL GROUP BY operation",
        "SELECT service, COUNT(DISTINCT user_id) AS value FROM logs WHERE level = 'error' GROUP BY service",
        "SELECT COUNT(*) AS value FROM logs WHERE message = 'request failed' AND duration_ms > 1000",
    ]
    return [
        {
            "name": f"sql-{n}",
            "sql": f"SELECT * FROM ({statements[n % len(statements)]}) AS t WHERE {n} >= 0"
            if distinct
            else statements[n % len(statements)],
            "window": ["5m", "15m"][n % 2],
            "critical": "> 1e12",
        }
        for n in range(count)
    ]


def absence_rules(count: int) -> list[dict[str, Any]]:
    """Absence: fewer than one event of an operation in two hours."""
    return [
        {
            "name": f"absence-{n}",
            "signal": "count",
            "where": f"operation = '{ALL_OPERATIONS[n % len(ALL_OPERATIONS)]}'",
            "window": "2h",
            "critical": "< 1",
        }
        for n in range(count)
    ]


#: Rule kinds of the mix, by name (add change/anomaly here when those kinds exist).
RULE_KINDS: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "rollup": rollup_rules,
    "sql": sql_rules,
    "absence": absence_rules,
}


def parse_mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, _, count = part.partition("=")
        if name.strip() not in RULE_KINDS:
            raise SystemExit(f"--mix: unknown rule kind {name!r} (known: {', '.join(RULE_KINDS)})")
        mix[name.strip()] = int(count)
    return mix


def build_rules(mix: dict[str, int]) -> list[Rule]:
    return [rule_from_mapping(keys) for kind, count in mix.items() for keys in RULE_KINDS[kind](count)]


# -- measuring -----------------------------------------------------------------------------------------


class Timed:
    """A signal source that adds up the CPU and wall time spent inside ``observe``."""

    def __init__(self, inner: SignalSource) -> None:
        self.inner = inner
        self.cpu = 0.0
        self.wall = 0.0

    def observe(self, rule: Rule, start: float, end: float) -> list[Observation]:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return self.inner.observe(rule, start, end)
        finally:
            self.cpu += time.process_time() - cpu
            self.wall += time.perf_counter() - wall


@contextlib.contextmanager
def clocks(totals: dict[str, float]) -> Iterator[None]:
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    totals["cpu"] = totals.get("cpu", 0.0) + time.process_time() - cpu
    totals["wall"] = totals.get("wall", 0.0) + time.perf_counter() - wall


def ingest(
    args: argparse.Namespace, with_rollups: DuckDBStore, without: DuckDBStore
) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {"with": {}, "without": {}}
    stores = [("with", with_rollups), ("without", without)]
    stored = 0
    for number, batch in enumerate(batches(args.events, args.days, args.batch)):
        for name, store in stores if number % 2 else reversed(stores):  # in turns: neither always goes first
            with clocks(totals[name]):
                store.append(batch)
        stored += len(batch)
        if number % 50 == 0:
            print(f"  loaded {stored:,} events", flush=True)
    return totals


def round_times(engine: Any, source: SignalSource, rules: list[Rule]) -> list[dict[str, float]]:
    timed = Timed(source)
    service = RuleService(engine, timed, rules, ingest_delay=30.0, now=lambda: END)
    found = []
    for number in range(2):
        timed.cpu = timed.wall = 0.0
        totals: dict[str, float] = {}
        with clocks(totals):
            report = service.run_once(END + number * 60)
        totals.update(
            signal_cpu=timed.cpu, signal_wall=timed.wall, errors=report.errors, evaluated=report.evaluated
        )
        found.append(totals)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--mix", default="rollup=700,sql=200,absence=100")
    parser.add_argument(
        "--distinct-sql", action="store_true", help="no two SQL rules share a statement (each runs its own)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the stores go (default: a temporary directory)"
    )
    args = parser.parse_args()
    if args.distinct_sql:
        RULE_KINDS["sql"] = lambda count: sql_rules(count, distinct=True)
    rules = build_rules(parse_mix(args.mix))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        with (
            DuckDBStore(directory / "rollups.duckdb", idle_checkpoint_seconds=QUIET) as rolled,
            DuckDBStore(directory / "plain.duckdb", rollups=False, idle_checkpoint_seconds=QUIET) as plain,
        ):
            print(
                f"loading {args.events:,} events over {args.days:g} days into two stores (batches of {args.batch:,})"
            )
            totals = ingest(args, rolled, plain)
            plain.close()
            rolled.compact_rollups()
            rolled.checkpoint()  # what the idle checkpoint would have done, before the rounds are timed
            rollup_rows = rolled.query("SELECT count(*) FROM rollup_minutes", max_rows=1, timeout=60).rows[0][
                0
            ]
            engine = create_engine_for(f"sqlite:///{directory / 'state.sqlite'}")
            rule_tables.install(engine)
            rollup_source = RollupSource(rolled)
            with_rollups = round_times(engine, rollup_source, rules)
            engine2 = create_engine_for(f"sqlite:///{directory / 'state2.sqlite'}")
            rule_tables.install(engine2)
            without_rollups = round_times(engine2, EventQuerySource(rolled), rules)
            engine.dispose()
            engine2.dispose()
    report(args, rules, totals, rollup_rows, rollup_source, with_rollups, without_rollups)


def report(
    args: argparse.Namespace,
    rules: list[Rule],
    totals: dict[str, dict[str, float]],
    rollup_rows: int,
    source: RollupSource,
    with_rollups: list[dict[str, float]],
    without_rollups: list[dict[str, float]],
) -> None:
    print()
    print(f"ingest, {args.events:,} events ({rollup_rows:,} rollup rows after merging)")
    print(f"  {'':24} {'CPU s':>8} {'wall s':>8} {'events/s CPU':>14} {'events/s wall':>14}")
    for name in ("with", "without"):
        cpu, wall = totals[name]["cpu"], totals[name]["wall"]
        print(
            f"  {name + ' rollups':24} {cpu:8.2f} {wall:8.2f} {args.events / cpu:14,.0f} {args.events / wall:14,.0f}"
        )
    print(
        f"  rollup maintenance cost: CPU x{totals['with']['cpu'] / totals['without']['cpu']:.3f}, "
        f"wall x{totals['with']['wall'] / totals['without']['wall']:.3f}"
    )
    print()
    print(
        f"one evaluation round, {len(rules)} rules ({args.mix}{', distinct SQL' if args.distinct_sql else ''}); "
        f"{source.from_rollups // 2} answered from rollups"
    )
    print(f"  {'':28} {'CPU s':>8} {'wall s':>8} {'signal CPU s':>13} {'signal wall s':>14} {'errors':>7}")
    for name, rounds in (("with rollups", with_rollups), ("without rollups", without_rollups)):
        for number, found in enumerate(rounds):
            label = f"{name}, {'first' if number == 0 else 'steady'}"
            print(
                f"  {label:28} {found['cpu']:8.2f} {found['wall']:8.2f} {found['signal_cpu']:13.2f} "
                f"{found['signal_wall']:14.2f} {int(found['errors']):7d}"
            )
    steady_with, steady_without = with_rollups[1], without_rollups[1]
    print(
        f"  steady round, without / with rollups: CPU x{steady_without['cpu'] / steady_with['cpu']:.2f}, "
        f"signal CPU x{steady_without['signal_cpu'] / steady_with['signal_cpu']:.2f}"
    )


if __name__ == "__main__":
    main()
