"""Reports (CONTRACT section 6) judged by the pure engine (`stream_rules/rules/reports.py`):
red flags page at once, the daily ICE by its value and its fall, a symptom together with the
vitals; a headache alone pages nobody; a missed daily check is a warning. Reports change none of
the vital-sign rules' events and start no device's no-data clock."""

from __future__ import annotations

from stream_rules import state as state_io
from stream_rules.engine import Engine
from stream_rules.rules import REPORT_RULES
from tests.stream_rules.test_engine import MIN, PATIENT, RULES, T0, const, fired, readings, run
from vitals.records import AlertEvent, Ice, Reading

REPORT_RULE_NAMES = {r.name for r in REPORT_RULES} | {"neuro_check_missed"}
HOUR = 60 * MIN


def symptoms(ts: int, seq: int, *codes: str, note: str | None = None,
             by: str = "patient") -> Reading:
    return Reading("P001", "app-1", ts, "symptoms", ts + 500, seq=seq, by=by,  # type: ignore[arg-type]
                   symptoms=codes, note=note)  # type: ignore[arg-type]


def ice(ts: int, seq: int, total: int, by: str = "caregiver") -> Reading:
    parts = Ice(min(4, total), min(3, max(0, total - 4)), int(total >= 8), int(total >= 9),
                int(total >= 10))
    assert sum((parts.orientation, parts.naming, parts.commands, parts.writing,
                parts.attention)) == total
    return Reading("P001", "app-1", ts, "neuro_check", ts + 500, seq=seq, by=by,  # type: ignore[arg-type]
                   ice=parts, ice_total=total)


def judged(records: list[Reading]) -> list[AlertEvent]:
    engine = Engine(RULES, PATIENT)
    return engine.process(engine.new_state(), records).alerts


def test_reports_change_none_of_the_vital_sign_rules_events() -> None:
    vitals = readings(90, temp=lambda s: 38.6 if s > 20 * 60 else 37.0, spo2=const(96),
                      hr=const(90))
    checkins = [symptoms(T0 + m * MIN, m, "headache", "fatigue") for m in range(0, 90, 10)]
    mixed = sorted(vitals + checkins, key=lambda r: (r.received_at, r.device_id))
    alone = run(vitals)
    assert fired(alone, "fever"), "the premise: the vital signs alone page a fever"
    assert [a for a in run(mixed) if a.rule not in REPORT_RULE_NAMES] == alone


def test_reports_start_no_no_data_clock() -> None:
    engine = Engine(RULES, PATIENT)
    state = engine.new_state()
    engine.process(state, [symptoms(T0, 1, "headache"), ice(T0 + MIN, 2, 10)])
    assert state.devices == {} and state.kinds == {} and "app-1" in state.reporters
    assert engine.silence(state, T0 + 24 * HOUR).alerts == []


def test_a_headache_or_fatigue_alone_pages_nobody() -> None:
    assert judged([symptoms(T0, 1, "headache", "fatigue", "nausea", note="tired"),
                   symptoms(T0 + HOUR, 2)]) == []


def test_a_seizure_pages_critical_at_once_and_clears_when_no_longer_reported() -> None:
    at = T0 + 14 * HOUR + 5 * MIN
    [page] = judged([symptoms(at, 1, "seizure", by="caregiver", note="<b>shaking</b> 2 min")])
    assert (page.rule, page.status, page.severity) == ("red_flag", "firing", "critical")
    assert page.detected_at == page.start == at  # no sustain window
    assert page.summary.startswith("P001: red flag reported: seizure reported by caregiver "
                                   "at 20 Nov 14:05 UTC")
    assert '"<b>shaking</b> 2 min"' in page.summary  # as text: escaping is the renderer's
    assert page.evidence["note"] == "<b>shaking</b> 2 min"
    later = judged([symptoms(at, 1, "seizure"), symptoms(at + HOUR, 2, "fatigue")])
    assert [(a.status, a.alert_id) for a in later] == [
        ("firing", f"P001/red_flag:seizure/{at}"), ("resolved", f"P001/red_flag:seizure/{at}")]
    assert later[1].summary.startswith(
        "P001: red flag reported cleared: seizure no longer reported (check-in by patient at "
        "20 Nov 15:05 UTC)")


def test_each_red_flag_is_its_own_incident_with_its_severity() -> None:
    out = judged([symptoms(T0, 1, "confusion", "trouble_speaking", "severe_headache",
                           "breathing_difficulty", "fainting", "headache")])
    assert sorted((a.evidence["symptom"], a.severity) for a in out) == [
        ("breathing_difficulty", "error"), ("confusion", "error"), ("fainting", "error"),
        ("severe_headache", "error"), ("trouble_speaking", "error")]
    # reported again while open: no second page
    assert judged([symptoms(T0, 1, "confusion"), symptoms(T0 + MIN, 2, "confusion")]) == \
        judged([symptoms(T0, 1, "confusion")])


def test_a_duplicate_report_changes_nothing() -> None:
    once = judged([symptoms(T0, 1, "seizure")])
    assert judged([symptoms(T0, 1, "seizure"), symptoms(T0, 1, "seizure")]) == once


def test_an_ice_below_10_pages_and_says_what_it_was_before() -> None:
    day1 = T0 + 9 * HOUR + 10 * MIN  # 20 Nov 09:10
    out = judged([ice(day1, 1, 10), ice(day1 + 24 * HOUR + 20 * MIN, 2, 7)])
    [page] = out
    assert (page.rule, page.severity) == ("ice_decline", "error")
    assert "ICE 7/10, was 10/10 yesterday at 09:10 UTC, by caregiver" in page.summary
    assert "grade 1" not in page.summary and "grade 2" not in page.summary
    assert page.evidence["previous_total"] == 10 and page.evidence["ice_total"] == 7
    first = judged([ice(day1, 1, 8)])
    assert "ICE 8/10, (the first check), by caregiver" in first[0].summary


def test_ice_6_or_less_is_critical_a_further_fall_pages_again_and_10_clears() -> None:
    out = judged([ice(T0, 1, 9), ice(T0 + HOUR, 2, 9), ice(T0 + 2 * HOUR, 3, 6),
                  ice(T0 + 3 * HOUR, 4, 8), ice(T0 + 4 * HOUR, 5, 10)])
    assert [(a.status, a.severity, a.evidence["ice_total"], a.start) for a in out] == [
        ("firing", "error", 9, T0),
        ("resolved", "critical", 6, T0),  # the incident at 9 ends: a worse one begins
        ("firing", "critical", 6, T0 + 2 * HOUR),
        ("resolved", "error", 10, T0 + 2 * HOUR)]  # 8 is better, still open; 10 clears


def test_an_older_neuro_check_sent_late_is_not_judged() -> None:
    assert judged([ice(T0 + HOUR, 2, 10), ice(T0, 1, 4)]) == []


def test_chills_with_a_rising_temperature_pages_before_the_fever_rule() -> None:
    rising = readings(100, temp=lambda s: 36.8 + 0.6 * s / 3600, hr=const(80), spo2=const(97))
    out = judged([*rising, symptoms(T0 + 100 * MIN, 1, "chills")])  # 37.8 C by then
    combo = [a for a in out if a.rule == "chills_rising_temperature"]
    assert [(a.status, a.severity) for a in combo] == [("firing", "error")], out
    assert not fired(out, "fever")
    assert "rising 0.6 °C/h" in combo[0].summary
    # a later check-in without chills clears it, in words; so does one with chills again
    # once the temperature has stopped rising (no vital-sign values to quote then)
    later = judged([*rising, symptoms(T0 + 100 * MIN, 1, "chills"),
                    symptoms(T0 + 101 * MIN, 2, "fatigue")])
    [cleared] = [a for a in later if a.rule == "chills_rising_temperature"
                 and a.status == "resolved"]
    assert "cleared: chills no longer reported (check-in by patient at" in cleared.summary
    plateau = readings(200, temp=lambda s: min(37.8, 36.8 + 0.6 * s / 3600), hr=const(80),
                       spo2=const(97))
    again = judged([*plateau[:len(plateau) // 2], symptoms(T0 + 100 * MIN, 1, "chills"),
                    *plateau[len(plateau) // 2:], symptoms(T0 + 199 * MIN, 2, "chills")])
    [cleared] = [a for a in again if a.rule == "chills_rising_temperature"
                 and a.status == "resolved"]
    assert "chills reported by patient at" in cleared.summary
    assert "the temperature no longer rising" in cleared.summary
    # chills on a flat temperature: recorded, not paged
    flat = readings(100, temp=const(37.2), hr=const(80), spo2=const(97))
    assert judged([*flat, symptoms(T0 + 100 * MIN, 1, "chills")]) == []


def test_breathing_difficulty_with_a_falling_spo2_is_critical() -> None:
    low = readings(60, temp=const(37.0), hr=const(90), spo2=lambda s: 97 if s < 1800 else 92)
    out = judged([*low, symptoms(T0 + 60 * MIN, 1, "breathing_difficulty")])
    combo = [a for a in out if a.rule == "breathlessness_falling_spo2"]
    assert [(a.status, a.severity) for a in combo] == [("firing", "critical")]
    assert fired(out, "red_flag")  # the red flag pages too, on its own
    steady = readings(60, temp=const(37.0), hr=const(90), spo2=const(97))
    out = judged([*steady, symptoms(T0 + 60 * MIN, 1, "breathing_difficulty")])
    assert [a.rule for a in out if a.rule != "red_flag"] == []


def test_confusion_with_fever_is_critical_and_confusion_without_it_an_error() -> None:
    feverish = readings(90, temp=lambda s: 38.5 if s > 30 * 60 else 37.0)
    out = judged([*feverish, symptoms(T0 + 90 * MIN, 1, "confusion")])
    assert [(a.rule, a.severity) for a in out if a.rule in REPORT_RULE_NAMES] == [
        ("red_flag", "error"), ("confusion_fever", "critical")]
    afebrile = readings(90, temp=const(37.0))
    out = judged([*afebrile, symptoms(T0 + 90 * MIN, 1, "confusion")])
    assert [(a.rule, a.severity) for a in out if a.rule in REPORT_RULE_NAMES] == [
        ("red_flag", "error")]


def test_a_missed_daily_check_is_a_warning_once_checks_began_and_within_14_days() -> None:
    """Infusion 18 Nov; T0 is 20 Nov. A check at T0, then vitals for 31 h: a warning at
    30 h (24 + 6 grace), cleared by the next check."""
    vitals = readings(32 * 60, temp=const(37.0))
    checks = [ice(T0, 1, 10), ice(T0 + 31 * HOUR, 2, 10)]
    out = run(sorted(checks + vitals, key=lambda r: r.received_at))
    missed = [a for a in out if a.rule == "neuro_check_missed"]
    assert [a.status for a in missed] == ["firing", "resolved"]
    warning = missed[0]
    assert warning.severity == "warning" and 0 <= T0 + 30 * HOUR - warning.start <= MIN
    assert "no neuro check for 30 h" in warning.summary
    # judged on the next minutes the vitals close (they run `lateness_s` behind)
    assert abs(missed[1].detected_at - (T0 + 31 * HOUR)) <= 5 * MIN
    assert fired(run(vitals), "neuro_check_missed") == []  # never did one: not enrolled


def test_report_state_survives_the_wire_form() -> None:
    engine = Engine(RULES, PATIENT)
    state = engine.new_state()
    engine.process(state, [ice(T0, 1, 8), symptoms(T0 + MIN, 2, "seizure")])
    back = state_io.load(state_io.dump(state))
    assert back.last_ice == state.last_ice and back.rules == state.rules
    assert back.reporters.keys() == state.reporters.keys()
    # the reloaded state knows both reports: again, they change nothing
    assert engine.process(back, [ice(T0, 1, 8), symptoms(T0 + MIN, 2, "seizure")]).alerts == []
