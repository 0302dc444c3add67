"""SIGTERM: opswatch delivers what was logged and leaves what the signal does to the app and its server.

Each case runs in its own process (signal handlers are per process), logging to a real server.
"""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import orjson
import pytest

from deploy_helpers import ingest, run_app, stored_numbers
from opswatch.server.testing import RunningServer

__all__ = ["ingest"]  # the fixture, imported for the tests below

CHAINED = textwrap.dedent(
    """
    import json, os, signal, time
    import opswatch

    calls = []
    signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))  # the app's, before init
    opswatch.init(console=False)
    opswatch.get_logger("app").info("before the signal", operation="deploy.record", n=0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the app's handler decides: it only notes the signal, so the program goes on
    opswatch.get_logger("app").info("after the signal", operation="deploy.record", n=1)
    print(json.dumps({"calls": calls, "flushed": opswatch.flush(5)}))
    """
)


@pytest.mark.slow
def test_it_chains_to_the_apps_own_handler_and_leaves_the_decision_to_it(
    ingest: RunningServer, tmp_path: Path
) -> None:
    done = run_app(ingest, tmp_path, CHAINED)

    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert result == {"calls": [signal.SIGTERM], "flushed": True}
    assert stored_numbers(ingest) == [0, 1]


LEFT_ALONE = textwrap.dedent(
    """
    import json, signal, threading
    import opswatch

    def named(handler):
        return getattr(handler, "__name__", type(handler).__name__) if callable(handler) else str(handler)

    seen = {}
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    opswatch.init(console=False)
    seen["ignored"] = named(signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    opswatch.init(console=False)
    seen["default"] = named(signal.getsignal(signal.SIGTERM))
    opswatch.init(console=False)  # a second init does not wrap its own handler
    seen["again"] = named(signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    thread = threading.Thread(target=opswatch.init, kwargs={"console": False})
    thread.start()
    thread.join()
    seen["from_a_thread"] = named(signal.getsignal(signal.SIGTERM))
    print(json.dumps(seen))
    """
)


@pytest.mark.slow
def test_it_leaves_an_ignored_sigterm_alone_and_installs_once_from_the_main_thread(
    ingest: RunningServer, tmp_path: Path
) -> None:
    done = run_app(ingest, tmp_path, LEFT_ALONE)

    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {
        "ignored": str(signal.SIG_IGN),
        "default": "_on_sigterm",
        "again": "_on_sigterm",
        "from_a_thread": str(signal.SIG_DFL),
    }


OPTED_OUT = textwrap.dedent(
    """
    import json, signal
    import opswatch

    opswatch.init(console=False, flush_on_sigterm=False)
    print(json.dumps({"handler": str(signal.getsignal(signal.SIGTERM))}))
    """
)


@pytest.mark.slow
def test_it_leaves_sigterm_alone_when_told_to(ingest: RunningServer, tmp_path: Path) -> None:
    done = run_app(ingest, tmp_path, OPTED_OUT)

    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"handler": str(signal.SIG_DFL)}
