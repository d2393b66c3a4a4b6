"""Pure transitions: the clock is a number passed in."""

from __future__ import annotations

import pytest

from alerting import lifecycle as lc
from alerting.lifecycle import MIN, Ack, Page, Policy, Resolve

P = Policy((0, 10 * MIN, 20 * MIN), repeat_ms=15 * MIN, hold_ms=5 * MIN)


def test_steps_then_repeats_then_ack_stops() -> None:
    inc, eff = lc.open_incident("i", "P001", "t", "error", 0, P)
    assert eff == [Page((0,), "new")] and inc.next_at == 10 * MIN
    assert lc.due(inc, 10 * MIN - 1, P) == []
    assert lc.due(inc, 10 * MIN, P) == [Page((1,), "escalate")]
    assert lc.due(inc, 20 * MIN, P) == [Page((2,), "escalate")]
    assert lc.due(inc, 35 * MIN, P) == [Page((2,), "repeat")]
    assert lc.acknowledge(inc, "alice", 36 * MIN) == [Ack("alice")]
    assert lc.acknowledge(inc, "bob", 37 * MIN) == []  # the second click
    assert lc.due(inc, 99 * MIN, P) == [] and inc.next_at is None


def test_after_downtime_each_missed_step_is_paged_once() -> None:
    inc, _ = lc.open_incident("i", "P001", "t", "error", 0, P)
    assert lc.due(inc, 25 * MIN, P) == [Page((1, 2), "escalate")]
    assert lc.due(inc, 25 * MIN, P) == []


def test_worse_severity_pages_everyone_so_far_and_undoes_the_ack() -> None:
    inc, _ = lc.open_incident("i", "P001", "t", "error", 0, P)
    lc.due(inc, 10 * MIN, P)
    lc.acknowledge(inc, "alice", 11 * MIN)
    assert lc.add_alert(inc, "error", 12 * MIN, P) == []
    assert lc.add_alert(inc, "critical", 13 * MIN, P) == [Page((0, 1), "worse")]
    assert inc.state == "paged" and inc.acked_by is None
    assert inc.next_at == 23 * MIN  # the gap to the next step starts again


def test_cleared_resolves_after_the_hold_and_a_flap_reopens() -> None:
    inc, _ = lc.open_incident("i", "P001", "t", "error", 0, P)
    lc.acknowledge(inc, "alice", MIN)
    assert lc.all_cleared(inc, 2 * MIN, P) == []
    assert inc.state == "resolving"
    assert lc.add_alert(inc, "error", 4 * MIN, P) == []  # flap: silent re-open
    assert inc.state == "acknowledged"
    lc.all_cleared(inc, 5 * MIN, P)
    assert lc.due(inc, 10 * MIN - 1, P) == []
    assert lc.due(inc, 10 * MIN, P) == [Resolve(None)]
    assert lc.resolve_by(inc, "bob", 11 * MIN) == []
    with pytest.raises(ValueError):
        lc.acknowledge(inc, "bob", 12 * MIN)
