"""The evaluation's fast path (`evaluation.columns`: oximeters' live readings as columns)
gives what every message parsed as its payload gives: the same alert events, trend points,
counts of readings, duplicates and rejections, on traffic with every kind of fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evaluation.columns import _run, _Table
from evaluation.run import RunResult, registry_of, run_subset
from ingest.parse import Parser
from simulators import cohort
from simulators.plan import Simulation
from simulators.stream import Stream
from stream_rules import runs
from stream_rules.config import load_rules
from tests.simulators.helpers import START, sim_of
from tests.simulators.test_stream import COLUMNS
from tests.stream_rules.oximeters import values_ahead

RULES = load_rules(None)


def same(a: RunResult, b: RunResult) -> None:
    assert a.counts == b.counts
    assert list(a.patients) == list(b.patients)
    for pid, run in a.patients.items():
        other = b.patients[pid]
        assert run.alerts == other.alerts, pid
        assert run.ts == other.ts, pid
        for signal in ("temp", "hr", "spo2"):
            assert str(getattr(run, signal)) == str(getattr(other, signal)), (pid, signal)
    assert a.injected == b.injected


@pytest.fixture
def runs_taken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The runs given to `runs.take` (a spy: it still runs): their rows, and how many other
    devices' messages came within each (its pauses)."""
    taken: list[tuple[int, int]] = []
    take = runs.take

    def counting(engine, state, run, tally, pauses):  # type: ignore[no-untyped-def]
        taken.append((len(run), len(pauses)))
        return take(engine, state, run, tally, pauses)

    monkeypatch.setattr(runs, "take", counting)
    return taken


@pytest.fixture
def minutes_ahead() -> Iterator[list[str]]:
    """Minute values computed ahead that minutes closed with (`values_ahead`): a signal's
    name for each."""
    with values_ahead() as used:
        yield used


def test_a_faulty_scenario_gives_the_same_either_way(runs_taken: list[tuple[int, int]]
                                                     ) -> None:
    sim = sim_of(COLUMNS)
    payloads = run_subset(sim, RULES, [0, 1], columns=False)
    assert not runs_taken
    fast = run_subset(sim, RULES, [0, 1], columns=True)
    same(payloads, fast)
    # so faulty (a clock skewed a tenth of the time) that runs are short: still, thousands
    # of rows went the fast way
    assert sum(rows for rows, _ in runs_taken) > 2000
    assert payloads.counts.duplicates and payloads.counts.rejected
    # thousands of rows from a clock ahead: refused without being parsed, counted the same
    assert payloads.counts.rejected["clock_skew"] > 1000
    assert any(run.alerts for run in payloads.patients.values())


def test_a_generated_cohort_gives_the_same_either_way(runs_taken: list[tuple[int, int]],
                                                      minutes_ahead: list[str]) -> None:
    sim = cohort.generate(3, 11, 1.0, START)
    payloads = run_subset(sim, RULES, [0, 1, 2], columns=False)
    assert not minutes_ahead
    fast = run_subset(sim, RULES, [0, 1, 2], columns=True)
    same(payloads, fast)
    assert sum(rows for rows, _ in runs_taken) > 0.9 * payloads.counts.readings
    # a thermometer's readings come between an oximeter's: the runs went on around them
    paused = [pauses for _, pauses in runs_taken]
    assert sum(paused) > 100 and max(paused) > 10
    # most of the three patients' oximetry minutes had their values computed ahead
    assert minutes_ahead.count("hr") > 0.8 * 3 * 24 * 60


def test_the_fast_path_was_written_for_every_field_a_reading_has() -> None:
    """A field added to a reading (on the wire or normalised) must be handled by the fast
    path too: `evaluation.columns.Checks` (what ingest checks), `runs.OximetryRun.readings`
    (what ingest makes) and `runs.take` (what the engine does with it). This fails until they
    have been looked at, and this list updated."""
    from ingest.parse import RawReading
    from vitals.records import DEVICE_FLAGS, Reading

    assert Reading.__struct_fields__ == (
        "patient_id", "device_id", "ts", "kind", "received_at", "seq", "temp", "site", "spo2",
        "hr", "rr", "pi", "battery", "flags", "by", "symptoms", "note", "ice", "ice_total")
    assert RawReading.__struct_fields__ == (
        "ts", "kind", "seq", "temp", "unit", "site", "spo2", "hr", "rr", "pi", "battery",
        "flags", "by", "symptoms", "note", "ice")
    assert {"probe_off", "motion", "low_perfusion", "low_battery", "manual"} == DEVICE_FLAGS


@pytest.mark.parametrize(("sim", "taken"), [
    (sim_of(COLUMNS), False),  # its probes came off while its clock was skewed: refused
    (cohort.generate(3, 11, 1.0, START), True),
], ids=["faulty", "cohort"])
def test_an_artefact_row_stands_for_the_reading_ingest_makes_of_its_payload(
        sim: Simulation, taken: bool) -> None:
    """Rows with an artefact flag stay in their runs (`columns.artefact`): each one's reading,
    as the run makes it (`OximetryRun.readings`), is the one ingest makes of its payload,
    flags and no signal included."""
    stream = Stream(sim, line=False, columns=True)
    parser = Parser(registry_of(sim))
    kinds: dict[tuple[str, ...], int] = {}
    for batch in stream.batches():
        if batch.columns is None:
            continue
        rows = batch.src >= 0
        table = _Table.of(batch.columns, batch.at[rows], batch.src[rows])
        assert not (table.ok & table.artefact).any()
        for dev, row in zip(batch.dev[rows].tolist(), batch.src[rows].tolist(), strict=True):
            if not table.artefact[row]:
                continue
            device = stream.devices[dev % len(stream.devices)]
            payload = device.payload(batch.columns, row).encode()
            parsed = parser.parse(device.topic, payload, int(table.at[row])).readings
            made = _run(device, table, row, row + 1).readings()
            assert made == parsed, payload
            kinds[made[0].flags] = kinds.get(made[0].flags, 0) + 1
    if taken:  # motion over values, and a probe's sentinels (no signal)
        assert any("motion" in flags for flags in kinds)
        assert any({"probe_off", "no_signal"} <= set(flags) for flags in kinds)
    else:
        assert not kinds
