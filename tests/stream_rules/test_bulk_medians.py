"""Minute values computed ahead: `spike_filter.minute_medians` gives `minute_median`'s numbers
for many minutes at once, and a minute's value computed ahead is used only when its samples
are exactly the group's (`MedianTally`, and the count at the close in `Closing`)."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_rules import runs
from stream_rules import state as state_io
from stream_rules.bulk_medians import MedianTally, MinuteMedians
from stream_rules.engine import Engine
from stream_rules.spike_filter import minute_median, minute_medians
from tests.stream_rules.oximeters import (
    MIN,
    PATIENT,
    RULES,
    T0,
    cut,
    oximeter,
    table_of,
    values_ahead,
)
from vitals.records import Reading


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 250), st.booleans()), min_size=1,
                max_size=200),
       st.booleans())
def test_minute_medians_are_minute_median_of_each_group(rows: list[tuple[int, int, bool]],
                                                        integers: bool) -> None:
    minutes = np.array([m for m, _, _ in rows])  # in any order: a group is consecutive rows
    values = np.array([v for _, v, _ in rows], np.int16 if integers else float)
    if not integers:
        values = values / 4  # quarters: not whole numbers
    present = np.array([p for _, _, p in rows])
    begins = np.ones(len(rows), bool)
    begins[1:] = minutes[1:] != minutes[:-1]
    groups = np.cumsum(begins) - 1
    counts, (medians,) = minute_medians(groups, (values,), present, int(groups[-1]) + 1)
    edges = [*np.flatnonzero(begins).tolist(), len(rows)]
    for group, (a, b) in enumerate(pairwise(edges)):
        samples = [float(v) for v, p in zip(values[a:b].tolist(), present[a:b], strict=True)
                   if p]
        expected = minute_median(samples)
        assert counts[group] == len(samples)
        assert medians[group] == expected or (math.isnan(expected) and
                                              math.isnan(medians[group]))


def table(minutes: list[int], plain: list[bool] | None = None) -> MinuteMedians:
    """Rows at 1 Hz-ish within the given minutes, hr rising, every SpO2 there, no rate."""
    ts = np.array([T0 + m * MIN + i * 100 for i, m in enumerate(minutes)])
    n = len(ts)
    ok = np.ones(n, bool) if plain is None else np.array(plain)
    hr = np.arange(n, dtype=np.int64) + 60
    return MinuteMedians.of(ts, ok, {"hr": hr, "spo2": np.full(n, 97), "rr": np.full(n, -1)},
                            {"hr": ok | True, "spo2": ok | True, "rr": np.zeros(n, bool)})


def test_a_minute_added_whole_and_in_order_has_its_value() -> None:
    t = table([0, 0, 0, 1, 1, 1, 1, 2])
    tally = MedianTally()
    tally.add(t, 3, 2, T0 // MIN + 1, (2, 2, 0))
    tally.add(t, 5, 2, T0 // MIN + 1, (2, 2, 0))
    assert tally.get(T0 // MIN + 1) == {"hr": (4, 64.5), "spo2": (4, 97.0)}
    assert tally.get(T0 // MIN + 1) is None  # asked once, at the close


def test_a_minute_not_added_whole_or_in_order_has_none() -> None:
    t, other = table([0, 0, 0, 0]), table([0, 0, 0, 0])
    minute = T0 // MIN
    cases = {
        "begun mid-group": [(t, 1, 3)],
        "a row skipped": [(t, 0, 1), (t, 2, 2)],
        "rows of another table": [(t, 0, 2), (other, 2, 2)],
        "short of the group": [(t, 0, 3)],
    }
    for name, adds in cases.items():
        tally = MedianTally()
        for rows_of, row, rows in adds:
            tally.add(rows_of, row, rows, minute, (rows, rows, 0))
        assert not tally.get(minute), name
    # a non-plain row in the middle is not a sample: skipping it is not skipping a row
    t = table([0, 0, 0, 0], plain=[True, False, True, True])
    tally = MedianTally()
    tally.add(t, 0, 1, minute, (1, 1, 0))
    tally.add(t, 2, 2, minute, (2, 2, 0))
    assert tally.get(minute) == {"hr": (3, 62.0), "spo2": (3, 97.0)}
    # some SpO2 not believed: that signal is left to be computed at the close
    tally = MedianTally()
    tally.add(t, 0, 1, minute, (1, 0, 0))
    tally.add(t, 2, 2, minute, (2, 2, 0))
    assert tally.get(minute) == {"hr": (3, 62.0)}


def test_a_minute_that_another_device_also_filled_is_computed_at_its_close() -> None:
    """Another oximeter's samples in the run's minute 6: every row of the run's groups comes in
    bulk, whole and in order, so only the count at the close (`Closing`) tells that the minute
    holds more than the group (its value computed ahead would be wrong)."""
    engine = Engine(RULES, PATIENT)
    run = oximeter(3600, seed=6, every_s=5, leaps=False, skew_back=False)
    rows = table_of(run)
    start = int(np.searchsorted(run.ts, T0 + 4 * MIN))  # a pulse to trust SpO2 by
    split = int(np.searchsorted(run.ts, T0 + 6 * MIN))
    dropout = int(np.argmax(np.diff(run.ts))) + 1  # after 24 minutes: taken one by one
    others = [Reading("P001", "ox-2", T0 + s * 1000, "oximetry", T0 + s * 1000 + 100, seq=i,
                      hr=150.0, spo2=85.0)
              for i, s in enumerate(range(360, 416, 4))]
    own = run.hr[split:int(np.searchsorted(run.ts, T0 + 7 * MIN))].tolist()
    assert minute_median(own) != minute_median([150.0] * len(others) + own)  # it matters
    outputs, dumps, given = [], [], []
    for bulk in (False, True):
        state = engine.new_state()
        tally = MedianTally()
        out = engine.process(state, run.readings()[:start])
        with values_ahead() as used:
            for part in (cut(run, start, split, rows), others, cut(run, split, dropout, rows),
                         cut(run, dropout, len(run), rows)):
                if isinstance(part, list):
                    said = engine.process(state, part)
                else:
                    said = runs.take(engine, state, part, tally) if bulk else \
                        engine.process(state, part.readings())
                out.alerts += said.alerts
                out.trends += said.trends
        out.alerts += engine.flush(state).alerts
        outputs.append((out.alerts, out.trends))
        dumps.append(state_io.dump(state))
        given.append(used.count("hr"))
    assert outputs[0] == outputs[1]
    assert dumps[0] == dumps[1]
    assert given[1] > 10  # the other minutes had their values computed ahead

