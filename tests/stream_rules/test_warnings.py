"""Warnings a nurse can trust (issue #16): a desaturation is a fall from the patient's own level
on readings the oximeter can vouch for; no data means a device missed its own cadence."""

from __future__ import annotations

from stream_rules import state as state_io
from stream_rules.config import Baseline, PatientRules
from stream_rules.engine import Engine
from tests.stream_rules.test_engine import MIN, PATIENT, RULES, T0, const, fired, readings, run
from vitals.records import Reading


def with_baseline(**baseline: float):
    return RULES.model_copy(update={"patients": {"P001": PatientRules(
        baseline=Baseline(**baseline))}})


# --- desaturation from the patient's own level ---------------------------------------------

def test_a_patient_who_lives_at_94_reading_93_has_not_fallen() -> None:
    alerts = run(readings(40, spo2=const(93), hr=const(72)), rules=with_baseline(spo2=94.3))
    assert not fired(alerts, "desaturation")


def test_a_fall_from_97_to_93_warns_and_says_from_what() -> None:
    (alert,) = fired(run(readings(40, spo2=const(93), hr=const(72)),
                         rules=with_baseline(spo2=97.0)), "desaturation")
    assert alert.evidence["baseline"] == 97.0
    assert "4 points below the patient's usual 97 %" in alert.summary


def test_before_a_baseline_is_known_the_absolute_level_decides() -> None:
    assert fired(run(readings(40, spo2=const(93), hr=const(72))), "desaturation")


def test_the_baseline_is_learnt_from_the_first_hours() -> None:
    """Seven hours at 94 %, then 93 % for 30 min: no warning; then 91 %: a warning."""
    def spo2(s: int) -> float:
        return 94 if s < 7 * 3600 else 93 if s < 7.5 * 3600 else 91

    eng = Engine(RULES, PATIENT)
    state = eng.new_state()
    alerts = eng.process(state, readings(8 * 60, spo2=spo2, hr=const(72))).alerts
    assert state.spo2_baseline == 94.0
    (alert,) = fired(alerts, "desaturation")
    assert alert.start >= T0 + 450 * MIN
    assert state_io.load(state_io.dump(state)).spo2_baseline == 94.0


def test_a_critical_desaturation_does_not_depend_on_the_baseline() -> None:
    alerts = run(readings(40, spo2=const(89), hr=const(72)), rules=with_baseline(spo2=91.0))
    assert fired(alerts, "severe_desaturation")


# --- readings the oximeter cannot vouch for -------------------------------------------------

def _with_pi(rs: list[Reading], pi: float) -> list[Reading]:
    return [Reading(r.patient_id, r.device_id, r.ts, r.kind, r.received_at, seq=r.seq,
                    spo2=r.spo2, hr=r.hr, pi=pi) for r in rs]


def test_spo2_at_a_low_perfusion_index_is_not_used_but_the_pulse_is() -> None:
    rs = readings(40, spo2=const(85), hr=const(140))
    cold = run(_with_pi(rs, 0.2))
    assert not fired(cold, "desaturation") and not fired(cold, "severe_desaturation")
    assert fired(cold, "tachycardia")
    warm = run(_with_pi(rs, 2.5))  # the same readings with a good perfusion index
    assert fired(warm, "severe_desaturation")


def test_a_dip_that_comes_with_a_leaping_pulse_is_motion() -> None:
    """40 s of every minute read SpO2 86: with the pulse leaping 40/min above the trusted
    readings' it is motion the device did not flag; with a steady pulse it is a
    desaturation."""
    dip = lambda s: s % 60 < 40 and s >= 300  # noqa: E731
    moving = run(readings(40, spo2=lambda s: 86 if dip(s) else 97,
                          hr=lambda s: 112 if dip(s) else 72))
    assert not fired(moving, "desaturation") and not fired(moving, "severe_desaturation")
    steady = run(readings(40, spo2=lambda s: 86 if dip(s) else 97, hr=const(72)))
    assert fired(steady, "severe_desaturation")


# --- no data on the device's own cadence ----------------------------------------------------

def _thermometer(minutes: int, every_min: int, skip: range = range(0)) -> list[Reading]:
    return [Reading("P001", "th-1", T0 + m * MIN, "temperature", T0 + m * MIN + 200,
                    seq=m, temp=36.8, site="core")
            for m in range(0, minutes, every_min) if m not in skip]


def test_a_15_minute_thermometer_is_not_silent_between_its_readings() -> None:
    ox = readings(180, spo2=const(97), hr=const(72))
    rs = sorted(ox + _thermometer(180, 15), key=lambda r: r.ts)
    assert not fired(run(rs), "no_data")


def test_a_15_minute_thermometer_that_misses_three_readings_is_silent_and_says_its_cadence(
        ) -> None:
    ox = readings(240, spo2=const(97), hr=const(72))
    rs = sorted(ox + _thermometer(240, 15, skip=range(90, 160)), key=lambda r: r.ts)
    (alert,) = fired(run(rs), "no_data")
    assert alert.evidence["device"] == "th-1" and alert.evidence["after_min"] == 45
    assert alert.detected_at == T0 + (75 + 45) * MIN  # its last reading at minute 75
    assert "it reports every 15 min" in alert.summary


def test_a_spot_check_device_is_never_silent() -> None:
    """A caregiver's oral check twice a day (flag manual): neither event time nor the wall
    clock calls it silent."""
    ox = readings(24 * 60, spo2=const(97), hr=const(72))
    checks = [Reading("P001", "app-1", T0 + h * 60 * MIN, "temperature",
                      T0 + h * 60 * MIN + 200, seq=h, temp=36.7, site="oral", flags=("manual",))
              for h in (0, 12)]
    eng = Engine(RULES, PATIENT)
    state = eng.new_state()
    alerts = eng.process(state, sorted(ox + checks, key=lambda r: r.ts)).alerts
    assert not [a for a in alerts if a.rule == "no_data"]
    assert state.devices["app-1"].manual
    # a day after the last check, the oximeter (quiet since its last reading) is silent; the
    # spot-check device is not
    (silent,) = eng.silence(state, T0 + 36 * 60 * MIN).alerts
    assert silent.evidence["device"] == "ox-1"
