"""A run of one oximeter's live readings, taken as columns: what `Engine.process` does with
each reading, done per minute with numpy instead of per reading in Python (issue #15: the
standard evaluation's 1 Hz oximetry is ~120 M readings).

It gives exactly the state and events `process` gives for the same readings, and takes rows
in bulk only where that is plain to see: a device already known, readings newer than any of
it, in order, at a steady cadence of well under `SPARSE_MS`, each minute newer than the minute
judged last, and a pulse to compare SpO2 trust with. Whatever does not fit (a device's first
reading, a restart, a clock that steps back, a long silence) goes reading by reading through
`process` until the rows fit again. Other devices' messages may come between a run's rows:
the run pauses there for them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise

import numpy as np

from stream_rules.bulk_medians import Closing, MedianTally, MinuteMedians
from stream_rules.engine import ARTEFACT_FLAGS, MINUTE, SPARSE_MS, Engine, Output
from stream_rules.state import GAPS_KEPT, KIND_SIGNALS, DeviceState, PatientState, _median
from vitals.records import Reading

__all__ = ["OximetryRun", "take"]

SIGNALS = KIND_SIGNALS["oximetry"]  # hr, spo2, rr


@dataclass(frozen=True, slots=True)
class OximetryRun:
    """Validated readings of one oximeter in arrival order, as ingest would normalise them:
    none has a perfusion index. Each row's flags are `flag_sets[flags[row]]`: a row with an
    artefact flag (motion, a probe off) gives the engine no sample, and its `hr` may be NaN
    too (no signal); every other row has a pulse. `spo2` and `rr` are NaN where the reading
    has none."""

    patient_id: str
    device_id: str
    ts: np.ndarray  # int64 epoch ms, device time
    received_at: np.ndarray  # int64 epoch ms
    seq: np.ndarray  # int64
    hr: np.ndarray  # float64
    spo2: np.ndarray  # float64
    rr: np.ndarray  # float64
    battery: np.ndarray  # float64
    flags: np.ndarray  # small ints: each row's flags, an index into `flag_sets`
    flag_sets: tuple[tuple[str, ...], ...] = ((),)
    table: MinuteMedians | None = None  # the rows' minute values computed ahead, if any,
    row: int = 0  # and the run's first row in that table

    def __len__(self) -> int:
        return len(self.ts)

    def part(self, first: int, end: int) -> OximetryRun:
        """Rows `first`..`end` (the run itself when that is all of it)."""
        if first == 0 and end == len(self.ts):
            return self
        cut = slice(first, end)
        return OximetryRun(self.patient_id, self.device_id, self.ts[cut], self.received_at[cut],
                           self.seq[cut], self.hr[cut], self.spo2[cut], self.rr[cut],
                           self.battery[cut], self.flags[cut], self.flag_sets, self.table,
                           self.row + first)

    def artefacts(self) -> np.ndarray:
        """Which rows carry an artefact flag (`Engine` takes no sample of them)."""
        marked = [i for i, flags in enumerate(self.flag_sets)
                  if not ARTEFACT_FLAGS.isdisjoint(flags)]
        if not marked:
            return np.zeros(len(self.ts), bool)
        return np.isin(self.flags, marked)

    def readings(self, first: int = 0, end: int | None = None) -> list[Reading]:
        """Rows `first`..`end` as the `Reading`s ingest makes of them."""
        out = []
        cut = slice(first, end)
        columns = (self.ts[cut].tolist(), self.received_at[cut].tolist(),
                   self.seq[cut].tolist(), self.hr[cut].tolist(), self.spo2[cut].tolist(),
                   self.rr[cut].tolist(), self.battery[cut].tolist(), self.flags[cut].tolist())
        flag_sets = self.flag_sets
        for ts, received, seq, hr, spo2, rr, battery, flags in zip(*columns, strict=True):
            out.append(Reading(
                patient_id=self.patient_id, device_id=self.device_id, ts=ts, kind="oximetry",
                received_at=received, seq=seq, hr=None if hr != hr else hr,
                spo2=None if spo2 != spo2 else spo2, rr=None if rr != rr else rr,
                battery=battery, flags=flag_sets[flags]))
        return out


# Before row `row` of a run, another device's messages are due: `pause(out, settle)` is
# handed the output so far (the run goes on with a fresh one) and takes those messages. The
# rows taken are then as `process` would leave them but for their samples, which wait outside
# the state for their minutes' close: `settle()` puts them in the state, and must come before
# anything of an oximeter's kind (a reading) goes to the engine.
Pause = tuple[int, Callable[[Output, Callable[[], None]], None]]


def take(engine: Engine, state: PatientState, run: OximetryRun,
         tally: MedianTally | None = None, pauses: Sequence[Pause] = ()) -> Output:
    """`engine.process(state, run.readings())`, the same to the event, faster. `tally`: the
    patient's, to use the run's minute values computed ahead (`run.table`). `pauses`: where
    other devices' messages come between the run's rows, in order of row (each row within
    the run, after its first): the run stops there, as `process` of the readings up to there
    would leave the state, for `pause`.

    The run is taken in steady pieces (`_steady_ends`). What a piece's first rows do to the
    device (a gap, a clock stepped back) goes reading by reading, the rest in bulk."""
    at = _Pauses(pauses)
    first = 0
    for stop in _steady_ends(run):
        while first < stop:
            first += _bulk(engine, state, run.part(first, stop), at, tally, first)
            if first < stop:  # not in bulk: reading by reading, until it may be again
                end = at.next_row(first, first + _slow_rows(state, run.part(first, stop)))
                at.add(engine.process(state, run.readings(first, end)))
                at.reach(end)
                first = end
    return at.out


def _bulk(engine: Engine, state: PatientState, part: OximetryRun, at: _Pauses,
          tally: MedianTally | None, base: int) -> int:
    """A steady piece of a run (its rows `base`.. of the run) in bulk, as far as it can be:
    the rows taken (none when the device cannot take it so)."""
    device = state.devices.get(part.device_id)
    if device is None or "oximetry" not in state.kinds or not _fits(engine, device, part):
        return 0
    at.base = base
    reference = device.believed_hr, device.leap_since
    artefact = part.artefacts()
    trusted, believed = _trusted(engine, part, artefact, *reference)
    if part.table is None:
        tally = None
    elif tally is not None:
        tally.forget(state.kinds["oximetry"].cursor)
    taken = _take_minutes(engine, state, device, part, artefact, trusted, at, tally)
    # what only the next readings read: their duplicates filter and pulse reference
    if taken < len(part):
        trusted, believed = _trusted(engine, part, artefact, *reference, end=taken)
    device.believed_hr, device.leap_since = believed
    device.seqs.add_newer(part.seq[:taken])
    at.base = 0
    return taken


def _slow_rows(state: PatientState, part: OximetryRun) -> int:
    """How many of a steady piece's first rows to take reading by reading before trying in
    bulk again: enough for the device's last gaps to be steady ones, and past the readings
    no newer than its newest and the minutes judged already."""
    device, kind = state.devices.get(part.device_id), state.kinds.get("oximetry")
    rows = GAPS_KEPT + 1
    if device is not None:
        rows = max(rows, int(np.searchsorted(part.ts, device.last_ts, "right")))
    if kind is not None:
        rows = max(rows, int(np.searchsorted(part.ts, (kind.cursor + 1) * MINUTE)))
    return min(rows, len(part))


class _Pauses:
    """The pauses of a run still due, and the output gathered since the last one. Rows are
    counted from `base`: the first row of the piece being taken."""

    __slots__ = ("base", "due", "out")

    def __init__(self, pauses: Sequence[Pause]) -> None:
        self.due, self.out, self.base = list(reversed(pauses)), Output(), 0

    def next_row(self, row: int, end: int) -> int:
        """The row of the next pause after `row`, if before `end`; else `end`."""
        due = self.due[-1][0] - self.base if self.due else end
        return due if row < due < end else end

    def due_at(self, row: int) -> bool:
        """Whether a pause is due before row `row`."""
        return bool(self.due) and self.due[-1][0] - self.base == row

    def reach(self, row: int, settle: Callable[[], None] = lambda: None) -> None:
        """Rows up to `row` are taken: the pause due there, if any, is made."""
        if self.due and self.due[-1][0] - self.base == row:
            _, pause = self.due.pop()
            pause(self.out, settle)
            self.out = Output()

    def add(self, out: Output) -> None:
        self.out.alerts += out.alerts
        self.out.trends += out.trends


def _steady_ends(run: OximetryRun) -> list[int]:
    """Where the run's steady pieces end: at each reading that does not follow the one before
    in time and seq, or follows it by `SPARSE_MS` or more (the device would judge it sparse),
    and at the run's end."""
    if len(run) < 2:
        return [len(run)]
    steps = np.diff(run.ts)
    unsteady = (steps <= 0) | (steps >= SPARSE_MS) | (np.diff(run.seq) <= 0)
    return [*(np.flatnonzero(unsteady) + 1).tolist(), len(run)]


def _fits(engine: Engine, device: DeviceState, part: OximetryRun) -> bool:
    """Whether a steady piece can be taken in bulk as far as the device goes: all its readings
    new and newer than the device's newest, at a cadence that does not make the device sparse,
    and a pulse to judge SpO2 trust against."""
    ts0 = int(part.ts[0])
    if device.kind != "oximetry" or ts0 <= device.last_ts or ts0 - device.last_ts >= SPARSE_MS \
            or any(g >= SPARSE_MS for g in device.gaps):
        return False
    oximetry = engine.rules_file.oximetry
    if oximetry is not None and oximetry.max_hr_jump is not None and device.believed_hr is None:
        return False
    return not (device.seqs.ends and int(part.seq[0]) <= device.seqs.ends[-1])


def _learn_gaps(device: DeviceState, ts: list[int]) -> None:
    """`learn_gap` of each reading (`ts`, in order, after the device's newest)."""
    newest = ts[-GAPS_KEPT - 1:] if len(ts) > GAPS_KEPT else [device.last_ts, *ts]
    gaps = [b - a for a, b in pairwise(newest)]
    device.gaps = [*device.gaps, *gaps][-GAPS_KEPT:]
    device.interval_ms = _median(device.gaps)


def _trusted(engine: Engine, run: OximetryRun, artefact: np.ndarray, believed: float | None,
             since: int, end: int | None = None
             ) -> tuple[np.ndarray, tuple[float | None, int]]:
    """Which of the run's readings (up to `end`) have their SpO2 believed
    (`Engine._spo2_trusted` of each, in order), from the device's pulse reference
    (`believed`, `since`); and the reference after them. Readings without SpO2, and
    artefacts (`artefact`), are not compared."""
    spo2 = run.spo2[:end]
    has_spo2 = (spo2 == spo2) & ~artefact[:end]
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
                  artefact: np.ndarray, trusted: np.ndarray, at: _Pauses,
                  tally: MedianTally | None) -> int:
    """Take the run up to each reading after which `process` would judge minutes (one that
    moves the oximetry cursor), then judge them: the device's times, the patient and the
    minutes' samples are then as `process` leaves them at that reading. The first row not
    taken (the rest go reading by reading)."""
    kind = state.kinds["oximetry"]
    ts, n = run.ts, len(run)
    times = ts.tolist()
    minutes = (ts // MINUTE).tolist()
    received = np.maximum.accumulate(run.received_at).tolist()
    # the samples the engine takes: none of an artefact, SpO2 only where believed
    spo2 = np.where(trusted, run.spo2, np.nan)
    hr, rr = run.hr, run.rr
    plain = ~artefact
    artefacts = not plain.all()
    if artefacts:
        hr, rr = np.where(plain, hr, np.nan), np.where(plain, rr, np.nan)
    # per signal, whether every row has a sample (no NaN to leave out), or none has
    no_rr = np.isnan(rr)
    samples = _Samples((hr, spo2, rr), (not artefacts, bool(trusted.all()), not no_rr.any()),
                       (False, False, bool(no_rr.all())),
                       np.cumsum(plain) if artefacts else None)
    # each row's newest reading with a vital sign: the device's last valid one
    valid = np.maximum.accumulate(np.where(plain, ts, -1)) if artefacts else None
    # Rows from `closing.first` on are taken but their samples not put in their minutes' lists
    # in the state: a minute closes from them (`Closing`). They are put there only when
    # something else may look (an oximetry reading in a pause, `Pause`), where the run stops,
    # and for a minute that has samples in the state already (they come first).
    counted = [None if every else np.cumsum(column == column)
               for column, every in zip(samples.columns, samples.every, strict=True)]
    closing = Closing(minutes, tuple(zip(SIGNALS, samples.columns, samples.every, samples.none,
                                         counted, strict=True)), run.table, run.row, tally)

    def put(end: int) -> None:
        """Rows up to `end` into their minutes' lists."""
        _add_samples(kind.open, run, samples, minutes, closing.first, end, tally)
        closing.first = end

    battery = run.battery.tolist()
    # a steady cadence (each reading a step after the one before) changes no learned gap
    steps = np.diff(ts)
    step = int(steps[0]) if len(steps) and bool((steps == steps[0]).all()) else -1
    steady = [step] * GAPS_KEPT
    i = 0
    while i < n:
        if minutes[i] <= kind.cursor:
            put(i)
            return i  # a minute judged already: the late pass's business
        reach = (kind.cursor + 2) * MINUTE + engine.lateness_ms  # max_ts that moves it
        k = i if kind.max_ts >= reach else bisect_left(times, reach, i)
        end = at.next_row(i, min(k + 1, n))
        last = times[end - 1]
        if device.gaps != steady or times[i] - device.last_ts != step:
            _learn_gaps(device, times[max(i, end - GAPS_KEPT - 1):end])
        device.last_ts, device.manual = last, False
        device.last_valid_ts = max(device.last_valid_ts,
                                   last if valid is None else int(valid[end - 1]))
        device.last_received = max(device.last_received, received[end - 1])
        if received[end - 1] > device.offline_at:
            device.offline_at = -1  # back: data came after its last will
        device.battery = battery[end - 1]
        kind.max_ts = max(kind.max_ts, last)
        state.max_ts = max(state.max_ts, last)
        if k < end:
            first = minutes[closing.first]
            if first in kind.open:  # its samples so far are in the state: these follow them
                put(bisect_right(minutes, first, closing.first, end))
            closing.end = end
            engine._advance(state, "oximetry", at.out, final=False, known=closing)
            _after_closing(closing, kind.cursor, put)
        if at.due_at(end):
            at.reach(end, partial(put, end))
        i = end
    put(n)
    return n


def _after_closing(closing: Closing, cursor: int, put: Callable[[int], None]) -> None:
    """The minutes closed: their rows are done with. A minute passed over without being closed
    (history beyond a day is not kept) keeps its samples in the state, as `process` would."""
    minutes = closing.minutes
    end = bisect_right(minutes, cursor, closing.first, closing.end)
    while closing.first < end:
        minute = minutes[closing.first]
        stop = bisect_right(minutes, minute, closing.first, end)
        if minute in closing.served:
            closing.first = stop
        else:
            put(stop)
    closing.served.clear()


@dataclass(frozen=True, slots=True)
class _Samples:
    """A run's samples per signal (hr, spo2, rr; NaN: none), and per signal whether every row
    has one, or none has; `plain_before[i]`: how many of rows 0..i are not artefacts (None:
    none is)."""

    columns: tuple[np.ndarray, ...]
    every: tuple[bool, ...]
    none: tuple[bool, ...]
    plain_before: np.ndarray | None


def _add_samples(pending: dict[int, dict[str, list[float]]], run: OximetryRun,
                 samples: _Samples, minutes: list[int], start: int, end: int,
                 tally: MedianTally | None) -> None:
    """Readings `start`..`end`'s samples into their minutes' lists, told to the tally. A
    minute's signals are listed in the order their first samples came, as `process` lists
    them."""
    a = start
    signals = tuple(zip(SIGNALS, samples.columns, samples.every, samples.none, strict=True))
    while a < end:
        minute = minutes[a]
        b = end if minutes[end - 1] == minute else bisect_right(minutes, minute, a, end)
        slot = pending.get(minute)
        added, new = [], []
        for place, (signal, column, every, none) in enumerate(signals):
            if none:
                added.append(0)
                continue
            present = column[a:b].tolist()
            first = a
            if not every:
                first += next((j for j, v in enumerate(present) if v == v), 0)
                present = [v for v in present if v == v]  # NaN != NaN
            added.append(len(present))
            if present:
                kept = slot.get(signal) if slot is not None else None
                if kept is None:
                    new.append((first, place, signal, present))
                else:
                    kept += present
        if new and slot is None:  # a minute of artefacts only has no samples, and no slot
            slot = pending[minute] = {}
        for _, _, signal, present in sorted(new):
            slot[signal] = present  # type: ignore[index]
        if tally is not None:
            assert run.table is not None
            plain = samples.plain_before  # the table ranks plain rows only
            rows = b - a if plain is None else int(plain[b - 1]) - (int(plain[a - 1]) if a else 0)
            tally.add(run.table, run.row + a, rows, minute, tuple(added))
        a = b
