"""The rules: each judges one minute of a patient's signals against the rules file.

A judgement says whether the firing condition holds, whether the clearing condition holds
(either may be None: not enough data), the value a nurse should read, and the evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stream_rules.config import HighLevel, LowLevel, RulesFile
from stream_rules.features import Level, level_of, news2_partial, slope_of
from stream_rules.state import PatientState


@dataclass(frozen=True, slots=True)
class Judgement:
    fire: bool | None
    clear: bool | None
    value: float = math.nan
    evidence: dict[str, object] = field(default_factory=dict)


UNKNOWN = Judgement(None, None)


def _r(x: float, digits: int = 1) -> float | None:
    return None if x is None or math.isnan(x) else round(x, digits)


def level(s: PatientState, signal: str, minute: int, window_min: float, min_samples: int = 1
          ) -> Level:
    return level_of(s.series[signal], minute, int(window_min), min_samples)


def _high(lv: Level, cfg: HighLevel, unit: str, **extra: object) -> Judgement:
    if not lv.known:
        return UNKNOWN
    return Judgement(lv.value >= cfg.fire_at, lv.value < cfg.clear_below, lv.value, {
        "value": _r(lv.value, 2), "unit": unit, "threshold": cfg.fire_at,
        "clears_below": cfg.clear_below, "window_min": cfg.window_min,
        "minutes_with_data": lv.samples, **extra})


def _low(lv: Level, cfg: LowLevel, unit: str) -> Judgement:
    if not lv.known:
        return UNKNOWN
    return Judgement(lv.value <= cfg.fire_at, lv.value >= cfg.clear_above, lv.value, {
        "value": _r(lv.value), "unit": unit, "threshold": cfg.fire_at,
        "clears_at_or_above": cfg.clear_above, "window_min": cfg.window_min,
        "minutes_with_data": lv.samples})


def temperature_rules(s: PatientState, m: int, rf: RulesFile) -> dict[str, Judgement]:
    r = rf.rules
    site = s.temp_site or "axillary"
    correction = rf.temperature.site_correction_c.get(site, 0.0)  # type: ignore[call-overload]
    lv = level(s, "temp", m, r.fever.window_min, r.fever.min_samples)
    site_ev = {"site": site, "site_correction_c": correction,
               "measured": _r(lv.value - correction, 2) if lv.known else None}
    slope = slope_of(s.series["temp"], m, int(r.rising_temperature.window_min),
                     r.rising_temperature.min_samples)
    out = {
        "fever": _high(lv, r.fever, "°C", trend_per_h=_r(slope, 2), **site_ev),
        "high_fever": _high(level(s, "temp", m, r.high_fever.window_min,
                                  r.high_fever.min_samples), r.high_fever, "°C",
                            trend_per_h=_r(slope, 2), **site_ev),
    }
    rise = r.rising_temperature
    if lv.known and not math.isnan(slope):
        fire = slope >= rise.slope_per_h and rise.from_c <= lv.value < rise.below_c
        clear = slope < rise.slope_per_h / 2 or lv.value < rise.from_c or lv.value >= rise.below_c
        out["rising_temperature"] = Judgement(fire, clear, slope, {
            "value": _r(lv.value, 2), "unit": "°C", "trend_per_h": _r(slope, 2),
            "threshold_per_h": rise.slope_per_h, "window_min": rise.window_min,
            "from_c": rise.from_c, "below_c": rise.below_c, **site_ev})
    else:
        out["rising_temperature"] = UNKNOWN
    if lv.known and lv.value >= r.fever.fire_at:
        s.last_fever_minute = m
    return out


def expected_hr(s: PatientState, temp: float, per_degree: float) -> float | None:
    """The heart rate the temperature explains: baseline + per_degree per degree of fever."""
    if s.hr_baseline is None:
        return None
    rise = 0.0
    if s.temp_baseline is not None and not math.isnan(temp):
        rise = max(0.0, temp - s.temp_baseline) * per_degree
    return s.hr_baseline + rise


def oximetry_rules(s: PatientState, m: int, rf: RulesFile) -> dict[str, Judgement]:
    r = rf.rules
    hr = level(s, "hr", m, r.tachycardia.window_min, r.tachycardia.min_samples)
    base_ev = {"baseline": _r(s.hr_baseline)}
    out = {"tachycardia": _high(hr, r.tachycardia, "/min", **base_ev),
           "desaturation": _low(level(s, "spo2", m, r.desaturation.window_min,
                                      r.desaturation.min_samples), r.desaturation, "%"),
           "severe_desaturation": _low(level(s, "spo2", m, r.severe_desaturation.window_min,
                                             r.severe_desaturation.min_samples),
                                       r.severe_desaturation, "%")}
    rel = r.tachycardia_relative
    hr_rel = level(s, "hr", m, rel.window_min, rel.min_samples)
    if hr_rel.known and s.hr_baseline is not None:
        out["tachycardia_relative"] = Judgement(
            hr_rel.value >= s.hr_baseline + rel.above_baseline,
            hr_rel.value < s.hr_baseline + rel.clear_above_baseline, hr_rel.value,
            {"value": _r(hr_rel.value), "unit": "/min", "baseline": _r(s.hr_baseline),
             "threshold": _r(s.hr_baseline + rel.above_baseline), "window_min": rel.window_min})
    else:
        out["tachycardia_relative"] = UNKNOWN
    dis = r.tachycardia_disproportionate
    hr_dis = level(s, "hr", m, dis.window_min, dis.min_samples)
    temp = level(s, "temp", m, r.fever.window_min, r.fever.min_samples).value
    expected = expected_hr(s, temp, dis.per_degree)
    if hr_dis.known and expected is not None:
        threshold = max(dis.min_hr, expected + dis.excess)
        out["tachycardia_disproportionate"] = Judgement(
            hr_dis.value >= threshold, hr_dis.value < expected + dis.clear_excess, hr_dis.value,
            {"value": _r(hr_dis.value), "unit": "/min", "expected": _r(expected),
             "threshold": _r(threshold), "temperature": _r(temp, 2),
             "baseline": _r(s.hr_baseline), "temp_baseline": _r(s.temp_baseline, 2),
             "per_degree": dis.per_degree, "window_min": dis.window_min})
    else:
        out["tachycardia_disproportionate"] = UNKNOWN
    return out


def combined_rules(s: PatientState, m: int, rf: RulesFile, day: float | None
                   ) -> tuple[dict[str, Judgement], dict[str, float], tuple[int, dict[str, int]]]:
    """NEWS2 and CRS suspicion, which need every signal at the same minute; also returns the
    levels and the NEWS2 score for the trend point."""
    r = rf.rules
    levels = {
        "temp": level(s, "temp", m, r.fever.window_min, r.fever.min_samples).value,
        "hr": level(s, "hr", m, r.tachycardia.window_min).value,
        "spo2": level(s, "spo2", m, r.desaturation.window_min).value,
        "rr": level(s, "rr", m, 5).value,
    }
    total, scores = news2_partial(levels)
    out: dict[str, Judgement] = {}
    for rid, cfg in (("news2", r.news2), ("news2_high", r.news2_high)):
        if len(scores) < 2:  # one parameter alone is not a NEWS2
            out[rid] = UNKNOWN
            continue
        fire = total >= cfg.aggregate_at or (
            cfg.single_at is not None and max(scores.values()) >= cfg.single_at)
        out[rid] = Judgement(fire, not fire, float(total), {
            "value": total, "scores": scores, "aggregate_at": cfg.aggregate_at,
            "single_at": cfg.single_at, "partial": True,
            "not_measured": ["blood pressure", "consciousness", "supplemental O2"]
            + ([] if "rr" in scores else ["respiratory rate"])})
    out["crs_suspicion"] = _crs(s, m, rf, levels, day)
    return out, levels, (total, scores)


def _crs(s: PatientState, m: int, rf: RulesFile, levels: dict[str, float], day: float | None
         ) -> Judgement:
    r = rf.rules
    temp, hr, spo2 = levels["temp"], levels["hr"], levels["spo2"]
    memory = r.crs_suspicion.fever_memory_h * 60
    fever_now = not math.isnan(temp) and temp >= r.fever.fire_at
    fever_recent = s.last_fever_minute is not None and m - s.last_fever_minute <= memory
    if math.isnan(temp) and not fever_recent:
        return UNKNOWN
    why = []
    if not math.isnan(hr):
        expected = expected_hr(s, temp, r.tachycardia_disproportionate.per_degree)
        if hr >= r.tachycardia.fire_at:
            why.append("tachycardia")
        elif (s.hr_baseline is not None
              and hr >= s.hr_baseline + r.tachycardia_relative.above_baseline):
            why.append("heart rate above baseline")
        elif expected is not None and hr >= max(r.tachycardia_disproportionate.min_hr,
                                                expected + r.tachycardia_disproportionate.excess):
            why.append("heart rate out of proportion to temperature")
    if not math.isnan(spo2) and spo2 <= r.desaturation.fire_at:
        why.append("falling SpO2")
    fever = fever_now or fever_recent
    fire = fever and bool(why)
    return Judgement(fire, not fire, temp, {
        "temperature": _r(temp, 2), "heart_rate": _r(hr), "spo2": _r(spo2),
        "fever_now": fever_now, "fever_within_h": r.crs_suspicion.fever_memory_h,
        "last_fever_at": None if s.last_fever_minute is None
        else (s.last_fever_minute + 1) * 60_000,
        "because": why, "day_since_infusion": _r(day),
        "within_crs_window": day is not None and day <= rf.evaluation.crs_window_days,
        "hr_baseline": _r(s.hr_baseline)})
