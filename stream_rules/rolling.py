"""A window of a minute series kept sorted as it slides: its level (median), highest and lowest
value in a few list operations a minute.

The rules ask each judged minute for a dense signal's level, highest and lowest over windows
of 5 to 20 minutes, at two places (a kind's minute and the combined minute a little behind
it). Copying, filtering and sorting each window every minute was the largest part of judging
(issue #15); sliding a sorted list by a minute is one insertion and one removal. A window
moves forward only; asked for an earlier end, or one beyond `REBUILD_AFTER` minutes, it is
built afresh from the series. A value set within a window is swapped in it
(`MinuteSeries.set`). Not part of the state: a restored series builds its windows again.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TYPE_CHECKING

from stream_rules.series import DAY_MIN

if TYPE_CHECKING:
    from stream_rules.series import MinuteSeries

__all__ = ["SortedWindow", "window_of"]

KEPT = 3  # windows per length: one per place the rules ask at (and the late pass's)
REBUILD_AFTER = 30  # minutes: a window further behind is built afresh


class SortedWindow:
    """The values (NaN left out) of the `length` minutes ending at `end`, sorted."""

    __slots__ = ("end", "length", "values")

    def __init__(self, end: int, length: int, values: list[float]) -> None:
        self.end, self.length = end, length
        self.values = sorted(value for value in values if value == value)  # NaN != NaN

    def median(self) -> float:
        """The median of the values (as `features.median`); there must be one."""
        values = self.values
        half = len(values) // 2
        return values[half] if len(values) % 2 else (values[half - 1] + values[half]) / 2

    def swap(self, minute: int, old: float, new: float) -> None:
        """Minute `minute`'s value changed from `old` to `new` (either may be NaN)."""
        if self.end - self.length < minute <= self.end:
            if old == old:
                del self.values[bisect_left(self.values, old)]
            if new == new:
                insort(self.values, new)


def window_of(series: MinuteSeries, end: int, length: int) -> SortedWindow:
    """The series' sorted window of `length` minutes ending at `end` (as `series.window`)."""
    length = min(length, DAY_MIN)
    kept = series.windows.get(length)
    if kept is None:
        kept = series.windows[length] = []
    best = None
    for window in kept:  # the nearest at or before `end`
        if window.end <= end and (best is None or window.end > best.end):
            best = window
    # a minute a day older than the newest is no longer kept: a window that holds one, or
    # would drop one as it slides, is built afresh
    stale_through = series.head - DAY_MIN
    if best is None or end - best.end > REBUILD_AFTER or best.end - length < stale_through:
        if len(kept) >= KEPT:
            kept.remove(best if best is not None else min(kept, key=_end))
        best = SortedWindow(end, length, series.window(end, length).tolist())
        kept.append(best)
        return best
    if best.end < end:
        _slide(series, best, end)
    return best


def _end(window: SortedWindow) -> int:
    return window.end


def _slide(series: MinuteSeries, window: SortedWindow, end: int) -> None:
    """Move `window` forward to end at `end`: minutes in, the oldest out."""
    values, length = window.values, window.length
    ring, head = series.values, series.head  # `series.get`, written out: the hot loop
    for minute in range(window.end + 1, end + 1):
        leaving = minute - length  # kept: the window holds no minute a day old (window_of)
        if leaving <= head:
            value = float(ring[leaving % DAY_MIN])
            if value == value:
                del values[bisect_left(values, value)]
        if minute <= head:
            value = float(ring[minute % DAY_MIN])
            if value == value:
                insort(values, value)
    window.end = end
