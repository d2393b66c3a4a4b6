"""Features of a patient's signals, computed from per-minute values: robust levels, trends and
the partial NEWS2. Pure functions of numbers, with numpy (no scipy: the rules, and so the rules
file's validation, import this module; the spike filter is in `spike_filter`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np

from stream_rules.rolling import window_of
from stream_rules.series import MEMO_SEGMENTS, MinuteSeries

T = TypeVar("T")
THIN_TO = 48  # a slope's window is thinned to this many minutes: the same slope, fewer pairs


def median(values: list[float]) -> float:
    """np.median's value for a short list, without numpy's per-call overhead (~15 us): the
    engine takes a dozen medians of a few minutes each, every judged minute of every patient."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


@dataclass(slots=True)  # not frozen, to be made at a quarter of the cost: never changed
class Level:
    """A sustained level: the median over a window, and how many minutes had data."""

    value: float
    samples: int

    @property
    def known(self) -> bool:
        """Whether the window had enough data for a level."""
        return not math.isnan(self.value)


UNKNOWN = Level(math.nan, 0)


def sustained(window: np.ndarray, min_samples: int = 1) -> Level:
    """The median of the window's minutes that have data; unknown below `min_samples`."""
    present = [value for value in window.tolist() if value == value]  # NaN != NaN
    if len(present) < min_samples or not present:
        return Level(math.nan, len(present))
    return Level(median(present), len(present))


@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


@lru_cache(maxsize=512)
def _thinned(n: int, keep: int) -> np.ndarray:
    return np.linspace(0, n - 1, keep).astype(int)


def memoised(series: MinuteSeries, key: tuple[object, ...], minute: int, window_min: int,
             compute: Callable[[np.ndarray], T]) -> T:
    """`compute` of the series' window ending at `minute`, once per change of what the window
    holds: every feature here depends on the values and the minutes between them, not on
    where the window sits, so a window that only slid over empty minutes reuses its result.
    A few windows are remembered per feature (`MinuteSeries.memo`), each over the minutes it
    held the same values; setting a value forgets the windows that hold its minute."""
    segments = series.memo.get(key)
    if segments is None:
        segments = series.memo[key] = []
    for segment in reversed(segments):  # the newest first: the likeliest
        if segment[0] <= minute <= segment[1]:
            return segment[3]  # type: ignore[no-any-return]
    # A window ending at a minute with a value did not slide over nothing: a dense series
    # (oximetry every minute) skips the slide checks.
    if segments and not series.has_value(minute):
        for segment in reversed(segments):
            if segment[1] < minute and series.slid_over_nothing(segment[1], minute, window_min):
                segment[1] = minute
                return segment[3]  # type: ignore[no-any-return]
    value = compute(series.window(minute, window_min))
    if len(segments) >= MEMO_SEGMENTS:
        del segments[0]  # the longest remembered
    segments.append([minute, minute, window_min, value])
    return value


def level_of(series: MinuteSeries, minute: int, window_min: int, min_samples: int = 1) -> Level:
    """`sustained` over the series' window ending at `minute`, from its sorted window."""
    window = window_of(series, minute, window_min)
    count = len(window.values)
    if count < min_samples or not count:
        return Level(math.nan, count)
    return Level(window.median(), count)  # sorted already


def level_value(series: MinuteSeries, minute: int, window_min: int, min_samples: int = 1
                ) -> float:
    """`level_of`'s value alone (NaN: unknown): the combined minute takes four every minute
    of every patient."""
    values = window_of(series, minute, window_min).values
    count = len(values)
    if count < min_samples or not count:
        return math.nan
    half = count // 2
    return values[half] if count % 2 else (values[half - 1] + values[half]) / 2


def slope_of(series: MinuteSeries, minute: int, window_min: int, min_samples: int) -> float:
    """`slope_per_hour` over the series' window ending at `minute`, computed once per change."""
    return memoised(series, ("slope", window_min, min_samples), minute, window_min,
                    lambda window: slope_per_hour(window, min_samples))


@lru_cache(maxsize=64)
def _full_window(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a window of `n` minutes that all have data: the minutes kept, each pair's earlier
    and later index among them, and the minutes between the two."""
    minutes = np.arange(n) if n <= THIN_TO else _thinned(n, THIN_TO)
    earlier, later = _pairs(len(minutes))
    return minutes, earlier, later, minutes[later] - minutes[earlier]


def slope_per_hour(window: np.ndarray, min_samples: int) -> float:
    """Theil-Sen slope (per hour) of the window's minutes that have data: robust to the odd
    outlier that a least-squares fit would follow. Unknown (NaN) below `min_samples` minutes
    with data, and below two: a slope needs a pair."""
    min_samples = max(min_samples, 2)
    present = ~np.isnan(window)
    if present.all():  # the usual case: the pairs' indices and distances are precomputed
        if len(window) < min_samples:
            return math.nan
        minutes, earlier, later, apart = _full_window(len(window))
        values = window[minutes]
    else:
        minutes = np.flatnonzero(present)
        if len(minutes) < min_samples:
            return math.nan
        if len(minutes) > THIN_TO:  # thin a long window: the slope is the same, the pairs fewer
            minutes = minutes[_thinned(len(minutes), THIN_TO)]
        # The median of all pairwise slopes (Theil-Sen), written out: scipy.stats.theilslopes
        # computes the same estimate plus confidence intervals we do not use, at ~50x the
        # cost, and it runs every judged minute of every patient.
        earlier, later = _pairs(len(minutes))
        values = window[minutes]
        apart = minutes[later] - minutes[earlier]
    slopes = (values[later] - values[earlier]) / apart
    half = len(slopes) // 2  # the median by partition, as np.median does, minus its overhead
    if len(slopes) % 2:
        slopes.partition(half)  # in place: `slopes` is this call's own
        return float(slopes[half]) * 60.0
    slopes.partition((half - 1, half))
    low, high = slopes[half - 1:half + 1].tolist()
    return (low + high) / 2 * 60.0


# NEWS2 (RCP 2017), the parameters a wearable can score; bands per CLINICAL.md.
def news2_temperature(celsius: float) -> int:
    """NEWS2's temperature score."""
    if celsius <= 35.0:
        return 3
    if celsius <= 36.0:
        return 1
    if celsius <= 38.0:
        return 0
    if celsius <= 39.0:
        return 1
    return 2


def news2_heart_rate(hr: float) -> int:
    """NEWS2's heart-rate score."""
    if hr <= 40:
        return 3
    if hr <= 50:
        return 1
    if hr <= 90:
        return 0
    if hr <= 110:
        return 1
    if hr <= 130:
        return 2
    return 3


def news2_spo2(spo2: float) -> int:
    """NEWS2's SpO2 score (scale 1)."""
    if spo2 <= 91:
        return 3
    if spo2 <= 93:
        return 2
    if spo2 <= 95:
        return 1
    return 0


def news2_resp_rate(rr: float) -> int:
    """NEWS2's respiratory-rate score."""
    if rr <= 8:
        return 3
    if rr <= 11:
        return 1
    if rr <= 20:
        return 0
    if rr <= 24:
        return 2
    return 3


SCORERS = {"temp": news2_temperature, "hr": news2_heart_rate, "spo2": news2_spo2,
           "rr": news2_resp_rate}


def news2_partial(levels: dict[str, float]) -> tuple[int, dict[str, int]]:
    """(aggregate, score per parameter) over the parameters measured (NaN ones are left out).
    Values are rounded as a nurse would read them off the device before scoring."""
    scores = {}
    for name, value in levels.items():
        if not math.isnan(value):
            rounded = round(value, 1) if name == "temp" else round(value)
            scores[name] = SCORERS[name](rounded)
    return sum(scores.values()), scores
