"""The patient's true vital signs on a time grid, vectorized: core temperature, heart rate,
SpO2 and respiratory rate, as pure functions of time and the patient's plan (no random draws
here, so any chunk of the timeline gives the same values).

- Core temperature: baseline, a circadian rhythm (low ~04:00, high ~18:00 local time), a slow
  wander, and fever episodes that override the rhythm up to their peak, lowered by
  antipyretics and masked by tocilizumab.
- Heart rate: baseline, +10/min per °C above the baseline temperature (the fever before
  tocilizumab masks it), a daytime activity term, and each episode's tachycardia out of
  proportion to the fever.
- SpO2: baseline, falling towards each episode's nadir, plus short physiological dips.
- Respiratory rate: baseline, coupled to fever and to the SpO2 fall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators import episodes as ep
from simulators.plan import DAY, HOUR, PatientPlan

TROUGH_H, PEAK_H = 4.0, 18.0  # local hours of the circadian low and high
RR_PER_DEGREE = 2.0
RR_PER_SPO2_POINT = 0.6
ACTIVITY_HR = 4.0  # awake minus asleep heart rate /2


@dataclass(frozen=True)
class Vitals:
    temp: np.ndarray  # core, °C
    hr: np.ndarray
    spo2: np.ndarray
    rr: np.ndarray


def local_hours(plan: PatientPlan, t: np.ndarray) -> np.ndarray:
    return ((t + plan.utc_offset) % DAY) / HOUR


def circadian(plan: PatientPlan, t: np.ndarray) -> np.ndarray:
    """-1 at 04:00, +1 at 18:00 local time: 14 h rising, 10 h falling, smooth at both ends."""
    h = local_hours(plan, t)
    rising = (h >= TROUGH_H) & (h < PEAK_H)
    phase = np.where(rising, np.pi + np.pi * (h - TROUGH_H) / (PEAK_H - TROUGH_H),
                     np.pi * ((h - PEAK_H) % 24) / (24 - PEAK_H + TROUGH_H))
    return np.cos(phase)


def awake(plan: PatientPlan, t: np.ndarray) -> np.ndarray:
    """~1 from 07:00 to 23:00 local time, ~0 at night, with one-hour transitions."""
    h = local_hours(plan, t)
    return ep.smoothstep(h - 6.5) * (1 - ep.smoothstep(h - 22.5))


def wander(plan: PatientPlan, name: str, t: np.ndarray) -> np.ndarray:
    rows = plan.wander.get(name)
    out = np.zeros(len(t))
    if rows is not None:
        for amp, period, phase in rows:
            out += amp * np.sin(2 * np.pi * t / period + phase)
    return out


def _temperatures(plan: PatientPlan, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(core temperature, the same without tocilizumab's masking, which drives the pulse)."""
    b = plan.baseline
    weight, above, unmasked = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
    for e in plan.episodes:
        if len(t) == 0 or e.onset > t[-1] or e.end < t[0]:
            continue
        w, f, u = ep.fever(e, b, t)
        weight = np.maximum(weight, w)
        above, unmasked = np.maximum(above, f), np.maximum(unmasked, u)
    # a fever resets the set point: the rhythm and wander fade as it takes over, so the
    # configured peak is what the core reaches
    rest = b.temp + (b.circadian * circadian(plan, t) + wander(plan, "temp", t)) * (1 - weight)
    return rest + above, rest + unmasked


def core_temperature(plan: PatientPlan, t: np.ndarray) -> np.ndarray:
    return _temperatures(plan, t)[0]


def vitals(plan: PatientPlan, t: np.ndarray) -> Vitals:
    """All four vitals at times `t` (epoch ms, int64)."""
    b = plan.baseline
    temp, drive = _temperatures(plan, t)
    tachy, fall = np.zeros(len(t)), np.zeros(len(t))
    for e in plan.episodes:
        if len(t) == 0 or e.onset > t[-1] or e.end < t[0]:
            continue
        tachy += e.tachycardia * ep.intensity(e, t)
        if e.spo2_nadir is not None:
            fall += max(0.0, b.spo2 - e.spo2_nadir) * ep.hypoxia(e, t)
    hr = (b.hr + ep.HR_PER_DEGREE * (drive - b.temp) + tachy
          + ACTIVITY_HR * (2 * awake(plan, t) - 1) + wander(plan, "hr", t))
    spo2 = b.spo2 - fall - dips(plan, t) + wander(plan, "spo2", t)
    rr = (b.rr + RR_PER_DEGREE * np.maximum(0.0, drive - b.temp)
          + RR_PER_SPO2_POINT * np.maximum(0.0, b.spo2 - spo2))
    return Vitals(temp, hr, np.clip(spo2, 50.0, 100.0), rr)


def dips(plan: PatientPlan, t: np.ndarray) -> np.ndarray:
    """Short physiological desaturations (sleep): a fast fall and a slower recovery."""
    out = np.zeros(len(t))
    if len(t) == 0:
        return out
    d = plan.dips
    for i in d.overlapping(int(t[0]), int(t[-1]) + 1):
        s, e, depth = int(d.start[i]), int(d.end[i]), float(d.value[i])
        x = (t - s) / max(e - s, 1)
        shape = np.where(x < 0.3, x / 0.3, (1 - x) / 0.7)
        out += depth * np.clip(np.where((x >= 0) & (x < 1), shape, 0.0), 0.0, 1.0)
    return out
