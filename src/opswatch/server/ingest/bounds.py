"""Numbers the server gives a meaning to are bounded at ingest, so no stored value breaks a later answer.

Durations are the numbers the server computes with: a run's duration and end, percentiles, charts.
``duration_ms`` (also ``durationMs``) in milliseconds on any record, and ``duration`` in seconds on a
check-in (Sentry's unit), must be finite and within ``0 .. limits.MAX_DURATION_MS``; otherwise the
event is refused with a reason naming the field (the other events of the batch are kept). Other
numbers are attributes: JSON cannot carry NaN or infinity, integers past 64 bits are stored as text,
so nothing else needs a bound to be stored and read back safely.
"""

from __future__ import annotations

import math
from typing import Any, Final

from .. import limits
from .records import Refused

#: Duration fields and the factor that turns them into milliseconds.
_MILLISECONDS: Final = (("duration_ms", 1.0), ("durationMs", 1.0))


def check_numbers(record: dict[str, Any]) -> None:
    """Raise ``Refused`` (``bad_duration``) for a duration outside its bound; numbers only (a string or a
    boolean under these names is an attribute like any other)."""
    fields = list(_MILLISECONDS)
    if record.get("kind") == "check_in":
        fields.append(("duration", 1000.0))
    for name, factor in fields:
        value = record.get(name)
        if type(value) is not int and type(value) is not float:
            continue
        if not (math.isfinite(value) and 0 <= value * factor <= limits.MAX_DURATION_MS):
            unit = "ms" if factor == 1.0 else "s"
            bound = limits.MAX_DURATION_MS / factor
            raise Refused(
                "bad_duration",
                f"{name} {value!r} is not a duration between 0 and {bound:g} {unit} (366 days)",
            )
