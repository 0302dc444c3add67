"""The garbage collector's settings for a serving process (``opswatch serve``), and why.

Ingest makes and drops many small containers: an OTLP request of 512 spans builds a few thousand
dicts and lists on its way to the store (decoded rows, their attributes, the redacted copies). With
CPython's default thresholds (700, 10, 10) that is a young collection every 700 allocations, and each
full collection walks every tracked object the server holds (the app, its routes and models, the state
store's metadata, caches: a few hundred thousand). Profiled under ``benchmarks/bench_otlp_ingest.py``
with py-spy, a quarter of the time the ingest threads held the GIL was the collector's.

``tune()`` does what large Python services do (Instagram's ``gc.freeze``, documented in the ``gc``
module for this purpose): once the server is built, collect once and *freeze* everything alive, so
later full collections skip the long-lived objects; and collect the young generation every
``YOUNG_THRESHOLD`` allocations instead of 700. Nothing is turned off: reference cycles made while
serving are still found and freed. Called once, just before the server starts serving; tests and
embedded servers keep the interpreter's defaults.
"""

from __future__ import annotations

import gc
from typing import Final

#: Allocations between young collections (CPython's default is 700). A batch's objects live until its
#: answer; collecting them young only promotes them, so a threshold above a request's allocations
#: halves the collector's work without holding more than a few MB of garbage at once.
YOUNG_THRESHOLD: Final = 50_000
#: Young collections per middle one, and middle per full one (defaults 10 and 10).
OLDER_THRESHOLDS: Final = (20, 20)


def tune() -> None:
    """Freeze what is alive now (after one full collection) and raise the young threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
