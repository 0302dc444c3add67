"""Plain scripts and multiprocessing children, started as real processes, counted on a real server.

The shapes of issue 15: a script stopped by SIGTERM (docker stop, systemd, kill) delivered only what
was sent before its last batch; ``multiprocessing`` children (which end with ``os._exit``, skipping
``atexit``) delivered nothing.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from deploy_helpers import PYTHON, app_environ, ingest, run_app, spooled, stop, stored_numbers
from opswatch.server.testing import RunningServer

__all__ = ["ingest"]  # the fixture, imported for the tests below

SCRIPT = textwrap.dedent(
    """
    import time
    import opswatch

    opswatch.init(console=False)
    log = opswatch.get_logger("job")
    n = 0
    while True:
        log.info("working", operation="deploy.record", n=n)
        print(n, flush=True)
        n += 1
        time.sleep(0.002)
    """
)


@pytest.mark.slow
def test_it_delivers_everything_a_script_logged_before_sigterm_and_dies_by_it(
    ingest: RunningServer, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    app = tmp_path / "job.py"
    app.write_text(SCRIPT)
    process = subprocess.Popen(
        [PYTHON, str(app)],
        env=app_environ(ingest, spool),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed = [int(process.stdout.readline()) for _ in range(300)]

    out, err = stop(process, signal.SIGTERM)

    assert process.returncode == -signal.SIGTERM, err  # the default action still ends it
    printed += [int(line) for line in out.split()]
    stored = stored_numbers(ingest)
    print(f"\n[measured] script stopped by SIGTERM: logged {len(printed)}, stored {len(stored)}")
    assert len(stored) == len(set(stored))
    assert set(printed) <= set(stored)  # everything logged before the signal, perhaps one more
    assert len(stored) - len(printed) <= 1
    assert spooled(spool) == []  # delivered at the stop, not left for the next run


POOL_SCRIPT = textwrap.dedent(
    """
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    import opswatch

    opswatch.init(console=False)  # at import, so that spawned children configure themselves too
    log = opswatch.get_logger("worker")


    def work(k):
        for i in range(100):
            log.info("item", operation="deploy.record", n=k * 100 + i)
        return k


    if __name__ == "__main__":
        method, shape = sys.argv[1], sys.argv[2]
        context = multiprocessing.get_context(method)
        if shape == "pool-with":  # leaving the block terminates the workers with SIGTERM
            with context.Pool(4) as pool:
                print(pool.map(work, range(4)))
        elif shape == "pool-close":  # the workers end normally, with os._exit
            pool = context.Pool(4)
            print(pool.map(work, range(4)))
            pool.close()
            pool.join()
        elif shape == "process":
            processes = [context.Process(target=work, args=(k,)) for k in range(4)]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
        elif shape == "executor":
            with ProcessPoolExecutor(4, mp_context=context) as executor:
                print(list(executor.map(work, range(4))))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "shape"),
    [
        ("fork", "pool-with"),
        ("fork", "pool-close"),
        ("fork", "process"),
        ("fork", "executor"),
        ("spawn", "pool-with"),
        ("spawn", "pool-close"),
    ],
)
def test_it_delivers_every_record_multiprocessing_children_log(
    ingest: RunningServer, tmp_path: Path, method: str, shape: str
) -> None:
    spool = tmp_path / "spool"
    done = run_app(ingest, tmp_path, POOL_SCRIPT, method, shape, name="pool_job.py", timeout=60)

    assert done.returncode == 0, done.stderr
    stored = stored_numbers(ingest)
    print(f"\n[measured] multiprocessing {method} {shape}: sent 400, stored {len(stored)}")
    assert stored == list(range(400))
    assert spooled(spool) == []
