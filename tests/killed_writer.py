"""Run a writer script in a child Python until it has acknowledged enough batches, then SIGKILL it.

The script prints each batch's number once ``append`` has returned for it; the durability tests check
that every batch it acknowledged is in the store after the kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def acknowledged_before_kill(script: str, *, at_least: int) -> int:
    """The last batch number ``script`` printed before it was killed (``at_least`` or more if it got there)."""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acknowledged = -1
    for line in child.stdout:
        acknowledged = int(line)
        if acknowledged >= at_least:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    return acknowledged
