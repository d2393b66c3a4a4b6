"""A day of per-minute values for one signal, in a fixed ring: long horizons at a small,
constant size (the raw samples of a minute are dropped once the minute is judged)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from stream_rules.rolling import SortedWindow

DAY_MIN = 24 * 60
_MISSING = -32768  # int16 sentinel on the wire
MAX_SLIDE = 10  # minutes: a window that slid further is computed afresh
# Windows remembered per feature: the rules ask for one window at two minutes (a kind's, and the
# combined minute a little behind it), which one remembered window would make them recompute
# in turn.
MEMO_SEGMENTS = 3


class MinuteSeries:
    """Values indexed by epoch minute, the newest `DAY_MIN` of them kept. Missing is NaN.

    Serialised as int16 scaled by `scale` (e.g. 100 for centi-degrees), so a day of one
    signal costs 2.8 KiB."""

    __slots__ = ("changes", "head", "last_set", "memo", "scale", "values", "windows")

    def __init__(self, scale: float, head: int = -1, values: np.ndarray | None = None) -> None:
        self.scale = scale
        self.head = head  # newest minute stored; -1 when empty
        self.values = np.full(DAY_MIN, np.nan) if values is None else values
        # Features of windows (levels, slopes, runs), per feature a few segments
        # [first, last, length, result]: the window of `length` minutes ending at any minute
        # from first to last holds the same values, so has that result. The rules ask for the
        # same window several times a minute, and a window that only slid over empty minutes
        # holds the same values (`features.memoised`). Not part of the state.
        self.memo: dict[tuple[object, ...], list[list]] = {}
        # Sorted windows by length (`rolling.window_of`), kept in step with the values. Not
        # part of the state either.
        self.windows: dict[int, list[SortedWindow]] = {}
        # Values set so far, and the minute of the last (`quiet_kinds`). Not part of the
        # state either.
        self.changes, self.last_set = 0, -1

    def set(self, minute: int, value: float) -> None:
        """Store a minute's value (quantised as on the wire); a minute older than a day is
        dropped."""
        if minute > self.head:
            self._advance(minute)
            old = math.nan
        elif minute <= self.head - DAY_MIN:
            return  # older than a day: not kept
        else:
            old = float(self.values[minute % DAY_MIN])
        self.changes, self.last_set = self.changes + 1, minute
        # quantised as on the wire, so a state restored from its bytes judges exactly alike
        new = self.values[minute % DAY_MIN] = round(value * self.scale) / self.scale
        if self.memo:
            self._forget(minute)
        for windows in self.windows.values():
            for window in windows:
                if minute <= window.end:  # most often a new minute, beyond every window
                    window.swap(minute, old, new)

    def _forget(self, minute: int) -> None:
        """Drop the remembered windows that hold `minute`, or a minute no longer kept."""
        kept_after = self.head - DAY_MIN
        for segments in self.memo.values():
            segments[:] = [s for s in segments
                           if not s[0] - s[2] < minute <= s[1] and s[0] - s[2] >= kept_after]

    def get(self, minute: int) -> float:
        """A minute's value; NaN when missing or no longer kept."""
        if minute > self.head or minute <= self.head - DAY_MIN:
            return float("nan")
        return float(self.values[minute % DAY_MIN])

    def has_value(self, minute: int) -> bool:
        """Whether the minute is kept and has a value."""
        if minute > self.head or minute <= self.head - DAY_MIN:
            return False
        value = self.values[minute % DAY_MIN]
        return bool(value == value)  # NaN != NaN

    def window(self, end: int, length: int) -> np.ndarray:
        """Values of the minutes (end - length, end], oldest first; NaN where missing."""
        length = min(length, DAY_MIN)
        first = end - length + 1
        slot = first % DAY_MIN
        if end <= self.head and first > self.head - DAY_MIN and slot + length <= DAY_MIN:
            return self.values[slot:slot + length].copy()  # the usual case: one slice, all current
        minutes = np.arange(first, end + 1)
        out = self.values[minutes % DAY_MIN]
        stale = (minutes > self.head) | (minutes <= self.head - DAY_MIN)
        if stale.any():
            out = out.copy()
            out[stale] = np.nan
        return out

    def slid_over_nothing(self, end: int, later: int, length: int) -> bool:
        """Whether the window of `length` minutes ending at `later` holds the same values, at
        the same minutes, as the one ending at `end`: no minute it slid into or out of has a
        value. (A sparse thermometer's window is like this most minutes.)"""
        if not end < later <= end + MAX_SLIDE:
            return False
        length = min(length, DAY_MIN)
        head, values = self.head, self.values
        for entered in range(end + 1, later + 1):
            for minute in (entered, entered - length):  # in, and out at the far end
                if head - DAY_MIN < minute <= head and values[minute % DAY_MIN] == \
                        values[minute % DAY_MIN]:  # not NaN: a value
                    return False
        return True

    def _advance(self, minute: int) -> None:
        gap = minute - self.head
        if self.head < 0 or gap >= DAY_MIN:
            self.values[:] = np.nan
        elif gap <= 4:  # the usual case, a minute or a few: item by item beats arange's cost
            for slot in range(self.head + 1, minute + 1):
                self.values[slot % DAY_MIN] = np.nan
        else:
            cleared = np.arange(self.head + 1, minute + 1) % DAY_MIN
            self.values[cleared] = np.nan
        self.head = minute

    def to_bytes(self) -> bytes:
        """The ring as little-endian int16, scaled; missing is -32768."""
        scaled = np.where(np.isnan(self.values), _MISSING,
                          np.round(np.nan_to_num(self.values) * self.scale))
        return scaled.astype("<i2").tobytes()

    @classmethod
    def from_bytes(cls, scale: float, head: int, raw: bytes) -> MinuteSeries:
        """The series `to_bytes` wrote."""
        ints = np.frombuffer(raw, dtype="<i2")
        values = np.where(ints == _MISSING, np.nan, ints / scale)
        return cls(scale, head, values)
