"""Schedule math: next-run computations for many monitors, shared ``Schedule`` windows versus plain cronsim.

The server's clock asks "when is this monitor next expected?" for every monitor whose slot passed and for
every check-in. Monitors share a handful of schedules, and at any moment they ask about nearly the same
times, so ``opswatch.crons.schedule`` keeps one ``Schedule`` per (text, zone) with a window of consecutive
run times: a question inside the window is a binary search. This script asks N such questions (mixed
schedules and zones, times spread over the next day) three ways and prints µs per question and ratios:

- cronsim: a new ``CronSim`` per question (what a naive engine does);
- opswatch, cold: a fresh ``Schedule`` per question (window built each time: the worst case);
- opswatch, shared: ``parse_schedule`` as the server uses it (shared objects, warm windows), once with
  the times in random order (windows keep moving) and once sorted (the clock's pattern).

    .venv/bin/python benchmarks/bench_cron_schedule.py [--questions 100000]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from opswatch.crons.schedule import Schedule, parse_schedule

SCHEDULES = ["* * * * *", "*/5 * * * *", "*/15 * * * *", "0 * * * *", "30 2 * * *", "0 9 * * 1-5",
             "0 3 * * 0", "0 0 1 * *", "0 9 1 * 1", "@daily"]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney", "Asia/Kathmandu"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(7)
    start = datetime(2025, 11, 1, tzinfo=UTC).timestamp()
    questions = [
        (rng.choice(SCHEDULES), rng.choice(ZONES), start + rng.uniform(0, 86400)) for _ in range(args.questions)
    ]

    sample = questions[: max(1, args.questions // 10)]  # cronsim and cold runs are slow: time a tenth
    t0 = time.perf_counter()
    for text, zone, ts in sample:
        expr = parse_schedule(text).crontab
        tz = UTC if zone == "UTC" else ZoneInfo(zone)
        next(CronSim(expr or text, datetime.fromtimestamp(ts, tz)))
    cronsim_us = (time.perf_counter() - t0) / len(sample) * 1e6

    t0 = time.perf_counter()
    for text, zone, ts in sample:
        shared = parse_schedule(text, zone)
        Schedule(shared.text, shared.timezone, shared.zone, shared.crontab, shared.interval).next_timestamp_after(ts)
    cold_us = (time.perf_counter() - t0) / len(sample) * 1e6

    for text, zone, _ in questions:  # warm-up: parse once (what a server does at start)
        parse_schedule(text, zone).next_timestamp_after(start)
    t0 = time.perf_counter()
    for text, zone, ts in questions:
        parse_schedule(text, zone).next_timestamp_after(ts)
    shared_us = (time.perf_counter() - t0) / len(questions) * 1e6

    forward = sorted(questions, key=lambda q: q[2])  # the clock's pattern: time only moves forward
    t0 = time.perf_counter()
    for text, zone, ts in forward:
        parse_schedule(text, zone).next_timestamp_after(ts)
    forward_us = (time.perf_counter() - t0) / len(questions) * 1e6

    check = parse_schedule("30 2 * * *", "America/New_York").next_after(datetime(2025, 3, 9, tzinfo=UTC))
    assert check == datetime(2025, 3, 9, 7, tzinfo=UTC), check
    assert timedelta(0) < timedelta(microseconds=shared_us)

    print(f"{'method':<44}{'µs/question':>12}{'vs cronsim':>12}")
    rows = (
        ("cronsim, new CronSim each time", cronsim_us),
        ("opswatch Schedule, cold window", cold_us),
        ("opswatch shared, times in random order", shared_us),
        ("opswatch shared, times moving forward", forward_us),
    )
    for name, value in rows:
        print(f"{name:<44}{value:>12.2f}{cronsim_us / value:>11.1f}x")
    print(f"\n{args.questions:,} questions, shared schedules, time moving forward: {forward_us * args.questions / 1e6:.3f} s")

if __name__ == "__main__":
    main()
