"""Delivering what was logged when the process stops in the ways Python services stop.

Exit (``sys.exit``, the end of ``main``, Ctrl-C) runs ``atexit``, which closes the runtime (``_runtime``).
Three other stops skip ``atexit``; this module hooks each one without changing what the stop does:

- **SIGTERM** (docker, Kubernetes, systemd, ``kill``). ``install`` runs at every ``init``, in the main
  thread only. When SIGTERM has its default action, opswatch's handler delivers what is pending for up to
  ``STOP_TIMEOUT`` seconds and spools the rest (``flush_at_stop``: the sinks stay open), then restores the
  default action and raises the signal again: the process ends as it would have, with the same status. (As
  PID 1 of a container without an init, the default action is to ignore SIGTERM; the process then goes on,
  sending each record at once, as it would have gone on without opswatch.) When the app or its server
  installed a Python handler first, opswatch wraps it: on SIGTERM it delivers what is pending the same way
  (from then on each record is sent as soon as it is written), then calls that handler, which decides what
  happens. An ignored signal or a handler installed from C is left alone. uvicorn installs its handler
  around the app and, after its graceful shutdown, restores the previous one and raises the signal again:
  when opswatch's handler was the previous one (gunicorn's uvicorn worker, ``uvicorn.run`` after
  ``init``), it runs then; otherwise the ASGI middleware flushes at lifespan shutdown (or the app calls
  ``flush_on_shutdown`` there).
- **multiprocessing children** end with ``os._exit`` after running multiprocessing's own finalizers:
  each child registers one (``multiprocessing.util.Finalize``) that closes the runtime.
- **ASGI lifespan shutdown**: ``flush_at_stop``, called by the middleware or the app.

The work of a signal handler runs in a helper thread that the handler waits for (at most
``STOP_TIMEOUT`` and a second): the handler interrupts the main thread anywhere, perhaps holding a lock
the flush needs, and a deadlock there would hang the stop. A SIGTERM that interrupts the close at the
process's end (``close_at_end``: atexit, a multiprocessing child's finalizer) does no work of its own:
it is raised again once that close is done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ._limits import STOP_TIMEOUT
from ._runtime import STATE, close_at_end

Handler = Callable[[int, "FrameType | None"], Any]


def flush_at_stop(timeout: float = STOP_TIMEOUT) -> bool:
    """Deliver what every sink holds within ``timeout`` seconds and spool the rest; sinks stay open.

    For the moment a process is about to stop (an ASGI lifespan shutdown): from then on records are sent
    as soon as they are written. True when everything was delivered. Never raises.
    """
    runtime = STATE.runtime
    if runtime is None:
        return True
    try:
        return runtime.flush_at_stop(timeout)
    except Exception:
        return False


def _in_helper_thread(work: Callable[[], object]) -> None:
    helper = threading.Thread(target=work, name="opswatch-stop", daemon=True)
    helper.start()
    helper.join(STOP_TIMEOUT + 1.0)


# -- SIGTERM ------------------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Installed over the default action: deliver, then end the process as the default action would."""
    if STATE.closing:  # the main thread, interrupted here, is closing the runtime: let it finish first
        STATE.deferred_signals.append(signum)
        return
    _in_helper_thread(flush_at_stop)
    with contextlib.suppress(Exception):
        signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


class _Chained:
    """Installed over the app's or server's Python handler: start delivering, then call that handler."""

    def __init__(self, previous: Handler) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> Any:
        if not STATE.closing:
            _in_helper_thread(flush_at_stop)
        return self.previous(signum, frame)


def install(sigterm: bool = True) -> None:
    """Hook SIGTERM (unless ``sigterm`` is False: ``flush_on_sigterm``) and multiprocessing children's
    exit (see the module docstring); idempotent. A hook installed by an earlier ``init`` stays."""
    _hook_multiprocessing()
    if not sigterm or not hasattr(signal, "SIGTERM"):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm or isinstance(current, _Chained):
            return
        if current == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        elif callable(current):
            signal.signal(signal.SIGTERM, _Chained(current))
        # SIG_IGN, or None (a handler installed from C): not ours to change
    except (ValueError, OSError):  # not the main interpreter, or signals unavailable
        return


# -- multiprocessing ----------------------------------------------------------------------------------


class _Marker:
    """What multiprocessing's after-fork registry keys our hook on (it holds entries weakly)."""


_MARKER = _Marker()
_hooked = False


def _hook_multiprocessing() -> None:
    """Register the child hook once multiprocessing is imported (it is, in any process that forks with it)."""
    global _hooked
    util = sys.modules.get("multiprocessing.util")
    if _hooked or util is None:
        return
    _hooked = True
    util.register_after_fork(_MARKER, _in_child)


def _in_child(marker: _Marker) -> None:
    """Runs in every multiprocessing child as it starts, after its finalizer registry was cleared."""
    import multiprocessing.util

    # Lowest priority: after the finalizers of pools and queues, which may still log.
    multiprocessing.util.Finalize(None, close_at_end, exitpriority=-100)


if hasattr(os, "register_at_fork"):  # POSIX
    # multiprocessing imported after init: hook the child as it starts (its after-fork hooks run later).
    os.register_at_fork(after_in_child=_hook_multiprocessing)
