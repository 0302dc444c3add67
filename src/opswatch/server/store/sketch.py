"""A mergeable quantile sketch of durations: a log-bucket histogram with a relative error bound.

The idea is DDSketch's (Masson, Rim, Lee, VLDB 2019); the code is our own. A value ``x > 0`` falls in
bucket ``i = ceil(log_gamma(x))`` with ``gamma = (1 + a) / (1 - a)``; every value of bucket ``i`` lies in
``(gamma^(i-1), gamma^i]``, and the bucket answers ``2 gamma^i / (gamma + 1)``, which is within a
relative error ``a`` (``RELATIVE_ERROR``, 1 %) of every value in it. A sketch is a map bucket -> count:
two sketches merge by adding counts (so per-minute sketches add up to any window, in any order, on any
engine), and its size grows with the log of the values' range, not with their number (durations from
1 µs to 1 day need at most ~1,200 buckets; a minute of one endpoint's requests typically a few dozen).

Bucket *keys* as stored: ``0`` for values within ``ZERO`` of 0, ``OFFSET + i`` for positive values and
``-(OFFSET + i)`` for negative ones (``i`` of ``|x|``). Keys sort as their values do, so a quantile is a
walk over the keys in order. ``key_sql`` is the same function in SQL, so a store computes keys where
the values are (DuckDB and ClickHouse both spell ``ln`` and ``ceil`` that way).

``quantile(buckets, q)`` answers what ``QUANTILE_CONT`` answers over the raw values (the value at rank
``h = q (n - 1)``, interpolated linearly between ranks ``floor(h)`` and ``ceil(h)``), with each of
those two ranks read from its bucket. A convex combination of two estimates each within ``a`` of its
value is within ``a`` of the combination: for values of one sign the answer is within ``a`` (relative)
of the exact ``QUANTILE_CONT`` plus ``ZERO`` (absolute, for values that close to 0), whatever the
number of values and however the sketch was merged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

#: The promised relative error of a quantile (for values of one sign).
RELATIVE_ERROR: Final = 0.01
GAMMA: Final = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
LN_GAMMA: Final = math.log(GAMMA)
#: Values closer to 0 than this (in the values' unit, here milliseconds: 1 ns) count as 0.
ZERO: Final = 1e-6
#: Added to a bucket's index so that every key of a value above ``ZERO`` is positive
#: (``ceil(log_gamma(1e-6)) = -690``).
OFFSET: Final = 1000
#: Values are clamped to this magnitude, so a key always fits a 32-bit integer.
LARGEST: Final = 1e300


def key(value: float) -> int:
    """The bucket key of ``value`` (see the module docstring)."""
    magnitude = min(abs(value), LARGEST)
    if magnitude <= ZERO:
        return 0
    index = OFFSET + math.ceil(math.log(magnitude) / LN_GAMMA)
    return index if value > 0 else -index


def value_of(bucket: int) -> float:
    """What bucket key ``bucket`` answers: within ``RELATIVE_ERROR`` of every value it holds."""
    if bucket == 0:
        return 0.0
    index = abs(bucket) - OFFSET
    answer = 2.0 * math.exp(index * LN_GAMMA) / (GAMMA + 1.0)
    return answer if bucket > 0 else -answer


def key_sql(column: str) -> str:
    """SQL computing ``key(column)`` for a non-NULL DOUBLE ``column`` (DuckDB and ClickHouse alike)."""
    magnitude = f"least(abs({column}), {LARGEST!r})"
    index = f"({OFFSET} + CAST(ceil(ln({magnitude}) / {LN_GAMMA!r}) AS INTEGER))"
    return f"(CASE WHEN abs({column}) <= {ZERO!r} THEN 0 WHEN {column} > 0 THEN {index} ELSE -{index} END)"


def sketch_of(values: Iterable[float]) -> dict[int, int]:
    """The sketch of ``values``: bucket key -> count."""
    found: dict[int, int] = {}
    for value in values:
        bucket = key(value)
        found[bucket] = found.get(bucket, 0) + 1
    return found


def merge(*sketches: Mapping[int, int]) -> dict[int, int]:
    """The sketch of all the values of ``sketches`` together (counts added)."""
    merged: dict[int, int] = {}
    for sketch in sketches:
        for bucket, count in sketch.items():
            merged[bucket] = merged.get(bucket, 0) + count
    return merged


def quantile(sketch: Mapping[int, int], q: float) -> float | None:
    """``QUANTILE_CONT(q)`` of the sketched values within ``RELATIVE_ERROR``; None for no values.

    Raises ``ValueError`` unless ``0 <= q <= 1``.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within 0..1, got {q!r}")
    buckets = sorted((bucket, count) for bucket, count in sketch.items() if count > 0)
    total = sum(count for _, count in buckets)
    if total == 0:
        return None
    rank = q * (total - 1)
    low, high = math.floor(rank), math.ceil(rank)
    low_value = high_value = None
    seen = 0
    for bucket, count in buckets:
        seen += count
        if low_value is None and seen > low:
            low_value = value_of(bucket)
        if seen > high:
            high_value = value_of(bucket)
            break
    assert low_value is not None and high_value is not None
    return low_value + (rank - low) * (high_value - low_value)
