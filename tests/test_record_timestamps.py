"""``format_timestamp``: seconds since the epoch as RFC 3339 with milliseconds, cut to the millisecond
without losing one to float noise."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opswatch.record import format_timestamp


def test_it_formats_utc_with_milliseconds() -> None:
    assert format_timestamp(1_764_787_200.0) == "2025-12-03T18:40:00.000Z"
    assert format_timestamp(1_764_787_200.9999) == "2025-12-03T18:40:00.999Z"


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_a_whole_millisecond_as_a_float_prints_as_itself(millis: int) -> None:
    # nanoseconds over 1e9 is how an exporter's time arrives; about one in ten lands just below the ms
    printed = format_timestamp(millis * 1_000_000 / 1e9)
    assert printed.endswith(f".{millis % 1000:03d}Z"), (millis, printed)
