"""A run of one oximeter's live readings, taken as columns: what `Engine.process` does with
each reading, done per minute with numpy instead of per reading in Python (issue #15: the
standard evaluation's 1 Hz oximetry is ~120 M readings).

It gives exactly the state and events `process` gives for the same readings, and takes a run
only where that is plain to see: a device already known, readings newer than any of it, in
order, at a steady cadence of well under `SPARSE_MS`, each minute newer than the minute judged
last, and a pulse to compare SpO2 trust with. Whatever does not fit (a device's first
reading, a restart, a clock that steps back, a long silence) goes reading by reading through
`process`, from the first row that does not fit to the end of the run.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from stream_rules.bulk_medians import MedianTally, MinuteMedians
from stream_rules.engine import MINUTE, SPARSE_MS, Engine, Output
from stream_rules.state import GAPS_KEPT, KIND_SIGNALS, DeviceState, PatientState, _median
from vitals.records import Reading

__all__ = ["OximetryRun", "take"]

SIGNALS = KIND_SIGNALS["oximetry"]  # hr, spo2, rr


@dataclass(frozen=True, slots=True)
class OximetryRun:
    """Validated readings of one oximeter in arrival order, as ingest would normalise them:
    every one has a pulse, none has a perfusion index or a flag other than `low_battery`.
    `spo2` is NaN and `rr` is NaN where the reading has none."""

    patient_id: str
    device_id: str
    ts: np.ndarray  # int64 epoch ms, device time
    received_at: np.ndarray  # int64 epoch ms
    seq: np.ndarray  # int64
    hr: np.ndarray  # float64
    spo2: np.ndarray  # float64
    rr: np.ndarray  # float64
    battery: np.ndarray  # float64
    low_battery: np.ndarray  # bool
    table: MinuteMedians | None = None  # the rows' minute values computed ahead, if any,
    row: int = 0  # and the run's first row in that table

    def __len__(self) -> int:
        return len(self.ts)

    def readings(self, first: int = 0) -> list[Reading]:
        """Rows `first`.. as the `Reading`s ingest makes of them."""
        out = []
        columns = (self.ts[first:].tolist(), self.received_at[first:].tolist(),
                   self.seq[first:].tolist(), self.hr[first:].tolist(),
                   self.spo2[first:].tolist(), self.rr[first:].tolist(),
                   self.battery[first:].tolist(), self.low_battery[first:].tolist())
        for ts, received, seq, hr, spo2, rr, battery, low in zip(*columns, strict=True):
            out.append(Reading(
                patient_id=self.patient_id, device_id=self.device_id, ts=ts, kind="oximetry",
                received_at=received, seq=seq, hr=hr, spo2=None if spo2 != spo2 else spo2,
                rr=None if rr != rr else rr, battery=battery,
                flags=("low_battery",) if low else ()))
        return out


def take(engine: Engine, state: PatientState, run: OximetryRun,
         tally: MedianTally | None = None) -> Output:
    """`engine.process(state, run.readings())`, the same to the event, faster. `tally`: the
    patient's, to use the run's minute values computed ahead (`run.table`)."""
    out = Output()
    device = state.devices.get(run.device_id)
    first = 0
    if device is not None and "oximetry" in state.kinds and _fits(engine, device, run):
        reference = device.believed_hr, device.leap_since
        trusted, believed = _trusted(engine, run, *reference)
        if run.table is None:
            tally = None
        elif tally is not None:
            tally.forget(state.kinds["oximetry"].cursor)
        first = _take_minutes(engine, state, device, run, trusted, out, tally)
        # what only the next readings read: their duplicates filter and pulse reference
        if first < len(run):
            trusted, believed = _trusted(engine, run, *reference, end=first)
        device.believed_hr, device.leap_since = believed
        device.seqs.add_newer(run.seq[:first])
    if first < len(run):
        tail = engine.process(state, run.readings(first))
        out.alerts += tail.alerts
        out.trends += tail.trends
    return out


def _fits(engine: Engine, device: DeviceState, run: OximetryRun) -> bool:
    """Whether the whole run can be taken in bulk as far as the device goes: all its readings
    new, newest and in order, at a cadence that never makes the device sparse, and a pulse
    to judge SpO2 trust against."""
    ts, seq = run.ts, run.seq
    if not len(ts) or device.kind != "oximetry" or int(ts[0]) <= device.last_ts:
        return False
    if len(ts) > 1:
        steps = np.diff(ts)
        if int(steps.min()) <= 0 or int(steps.max()) >= SPARSE_MS or \
                int(np.diff(seq).min()) <= 0:
            return False
    if int(ts[0]) - device.last_ts >= SPARSE_MS or any(g >= SPARSE_MS for g in device.gaps):
        return False
    oximetry = engine.rules_file.oximetry
    if oximetry is not None and oximetry.max_hr_jump is not None and device.believed_hr is None:
        return False
    return not (device.seqs.ends and int(seq[0]) <= device.seqs.ends[-1])


def _learn_gaps(device: DeviceState, ts: list[int]) -> None:
    """`learn_gap` of each reading (`ts`, in order, after the device's newest)."""
    newest = ts[-GAPS_KEPT - 1:] if len(ts) > GAPS_KEPT else [device.last_ts, *ts]
    gaps = [b - a for a, b in pairwise(newest)]
    device.gaps = [*device.gaps, *gaps][-GAPS_KEPT:]
    device.interval_ms = _median(device.gaps)


def _trusted(engine: Engine, run: OximetryRun, believed: float | None, since: int,
             end: int | None = None) -> tuple[np.ndarray, tuple[float | None, int]]:
    """Which of the run's readings (up to `end`) have their SpO2 believed
    (`Engine._spo2_trusted` of each, in order), from the device's pulse reference
    (`believed`, `since`); and the reference after them. Readings without SpO2 are not
    compared."""
    spo2 = run.spo2[:end]
    has_spo2 = spo2 == spo2
    oximetry = engine.rules_file.oximetry
    if oximetry is None or oximetry.max_hr_jump is None:
        return has_spo2, (believed, since)
    assert believed is not None
    jump, leap_ms = oximetry.max_hr_jump, oximetry.leap_max_s * 1000
    hr = run.hr[:end][has_spo2]
    if not len(hr):
        return has_spo2, (believed, since)
    if since < 0 and abs(float(hr[0]) - believed) <= jump and \
            bool((np.abs(np.diff(hr)) <= jump).all()):
        return has_spo2, (float(hr[-1]), since)  # each within reach of the one before
    verdicts = []
    for h, t in zip(hr.tolist(), run.ts[:end][has_spo2].tolist(), strict=True):
        if abs(h - believed) <= jump or 0 <= since <= t - leap_ms:
            believed, since = h, -1
            verdicts.append(True)
        else:
            if since < 0:
                since = t
            verdicts.append(False)
    trusted = np.zeros(len(has_spo2), bool)
    trusted[has_spo2] = verdicts
    return trusted, (believed, since)


def _take_minutes(engine: Engine, state: PatientState, device: DeviceState, run: OximetryRun,
                  trusted: np.ndarray, out: Output, tally: MedianTally | None) -> int:
    """Take the run up to each reading after which `process` would judge minutes (one that
    moves the oximetry cursor), then judge them: the device's times, the patient and the
    minutes' samples are then as `process` leaves them at that reading. The first row not
    taken (the rest go reading by reading)."""
    kind = state.kinds["oximetry"]
    ts, n = run.ts, len(run)
    times = ts.tolist()
    minutes = (ts // MINUTE).tolist()
    received = np.maximum.accumulate(run.received_at).tolist()
    spo2 = np.where(trusted, run.spo2, np.nan)
    # per signal, whether every row has a sample (no NaN to leave out), or none has
    no_rr = np.isnan(run.rr)
    samples = _Samples((run.hr, spo2, run.rr), (True, bool(trusted.all()), not no_rr.any()),
                       (False, False, bool(no_rr.all())))
    i = 0
    while i < n:
        if minutes[i] <= kind.cursor:
            return i  # a minute judged already: the late pass's business
        reach = (kind.cursor + 2) * MINUTE + engine.lateness_ms  # max_ts that moves it
        k = i if kind.max_ts >= reach else bisect_left(times, reach, i)
        end = min(k + 1, n)
        last = times[end - 1]
        _learn_gaps(device, times[max(i, end - GAPS_KEPT - 1):end])
        device.last_ts, device.manual = last, False
        device.last_valid_ts = max(device.last_valid_ts, last)  # each has a pulse: valid
        device.last_received = max(device.last_received, received[end - 1])
        if received[end - 1] > device.offline_at:
            device.offline_at = -1  # back: data came after its last will
        device.battery = float(run.battery[end - 1])
        _add_samples(kind.open, run, samples, minutes, i, end, tally)
        kind.max_ts = max(kind.max_ts, last)
        state.max_ts = max(state.max_ts, last)
        if k < n:
            engine._advance(state, "oximetry", out, final=False, known=tally)
        i = end
    return n


@dataclass(frozen=True, slots=True)
class _Samples:
    """A run's samples per signal (hr, spo2, rr; NaN: none), and per signal whether every row
    has one, or none has."""

    columns: tuple[np.ndarray, ...]
    every: tuple[bool, ...]
    none: tuple[bool, ...]


def _add_samples(pending: dict[int, dict[str, list[float]]], run: OximetryRun,
                 samples: _Samples, minutes: list[int], start: int, end: int,
                 tally: MedianTally | None) -> None:
    """Readings `start`..`end`'s samples into their minutes' lists, told to the tally."""
    a = start
    signals = tuple(zip(SIGNALS, samples.columns, samples.every, samples.none, strict=True))
    while a < end:
        minute = minutes[a]
        b = a + 1
        if minutes[end - 1] == minute:
            b = end
        else:
            while minutes[b] == minute:
                b += 1
        slot = pending.get(minute)
        if slot is None:
            slot = pending[minute] = {}
        added = []
        for signal, column, every, none in signals:
            if none:
                added.append(0)
                continue
            present = column[a:b].tolist()
            if not every:
                present = [v for v in present if v == v]  # NaN != NaN
            added.append(len(present))
            if present:
                kept = slot.get(signal)
                if kept is None:
                    slot[signal] = present
                else:
                    kept += present
        if tally is not None:
            assert run.table is not None
            tally.add(run.table, run.row + a, b - a, minute, tuple(added))
        a = b
