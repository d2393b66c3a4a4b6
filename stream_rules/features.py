"""Features of a patient's signals, computed from per-minute values: robust levels, trends and
the partial NEWS2. Pure functions of numbers; scipy for the signal work."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import medfilt

from stream_rules.series import MinuteSeries

SPIKE_KERNEL = 7  # samples: a motion spike shorter than half of it is removed


def median(values: list[float]) -> float:
    """np.median's value for a short list, without numpy's per-call overhead (~15 us): the
    engine takes a dozen medians of a few minutes each, every judged minute of every patient."""
    s = sorted(values)
    h = len(s) // 2
    return s[h] if len(s) % 2 else (s[h - 1] + s[h]) / 2


def minute_median(samples: list[float]) -> float:
    """The median of one minute's samples after a running-median filter, which removes short
    spikes (motion artefacts: a few seconds of a false SpO2 drop or heart-rate jump)."""
    if not samples:
        return math.nan
    if len(samples) >= SPIKE_KERNEL:
        return median(medfilt(np.asarray(samples, dtype=float), SPIKE_KERNEL).tolist())
    return median([float(x) for x in samples])


@dataclass(frozen=True, slots=True)
class Level:
    """A sustained level: the median over a window, and how many minutes had data."""

    value: float
    samples: int

    @property
    def known(self) -> bool:
        return not math.isnan(self.value)


UNKNOWN = Level(math.nan, 0)


def sustained(window: np.ndarray, min_samples: int = 1) -> Level:
    """The median of the window's minutes that have data; unknown below `min_samples`."""
    present = window[~np.isnan(window)].tolist()
    if len(present) < min_samples or not present:
        return Level(math.nan, len(present))
    return Level(median(present), len(present))


@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


@lru_cache(maxsize=512)
def _thinned(n: int, keep: int) -> np.ndarray:
    return np.linspace(0, n - 1, keep).astype(int)


def level_of(series: MinuteSeries, minute: int, window_min: int, min_samples: int = 1) -> Level:
    """`sustained` over the series' window ending at `minute`, computed once per change."""
    key = ("level", minute, window_min, min_samples)
    lv = series.memo.get(key)
    if lv is None:
        lv = series.memo[key] = sustained(series.window(minute, window_min), min_samples)
    return lv  # type: ignore[return-value]


def slope_of(series: MinuteSeries, minute: int, window_min: int, min_samples: int) -> float:
    """`slope_per_hour` over the series' window ending at `minute`, computed once per change."""
    key = ("slope", minute, window_min, min_samples)
    slope = series.memo.get(key)
    if slope is None:
        slope = series.memo[key] = slope_per_hour(series.window(minute, window_min),
                                                  min_samples)
    return slope  # type: ignore[return-value]


def slope_per_hour(window: np.ndarray, min_samples: int) -> float:
    """Theil-Sen slope (per hour) of the window's minutes that have data: robust to the odd
    outlier that a least-squares fit would follow."""
    idx = np.flatnonzero(~np.isnan(window))
    if len(idx) < min_samples:
        return math.nan
    if len(idx) > 48:  # thin a long window: the slope is the same, the pairs fewer
        idx = idx[_thinned(len(idx), 48)]
    # The median of all pairwise slopes (Theil-Sen), written out: scipy.stats.theilslopes
    # computes the same estimate plus confidence intervals we do not use, at ~50x the cost,
    # and it runs every judged minute of every patient.
    i, j = _pairs(len(idx))
    y = window[idx]
    slopes = (y[j] - y[i]) / (idx[j] - idx[i])
    h = len(slopes) // 2  # the median by partition, as np.median does, minus its overhead
    if len(slopes) % 2:
        return float(np.partition(slopes, h)[h]) * 60.0
    lo, hi = np.partition(slopes, (h - 1, h))[h - 1:h + 1].tolist()
    return (lo + hi) / 2 * 60.0


# NEWS2 (RCP 2017), the parameters a wearable can score; bands per CLINICAL.md.
def news2_temperature(c: float) -> int:
    if c <= 35.0:
        return 3
    if c <= 36.0:
        return 1
    if c <= 38.0:
        return 0
    if c <= 39.0:
        return 1
    return 2


def news2_heart_rate(hr: float) -> int:
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
    if spo2 <= 91:
        return 3
    if spo2 <= 93:
        return 2
    if spo2 <= 95:
        return 1
    return 0


def news2_resp_rate(rr: float) -> int:
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
