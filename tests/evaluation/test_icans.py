"""ICANS episodes and reports scored: noise does not page through the pure engine, an ICE
decline is detected with a delay, and report pages are judged true or false as a clinician
would."""

from __future__ import annotations

from evaluation import icans, score
from evaluation.run import Pipeline, registry_of
from simulators import stream, truth
from stream_rules.config import load_rules
from stream_rules.engine import Engine
from tests.simulators.helpers import START, sim_of
from vitals.patients import Patient
from vitals.records import AlertEvent, Reading

H = 3_600_000


def test_a_headache_or_fatigue_alone_pages_nobody() -> None:
    rules = load_rules(None)
    engine = Engine(rules, Patient(id="P1", infusion=truth_date(), team="haem-a"))
    state = engine.new_state()
    reports = [Reading("P1", "app-1", START + k * H, "symptoms", START + k * H, seq=k,
                       by="patient", symptoms=codes, note=note)
               for k, (codes, note) in enumerate([
                   (("headache",), "mild headache, had a paracetamol"), (("fatigue",), None),
                   (("nausea", "fatigue"), None), (("joint_pain",), None), ((), None),
                   (("other",), "slept badly")])]
    out = engine.process(state, reports)
    out.alerts += engine.flush(state).alerts
    assert out.alerts == []


def truth_date():  # type: ignore[no-untyped-def]
    import datetime as dt
    return dt.datetime.fromtimestamp(START / 1000, dt.UTC).date()


SCENARIO = """
seed: 9
duration: 9d
patients:
  - id: N1
    devices:
      - {id: ox-1, type: oximeter, interval: 1m}
      - {id: th-1, type: thermometer, interval: 5m}
      - {id: app-1, type: thermometer, site: oral, interval: 12h, manual: true}
    episodes:
      - {kind: icans, grade: 2, onset: 3d2h, ice_nadir: 5, rise: 8h, plateau: 1d, recovery: 2d}
    reports: {missed: 0, missed_days: 0, noise: 0.5, ice_slip: 0}
  - id: N2
    devices:
      - {id: ox-1, type: oximeter, interval: 1m}
      - {id: th-1, type: thermometer, interval: 5m}
      - {id: app-1, type: thermometer, site: oral, interval: 12h, manual: true}
    reports: {missed: 0.2, missed_days: 0.5, noise: 0.5, ice_slip: 0}
"""


def test_an_ice_decline_is_detected_and_scored_with_its_delay() -> None:
    sim = sim_of(SCENARIO)
    s = stream.Stream(sim, line=False)
    pipe = Pipeline(load_rules(None), registry_of(sim))
    pipe.feed((m.at, m.topic, m.payload) for m in s)
    runs = pipe.finish()
    assert not pipe.counts.rejected
    t = truth.build(sim, s.injected)
    alerts = {pid: r.alerts for pid, r in runs.items()}
    result = score.score(t, alerts)
    r = result["icans"]
    (e,) = r["episodes"]
    assert e.scorable and e.first_page is not None and e.grade == 2
    assert 0 < e.delay_min < 24 * 60  # twice-daily checks: found within a day
    assert r["all"]["sensitivity"] == 1.0
    assert r["false_pages"] == 0  # noise (headache, fatigue ...) never paged
    assert all(p["verdict"] == "icans" for p in r["pages"])
    assert not result["false_pages"]  # the vital-sign false pages do not count reports
    # N2's caregiver missed whole days: adherence warnings (judged per minute, with the
    # wearables' minutes), each after a real miss
    m = r["missed_warnings"]
    assert m["fired"] >= 1 and m["unexplained"] == 0
    assert r["reports"]["neuro_checks_missed"] > 0


def _alert(rule: str, at: int, symptom: str | None = None, severity: str = "error",
           status: str = "firing") -> AlertEvent:
    evidence = {"symptom": symptom} if symptom else {}
    return AlertEvent(alert_id=f"P1/{rule}/{at}", status=status, rule=rule, severity=severity,
                      patient_id="P1", start=at, detected_at=at, summary="x",
                      evidence=evidence)


def test_report_pages_are_judged_as_a_clinician_would() -> None:
    day = 86_400_000
    t = truth.Truth(
        truth.FORMAT, "test", 1, START, START + 10 * day,
        patients=[truth.Patient("P1", "2026-11-20", "haem-a")],
        episodes=[truth.Episode("P1", "crs", START + day, START + 3 * day, grade=3,
                                spo2_nadir=89.0)],
        icans=[truth.Icans("P1", 2, START + 5 * day, START + 7 * day, 5, START + 5 * day + H)],
        reports=[truth.Report("P1", "app-1", START + 8 * day, "neuro_check", "ice_slip",
                              "caregiver", ice_total=9),
                 truth.Report("P1", "app-1", START + 8 * day + 12 * H, "neuro_check", "check",
                              "caregiver", ice_total=10, missed=True)])
    alerts = {"P1": [
        _alert("chills_rising_temperature", START + day + H, "chills"),  # CRS: true
        _alert("red_flag", START + 2 * day, "breathing_difficulty"),  # hypoxic CRS: true
        _alert("red_flag", START + 2 * day + H, "confusion"),  # no ICANS then: false
        _alert("ice_decline", START + 5 * day + 3 * H),  # in the ICANS: true
        _alert("ice_decline", START + 8 * day),  # the slip: false
        _alert("neuro_check_missed", START + 9 * day, severity="warning"),  # a real miss
        _alert("fever", START + day + 2 * H, severity="error"),  # a vital-sign page
    ]}
    r = icans.score(t, alerts)
    verdicts = [(p["rule"], p["verdict"], p["cause"]) for p in r["pages"]]
    assert verdicts == [("chills_rising_temperature", "fever", None),
                        ("red_flag", "fever", None), ("red_flag", "false", "unexplained"),
                        ("ice_decline", "icans", None), ("ice_decline", "false", "ice_slip")]
    assert r["false_pages"] == 2 and r["false_by_cause"] == {"unexplained": 1, "ice_slip": 1}
    assert r["missed_warnings"] == {"fired": 1, "explained": 1, "unexplained": 0}
    (e,) = r["episodes"]
    assert e.first_page_rule == "ice_decline" and e.delay_min == 180
    whole = score.score(t, alerts)
    assert whole["false_pages"] == []  # the fever page lies in the CRS
    crs = whole["episodes"][0]
    assert crs.first_page_rule == "chills_rising_temperature"  # a chills page detects a CRS
    assert whole["fever_vitals_only"]["first_paged_by_report"] == 1
    assert whole["by_rule"]["ice_decline"]["true"] == 1
    assert whole["by_rule"]["neuro_check_missed"]["true"] == 1
