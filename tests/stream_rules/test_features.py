"""The window features' memo: a window that only slid over empty minutes reuses its result, a
window asked for at two minutes in turn is remembered for both, and whatever is reused equals
what a fresh computation gives."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_rules.features import (
    Level,
    level_of,
    level_value,
    memoised,
    slope_of,
    slope_per_hour,
    sustained,
)
from stream_rules.series import MinuteSeries

START = 29_000_000  # an epoch minute in 2025


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.none(), st.none(),
                                 st.floats(35.0, 41.0, allow_nan=False)),
                       min_size=1, max_size=150),
       window=st.sampled_from([5, 10, 20, 60, 120]), min_samples=st.integers(1, 6))
def test_memoised_levels_and_slopes_equal_fresh_ones_every_minute(
        values: list[float | None], window: int, min_samples: int) -> None:
    series = MinuteSeries(100)
    for minute, value in enumerate(values, start=START):
        if value is not None:
            series.set(minute, value)
        fresh = series.window(minute, window)
        assert level_of(series, minute, window, min_samples) == sustained(fresh, min_samples)
        assert same(level_value(series, minute, window, min_samples),
                    sustained(fresh, min_samples).value)
        assert same(slope_of(series, minute, window, min_samples),
                    slope_per_hour(fresh, min_samples))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.one_of(st.none(), st.none(),
                                          st.floats(35.0, 41.0, allow_nan=False)),
                                st.integers(0, 8), st.one_of(st.just(0), st.integers(1, 30))),
                      min_size=1, max_size=150),
       window=st.sampled_from([5, 20, 120]), min_samples=st.integers(1, 4))
def test_windows_asked_at_two_minutes_and_values_set_late_equal_fresh_ones(
        steps: list[tuple[float | None, int, int]], window: int, min_samples: int) -> None:
    """The rules ask for a window at a kind's minute and at the combined minute behind it,
    and a late value can land inside a window already remembered."""
    series = MinuteSeries(100)
    for minute, (value, lag, late_by) in enumerate(steps, start=START):
        if value is not None:
            series.set(minute - late_by, value)
        for asked in (minute, minute - lag):
            fresh = series.window(asked, window)
            assert level_of(series, asked, window, min_samples) == sustained(fresh, min_samples)
            assert same(slope_of(series, asked, window, min_samples),
                        slope_per_hour(fresh, min_samples))


def remembered(series: MinuteSeries, minute: int, computed: list[int]) -> Level:
    """A level over 20 minutes through `memoised` (as slopes and fever runs are), noting in
    `computed` each minute it was computed at."""
    def level(window: np.ndarray) -> Level:
        computed.append(minute)
        return sustained(window, 2)
    return memoised(series, ("test", 20), minute, 20, level)


def test_a_window_that_slid_over_empty_minutes_reuses_its_result_until_a_value_leaves() -> None:
    series = MinuteSeries(100)
    series.set(START, 38.0)
    series.set(START + 5, 38.4)
    computed: list[int] = []
    first = remembered(series, START + 5, computed)
    assert first.value == 38.2
    for minute in range(START + 6, START + 20):  # nothing entered, nothing left
        assert remembered(series, minute, computed) is first
    assert computed == [START + 5]
    assert remembered(series, START + 20, computed).samples == 1  # START left the window
    series.set(START + 21, 38.6)  # a new value: computed afresh
    assert remembered(series, START + 21, computed).value == 38.5
    assert computed == [START + 5, START + 20, START + 21]


def test_a_window_asked_at_two_minutes_is_remembered_for_both_until_a_value_lands_in_it(
) -> None:
    series = MinuteSeries(100)
    series.set(START, 38.0)
    series.set(START + 5, 38.4)
    computed: list[int] = []
    ahead = remembered(series, START + 5, computed)  # a kind's minute
    behind = remembered(series, START + 3, computed)  # the combined minute, behind it
    assert (ahead.samples, behind.samples) == (2, 1)
    for step in range(1, 4):  # both move on, each reusing its own window
        assert remembered(series, START + 5 + step, computed) is ahead
        assert remembered(series, START + 3 + step, computed) in (behind, ahead)
    assert remembered(series, START + 5, computed) is ahead  # the combined minute catches up
    series.set(START + 40, 38.8)  # in neither window: both remembered still
    assert remembered(series, START + 9, computed) is ahead
    assert computed == [START + 5, START + 3]
    series.set(START + 2, 39.0)  # late, inside both windows: forgotten
    assert remembered(series, START + 9, computed).value == 38.4
    assert computed[-1] == START + 9


def test_a_slope_over_a_full_window_equals_the_general_path() -> None:
    rising = [36.5 + 0.01 * minute + (0.3 if minute % 17 == 0 else 0.0) for minute in range(60)]
    series = MinuteSeries(100)
    for minute, value in enumerate(rising, start=START):
        series.set(minute, value)
    full = series.window(START + 59, 60)
    gappy = full.copy()
    gappy[0] = math.nan  # not full: the general path, over the other 59 minutes
    assert slope_per_hour(full, 10) == slope_per_hour(full.copy(), 10)
    assert 0.5 < slope_per_hour(full, 10) < 0.7  # 0.01 °C a minute, the outliers ignored
    assert 0.5 < slope_per_hour(gappy, 10) < 0.7
