"""``init``, ``flush`` and ``shutdown``: installing and tearing down the runtime."""

from __future__ import annotations

from typing import Any

from ._runtime import STATE, Runtime, build_sinks
from .config import ConfigError, Settings
from .log import stdlib


def init(**settings: Any) -> Settings:
    """Configure opswatch: explicit ``settings`` > environment variables > defaults.

    Builds the console sink and every sink the settings enable (server transport, Sentry, alerts),
    installs the stdlib ``logging`` bridge unless ``capture_stdlib=False``, and returns the settings in
    force. Raises ``opswatch.ConfigError`` naming the bad setting; calling ``init`` again replaces the
    previous configuration (its sinks are flushed and closed).
    """
    try:
        resolved = Settings.load(**settings)
    except ConfigError as err:
        # One exception, raised from here: the message names the setting, and the traceback does not
        # walk the caller through opswatch's own parsing frames.
        raise err.with_traceback(None) from None
    runtime = Runtime(resolved, build_sinks(resolved))
    old = STATE.install(runtime)
    if old is not None:
        old.close(timeout=2.0)
    if resolved.trace_propagation_targets:  # outgoing calls carry trace headers to these hosts only
        from .integrations import httpx as httpx_integration
        from .integrations import requests as requests_integration

        httpx_integration.install()
        requests_integration.install()
    if resolved.capture_stdlib:
        stdlib.install()
    else:
        stdlib.uninstall()
    return resolved


def flush(timeout: float | None = 5.0) -> bool:
    """Deliver everything pending in every sink, waiting at most ``timeout`` seconds.

    Returns True when nothing is left pending and no record was lost since the previous flush (dropped
    at a bound, refused by the server: a wrong key, an unknown project, an invalid record); the reason is
    printed once on stderr and counted in ``opswatch.stats()``. Safe to call from any thread; never raises.
    """
    runtime = STATE.runtime
    return True if runtime is None else runtime.flush(timeout)


def shutdown(timeout: float | None = 5.0) -> None:
    """Flush and close every sink and remove the stdlib bridge. Logging afterwards starts afresh."""
    with STATE.lock:
        runtime = STATE.runtime
        STATE.runtime = None
        STATE.min_level = 0
    stdlib.uninstall()
    if runtime is not None:
        runtime.close(timeout)


def settings() -> Settings:
    """The settings in force (building them from the environment if ``init`` was never called)."""
    return STATE.get().settings
