"""Minute values computed ahead, in bulk, for the oximetry runs of `stream_rules.runs`, and
the values minutes close with (`Closing`).

Closing a minute takes the median of its samples after the spike filter: ~7 us a signal in
Python, three signals every minute of every patient (~15 % of the standard evaluation).
`MinuteMedians` computes them for a whole table of rows at once (`spike_filter.minute_medians`,
~1 us a minute). `MedianTally` follows, per patient and across runs, which samples of each
open minute came in bulk from which group of rows, so that the value computed ahead is used
only for a minute whose samples are exactly that group's, in its order: all of the group's
rows, none skipped, nothing else added (the engine checks the count when it closes the
minute). Anything else is computed at the close, as always.

`Closing` gives the engine the values a run's minutes close with (`engine.Known`), from the
samples in the state and the rows not put there: a minute whose rows are all in one run
closes without its samples ever being copied into the state.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

import numpy as np

from stream_rules.rules.spec import MINUTE
from stream_rules.spike_filter import minute_median, minute_medians
from stream_rules.state import KIND_SIGNALS

__all__ = ["Closing", "MedianTally", "MinuteMedians"]

SIGNALS = KIND_SIGNALS["oximetry"]


@dataclass(frozen=True, slots=True)
class MinuteMedians:
    """A table of oximetry rows (one chunk, in order) with its minutes' values: rows are
    grouped by minute (a group: consecutive rows in one minute) and only the plain rows (those
    taken as they are) count. Per group and signal: how many samples, and their median."""

    group: np.ndarray  # each row's group
    rank: np.ndarray  # each row's place among the plain rows: how many come before it
    start_rank: list[int]  # per group, the rank of its first row
    counts: dict[str, list[int]]
    medians: dict[str, list[float]]

    @classmethod
    def of(cls, ts: np.ndarray, plain: np.ndarray, values: dict[str, np.ndarray],
           present: dict[str, np.ndarray]) -> MinuteMedians:
        """Of rows in order: `ts` epoch ms, `plain` the rows taken as they are; per signal the
        values, and where the row has one. Integer values are worked on as small integers,
        which is exact and fastest."""
        minutes = ts // MINUTE
        begins = np.ones(len(ts), bool)
        begins[1:] = minutes[1:] != minutes[:-1]
        group = np.cumsum(begins) - 1
        count = int(group[-1]) + 1 if len(group) else 0
        rank = np.cumsum(plain) - plain
        counts, medians = {}, {}
        # signals sampled alike (the same rows) are worked on together
        alike: dict[bytes, list[str]] = {}
        for signal in SIGNALS:
            alike.setdefault(np.packbits(present[signal] & plain).tobytes(), []).append(signal)
        for signals in alike.values():
            kept = present[signals[0]] & plain
            columns = tuple(_small(values[signal], kept) for signal in signals)
            n, found = minute_medians(group, columns, kept, count)
            for signal, median in zip(signals, found, strict=True):
                counts[signal], medians[signal] = n.tolist(), median.tolist()
        return cls(group, rank, rank[begins].tolist(), counts, medians)

    def ahead(self, signal: str, group: int, count: int) -> float | None:
        """The group's median of `signal` computed ahead, if `count` samples are all it has."""
        return self.medians[signal][group] if count == self.counts[signal][group] else None


def _small(column: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Integer values as int16 where kept (a vital sign's range), zeros elsewhere."""
    if column.dtype.kind in "iu":
        return np.where(kept, column, 0).astype(np.int16)  # type: ignore[no-any-return]
    return column


class MedianTally:
    """One patient's open minutes, as the runs filled them: per minute, the table and group
    its samples came from, the rank of the next row expected, and how many samples of each
    signal were added. A minute that anything else touched is spoiled (None)."""

    __slots__ = ("minutes",)

    def __init__(self) -> None:
        self.minutes: dict[int, list | None] = {}

    def add(self, table: MinuteMedians, row: int, rows: int, minute: int,
            added: tuple[int, ...]) -> None:
        """Rows `row`.. (`rows` of them, plain, consecutive) of `table`, all in `minute`, put
        `added` samples of each signal into the minute."""
        group, rank = int(table.group[row]), int(table.rank[row])
        minutes = self.minutes
        if minute not in minutes:  # its first samples: whole only from the group's start
            minutes[minute] = [table, group, rank + rows, *added] \
                if rank == table.start_rank[group] else None
            return
        entry = minutes[minute]
        if entry is None:
            return
        if entry[0] is table and entry[1] == group and entry[2] == rank:
            entry[2] = rank + rows
            for i, n in enumerate(added):
                entry[3 + i] += n
        else:
            minutes[minute] = None  # rows skipped, or from elsewhere

    def get(self, minute: int) -> dict[str, tuple[int, float]] | None:
        """For a minute being closed (and forgotten here): per signal whose every sample of
        the group was added, (how many, their median)."""
        entry = self.minutes.pop(minute, None)
        if entry is None:
            return None
        table, group = entry[0], entry[1]
        known = {}
        for i, signal in enumerate(SIGNALS):
            added = entry[3 + i]
            median = table.ahead(signal, group, added) if added else None
            if median is not None:
                known[signal] = (added, median)
        return known

    def forget(self, through: int) -> None:
        """Drop minutes up to `through` (closed without being asked for)."""
        if len(self.minutes) > 8:
            self.minutes = {m: e for m, e in self.minutes.items() if m > through}


# A run's samples of one signal: (name, values with NaN where a row has none, whether every
# row has one, whether none has, how many rows up to each have one: None if every row has)
Signal = tuple[str, np.ndarray, bool, bool, np.ndarray | None]


@dataclass(slots=True)
class Closing:
    """The values a run's minutes close with (`engine.Known`). Rows `first`..`end` of the run
    (their `minutes`) were taken but their samples not put in the state: a minute that has
    them closes from them (after any samples the state holds, which then are all of them).
    `served`: the minutes closed from rows."""

    minutes: list[int]
    signals: tuple[Signal, ...]
    table: MinuteMedians | None  # the run's rows' minute values computed ahead, if any,
    row: int  # and the run's first row in that table
    tally: MedianTally | None
    first: int = 0
    end: int = 0
    served: list[int] = field(default_factory=list)

    def closing(self, minute: int, samples: dict[str, list[float]] | None
                ) -> dict[str, float]:
        if samples is not None:
            return self._from_samples(minute, samples)
        a = bisect_left(self.minutes, minute, self.first, self.end)
        b = bisect_right(self.minutes, minute, a, self.end)
        self.served.append(minute)
        table, group = self.table, -1
        if table is not None and a < b:
            row = self.row + a
            group = int(table.group[row])
            if int(table.rank[row]) != table.start_rank[group]:
                group = -1  # rows of the group came before: not the whole group
        values = {}
        for name, column, every, none, counted in self.signals:
            if none or a == b:
                continue
            count = b - a if counted is None else \
                int(counted[b - 1]) - (int(counted[a - 1]) if a else 0)
            if not count:
                continue
            value = None
            if group >= 0:  # the median computed ahead, if these are all the group's samples
                assert table is not None
                value = table.ahead(name, group, count)
            if value is None:
                present = column[a:b].tolist()
                if not every:
                    present = [v for v in present if v == v]  # NaN != NaN
                value = minute_median(present)
            values[name] = value
        return values

    def _from_samples(self, minute: int, samples: dict[str, list[float]]) -> dict[str, float]:
        """A minute whose samples are all in the state: computed ahead where the tally says
        they are exactly a group's."""
        ahead = self.tally.get(minute) if self.tally is not None else None
        values = {}
        for name in SIGNALS:
            present = samples.get(name)
            if present:
                value = ahead.get(name) if ahead else None
                values[name] = value[1] if value is not None and value[0] == len(present) \
                    else minute_median(present)
        return values
