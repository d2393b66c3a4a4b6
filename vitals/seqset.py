"""The sequence numbers seen from one device, as a short sorted list of closed ranges.

Sequence numbers of a device are mostly contiguous, so hours of 1 Hz readings cost a few
integers and an upload hours old is still recognised. Used by ingest's duplicate filter and by
the rule engine's state (which must stay small and serialisable)."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np


class SeqSet:
    """Sequence numbers seen, as sorted closed ranges (at most `max_ranges`, oldest dropped)."""
    __slots__ = ("ends", "max_ranges", "starts")

    def __init__(self, max_ranges: int = 256, starts: list[int] | None = None,
                 ends: list[int] | None = None) -> None:
        self.max_ranges = max_ranges
        self.starts: list[int] = starts if starts is not None else []
        self.ends: list[int] = ends if ends is not None else []

    def __contains__(self, seq: int) -> bool:
        i = bisect_right(self.starts, seq) - 1
        return i >= 0 and seq <= self.ends[i]

    def add(self, seq: int) -> bool:
        """Remember `seq`; False if it was already there. Past `max_ranges` ranges the lowest
        (oldest) range is forgotten."""
        starts, ends = self.starts, self.ends
        if ends and seq == ends[-1] + 1:  # the common case: the next reading of a live device
            ends[-1] = seq
            return True
        i = bisect_right(starts, seq) - 1
        if i >= 0 and seq <= ends[i]:
            return False
        joins_left = i >= 0 and ends[i] == seq - 1
        joins_right = i + 1 < len(starts) and starts[i + 1] == seq + 1
        if joins_left and joins_right:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        elif joins_left:
            ends[i] = seq
        elif joins_right:
            starts[i + 1] = seq
        else:
            starts.insert(i + 1, seq)
            ends.insert(i + 1, seq)
            if len(starts) > self.max_ranges:
                del starts[0], ends[0]
        return True

    def add_newer(self, seqs: np.ndarray) -> bool:
        """Remember a run of seqs all newer than any seen, strictly increasing (a live
        device's readings in order), as `add` of each would; False, changing nothing, if
        the run is not such."""
        if len(seqs) == 0:
            return True
        first, last = int(seqs[0]), int(seqs[-1])
        if self.ends and first <= self.ends[-1]:
            return False
        steps = np.diff(seqs)
        if len(steps) and int(steps.min()) <= 0:
            return False
        if last - first == len(steps):  # every step 1, the usual case: one range
            starts, ends = [first], [last]
        else:
            breaks = np.flatnonzero(steps != 1) + 1
            starts = [first, *seqs[breaks].tolist()]
            ends = [*seqs[breaks - 1].tolist(), last]
        if self.ends and starts[0] == self.ends[-1] + 1:
            self.ends[-1] = ends[0]
            starts, ends = starts[1:], ends[1:]
        self.starts += starts
        self.ends += ends
        if len(self.starts) > self.max_ranges:
            del self.starts[:-self.max_ranges], self.ends[:-self.max_ranges]
        return True

    def restart(self, seq: int) -> None:
        """The device restarted its counter: forget everything but `seq`."""
        self.starts[:] = [seq]
        self.ends[:] = [seq]
