"""Desaturation and no-data warnings against a hand-made truth: which are true, the causes of
the rest, and the sensitivity that must not fall while the noise does."""

from __future__ import annotations

from evaluation.warning_noise import score_warnings
from simulators.truth import Artefact, Device, Dip, Episode, Patient, Truth
from vitals.records import AlertEvent

H, M = 3_600_000, 60_000


def warning(pid: str, rule: str, detected: int, start: int | None = None,
            **evidence: object) -> AlertEvent:
    s = detected - 5 * M if start is None else start
    return AlertEvent(alert_id=f"{pid}/{rule}/{s}", status="firing", rule=rule,  # type: ignore[arg-type]
                      severity="warning", patient_id=pid, start=s, detected_at=detected,
                      summary="", evidence=dict(evidence))


DEVICES = [Device("ox-1", "oximeter", 1000), Device("th-1", "thermometer", 10 * M),
           Device("app-1", "thermometer", 12 * H, site="oral", manual=True)]
TRUTH = Truth(
    format="vitals-truth/1", source="hand-made", seed=0, start=0, end=100 * H,
    patients=[Patient("P1", "2026-11-20", "haem-a", baseline={"spo2": 98.0}, devices=DEVICES),
              Patient("P2", "2026-11-20", "haem-a", baseline={"spo2": 94.5}, devices=DEVICES)],
    episodes=[Episode("P1", "crs", 10 * H, 20 * H, grade=2, min_spo2=89.0, spo2_nadir=91.0),
              # grade 1: fever alone; its SpO2 dipped in sleep, it had no hypoxia
              Episode("P1", "crs", 40 * H, 50 * H, grade=1, min_spo2=90.0),
              Episode("P2", "crs", 60 * H, 70 * H, grade=2, min_spo2=90.0, spo2_nadir=92.0)],
    artefacts=[Artefact("P1", "ox-1", "motion", 30 * H, 30 * H + M, flagged=False),
               Artefact("P1", "ox-1", "offline", 70 * H, 71 * H),
               Artefact("P1", "th-1", "patch_off", 80 * H, 80 * H + 20 * M),  # too short
               Artefact("P2", "ox-1", "probe_off", 20 * H, 20 * H + 30 * M),
               Artefact("P2", "ox-1", "offline", 20 * H + 20 * M, 21 * H)],  # merged: 1 h
    dips=[Dip("P1", 35 * H, 35 * H + M, 6.0)])

ALERTS = {
    "P1": [warning("P1", "desaturation", 12 * H),  # true
           warning("P1", "desaturation", 30 * H + 2 * M),  # motion
           warning("P1", "desaturation", 35 * H + 3 * M),  # sleep dip
           warning("P1", "desaturation", 45 * H),  # an episode without hypoxia
           warning("P1", "no_data", 70 * H + 30 * M, device="ox-1", last_valid_at=70 * H),
           warning("P1", "no_data", 90 * H, device="app-1", last_valid_at=77 * H),
           warning("P1", "no_data", 95 * H, device="th-1", last_valid_at=94 * H + 30 * M)],
    "P2": [warning("P2", "desaturation", 5 * H),  # lives near 93 %
           warning("P2", "severe_desaturation", 61 * H),
           warning("P2", "no_data", 20 * H + 45 * M, device="ox-1", last_valid_at=20 * H)],
}


def test_desaturation_warnings_true_and_the_causes_of_the_rest() -> None:
    desat = score_warnings(TRUTH, ALERTS)["desaturation"]
    assert (desat["fired"], desat["true"], desat["outside"]) == (5, 1, 4)
    assert desat["causes"] == {"artefact": 1, "sleep_dip": 1, "unexplained": 1,
                               "usual_level": 1}
    # P1's first and P2's episode had hypoxia: one warned, both with an SpO2 alert
    assert (desat["episodes"], desat["warned"], desat["any_spo2_alert"]) == (2, 1, 2)


def test_no_data_is_true_only_over_a_real_outage() -> None:
    silent = score_warnings(TRUTH, ALERTS)["no_data"]
    assert (silent["fired"], silent["true"], silent["outside"]) == (4, 2, 2)
    assert silent["causes"] == {"spot_check_device": 1, "unexplained": 1}
    # the offline hour of P1's oximeter and P2's merged probe-off + offline hour; P1's
    # 20-minute patch-off is shorter than a silence worth a warning
    assert (silent["outages"], silent["warned"]) == (2, 2)
    assert score_warnings(TRUTH, {"P1": ALERTS["P1"]})["no_data"]["warned"] == 1
