"""`runs.take`: an oximeter's run of readings taken as columns gives exactly what
`Engine.process` gives for the same readings, one by one: the same events, trend points and
state, wherever the runs are cut and whatever the readings do (pulse leaps, dropouts, a clock
that steps back, a last will, a thermometer in between)."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_rules import runs
from stream_rules import state as state_io
from stream_rules.bulk_medians import MedianTally
from stream_rules.engine import Engine, Output
from tests.stream_rules.oximeters import (
    MIN,
    PATIENT,
    RULES,
    T0,
    cut,
    oximeter,
    table_of,
    thermometer,
    values_ahead,
)
from vitals.records import DeviceStatus, Reading


def both(run: runs.OximetryRun, cuts: list[int], others: list[Reading | DeviceStatus],
         tally: MedianTally | None = None, paused: bool = False
         ) -> tuple[Output, Output, bytes, bytes, int]:
    """The oximeter's readings cut at `cuts` (each piece in arrival order among `others`,
    after the ones received before it), by `process` reading by reading and by `take` (with
    the minute values computed ahead, and `tally`, if given); and how many rows `take` took
    in bulk. `paused`: the others received within a piece come within it, where they were
    received (`take`'s pauses), not before it."""
    engine = Engine(RULES, PATIENT)
    one, fast = engine.new_state(), engine.new_state()
    expected, got = Output(), Output()
    table = table_of(run) if tally is not None else None
    readings = run.readings()
    bounds = [0, *sorted({c for c in cuts if c < len(run)}), len(run)]
    pending = sorted(others, key=lambda r: r.received_at)
    bulk = 0
    take_minutes = runs._take_minutes

    def counting(*args):  # type: ignore[no-untyped-def]
        nonlocal bulk
        taken: int = take_minutes(*args)
        bulk += taken
        return taken

    def pause(due_others: list[Reading | DeviceStatus]
              ) -> Callable[[Output, Callable[[], None]], None]:
        def take(o: Output, settle: Callable[[], None]) -> None:
            add(got, o)
            if any(isinstance(r, Reading) and r.kind == "oximetry" for r in due_others):
                settle()
            add(got, engine.process(fast, due_others))
        return take

    for a, b in pairwise(bounds):
        if b <= a:
            continue
        received = int(run.received_at[a])
        before = [r for r in pending if r.received_at < received]
        pending = pending[len(before):]
        for out, state in ((expected, one), (got, fast)):
            add(out, engine.process(state, before))
        # the others received among the piece's rows, each due before the first row after it
        within: dict[int, list[Reading | DeviceStatus]] = {}
        if paused:
            last = int(run.received_at[b - 1])
            for r in [r for r in pending if r.received_at < last]:
                row = int(np.searchsorted(run.received_at[a:b], r.received_at, "right"))
                within.setdefault(row, []).append(r)
                pending.remove(r)
        row = 0
        for due, due_others in sorted(within.items()):
            add(expected, engine.process(one, readings[a + row:a + due]))
            add(expected, engine.process(one, due_others))
            row = due
        add(expected, engine.process(one, readings[a + row:b]))
        pauses = [(due, pause(due_others)) for due, due_others in sorted(within.items())]
        with mock.patch.object(runs, "_take_minutes", counting):
            add(got, runs.take(engine, fast, cut(run, a, b, table), tally, pauses))
    for out, state in ((expected, one), (got, fast)):
        o = engine.process(state, pending)
        o.alerts += engine.flush(state).alerts
        add(out, o)
    return expected, got, state_io.dump(one), state_io.dump(fast), bulk


def add(out: Output, more: Output) -> None:
    out.alerts += more.alerts
    out.trends += more.trends


def test_runs_give_what_reading_by_reading_gives_and_most_are_taken_whole() -> None:
    seconds = 4 * 3600
    run = oximeter(seconds, seed=1)
    offline = DeviceStatus("P001", "ox-1", "offline", received_at=T0 + int(seconds * 0.4) * 1000
                           + 120_000)
    cuts = list(range(1, len(run), 97))  # about every 1.5 minutes, never on a minute
    with values_ahead() as used:
        expected, got, one, fast, bulk = both(run, cuts, [*thermometer(seconds), offline],
                                              MedianTally())
    assert (got.alerts, got.trends, fast) == (expected.alerts, expected.trends, one)
    # most minutes with samples (not the dropout, nor the finger out) had their values
    # computed ahead, across the cuts
    assert used.count("hr") > 0.7 * seconds / 60
    # a thermometer every minute, read between the oximeter's readings, and a few long runs
    with values_ahead() as used:
        expected, got, one, fast, bulk = both(run, cuts[::40], [*thermometer(seconds), offline],
                                              MedianTally(), paused=True)
    assert got.alerts == expected.alerts
    assert got.trends == expected.trends
    assert fast == one
    assert {a.rule for a in expected.alerts} >= {"desaturation", "tachycardia", "fever"}
    assert bulk > 0.9 * len(run)  # the fast path, not the fallback, made them equal
    assert used.count("hr") > 0.7 * seconds / 60


@pytest.mark.parametrize("every_s", [1, 3])
def test_one_run_for_everything_gives_the_same(every_s: int) -> None:
    run = oximeter(2 * 3600, seed=2, every_s=every_s)
    expected, got, one, fast, _ = both(run, [1], thermometer(2 * 3600, every_s=300),
                                       MedianTally())
    assert (got.alerts, got.trends, fast) == (expected.alerts, expected.trends, one)


def second_oximeter(first_s: int, seconds: int) -> list[Reading]:
    """Another oximeter's readings, every 7 s for `seconds` from `first_s` on: they fall in
    the minutes the first one's readings fill."""
    return [Reading("P001", "ox-2", T0 + s * 1000, "oximetry", T0 + s * 1000 + 100, seq=i,
                    hr=150.0, spo2=85.0)
            for i, s in enumerate(range(first_s, first_s + seconds, 7))]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 5_000), max_size=40),
       st.booleans(), st.booleans(), st.sampled_from([1, 2, 5]), st.booleans(), st.booleans(),
       st.none() | st.integers(300, 5000))
def test_wherever_the_runs_are_cut(seed: int, cuts: list[int], leaps: bool, skew_back: bool,
                                   every_s: int, ahead: bool, paused: bool,
                                   second_from_s: int | None) -> None:
    run = oximeter(5400 // every_s * every_s, seed, every_s, leaps, skew_back)
    others: list[Reading | DeviceStatus] = [*thermometer(5400, every_s=120)]
    if second_from_s is not None:
        others += second_oximeter(second_from_s, 200)
    expected, got, one, fast, _ = both(run, cuts, others, MedianTally() if ahead else None,
                                       paused)
    assert got.alerts == expected.alerts
    assert got.trends == expected.trends
    assert fast == one


def test_readings_made_of_a_run_are_what_ingest_makes() -> None:
    run = oximeter(120, seed=3, leaps=False)
    readings = run.readings()
    assert len(readings) == len(run)
    r = readings[0]
    assert (r.kind, r.device_id, r.ts, r.seq) == ("oximetry", "ox-1", T0, 5)
    assert isinstance(r.hr, float) and isinstance(r.battery, float)
    assert all(x.spo2 is None for x, v in zip(readings, run.spo2, strict=True) if math.isnan(v))
    assert readings[60:] == run.readings(60)


def test_a_run_cut_short_by_a_cursor_ahead_goes_on_reading_by_reading() -> None:
    """A state whose oximetry has seen newer data than it has judged (as a long silence can
    leave it): the first reading moves the cursor past the run's next minutes, which `take`
    then leaves to `process`, from that row on, with the device's pulse reference and seqs as
    they stood there."""
    engine = Engine(RULES, PATIENT)
    run = oximeter(1800, seed=4, leaps=False, skew_back=False)  # a dropout after 720 s
    readings = run.readings()
    outputs, dumps = [], []
    for bulk in (False, True):
        state = engine.new_state()
        engine.process(state, readings[:300])
        state.kinds["oximetry"].max_ts += 5 * MIN  # newer data, not judged yet
        rest = cut(run, 300, 700)
        out = runs.take(engine, state, rest) if bulk else engine.process(state, rest.readings())
        outputs.append((out.alerts, out.trends))
        dumps.append(state_io.dump(state))
    assert outputs[0] == outputs[1]
    assert dumps[0] == dumps[1]
    assert outputs[0][1]  # minutes were judged on the way
