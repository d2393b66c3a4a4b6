"""The spike filter: its running median is scipy.signal.medfilt's (zero-padded ends), and a
minute's value ignores a spike of a few seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import medfilt

from stream_rules.spike_filter import SPIKE_KERNEL, minute_median, running_median


# medfilt warns that a list shorter than the kernel is all padding: compared all the same
@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")
@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.0, 250.0, allow_nan=False), min_size=1, max_size=130))
def test_running_median_is_medfilts(samples: list[float]) -> None:
    expected = medfilt(np.asarray(samples, dtype=float), SPIKE_KERNEL)
    assert running_median(samples).tolist() == expected.tolist()


def test_a_few_seconds_spike_does_not_move_the_minute() -> None:
    steady = [97.0] * 60
    spiked = [*steady[:30], 70.0, 70.0, 70.0, *steady[33:]]
    assert minute_median(spiked) == 97.0
    assert running_median(spiked).tolist() == running_median(steady).tolist()


def test_short_minutes_take_the_plain_median() -> None:
    assert math.isnan(minute_median([]))
    assert minute_median([96.0, 98.0]) == 97.0
    assert minute_median([99.0, 90.0, 95.0]) == 95.0
