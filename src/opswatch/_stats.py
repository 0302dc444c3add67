"""``opswatch.stats()``: what the SDK holds and what became of every record, for health checks and tests."""

from __future__ import annotations

from typing import Any

from ._runtime import STATE


def stats() -> dict[str, Any]:
    """Counters of the running SDK, summed over its sinks, plus each sink's own under ``"sinks"``.

    - ``queued``: records waiting in memory for the server; ``spooled``: records waiting in the disk
      spool (or the in-memory backlog) for the server to take them;
    - ``sent``: records the server took (stored, or already had);
    - ``dropped``: records lost to a bound (a full queue and spool, a full spool, an unwritable disk) or
      a broken destination; ``refused``: records the server said no to (a wrong key, an invalid record);
    - ``last_error``: the last delivery error, or None.

    Counters start at zero in each process (a forked child starts its own). Never raises.
    """
    runtime = STATE.runtime
    per_sink: dict[str, dict[str, Any]] = {}
    for sink in runtime.sinks if runtime is not None else []:
        try:
            numbers = dict(sink.stats())
        except Exception as err:
            numbers = {"failures": sink.failures, "dropped": sink.dropped, "last_error": repr(err)}
        name = sink.name
        while name in per_sink:
            name += "'"
        per_sink[name] = numbers

    def total(key: str) -> int:
        return sum(max(0, int(n.get(key) or 0)) for n in per_sink.values())

    errors = [n["last_error"] for n in per_sink.values() if n.get("last_error")]
    return {
        "queued": total("queued"),
        "spooled": total("backlog_records"),
        "sent": total("sent"),
        "dropped": total("dropped"),
        "refused": total("refused") + total("rejected"),
        "last_error": errors[0] if errors else None,
        "sinks": per_sink,
    }
