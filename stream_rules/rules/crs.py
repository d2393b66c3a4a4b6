"""CRS suspicion: a fever now or in the last hours (antipyretics can hide it) with a racing
heart or falling SpO2 (ASTCT: fever plus hypoxia; at home, tachycardia as its proxy). Never a
CRS grade: a wearable cannot see blood pressure or oxygen therapy."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from stream_rules.rules.heart_rate import expected_hr
from stream_rules.rules.spec import UNKNOWN, Judgement, Minute, Rule, RuleSpec, Severity, rounded

if TYPE_CHECKING:
    from stream_rules.config import RulesFile


class CrsSuspicion(Rule):
    """`severity` within the CRS window after infusion, `severity_after_window` after it."""

    severity_after_window: Severity
    fever_memory_h: float = Field(ge=0, le=14 * 24)


def judge_crs(at: Minute, config: CrsSuspicion) -> Judgement:
    """Fever (now or remembered) together with a heart-rate or SpO2 sign; the signs use the
    thresholds of the heart-rate and desaturation rules."""
    assert at.levels is not None
    rules, state, day = at.rules, at.state, at.day
    temp, hr, spo2 = at.levels["temp"], at.levels["hr"], at.levels["spo2"]
    memory = config.fever_memory_h * 60
    fever_now = not math.isnan(temp) and temp >= rules.fever.fire_at
    fever_recent = (state.last_fever_minute is not None
                    and at.minute - state.last_fever_minute <= memory)
    if math.isnan(temp) and not fever_recent:
        return UNKNOWN
    because = []
    if not math.isnan(hr):
        disproportionate = rules.tachycardia_disproportionate
        expected = expected_hr(state, temp, disproportionate.per_degree)
        if hr >= rules.tachycardia.fire_at:
            because.append("tachycardia")
        elif (state.hr_baseline is not None
              and hr >= state.hr_baseline + rules.tachycardia_relative.above_baseline):
            because.append("heart rate above baseline")
        elif expected is not None and hr >= max(disproportionate.min_hr,
                                                expected + disproportionate.excess):
            because.append("heart rate out of proportion to temperature")
    if not math.isnan(spo2) and spo2 <= rules.desaturation.fire_at:
        because.append("falling SpO2")
    fire = (fever_now or fever_recent) and bool(because)
    last_fever, hr_baseline = state.last_fever_minute, state.hr_baseline
    crs_window_days = at.rules_file.evaluation.crs_window_days
    return Judgement(fire, not fire, temp, lambda: {
        "temperature": rounded(temp, 2), "heart_rate": rounded(hr), "spo2": rounded(spo2),
        "fever_now": fever_now, "fever_within_h": config.fever_memory_h,
        "last_fever_at": None if last_fever is None else (last_fever + 1) * 60_000,
        "because": because, "day_since_infusion": rounded(day),
        "within_crs_window": day is not None and day <= crs_window_days,
        "hr_baseline": rounded(hr_baseline)})


def quiet_crs(at: Minute, config: CrsSuspicion) -> bool:
    """No fever now (the fever window's level below its threshold, or none) and none within
    `fever_memory_h`: `judge_crs` needs one to fire."""
    assert at.levels is not None
    temp, last = at.levels["temp"], at.state.last_fever_minute
    return not temp >= at.rules.fever.fire_at and (  # NaN compares False: no fever now
        last is None or at.minute - last > config.fever_memory_h * 60)


def severity_on_day(config: CrsSuspicion, rules_file: RulesFile, day: float) -> Severity:
    """Within `crs_window_days` of infusion CRS is likely; after it, less so."""
    if day > rules_file.evaluation.crs_window_days:
        return config.severity_after_window
    return config.severity


def _measured(evidence: dict[str, Any]) -> str:
    now = ("not measured" if evidence["temperature"] is None
           else f"{evidence['temperature']:.1f} °C")
    fever = (f"fever {now}" if evidence["fever_now"]
             else f"fever within the last {evidence['fever_within_h']:g} h (now {now})")
    signs = []
    if evidence["heart_rate"] is not None:
        signs.append(f"heart rate {evidence['heart_rate']:.0f}/min")
    if evidence["spo2"] is not None:
        signs.append(f"SpO2 {evidence['spo2']:.0f} %")
    because = " and ".join(evidence["because"])  # empty once the signs have settled (clearing)
    return f"{fever} with {because} ({', '.join(signs)})" if because else (
        f"{fever}; heart rate and SpO2 no longer raise concern ({', '.join(signs)})")


SPEC = RuleSpec(
    "crs_suspicion", CrsSuspicion, "combined", judge_crs, "possible CRS", _measured,
    firing_note=". Not a CRS grade: blood pressure and oxygen need are not measured",
    severity=severity_on_day, quiet=quiet_crs)
