"""Trace propagation for requests: ``install()``.

``opswatch.init`` calls ``install()`` when ``trace_propagation_targets`` is set; it wraps
``requests.adapters.HTTPAdapter.send`` (what every ``Session`` sends through), so each call made inside
a trace is a ``client`` span and carries ``traceparent``/``sentry-trace``/``baggage`` to the propagation
targets only (``opswatch.tracing._outgoing``); each redirect hop is checked on its own. Installing twice
does nothing more; with no targets configured the wrapper passes calls through.
"""

from __future__ import annotations

from typing import Any

from ..tracing._outgoing import around

_installed = False


def install() -> bool:
    """Wrap requests' HTTP adapter; False when requests is not importable. Idempotent."""
    global _installed
    if _installed:
        return True
    try:
        import requests.adapters
    except ImportError:
        return False
    adapter_send = requests.adapters.HTTPAdapter.send

    def send(self: requests.adapters.HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        return around(str(request.method or "GET"), str(request.url), request.headers,
                      lambda: adapter_send(self, request, *args, **kwargs))  # fmt: skip

    requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]
    _installed = True
    return True
