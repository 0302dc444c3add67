"""The seed's three queries at scale on ClickHouse (the engine in process, chdb) beside DuckDB: same data, one run.

N synthetic events (default 10 M; ``--events`` scales down) shaped like the seed's metrics (the
generator of ``bench_query.py``: donations, email campaigns, member activity, AI usage, HTTP requests,
DB queries, about 40 attribute keys, logged in snake_case) are generated once, batch by batch, and each
batch is appended to both stores through their ordinary write path, ``append`` (the path ingest uses:
split, key catalog, promotion; DuckDB's appender into its file; ClickHouse's ``JSONEachRow`` insert
with the (project_id, event_id) look-up and a deduplication token). No native bulk loader: the load
time is what a server would spend storing these events, batch by batch, on one writer.

Then the seed's three queries, exactly as the seed writes them (camelCase names), run through
``run_query`` (the checked path ``opswatch query`` and the API use: parse, check, rename, cap,
regenerate; for ClickHouse also transpile and the limit settings) ``--repeat`` times each, in turns
(DuckDB, ClickHouse, DuckDB ...) so drift in the machine's load hits both alike. The answers are
compared (the same rows, sums within 1e-9 relative) before any time is printed.

It prints the load time of each store (seconds inside ``append`` only, and rows/s), its size on disk,
the median ms per query on each, and the ratio ClickHouse/DuckDB.

Run: ``nice .venv/bin/python benchmarks/bench_store_scale.py [--events 10000000] [--batch 50000]
[--repeat 7] [--data-dir DIR]``. Numbers depend on the machine (and on what else runs on it); nothing
here is asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opswatch.server.query import run_query
from opswatch.server.store.clickhouse import ClickHouseStore, open_chdb
from opswatch.server.store.duckdb import EVENTS_FILENAME, DuckDBStore

sys.path.insert(0, os.path.dirname(__file__))

from bench_query import SEED_QUERIES, medians_ms, synthetic_events


def load(stores: dict[str, Any], total: int, batch: int) -> dict[str, float]:
    """Append ``total`` events to every store, the same batches to each; seconds inside ``append``."""
    inside = dict.fromkeys(stores, 0.0)
    done = 0
    report = max(total // 10, batch)
    for events in synthetic_events(total, batch):
        for name, store in stores.items():
            started = time.perf_counter()
            added = store.append(events)
            inside[name] += time.perf_counter() - started
            if added != len(events):
                raise SystemExit(f"{name} stored {added} of {len(events)} new events")
        done += len(events)
        if done % report < batch:
            rates = ", ".join(f"{name} {done / seconds:,.0f} rows/s" for name, seconds in inside.items())
            print(f"  loaded {done:>11,} events: {rates}", flush=True)
    return inside


def same_answer(one: list[tuple[Any, ...]], other: list[tuple[Any, ...]]) -> bool:
    """Whether two answers hold the same rows in the same order, floats within 1e-9 relative."""
    if len(one) != len(other):
        return False
    for left, right in zip(one, other, strict=True):
        if len(left) != len(right):
            return False
        for a, b in zip(left, right, strict=True):
            if isinstance(a, float) or isinstance(b, float):
                if a is None or b is None or not math.isclose(float(a), float(b), rel_tol=1e-9):
                    return False
            elif a != b:
                return False
    return True


def sorted_unless_ordered(sql: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows of a query without ORDER BY come in any order on either engine: compare them sorted."""
    return rows if "ORDER BY" in sql.upper() else sorted(rows, key=repr)


def size_mib(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=50_000, help="rows per append (default 50000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per query and store (median reported)")
    parser.add_argument("--data-dir", type=Path, help="keep both stores here (reused when they hold events)")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        directory = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        directory.mkdir(parents=True, exist_ok=True)
        duck_path, ch_path = directory / EVENTS_FILENAME, directory / "clickhouse"
        duck = DuckDBStore(duck_path)
        stack.callback(duck.close)
        house: ClickHouseStore = open_chdb(ch_path)
        stack.callback(house.close)
        stores: dict[str, Any] = {"duckdb": duck, "clickhouse": house}
        loaded: dict[str, float] | None = None
        if duck.stats()["events"] == 0 and house.stats()["events"] == 0:
            print(f"loading {args.events:,} events into both stores in appends of {args.batch:,} rows ...", flush=True)
            loaded = load(stores, args.events, args.batch)
            started = time.perf_counter()
            duck.checkpoint()
            loaded["duckdb"] += time.perf_counter() - started  # its data is in the file only now
        report(stores, loaded, {"duckdb": duck_path, "clickhouse": ch_path}, args)


def report(stores: dict[str, Any], loaded: dict[str, float] | None, paths: dict[str, Path], args: argparse.Namespace) -> None:
    import chdb

    version = run_query(stores["clickhouse"], "SELECT version() FROM logs LIMIT 1").rows
    print()
    print(f"chdb {chdb.__version__} (ClickHouse {version[0][0] if version else '?'})")
    print(f"{'store':12s} {'events':>12s} {'load s':>9s} {'rows/s':>10s} {'on disk MiB':>12s} {'promoted':>9s}")
    for name, store in stores.items():
        stats = store.stats()
        seconds = loaded[name] if loaded else math.nan
        rate = stats["events"] / seconds if loaded else math.nan
        print(
            f"{name:12s} {stats['events']:>12,} {seconds:9.1f} {rate:10,.0f} {size_mib(paths[name]):12.1f} "
            f"{stats['promoted_columns']:>9}"
        )
    print()
    for name, sql in SEED_QUERIES.items():
        answers = {store_name: run_query(store, sql).rows for store_name, store in stores.items()}
        duck_rows, ch_rows = (sorted_unless_ordered(sql, rows) for rows in answers.values())
        if not same_answer(duck_rows, ch_rows):
            raise SystemExit(f"{name}: the stores answer differently:\n  duckdb {duck_rows[:3]}\n  clickhouse {ch_rows[:3]}")
    print("the three answers are the same on both stores")
    print(f"{'query (checked path)':24s} {'duckdb ms':>10s} {'clickhouse ms':>14s} {'ch/duck':>8s}")
    for name, sql in SEED_QUERIES.items():
        runs: dict[str, Callable[[], Any]] = {
            store_name: (lambda store=store, sql=sql: run_query(store, sql)) for store_name, store in stores.items()
        }
        ms = medians_ms(runs, args.repeat)
        print(f"{name:24s} {ms['duckdb']:10.1f} {ms['clickhouse']:14.1f} {ms['clickhouse'] / ms['duckdb']:8.2f}", flush=True)
    print(f"(medians of {args.repeat} runs each, in turns; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
