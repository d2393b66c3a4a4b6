"""Fever episodes: their clinical shape by kind and grade (CLINICAL.md), and the time courses
(vectorized over a time grid) that physiology combines into core temperature, heart rate,
SpO2 and respiratory rate.

What a wearable can see of each CRS grade (ASTCT grades by blood pressure and oxygen therapy,
which a wearable cannot see, so the grade is only recorded in the truth):
  1 fever alone; 2 fever with tachycardia and SpO2 falling to ~92-94 %; 3 SpO2 ~88-91 %;
  4 rapid deterioration: high fever, HR > 130, SpO2 < 88 %.
An infection gives a fever, usually later; a masked fever is a CRS whose temperature falls back
below 38 °C after antipyretics or tocilizumab while the heart rate stays high.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulators.plan import HOUR, MINUTE, Baseline, EpisodePlan

KINDS = ("none", "crs", "infection", "masked")

# Ranges drawn uniformly when a scenario leaves a value out: peak core °C, rise/plateau/
# recovery hours, extra tachycardia /min, SpO2 nadir %, hypoxia delay and rise hours.
SHAPES: dict[tuple[str, int | None], dict[str, tuple[float, float] | None]] = {
    ("crs", 1): dict(peak=(38.4, 39.3), rise=(1, 4), plateau=(8, 36), recovery=(4, 12),
                     tachycardia=(0, 4), nadir=None, delay=(2, 6), hrise=(2, 6)),
    ("crs", 2): dict(peak=(38.6, 39.6), rise=(1, 3), plateau=(18, 48), recovery=(6, 18),
                     tachycardia=(8, 16), nadir=(92, 94), delay=(2, 8), hrise=(2, 6)),
    ("crs", 3): dict(peak=(39.0, 40.0), rise=(0.75, 2), plateau=(24, 72), recovery=(12, 24),
                     tachycardia=(15, 25), nadir=(88, 91), delay=(2, 6), hrise=(1, 4)),
    ("crs", 4): dict(peak=(39.8, 40.8), rise=(0.5, 1), plateau=(24, 72), recovery=(24, 48),
                     tachycardia=(20, 30), nadir=(80, 86), delay=(0.5, 2), hrise=(0.5, 1.5)),
    ("infection", None): dict(peak=(38.2, 39.4), rise=(0.5, 3), plateau=(12, 48),
                              recovery=(6, 24), tachycardia=(0, 5), nadir=None, delay=(2, 6),
                              hrise=(2, 6)),
}
HR_PER_DEGREE = 10.0  # pulse rises ~10/min per °C of fever (CLINICAL.md)
RIPPLE = 0.1  # fraction of the fever amplitude the plateau dips by, every RIPPLE_PERIOD
RIPPLE_PERIOD = 8 * HOUR
ANTIPYRETIC_ONSET, ANTIPYRETIC_HOLD, ANTIPYRETIC_FADE = 45 * MINUTE, 4 * HOUR, 2 * HOUR
MASK_ONSET = 2 * HOUR


def draw_episode(rng: np.random.Generator, kind: str, grade: int | None, onset: int,
                 baseline: Baseline, **given: object) -> EpisodePlan:
    """An episode with every value the caller did not give drawn from its kind's ranges.
    Always draws the same number of values, so a given value does not shift the others."""
    shape = SHAPES[("crs", grade or 2) if kind == "masked" else
                   (kind, grade if kind == "crs" else None)]
    u = rng.random(9)

    def pick(name: str, i: int) -> float:
        lo, hi = shape[name] or (0.0, 0.0)
        return lo + float(u[i]) * (hi - lo)

    def hours(name: str, i: int) -> int:
        return round(pick(name, i) * HOUR)

    values: dict[str, object] = dict(
        peak=pick("peak", 0), rise=hours("rise", 1), plateau=hours("plateau", 2),
        recovery=hours("recovery", 3), tachycardia=pick("tachycardia", 4),
        spo2_nadir=pick("nadir", 5) if shape["nadir"] else None,
        hypoxia_delay=hours("delay", 6), hypoxia_rise=hours("hrise", 7))
    values.update({k: v for k, v in given.items() if v is not None})
    fever = float(values["peak"]) - baseline.temp  # type: ignore[arg-type]
    if given.get("tachycardia") is None:
        tachy = float(values["tachycardia"])  # type: ignore[arg-type]
        if kind == "crs" and grade == 4:  # rapid deterioration: HR above 130 at the peak
            tachy = max(tachy, 138 - baseline.hr - HR_PER_DEGREE * fever)
        if kind == "masked":  # HR (driven by the unmasked fever) stays above ~105
            tachy = max(tachy, 105 - baseline.hr - HR_PER_DEGREE * fever)
        values["tachycardia"] = tachy
    e = EpisodePlan(kind=kind, grade=grade, onset=onset, **values)  # type: ignore[arg-type]
    if kind == "masked":
        toci = e.tocilizumab if e.tocilizumab is not None else (
            onset + e.rise + round((2 + 4 * float(u[8])) * HOUR))
        # suppress enough that the temperature settles below ~37.6 °C
        depth = e.mask_depth or min(0.95, max(0.6, 1 - (37.6 - baseline.temp) / max(fever, .1)))
        e = replace(e, tocilizumab=toci, mask_depth=depth)
    return e


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def intensity(e: EpisodePlan, t: np.ndarray) -> np.ndarray:
    """0..1: how far the episode is in force (rise, plateau, recovery). Drives tachycardia."""
    up = smoothstep((t - e.onset) / max(e.rise, 1))
    down = smoothstep((t - (e.onset + e.rise + e.plateau)) / max(e.recovery, 1))
    return up * (1 - down)


def fever_weight(e: EpisodePlan, t: np.ndarray) -> np.ndarray:
    """0..1: the fraction of the way from baseline to the peak, with dips during the plateau
    (fevers swing); exactly 1 at the plateau's start and every RIPPLE_PERIOD after."""
    w = intensity(e, t)
    plateau = t - (e.onset + e.rise)
    ripple = RIPPLE * 0.5 * (1 - np.cos(2 * np.pi * plateau / RIPPLE_PERIOD))
    return w * np.where((plateau > 0) & (plateau < e.plateau), 1 - ripple, 1.0)


def antipyretic_drop(e: EpisodePlan, t: np.ndarray) -> np.ndarray:
    """°C taken off the fever by doses: full within 45 min, held for 4 h, gone by 6 h."""
    out = np.zeros(len(t))
    for dose in e.antipyretics:
        dt_ = t - dose
        on = smoothstep(dt_ / ANTIPYRETIC_ONSET)
        off = smoothstep((dt_ - ANTIPYRETIC_HOLD) / ANTIPYRETIC_FADE)
        out = np.maximum(out, np.where(dt_ > 0, on * (1 - off), 0.0))
    return out * e.antipyretic_drop


def masking(e: EpisodePlan, t: np.ndarray) -> np.ndarray:
    """0..mask_depth: the fraction of the fever suppressed by tocilizumab (masked fever)."""
    if e.tocilizumab is None:
        return np.zeros(len(t))
    return e.mask_depth * smoothstep((t - e.tocilizumab) / MASK_ONSET)


def hypoxia(e: EpisodePlan, t: np.ndarray) -> np.ndarray:
    """0..1: how far SpO2 has fallen towards the nadir; recovers with the fever."""
    if e.spo2_nadir is None:
        return np.zeros(len(t))
    up = smoothstep((t - e.onset - e.hypoxia_delay) / max(e.hypoxia_rise, 1))
    down = smoothstep((t - (e.onset + e.rise + e.plateau)) / max(e.recovery, 1))
    return up * (1 - down)


def fever(e: EpisodePlan, baseline: Baseline, t: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weight 0..1 that suppresses the circadian rhythm, °C above baseline after drugs,
    the same without the masking). Tocilizumab masks the temperature, not what drives the
    heart rate, so the pulse follows the unmasked fever: that is what a masked fever is."""
    w = fever_weight(e, t)
    amplitude = (e.peak - baseline.temp) * w
    drop = antipyretic_drop(e, t)
    masked = np.maximum(0.0, amplitude * (1 - masking(e, t)) - drop)
    return w, masked, np.maximum(0.0, amplitude - drop)
