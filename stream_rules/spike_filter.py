"""One minute's raw samples to the minute's value: the median after a running median of
`SPIKE_KERNEL` samples, which removes short spikes.

The running median is scipy.signal.medfilt's, zero-padded at both ends alike (the tests
compare the two on every length), written out in numpy: a minute of 1 Hz oximetry is filtered
twice a minute for every patient, and medfilt's checks and dispatch cost ~70 us a call against
~9 us for the filter itself."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from stream_rules.features import median

SPIKE_KERNEL = 7  # samples: a motion spike shorter than half of it is removed
_HALF = SPIKE_KERNEL // 2
_PAD = np.zeros(_HALF)


@lru_cache(maxsize=256)
def _windows(n: int) -> np.ndarray:
    """For `n` samples padded by `_HALF` zeros each side: each sample's window, as indices."""
    return np.arange(n)[:, None] + np.arange(SPIKE_KERNEL)


def running_median(samples: list[float]) -> np.ndarray:
    """Each sample replaced by the median of the `SPIKE_KERNEL` around it, zeros beyond the
    ends (as scipy.signal.medfilt): a window has an odd size, so its median is one of its
    values, exactly."""
    padded = np.concatenate((_PAD, np.asarray(samples, dtype=float), _PAD))
    return np.sort(padded[_windows(len(samples))], axis=1)[:, _HALF]


def minute_median(samples: list[float]) -> float:
    """The median of one minute's samples after a running median, which removes short spikes
    (motion artefacts: a few seconds of a false SpO2 drop or heart-rate jump)."""
    if not samples:
        return math.nan
    if len(samples) >= SPIKE_KERNEL:
        return median(running_median(samples).tolist())
    return median([float(sample) for sample in samples])


# A comparator network whose middle output is the median of seven (checked on every 0-1
# input, which proves it for all): numpy's min and max over whole lanes of windows beat
# sorting each window, by ~10x on small integers.
_MEDIAN_OF_7 = ((0, 6), (2, 3), (4, 5), (0, 2), (1, 4), (3, 6), (0, 1), (2, 5), (3, 4), (1, 2),
                (4, 6), (2, 3), (4, 5), (3, 4))


def minute_medians(groups: np.ndarray, columns: tuple[np.ndarray, ...], present: np.ndarray,
                   count: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """`minute_median` of many minutes at once, for one or more signals sampled alike.
    `groups`: each row's minute, numbered 0 to `count` - 1 in row order; `columns`: the rows'
    samples of each signal, where `present`. For each group: how many samples, and per signal
    the `minute_median` of them in row order (NaN with none).

    The same numbers exactly, in the columns' type (small integers are fastest): each
    filtered sample is one of its window's values or a zero of the padding, and each median
    one of them or the mean of two, as floats. Minutes of up to `_WIDE` samples are worked on
    together, one row each; longer ones (rare) a block per length."""
    owners = groups[present]
    counts = np.bincount(owners, minlength=count)
    out = [np.full(count, np.nan) for _ in columns]
    if not len(owners):
        return counts, out
    firsts = np.cumsum(counts) - counts  # each group's first sample
    samples = [column[present] for column in columns]
    within = (counts > 0) & (counts <= _WIDE)
    if within.any():
        chosen = np.flatnonzero(within)
        row_of = np.full(count, -1)
        row_of[chosen] = np.arange(len(chosen))
        rows = row_of[owners]
        kept = rows >= 0
        at = (rows[kept], (np.arange(len(owners)) - firsts[owners])[kept])
        shape = (len(chosen), int(counts[chosen].max()))
        for medians, column in zip(out, samples, strict=True):
            block = np.zeros(shape, column.dtype)
            block[at] = column[kept]
            medians[chosen] = _medians_of_rows(block, counts[chosen])
    for length in np.unique(counts[counts > _WIDE]).tolist():  # a block of each length
        chosen = np.flatnonzero(counts == length)
        for medians, column in zip(out, samples, strict=True):
            block = column[firsts[chosen][:, None] + np.arange(length)]
            medians[chosen] = _medians_of_rows(block, counts[chosen])
    return counts, out


_WIDE = 256  # samples: a minute at up to ~4 Hz is worked on with the others


def _medians_of_rows(block: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`minute_median` of each row's first `lengths` values (the rest of a row is zeros)."""
    width = block.shape[1]
    filtered = np.where((lengths >= SPIKE_KERNEL)[:, None], _running_medians(block), block)
    # beyond a row's samples, the highest value of the type: sorted past them
    beyond = np.arange(width) >= lengths[:, None]
    top = np.inf if filtered.dtype.kind == "f" else np.iinfo(filtered.dtype).max
    filtered[beyond] = top
    filtered.sort(axis=1)
    rows, half = np.arange(len(lengths)), lengths // 2
    upper = filtered[rows, half].astype(float)
    lower = filtered[rows, np.maximum(half - 1, 0)]
    return np.where(lengths % 2 == 1, upper, (lower + upper) / 2)  # type: ignore[no-any-return]


def _running_medians(block: np.ndarray) -> np.ndarray:
    """`running_median` of each row of `block`, in its type."""
    rows, length = block.shape
    width = length + 2 * _HALF  # each row between its padding, the rows end to end
    padded = np.zeros((rows, width), block.dtype)
    padded[:, _HALF:_HALF + length] = block
    flat = padded.ravel()
    span = len(flat) - 2 * _HALF  # lane `shift` at i: the window centred at i + _HALF
    lanes = [flat[shift:shift + span] for shift in range(SPIKE_KERNEL)]
    for i, j in _MEDIAN_OF_7:
        lanes[i], lanes[j] = np.minimum(lanes[i], lanes[j]), np.maximum(lanes[i], lanes[j])
    # a window centred on a sample stays within its row's padding: those are the ones kept
    centred = np.empty(rows * width, block.dtype)
    centred[_HALF:_HALF + span] = lanes[_HALF]
    return centred.reshape(rows, width)[:, _HALF:_HALF + length]
