"""Reports (CONTRACT section 6) on `vitals.readings` beside the vital signs: the vital-sign rules
skip them, so a report changes none of their events and starts no device's no-data clock."""

from __future__ import annotations

from stream_rules.engine import Engine
from tests.stream_rules.test_engine import MIN, PATIENT, RULES, T0, const, fired, readings, run
from vitals.records import Ice, Reading


def reports(minutes: int) -> list[Reading]:
    """A caregiver's check-in and neuro check every 10 minutes, from the app."""
    out = []
    for i, m in enumerate(range(0, minutes, 10)):
        ts = T0 + m * MIN
        out.append(Reading("P001", "app-1", ts, "symptoms", ts + 500, seq=2 * i, by="caregiver",
                           symptoms=("chills", "confusion"), note="shivering"))
        out.append(Reading("P001", "app-1", ts + 1000, "neuro_check", ts + 1500, seq=2 * i + 1,
                           by="caregiver", ice=Ice(2, 1, 1, 0, 1), ice_total=5))
    return out


def test_reports_change_none_of_the_vital_sign_rules_events() -> None:
    vitals = readings(90, temp=lambda s: 38.6 if s > 20 * 60 else 37.0, spo2=const(96),
                      hr=const(90))
    mixed = sorted(vitals + reports(90), key=lambda r: (r.received_at, r.device_id))
    alone = run(vitals)
    assert fired(alone, "fever"), "the premise: the vital signs alone page a fever"
    assert run(mixed) == alone


def test_reports_alone_judge_nothing_and_start_no_no_data_clock() -> None:
    engine = Engine(RULES, PATIENT)
    state = engine.new_state()
    out = engine.process(state, reports(60))
    assert out.alerts == [] and state.devices == {} and state.kinds == {}
    assert engine.silence(state, T0 + 24 * 60 * MIN).alerts == []
