"""Matching pages to a hand-made truth: sensitivity, delay, lead time, false-page causes and
shift counts."""

from __future__ import annotations

from evaluation import score
from evaluation.plots import worst_cases
from simulators.truth import Artefact, Dip, Episode, Patient, Truth
from vitals.records import AlertEvent

H, M = score.HOUR, score.MINUTE


def alert(pid: str, rule: str, severity: str, detected: int, start: int | None = None,
          status: str = "firing") -> AlertEvent:
    s = detected - 10 * M if start is None else start
    return AlertEvent(alert_id=f"{pid}/{rule}/{s}", status=status, rule=rule,  # type: ignore[arg-type]
                      severity=severity, patient_id=pid, start=s, detected_at=detected,  # type: ignore[arg-type]
                      summary="")


TRUTH = Truth(
    format="vitals-truth/1", source="hand-made", seed=0, start=0, end=144 * H,
    patients=[Patient("P1", "2026-11-20", "haem-a"), Patient("P2", "2026-11-20", "haem-b")],
    episodes=[Episode("P1", "crs", 6 * H, 30 * H, grade=2, fever_onset=8 * H + 5 * M),
              Episode("P1", "infection", 100 * H, 120 * H, fever_onset=101 * H),
              Episode("P2", "masked", 143 * H + 30 * M, 160 * H, grade=2,
                      fever_onset=143 * H + 40 * M)],  # too close to the end to score
    artefacts=[Artefact("P2", "ox-1", "probe_off", 49 * H + 50 * M, 50 * H + 1 * M),
               Artefact("P2", "th-1", "blanket", 59 * H, 61 * H),
               Artefact("P2", "ox-1", "low_battery", 69 * H, 71 * H)],
    dips=[Dip("P2", 80 * H - 5 * M, 80 * H - 1 * M, 5.0)])

ALERTS = {
    "P1": [alert("P1", "rising_temperature", "warning", 7 * H),
           alert("P1", "fever", "error", 8 * H + 15 * M),
           alert("P1", "fever", "error", 9 * H, status="resolved"),
           alert("P1", "crs_suspicion", "critical", 8 * H + 30 * M),
           alert("P1", "desaturation", "warning", 9 * H + 20 * M),
           alert("P1", "tachycardia", "error", 5 * H + 30 * M)],  # start - 1 h: true
    "P2": [alert("P2", "severe_desaturation", "critical", 50 * H + 6 * M),  # probe off
           alert("P2", "fever", "error", 60 * H),  # blanket
           alert("P2", "tachycardia", "error", 70 * H),  # low battery is no cause
           alert("P2", "no_data", "error", 75 * H),
           alert("P2", "severe_desaturation", "critical", 80 * H),  # sleep dip
           alert("P2", "desaturation", "warning", 90 * H)],  # not a page
}


def result() -> dict[str, object]:
    return score.score(TRUTH, ALERTS, {("P1", 6 * H): 9 * H})


def test_nurse_checks_every_interval_from_the_start() -> None:
    assert score.nurse_check(0, 0, 4 * H) == 0
    assert score.nurse_check(8 * H + 5 * M, 0, 4 * H) == 12 * H
    assert score.nurse_check(8 * H, 0, 4 * H) == 8 * H
    assert score.nurse_check(8 * H + 5 * M, 0, 8 * H) == 16 * H
    assert score.nurse_check(-5, 0, 4 * H) == 0


def test_episodes_sensitivity_delay_and_lead() -> None:
    r = result()
    crs, infection, masked = r["episodes"]  # type: ignore[misc]
    assert crs.label == "crs grade 2" and crs.scorable
    # the tachycardia page at 5:30 is before the start: true, but not a detection
    assert crs.rules == ["crs_suspicion", "desaturation", "fever", "rising_temperature"]
    assert crs.first_page == 8 * H + 15 * M and crs.first_page_rule == "fever"
    assert crs.delay_min == 10
    assert crs.desat_delay_min == 20
    assert crs.lead_min == {"4h": 225, "8h": 465}
    assert infection.first_page is None and infection.delay_min is None
    assert not masked.scorable  # fever onset less than an hour before the end
    kinds = r["by_kind"]
    assert kinds["crs grade 2"]["sensitivity"] == 1.0  # type: ignore[index]
    assert kinds["infection"]["sensitivity"] == 0.0  # type: ignore[index]
    assert kinds["masked"]["episodes"] == 0  # type: ignore[index]
    assert r["delay"]["median"] == 10 and r["delay"]["n"] == 1  # type: ignore[index]
    assert r["lead"]["4h"]["median"] == 225  # type: ignore[index]


def test_the_detection_window_is_start_to_end_plus_an_hour() -> None:
    late = {"P1": [alert("P1", "fever", "error", 120 * H + 59 * M)]}
    too_late = {"P1": [alert("P1", "fever", "error", 121 * H + 1 * M)]}
    assert score.score(TRUTH, late)["episodes"][1].first_page is not None  # type: ignore[index]
    assert score.score(TRUTH, too_late)["episodes"][1].first_page is None  # type: ignore[index]


def test_false_pages_and_their_causes() -> None:
    r = result()
    fps = r["false_pages"]
    assert [(f.rule, f.cause) for f in fps] == [  # type: ignore[attr-defined]
        ("severe_desaturation", "probe_off"), ("fever", "blanket"),
        ("tachycardia", "unexplained"), ("no_data", "no-data"),
        ("severe_desaturation", "sleep_dip")]
    assert r["patient_days"] == 12
    assert r["false_per_patient_day"] == 5 / 12
    assert r["false_by_cause"] == {"probe_off": 1, "blanket": 1, "unexplained": 1,
                                   "no-data": 1, "sleep_dip": 1}


def test_per_rule_table() -> None:
    rules = result()["by_rule"]
    assert rules["fever"] == {"severity": "error", "fired": 2, "true": 1, "false": 1,  # type: ignore[index]
                              "episodes_detected": 1, "sensitivity": 0.5}
    assert rules["tachycardia"]["true"] == 1 and rules["tachycardia"]["false"] == 1  # type: ignore[index]
    assert rules["desaturation"]["false"] == 1  # type: ignore[index]


def test_pages_per_nurse_per_shift() -> None:
    sh = result()["shifts"]
    assert sh["teams"] == ["haem-a", "haem-b"] and sh["shifts"] == 12  # type: ignore[index]
    # haem-a: tachycardia 5:30, fever 8:15, crs_suspicion 8:30 in shift 0
    assert sh["per_team"]["haem-a"] == [3] + [0] * 11  # type: ignore[index]
    # haem-b: 50:06 (shift 4), 60:00 (5), 70:00 (5), 75:00 (6), 80:00 (6)
    assert sh["per_team"]["haem-b"] == [0, 0, 0, 0, 1, 2, 2, 0, 0, 0, 0, 0]  # type: ignore[index]
    assert sh["max"] == 3 and sh["mean"] == 8 / 24  # type: ignore[index]
    assert sh["patients_paged_max"] == 1 and sh["patients_paged_mean"] == 4 / 24  # type: ignore[index]


def test_targets_report_met_and_not_met() -> None:
    rows = {t["target"]: t for t in score.targets(result(), 12.0)}
    assert rows["every CRS fever episode paged"] == {
        "target": "every CRS fever episode paged", "value": "1/1 (masked: 0/0)", "met": True}
    assert rows["median delay from sustained fever <= 12 min"]["met"]
    assert rows["p90 delay from sustained fever <= 25 min"]["value"] == "10.0 min"
    assert not rows["<= 0.05 false pages per patient-day"]["met"]
    assert rows["whole evaluation <= 60 s"]["met"]
    missed = score.targets(score.score(TRUTH, {}), 99.0)
    assert [t["met"] for t in missed] == [False, False, False, True, False]
    assert missed[1]["value"] == "n/a"


def test_worst_cases_pick_misses_delays_and_false_pages() -> None:
    r = result()
    cases = worst_cases(r["episodes"], r["false_pages"])  # type: ignore[arg-type]
    assert cases[0][:2] == ("P1", "missed infection")
    assert cases[1][1].startswith("crs grade 2: delay 10")
    assert len(cases) == 6 and cases[2][1].startswith("false page severe_desaturation")


def test_the_desaturation_rules_and_the_device_rules_come_from_the_registry() -> None:
    assert sorted(score.DESATURATION_RULES) == ["desaturation", "severe_desaturation"]
    assert score.is_device_rule("no_data")
    assert not score.is_device_rule("fever") and not score.is_device_rule("not_a_rule")


def test_per_patient_day_sensitivity_and_specificity() -> None:
    truth = Truth(
        format="vitals-truth/1", source="hand-made", seed=0, start=0, end=96 * H,
        patients=[Patient(p, "2026-11-20", "haem-a") for p in ("P1", "P2", "P3")],
        episodes=[Episode("P1", "crs", 30 * H, 40 * H, grade=1, fever_onset=31 * H),
                  Episode("P2", "crs", 0, 60 * H, grade=2, fever_onset=1 * H),
                  Episode("P3", "infection", 50 * H, 55 * H, fever_onset=51 * H)],
        artefacts=[], dips=[])
    alerts = {
        # P1: paged on day 1, resolved on day 2 (which the episode no longer touches), and a
        # false page on day 3
        "P1": [alert("P1", "fever", "error", 31 * H, start=30 * H),
               alert("P1", "fever", "error", 50 * H, start=30 * H, status="resolved"),
               alert("P1", "fever", "error", 80 * H, start=79 * H),
               alert("P1", "fever", "error", 81 * H, start=79 * H, status="resolved"),
               alert("P1", "desaturation", "warning", 10 * H)],  # not a page
        # P2: a page on day 0 that stands to the end: days 0-2 true, day 3 flagged negative
        "P2": [alert("P2", "fever", "error", 2 * H, start=1 * H)],
        "P3": [],  # its episode on day 2 unpaged
    }
    day = score.score(truth, alerts)["per_patient_day"]
    assert day == {"days": 12, "positive": 5, "tp": 4, "fn": 1, "tn": 4, "fp": 3,
                   "sensitivity": 0.8, "specificity": 4 / 7}
