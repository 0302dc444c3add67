"""What a stop costs in records: sent vs stored on a real server, for the stops nothing can hook.

Table 1, SIGKILL: a script logs numbered records at a steady rate and is killed with SIGKILL (the grace
period ran out, the OOM killer); the server is then counted. SIGKILL runs no code, so what was in memory
is lost: at most the last batch interval's records, and never more than the queue plus a batch in
flight; what a burst had moved to the disk spool survives ("spooled": the next run sends it). "logged" is
a lower bound (the script prints every 100th number), so "lost" is an upper bound.

Table 2, the burst of issue 15: 16 threads x 2,000 records as fast as they come, then ``flush(10)``.

The stops opswatch hooks (SIGTERM, uvicorn and gunicorn, multiprocessing, a 100,000-record burst) are
tests that count exactly: ``pytest tests/test_deploy_*.py -s -p no:randomly | grep measured``.

    .venv/bin/python benchmarks/bench_stops.py [--trials 3] [--rates 100,1000,10000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import orjson

from opswatch.server.testing import RunningServer, running_server

STEADY = textwrap.dedent(
    """
    import sys, time, opswatch
    opswatch.init(console=False)
    log = opswatch.get_logger("job")
    rate, n, start = int(sys.argv[1]), 0, time.monotonic()
    while True:
        log.info("working", operation="bench.record", n=n)
        n += 1
        if n % 100 == 0:
            print(n, flush=True)
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    """
)

BURST = textwrap.dedent(
    """
    import json, threading, opswatch
    opswatch.init(console=False)
    log = opswatch.get_logger("burst")
    def run(t):
        for i in range(2000):
            log.info("burst", operation="bench.record", n=t * 2000 + i)
    threads = [threading.Thread(target=run, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flushed = opswatch.flush(10)
    print(json.dumps({"flushed": flushed, **{k: v for k, v in opswatch.stats().items() if k != "sinks"}}))
    """
)


def environ(server: RunningServer, spool: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWATCH_", "SENTRY_"))}
    env.update(OPSWATCH_DSN=server.dsn, OPSWATCH_SPOOL_DIR=str(spool))
    return env


def stored(server: RunningServer) -> int:
    result = server.ctx.store.query(
        "SELECT count(*) FROM logs WHERE operation = 'bench.record'", max_rows=1, timeout=60
    )
    return int(result.rows[0][0])


def spooled(spool: Path) -> int:
    """Records in the batch files of a spool (each name ends in ``-<count>.ndjson.gz``)."""
    names = os.listdir(spool) if spool.exists() else []
    return sum(int(name.split(".")[0].rsplit("-", 1)[1]) for name in names if name.endswith(".ndjson.gz"))


def sigkill(rate: int, trial: int) -> tuple[int, int, int]:
    with tempfile.TemporaryDirectory() as tmp, running_server(tmp) as server:
        script = Path(tmp) / "job.py"
        script.write_text(STEADY)
        process = subprocess.Popen(
            [sys.executable, str(script), str(rate)],
            env=environ(server, Path(tmp) / "spool"),
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(3.0 + trial * 0.37)  # kill at different points of the batch interval
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate()
        logged = int(out.split()[-1]) if out.split() else 0
        time.sleep(0.5)
        return logged, stored(server), spooled(Path(tmp) / "spool")


def burst() -> tuple[dict[str, object], int]:
    with tempfile.TemporaryDirectory() as tmp, running_server(tmp) as server:
        script = Path(tmp) / "burst.py"
        script.write_text(BURST)
        done = subprocess.run(
            [sys.executable, str(script)], env=environ(server, Path(tmp) / "spool"), capture_output=True, text=True
        )
        return orjson.loads(done.stdout), stored(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--rates", default="100,1000,10000")
    args = parser.parse_args()
    print("SIGKILL after ~3 s of logging at a steady rate")
    print(f"{'records/s':>10} {'trial':>5} {'logged >=':>10} {'stored':>8} {'spooled':>8} {'lost <=':>8}")
    for rate in (int(r) for r in args.rates.split(",")):
        for trial in range(args.trials):
            logged, kept, waiting = sigkill(rate, trial)
            lost = max(0, logged + 99 - kept - waiting)
            print(f"{rate:>10,} {trial:>5} {logged:>10,} {kept:>8,} {waiting:>8,} {lost:>8,}")
    stats, kept = burst()
    print("\n16 threads x 2,000 records, then flush(10)")
    print(f"sent 32,000, stored {kept:,}; flush returned {stats['flushed']}; stats: {stats}")


if __name__ == "__main__":
    main()
