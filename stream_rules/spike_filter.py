"""One minute's raw samples to the minute's value: the median after a running-median filter
(scipy.signal.medfilt), which removes short spikes. Only the engine needs it; scipy.signal is
slow to import, so it is kept out of the modules that reading the rules file loads."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import medfilt

from stream_rules.features import median

SPIKE_KERNEL = 7  # samples: a motion spike shorter than half of it is removed


def minute_median(samples: list[float]) -> float:
    """The median of one minute's samples after a running-median filter, which removes short
    spikes (motion artefacts: a few seconds of a false SpO2 drop or heart-rate jump)."""
    if not samples:
        return math.nan
    if len(samples) >= SPIKE_KERNEL:
        return median(medfilt(np.asarray(samples, dtype=float), SPIKE_KERNEL).tolist())
    return median([float(sample) for sample in samples])
