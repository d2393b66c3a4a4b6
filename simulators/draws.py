"""Plan-time random draws shared by scenario files and the cohort generator: artefact windows
from per-device rates, a patient's slow wander and sleep dips, a device's measurement
parameters. Each caller passes a generator seeded for that patient or device alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.plan import DAY, HOUR, MINUTE, SECOND, Windows

# thermometer sites: (mean offset from core °C, its spread between people, noise sd °C)
SITES = {
    "core": (0.0, 0.0, 0.04),
    "oral": (-0.25, 0.1, 0.08),
    "tympanic": (-0.1, 0.15, 0.12),
    "axillary": (-0.5, 0.2, 0.12),
    "skin": (-0.6, 0.3, 0.18),
}
MOTION_HR_PER_SPO2 = 2.5  # a motion artefact's pulse spike per point of its SpO2 drop
WILL_DELAY = 90 * SECOND  # broker notices a silent device after 1.5 x a 60 s keepalive


@dataclass(frozen=True)
class Rates:
    """How often a device misbehaves. Window kinds are per day (motion per awake hour,
    blanket per night); duplicate and malformed are probabilities per message/reading."""

    probe_off_per_day: float = 0.0
    motion_per_hour: float = 0.0
    motion_flagged: float = 0.5  # the fraction of motion artefacts the device flags
    offline_per_day: float = 0.0
    patch_off_per_day: float = 0.0
    blanket_per_night: float = 0.0
    clock_skew_per_day: float = 0.0  # windows with the clock 6-60 min ahead (ingest rejects)
    duplicate: float = 0.0
    malformed: float = 0.0


def _lognormal(rng: np.random.Generator, n: int, median: float, sigma: float, lo: float,
               hi: float) -> np.ndarray:
    return np.clip(median * np.exp(sigma * rng.standard_normal(n)), lo, hi)


def _uniform_times(rng: np.random.Generator, rate_per_ms: float, start: int, end: int
                   ) -> np.ndarray:
    n = rng.poisson(rate_per_ms * max(end - start, 0))
    return np.sort(rng.integers(start, max(end, start + 1), n))


def merge(rows: list[tuple[int, int, float, bool]]) -> list[tuple[int, int, float, bool]]:
    """Overlapping windows of one kind become one (the first one's value)."""
    out: list[tuple[int, int, float, bool]] = []
    for s, e, v, f in sorted(rows):
        if out and s <= out[-1][1]:
            ps, pe, pv, pf = out[-1]
            out[-1] = (ps, max(pe, e), pv, pf)
        else:
            out.append((s, e, v, f))
    return out


def device_windows(rng: np.random.Generator, rates: Rates, device_type: str, start: int,
                   end: int, utc_offset: int) -> dict[str, list[tuple[int, int, float, bool]]]:
    """Windows drawn from the rates over [start, end), by kind (unmerged)."""
    out: dict[str, list[tuple[int, int, float, bool]]] = {}

    def add(kind: str, times: np.ndarray, durations: np.ndarray, values: np.ndarray,
            flags: np.ndarray | None = None) -> None:
        fl = np.zeros(len(times), bool) if flags is None else flags
        out.setdefault(kind, []).extend(
            (int(t), min(int(t + d), end), float(v), bool(f))
            for t, d, v, f in zip(times, durations, values, fl, strict=True))

    # every kind draws even at rate 0, so a rate set on one kind does not shift the others
    t = _uniform_times(rng, rates.offline_per_day / DAY, start, end)
    add("offline", t, _lognormal(rng, len(t), 40 * MINUTE, 1.2, 2 * MINUTE, 12 * HOUR),
        np.zeros(len(t)))
    t = _uniform_times(rng, rates.clock_skew_per_day / DAY, start, end)
    add("clock_skew", t, _lognormal(rng, len(t), 4 * HOUR, 0.8, 30 * MINUTE, DAY),
        np.round(rng.uniform(6, 60, len(t))) * MINUTE)
    if device_type == "oximeter":
        t = _uniform_times(rng, rates.probe_off_per_day / DAY, start, end)
        add("probe_off", t, _lognormal(rng, len(t), 90 * SECOND, 1.0, 10 * SECOND, HOUR),
            np.zeros(len(t)))
        # motion happens while awake: draw over all hours, keep those at 07-23 h
        t = _uniform_times(rng, rates.motion_per_hour / HOUR, start, end)
        d = _lognormal(rng, len(t), 20 * SECOND, 0.6, 4 * SECOND, 2 * MINUTE)
        depth = rng.uniform(3, 15, len(t))
        flagged = rng.random(len(t)) < rates.motion_flagged
        hours = ((t + utc_offset) % DAY) / HOUR
        keep = (hours >= 7) & (hours < 23)
        add("motion", t[keep], d[keep], depth[keep], flagged[keep])
    else:
        t = _uniform_times(rng, rates.patch_off_per_day / DAY, start, end)
        add("patch_off", t, _lognormal(rng, len(t), 2 * HOUR, 0.8, 20 * MINUTE, 10 * HOUR),
            rng.uniform(22, 27, len(t)))
        nights = np.arange(start - (start + utc_offset) % DAY, end, DAY)  # local midnights
        has = rng.random(len(nights)) < rates.blanket_per_night
        t = nights[has] + rng.integers(-2 * HOUR, 2 * HOUR, int(has.sum()))  # 22:00-02:00
        keep = (t >= start) & (t < end)
        d = _lognormal(rng, len(t), 2.5 * HOUR, 0.4, 30 * MINUTE, 6 * HOUR)
        add("blanket", t[keep], d[keep], rng.uniform(0.5, 0.9, len(t))[keep])
    return out


def finish_windows(rows: dict[str, list[tuple[int, int, float, bool]]], end: int
                   ) -> dict[str, Windows]:
    """Windows per kind, merged where they must not overlap; an offline device reconnects at
    the latest just before the end, so its buffer is uploaded within the timeline."""
    out = {}
    for kind, r in rows.items():
        if kind == "offline":
            r = [(s, min(e, end - 1), v, f) for s, e, v, f in r if s < end - 1]
        out[kind] = Windows.of(r if kind == "motion" else merge(r))
    return out


def wander(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Slow deterministic variation (sums of sines): amplitude, period ms, phase."""
    def rows(amps: list[float], periods_min: list[float]) -> np.ndarray:
        p = np.array(periods_min) * MINUTE * rng.uniform(0.8, 1.25, len(periods_min))
        return np.column_stack([amps, p, rng.uniform(0, 2 * np.pi, len(amps))])

    return {"temp": rows([0.04, 0.03], [90, 420]),
            "hr": rows([1.5, 1.5, 1.0], [6, 40, 180]),
            "spo2": rows([0.3, 0.2], [10, 120])}


def sleep_dips(rng: np.random.Generator, per_night_hour: float, start: int, end: int,
               utc_offset: int) -> Windows:
    """Short desaturations while asleep (23-07 h local): 3-7 points for 20-90 s."""
    t = _uniform_times(rng, per_night_hour / HOUR, start, end)  # kept: the night hours
    d = rng.uniform(20, 90, len(t)) * SECOND
    depth = rng.uniform(3, 7, len(t))
    hours = ((t + utc_offset) % DAY) / HOUR
    keep = (hours >= 23) | (hours < 7)
    return Windows.of([(int(a), int(a + b), float(c), False)
                       for a, b, c in zip(t[keep], d[keep], depth[keep], strict=True)])


def thermometer_params(rng: np.random.Generator, site: str) -> tuple[float, float]:
    """(offset from core °C, noise sd °C) of one person's thermometer at `site`."""
    mean, spread, sd = SITES[site]
    return mean + spread * float(rng.standard_normal()), sd
