"""The duration sketch: a quantile within its relative error of the exact one, merges that add up."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opswatch.server.store import sketch

durations = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)
quantiles = st.sampled_from([0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0]) | st.floats(min_value=0.0, max_value=1.0)


def exact(values: list[float], q: float) -> float:
    """``QUANTILE_CONT``: linear interpolation between the order statistics around rank q (n - 1)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def within_bound(estimate: float | None, truth: float) -> bool:
    assert estimate is not None
    return abs(estimate - truth) <= sketch.RELATIVE_ERROR * abs(truth) + sketch.ZERO


@settings(max_examples=300)
@given(st.lists(durations, min_size=1, max_size=300), quantiles)
def test_it_answers_a_quantile_within_the_relative_error(values: list[float], q: float) -> None:
    assert within_bound(sketch.quantile(sketch.sketch_of(values), q), exact(values, q))


@settings(max_examples=200)
@given(st.lists(st.lists(durations, max_size=50), min_size=1, max_size=8), quantiles)
def test_it_merges_sketches_into_the_sketch_of_all_their_values(parts: list[list[float]], q: float) -> None:
    merged = sketch.merge(*(sketch.sketch_of(part) for part in parts))
    everything = [value for part in parts for value in part]
    assert merged == sketch.sketch_of(everything)
    if everything:
        assert within_bound(sketch.quantile(merged, q), exact(everything, q))
    else:
        assert sketch.quantile(merged, q) is None


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_it_keeps_every_value_within_the_relative_error_of_its_bucket(value: float) -> None:
    answer = sketch.value_of(sketch.key(value))
    if abs(value) <= sketch.ZERO:
        assert answer == 0.0
    else:
        assert abs(answer - value) <= sketch.RELATIVE_ERROR * abs(value) * (1 + 1e-12)


@given(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
)
def test_it_orders_bucket_keys_as_the_values(a: float, b: float) -> None:
    if a <= b:
        assert sketch.key(a) <= sketch.key(b)


def test_it_answers_none_for_no_values_and_refuses_a_quantile_outside_0_to_1() -> None:
    assert sketch.quantile({}, 0.5) is None
    with pytest.raises(ValueError, match=r"q must be within 0\.\.1"):
        sketch.quantile({1000: 1}, 1.5)


def test_it_keeps_durations_from_a_microsecond_to_a_day_in_a_bounded_number_of_buckets() -> None:
    keys = {sketch.key(10 ** (exponent / 100)) for exponent in range(-300, 800)}  # 1 µs .. 100,000 s in ms
    assert len(keys) <= 1_200
    assert all(0 < key < 2**31 for key in keys)
