"""The window features' memo: a window that only slid over empty minutes reuses its result, and
whatever is reused equals what a fresh computation gives."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_rules.features import level_of, slope_of, slope_per_hour, sustained
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
        assert same(slope_of(series, minute, window, min_samples),
                    slope_per_hour(fresh, min_samples))


def test_a_window_that_slid_over_empty_minutes_reuses_its_result_until_a_value_leaves() -> None:
    series = MinuteSeries(100)
    series.set(START, 38.0)
    series.set(START + 5, 38.4)
    first = level_of(series, START + 5, 20, 2)
    assert first.value == 38.2
    for minute in range(START + 6, START + 20):  # nothing entered, nothing left
        assert level_of(series, minute, 20, 2) is first
    assert level_of(series, START + 20, 20, 2).samples == 1  # START left the window
    series.set(START + 21, 38.6)  # a new value: computed afresh
    assert level_of(series, START + 21, 20, 2).value == 38.5


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
