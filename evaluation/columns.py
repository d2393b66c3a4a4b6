"""The evaluation's fast path for oximeters' live readings (issue #15): the simulator hands them
over as columns (`Stream(columns=True)`), and each run of one device's rows goes through
ingest's checks, the duplicate filter and the engine as a whole, never as a JSON payload and
a `Reading` each. What comes out is what the payloads would have given, to the event: a row
with an artefact flag that ingest takes (`artefact`) stays in its run, with ingest's flags; a
row ingest would not take as it is otherwise (another flag, a sentinel, a value or a clock
out of bounds) is rendered to its payload and parsed like any other message; and a run the
duplicate filter or the engine cannot take whole goes reading by reading
(`stream_rules.runs`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from ingest import limits
from ingest.parse import Invalid, check_time
from simulators.devices import FLAG_NAMES, LOW_BATTERY, MOTION, PROBE_OFF, Columns, DeviceSim
from simulators.stream import Batch, Stream
from stream_rules import runs
from stream_rules.bulk_medians import MinuteMedians
from vitals.records import NO_SIGNAL

if TYPE_CHECKING:
    from evaluation.run import Pipeline
    from stream_rules.engine import Output

Message = tuple[int, str, bytes]  # received at, topic, payload


def feed_batch(pipe: Pipeline, batch: Batch, stream: Stream) -> None:
    """One chunk's messages: items as payloads, runs of one device's rows as columns. Each
    patient's messages keep their order; patients are independent, so they are taken one
    after the other (a patient's oximeter then makes long runs)."""
    topics = stream.topics
    items, at, dev = batch.items, batch.at, batch.dev
    columns, src = batch.columns, batch.src
    if columns is None:
        pipe.feed(_messages(at, dev, items, topics))
        return
    patient = np.array([d.p.index for d in stream.devices] * 2)[dev]
    order = np.argsort(patient, kind="stable")
    at, dev, src = at[order], dev[order], src[order]
    is_row = src >= 0
    table = _Table.of(columns, at[is_row], src[is_row])
    begins = np.ones(len(src), bool)  # where a segment begins: items, or one device's rows
    begins[1:] = (is_row[1:] != is_row[:-1]) | (dev[1:] != dev[:-1]) | (
        is_row[1:] & (src[1:] != src[:-1] + 1))
    segments = list(pairwise([*np.flatnonzero(begins).tolist(), len(src)]))
    devices = len(stream.devices)  # a device's messages come under two topics (dev, dev + n)
    j = 0
    while j < len(segments):
        a, b = segments[j]
        j += 1
        if not is_row[a]:
            pipe.feed(_messages(at[a:b], dev[a:b], [items[i] for i in order[a:b].tolist()],
                                topics))
            continue
        # the device's rows go on after other devices' messages: one run, paused for them
        device, end, pauses = int(dev[a]), int(src[b - 1]) + 1, []
        while j + 1 < len(segments):
            (c, d), (e, f) = segments[j], segments[j + 1]
            if is_row[c] or not is_row[e] or int(dev[e]) != device or int(src[e]) != end or \
                    (dev[c:d] % devices == device % devices).any():
                break
            pauses.append((end, _messages(at[c:d], dev[c:d],
                                          [items[i] for i in order[c:d].tolist()], topics)))
            end = int(src[f - 1]) + 1
            j += 2
        take_rows(pipe, stream.devices[device], table, int(src[a]), end, pauses)


def _messages(at: np.ndarray, dev: np.ndarray, items: list[str | None], topics: list[str]
              ) -> list[Message]:
    return [(a, topics[d], item.encode())  # type: ignore[union-attr]
            for a, d, item in zip(at.tolist(), dev.tolist(), items, strict=True)]


@dataclass(frozen=True, slots=True)
class _Table:
    """A chunk's rows, ready to be cut into runs: received at, checked, as floats (NaN where
    a reading has none, a sentinel among them), their flags, and their minutes' values
    computed ahead."""

    columns: Columns
    at: np.ndarray
    ok: np.ndarray  # taken as they are (`plain`)
    artefact: np.ndarray  # taken with an artefact flag (`artefact`)
    on_time: np.ndarray  # their clock taken (`on_time`)
    hr: np.ndarray
    spo2: np.ndarray
    rr: np.ndarray
    battery: np.ndarray
    flags: np.ndarray  # each row's flags, an index into FLAG_SETS
    medians: MinuteMedians

    @staticmethod
    def of(columns: Columns, at: np.ndarray, rows: np.ndarray) -> _Table:
        received = np.empty(len(columns.ts), np.int64)
        received[rows] = at
        checked = Checks.of(columns, received)
        has_rr = (columns.rr != -1) & ~checked.probe_off  # not sent when off
        rr = np.where(has_rr, columns.rr, np.nan)
        flags = (columns.codes & DEVICE_BITS) + NO_SIGNAL_BIT * (
            checked.no["spo2"] | checked.no["hr"])
        every = np.ones(len(checked.plain), bool)
        medians = MinuteMedians.of(
            columns.ts, checked.plain,
            {"hr": columns.hr, "spo2": columns.spo2, "rr": columns.rr},
            {"hr": every, "spo2": every, "rr": has_rr})
        return _Table(columns, received, checked.plain, checked.artefact, checked.on_time,
                      np.where(checked.no["hr"], np.nan, columns.hr),
                      np.where(checked.no["spo2"], np.nan, columns.spo2),
                      rr, columns.battery.astype(float), flags.astype(np.int8), medians)


# A row's flags as ingest gives them: the device's, in the order it sends them, then
# `no_signal` where a sentinel stood for a value (`ingest.parse.normalise`)
DEVICE_BITS = PROBE_OFF | MOTION | LOW_BATTERY  # the flags a row taken as a reading may carry
NO_SIGNAL_BIT = 8
FLAG_SETS = tuple(
    (*(name for bit, name in FLAG_NAMES if code & bit & DEVICE_BITS),
     *((NO_SIGNAL,) if code & NO_SIGNAL_BIT else ()))
    for code in range(2 * NO_SIGNAL_BIT))


@dataclass(frozen=True, slots=True)
class Checks:
    """What ingest's `normalise` asks of each row, each check made once for the chunk.

    - `on_time`: the clock is taken (`ingest.parse.check_time`): set, not ahead of receipt;
    - `plain`: taken as it is: no sentinel, every value in its plausible range, the clock
      taken, no flag but `low_battery`;
    - `artefact`: taken as a reading with an artefact flag (`motion`, `probe_off`) that the
      engine takes no sample of: as `plain` otherwise, but a sentinel may stand for SpO2 or
      the pulse (`no_signal`), and a probe off sends no rate;
    - `no`: per signal ("spo2", "hr"), where a sentinel stands for the value;
    - `probe_off`: the device says its probe is off."""

    on_time: np.ndarray
    plain: np.ndarray
    artefact: np.ndarray
    no: dict[str, np.ndarray]
    probe_off: np.ndarray

    @staticmethod
    def of(columns: Columns, at: np.ndarray) -> Checks:
        codes = columns.codes
        clock = (columns.ts >= limits.EARLIEST_TS_MS) & (columns.ts - at <= limits.MAX_AHEAD_MS)
        probe_off = (codes & PROBE_OFF) != 0
        lo, hi = limits.PLAUSIBLE["rr"]
        # what both ask: the clock, a battery in range, and a rate, if one is sent, in range
        taken = clock & ((columns.rr == -1) | probe_off | ((columns.rr >= lo) & (columns.rr <= hi)))
        taken &= (columns.battery >= 0) & (columns.battery <= 100)
        plain = taken & ((codes == 0) | (codes == LOW_BATTERY))
        artefact = taken & ((codes & (PROBE_OFF | MOTION)) != 0) & ((codes & ~DEVICE_BITS) == 0)
        no = {}
        for name, values, sentinels in (("spo2", columns.spo2, limits.SPO2_SENTINELS),
                                        ("hr", columns.hr, limits.HR_SENTINELS)):
            lo, hi = limits.PLAUSIBLE[name]
            in_range = (values >= lo) & (values <= hi)
            sentinel = no[name] = np.isin(values, sentinels)
            plain &= in_range & ~sentinel
            artefact &= in_range | sentinel
        return Checks(clock, plain, artefact, no, probe_off)


def take_rows(pipe: Pipeline, device: DeviceSim, table: _Table, first: int, end: int,
              pauses: Sequence[tuple[int, list[Message]]] = ()) -> None:
    """Rows `first`..`end` of the table, one device's messages in order; `pauses`: other
    devices' messages, each due before a row (in order of row)."""
    a = first
    refused = ""  # ingest's reason for refusing a row's clock, once asked
    due = deque(pauses)
    # odd rows in a row (a finger out for minutes) are parsed as one slice: the engine gives
    # the same for any batching of the same readings
    payloads: list[Message] = []
    odd_rows = ~(table.ok[first:end] | table.artefact[first:end])
    for odd in [*(np.flatnonzero(odd_rows) + first).tolist(), end]:
        while due and due[0][0] <= a:  # due before row a, after the odd row before it
            payloads += due.popleft()[1]
        if odd > a:
            if payloads:
                pipe.feed(payloads)
                payloads = []
            inside = []
            while due and due[0][0] < odd:
                row, messages = due.popleft()
                inside.append((row - a, messages))
            _take_run(pipe, _run(device, table, a, odd), inside)
        while due and due[0][0] <= odd:  # due before the odd row
            payloads += due.popleft()[1]
        if odd < end:
            at = int(table.at[odd])
            if table.on_time[odd]:  # parsed as its payload
                payloads.append((at, device.topic, device.payload(table.columns, odd).encode()))
            else:
                refused = refused or _refusal(int(table.columns.ts[odd]), at)
                pipe.counts.messages += 1
                pipe.counts.rejected[refused] = pipe.counts.rejected.get(refused, 0) + 1
        a = odd + 1
    if payloads:
        pipe.feed(payloads)


def _refusal(ts: int, at: int) -> str:
    """Ingest's reason for refusing a reading's clock. The clock is the first thing
    `normalise` checks of a well-formed reading, so its verdict is the message's, whatever
    else the row holds: a device whose clock runs ahead sends thousands such rows, counted
    here without rendering and parsing each (~10x dearer)."""
    try:
        check_time(ts, at)
    except Invalid as exc:
        return exc.reason
    raise AssertionError(f"check_time takes the clock on_time refused: {ts} at {at}")


def _run(device: DeviceSim, table: _Table, a: int, b: int) -> runs.OximetryRun:
    columns = table.columns
    return runs.OximetryRun(
        patient_id=device.p.id, device_id=device.d.id, ts=columns.ts[a:b],
        received_at=table.at[a:b], seq=columns.seq[a:b], hr=table.hr[a:b],
        spo2=table.spo2[a:b], rr=table.rr[a:b], battery=table.battery[a:b],
        flags=table.flags[a:b], flag_sets=FLAG_SETS, table=table.medians, row=a)


def _take_run(pipe: Pipeline, run: runs.OximetryRun,
              pauses: Sequence[tuple[int, list[Message]]] = ()) -> None:
    """A run through the duplicate filter and the engine; `pauses`: other devices' messages
    due before a row of the run, fed through the pipeline there."""
    counts = pipe.counts
    counts.messages += len(run)
    counts.readings += len(run)
    pid = run.patient_id
    engine, state, into = pipe.engines[pid], pipe.states[pid], pipe.runs[pid]

    def pause(messages: list[Message]) -> Callable[[Output, Callable[[], None]], None]:
        def take(out: Output, settle: Callable[[], None]) -> None:
            into.add(out)  # what the run said so far comes first
            pipe.feed(messages, before_oximetry=settle)
        return take

    if pipe.dedup.newer_run(pid, run.device_id, run.seq, run.ts):
        into.add(runs.take(engine, state, run, pipe.tallies[pid],
                           [(row, pause(messages)) for row, messages in pauses]))
        return
    readings, a = run.readings(), 0
    for b, messages in [*pauses, (len(run), None)]:
        fresh = []
        for reading in readings[a:b]:
            if pipe.dedup.first_time(reading):
                fresh.append(reading)
            else:
                counts.duplicates += 1
        into.add(engine.process(state, fresh))
        if messages is not None:
            pipe.feed(messages)
        a = b
