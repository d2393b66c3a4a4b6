"""The sentence a nurse reads: who, what was measured, how high, since when, and why it fired.
Never a CRS grade: a wearable cannot see blood pressure or oxygen therapy."""

from __future__ import annotations

import datetime as dt

WHAT = {
    "fever": "fever",
    "high_fever": "high fever",
    "rising_temperature": "rising temperature",
    "tachycardia": "tachycardia",
    "tachycardia_relative": "heart rate well above this patient's baseline",
    "tachycardia_disproportionate": "heart rate out of proportion to temperature",
    "desaturation": "low SpO2",
    "severe_desaturation": "very low SpO2",
    "news2": "raised partial NEWS2",
    "news2_high": "high partial NEWS2",
    "crs_suspicion": "possible CRS",
    "no_data": "no data",
}


def hhmm(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%d %b %H:%M UTC")


def _day(day: float | None) -> str:
    return "" if day is None else f"; day {int(day)} after infusion"


def _temp(ev: dict) -> str:
    text = f"temperature {ev['value']:.1f} °C"
    if ev.get("site_correction_c"):
        text += f" (core-equivalent; {ev['site']} reading {ev['measured']:.1f} °C)"
    return text


def measured(rule: str, ev: dict) -> str:
    """What was measured, with its value and the window it was sustained over."""
    if rule in ("fever", "high_fever"):
        return (f"{_temp(ev)}, median over {ev['window_min']:g} min, "
                f">= {ev['threshold']:g} °C")
    if rule == "rising_temperature":
        return (f"{_temp(ev)} rising {ev['trend_per_h']:+.2f} °C/h over "
                f"{ev['window_min']:g} min (>= {ev['threshold_per_h']:g} °C/h)")
    if rule == "tachycardia":
        return (f"heart rate {ev['value']:.0f}/min over {ev['window_min']:g} min, "
                f">= {ev['threshold']:g}/min")
    if rule == "tachycardia_relative":
        return (f"heart rate {ev['value']:.0f}/min over {ev['window_min']:g} min, baseline "
                f"{ev['baseline']:.0f}/min")
    if rule == "tachycardia_disproportionate":
        temp = "not measured" if ev["temperature"] is None else f"{ev['temperature']:.1f} °C"
        return (f"heart rate {ev['value']:.0f}/min where temperature ({temp}) explains about "
                f"{ev['expected']:.0f}/min")
    if rule in ("desaturation", "severe_desaturation"):
        return f"SpO2 {ev['value']:.0f} % over {ev['window_min']:g} min, <= {ev['threshold']:g} %"
    if rule in ("news2", "news2_high"):
        parts = ", ".join(f"{k} {v}" for k, v in ev["scores"].items())
        return (f"partial NEWS2 {ev['value']} ({parts}; not measured: "
                f"{', '.join(ev['not_measured'])})")
    if rule == "crs_suspicion":
        now = "not measured" if ev["temperature"] is None else f"{ev['temperature']:.1f} °C"
        fever = (f"fever {now}" if ev["fever_now"]
                 else f"fever within the last {ev['fever_within_h']:g} h (now {now})")
        signs = []
        if ev["heart_rate"] is not None:
            signs.append(f"heart rate {ev['heart_rate']:.0f}/min")
        if ev["spo2"] is not None:
            signs.append(f"SpO2 {ev['spo2']:.0f} %")
        because = " and ".join(ev["because"])  # empty once the signs have settled (clearing)
        return f"{fever} with {because} ({', '.join(signs)})" if because else (
            f"{fever}; heart rate and SpO2 no longer raise concern ({', '.join(signs)})")
    if rule == "no_data":
        return (f"no valid reading from {ev['device']} for {ev['silent_min']:.0f} min "
                f"(last at {hhmm(ev['last_valid_at'])})" if ev.get("last_valid_at")
                else f"no valid reading from {ev['device']}")
    return rule


def summary(patient_id: str, rule: str, status: str, start: int, ev: dict,
            day: float | None) -> str:
    if status == "firing":
        text = f"{patient_id}: {WHAT[rule]}: {measured(rule, ev)}, since {hhmm(start)}{_day(day)}"
        if rule == "crs_suspicion":
            text += ". Not a CRS grade: blood pressure and oxygen need are not measured"
        return text + "."
    return (f"{patient_id}: {WHAT[rule]} cleared: {measured(rule, ev)} (began {hhmm(start)})"
            f"{_day(day)}.")
