"""Sorted windows (`stream_rules.rolling`) hold exactly the values `MinuteSeries.window` holds,
whatever is set where and whichever windows are asked for: forward, back, a value set late
inside a window, a day's gap that drops history."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_rules.features import Level, level_of, sustained
from stream_rules.rolling import REBUILD_AFTER, window_of
from stream_rules.series import DAY_MIN, MinuteSeries

steps = st.lists(st.one_of(
    st.tuples(st.just("set"), st.integers(-40, 40), st.floats(30.0, 200.0)),
    st.tuples(st.just("ask"), st.integers(-60, 5), st.sampled_from([1, 5, 10, 20])),
    st.tuples(st.just("jump"), st.sampled_from([1, 7, REBUILD_AFTER + 3, DAY_MIN - 10,
                                                DAY_MIN + 2]), st.just(0)),
    # a value about a day ahead: the minutes of the windows asked for go out of the ring
    st.tuples(st.just("ahead"), st.integers(DAY_MIN - 25, DAY_MIN + 5), st.just(0)),
), max_size=120)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_a_sorted_window_holds_what_the_series_window_holds(script: list[tuple]) -> None:
    series = MinuteSeries(100.0)
    newest = 1_000
    for step, a, b in script:
        if step == "jump":  # the newest minute moves on
            newest += a
            series.set(newest, 80.0)
        elif step == "ahead":
            series.set(newest + a, 81.0)
        elif step == "set":  # a minute near the newest (late ones too)
            series.set(newest + a, b)
        else:  # a window ending near the newest, of some length
            end, length = newest + a, int(b)
            window = window_of(series, end, length)
            expected = sorted(v for v in series.window(end, length).tolist() if not math.isnan(v))
            assert window.values == expected
            for needed in (1, 3):
                assert level_of(series, end, length, needed) == sustained(
                    series.window(end, length), needed)


def test_levels_are_the_sustained_median() -> None:
    series = MinuteSeries(10.0)
    for minute, value in enumerate([80.0, math.nan, 90.0, 100.0, 85.0]):
        if not math.isnan(value):
            series.set(minute, value)
    assert level_of(series, 4, 4) == Level(90.0, 3)
    assert level_of(series, 4, 5, 5) == Level(math.nan, 4)
    assert window_of(series, 4, 3).values == [85.0, 90.0, 100.0]
    series.set(3, 70.0)  # set late, inside the window
    assert window_of(series, 4, 3).values == [70.0, 85.0, 90.0]


def test_a_window_whose_minutes_left_the_ring_is_built_afresh() -> None:
    series = MinuteSeries(100.0)
    for minute in range(1000, 1021):
        series.set(minute, 80.0 + minute % 7)
    assert len(window_of(series, 1020, 10).values) == 10
    series.set(1020 + DAY_MIN - 3, 81.0)  # a day on: the window's first 7 minutes are gone
    assert window_of(series, 1020, 10).values == [83.0, 84.0, 85.0]
    assert window_of(series, 1022, 10).values == [83.0, 84.0, 85.0]
