"""A seeded cohort: N patients drawn from the products' CRS onset distributions and rates
(CLINICAL.md), with devices that misbehave at realistic rates. The same seed, size, days and
start always give the same cohort; each patient draws from its own seed stream
(`SeedSequence(seed, spawn_key=(i, ...))`), so patient i is the same in a cohort of 10 or 10,000.

Onset (CLINICAL.md; product labels): ide-cel median day 1 (1-23), axi-cel 2 (1-12), tisa-cel 3
(1-51), liso-cel 5 (1-14), cilta-cel 7 (IQR 5-8; range taken as 1-14, since no new CRS started
after day 14 in 475 real-world patients). The onset time in days is a split lognormal around
median + 0.5 (so that the median onset *day* is the median), each side's spread set so that the
range's ends (or the IQR's) are its 1st/99th (25th/75th) percentiles, clipped to the range.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulators import icans
from simulators.plan import DAY, HOUR, SECOND, Simulation, ms
from simulators.scenario import (
    DeviceModel,
    EpisodeModel,
    PatientModel,
    RatesModel,
    ReportsModel,
    ScenarioModel,
    build,
)


@dataclass(frozen=True)
class Product:
    median: int  # onset day
    lo: int
    hi: int
    any_crs: float  # P(any CRS)
    severe: float  # P(grade >= 3)
    iqr: tuple[int, int] | None = None
    weight: float = 0.2  # share of the cohort


# Any CRS and grade >= 3: CLINICAL.md, "CRS and neurotoxicity by product (pivotal trials)",
# the row named beside each product. Onset: the module docstring.
PRODUCTS = {
    "ide-cel": Product(1, 1, 23, 0.84, 0.05, weight=0.15),  # KarMMa: 84 % (5 %)
    "axi-cel": Product(2, 1, 12, 0.93, 0.13, weight=0.30),  # ZUMA-1: 93 % (13 %)
    "tisa-cel": Product(3, 1, 51, 0.58, 0.22, weight=0.15),  # JULIET: 58 % (22 %)
    "liso-cel": Product(5, 1, 14, 0.42, 0.02, weight=0.15),  # TRANSCEND: 42 % (2 %)
    "cilta-cel": Product(7, 1, 14, 0.95, 0.04, iqr=(5, 8), weight=0.25),  # CARTITUDE-1: 95 % (4 %)
}
Z99, Z75 = 2.3263, 0.6745
P_MASKED = 0.3  # of CRS grade >= 2: antipyretics/tocilizumab mask the fever
P_ANTIPYRETIC = 0.5
P_INFECTION = 0.15  # an infection fever later, days 8-30
SITES = (("skin", 0.4, "2m"), ("axillary", 0.45, "5m"), ("oral", 0.1, "10m"),
         ("tympanic", 0.05, "10m"))


def onset_days(product: str, u: np.ndarray) -> np.ndarray:
    """Continuous onset times (days since infusion) for standard normal draws `u`."""
    p = PRODUCTS[product]
    mid = p.median + 0.5
    if p.iqr:
        s_lo = math.log(mid / (p.iqr[0] + 0.5)) / Z75
        s_hi = math.log((p.iqr[1] + 0.5) / mid) / Z75
    else:
        s_lo = math.log(mid / p.lo) / Z99
        s_hi = math.log((p.hi + 1) / mid) / Z99
    c = mid * np.exp(np.where(u < 0, s_lo, s_hi) * u)
    return np.clip(c, p.lo, p.hi + 1 - 1e-6)


def draw_patients(n: int, seed: int, days: float, start: int, ox_interval: int = SECOND,
                  reports: bool = True) -> list[PatientModel]:
    """The cohort as scenario patients (episode onsets relative to `start`); oximeters report
    every `ox_interval` ms (1 s, or e.g. a minute's summary for a light demo). `reports`:
    ICANS episodes and the app's reports (off: the cohort as before them, to compare)."""
    duration = round(days * DAY)
    infusion = dt.datetime.fromtimestamp(start / 1000, dt.UTC).date()  # day 0 = start's date
    day0 = int(dt.datetime.combine(infusion, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    names = list(PRODUCTS)
    weights = np.array([PRODUCTS[k].weight for k in names])
    width = max(4, len(str(n)))
    out = []
    for i in range(n):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i, 3))))
        u = rng.random(16)
        product = names[int(np.searchsorted(np.cumsum(weights) / weights.sum(), u[0]))]
        p = PRODUCTS[product]
        episodes = []
        if u[1] < p.any_crs:
            severe = u[2] < p.severe / p.any_crs
            grade = (4 if u[3] < 0.25 else 3) if severe else (2 if u[3] < 0.4 else 1)
            kind = "masked" if grade >= 2 and u[4] < P_MASKED else "crs"
            onset = day0 + float(onset_days(product, rng.standard_normal(1))[0]) * DAY - start
            doses = int(1 + 3 * u[6]) if u[5] < P_ANTIPYRETIC else 0
            episodes.append(EpisodeModel(kind=kind, grade=grade, onset=ms(onset),
                                         antipyretic_doses=doses,
                                         antipyretic_delay=ms((0.5 + 2.5 * u[7]) * HOUR)))
        crs_day = (float((start + episodes[0].onset - day0) / DAY)
                   if episodes else None)  # before the timeline's cut, as drawn
        neuro = _neuro(np.random.Generator(np.random.PCG64(
            np.random.SeedSequence(seed, spawn_key=(i, 6)))), product, crs_day, day0, start)
        if u[8] < P_INFECTION:
            onset = day0 + (8 + 22 * u[9]) * DAY - start
            if all(abs(onset - e.onset) > 5 * DAY for e in episodes):
                episodes.append(EpisodeModel(kind="infection", onset=ms(onset),
                                             antipyretic_doses=1 if u[10] < 0.5 else 0))
        if reports and neuro[0] is not None:
            episodes.append(neuro[0])
        episodes = [e for e in episodes if 0 <= e.onset < duration]  # in the timeline
        out.append(PatientModel(
            id=f"S{i + 1:0{width}d}", infusion=infusion, product=product,
            team="haem-a" if u[11] < 0.5 else "haem-b", devices=_devices(rng, ox_interval),
            episodes=tuple(episodes), sleep_dips_per_hour=round(2 * u[12], 2),
            reports=neuro[1] if reports else None))
    return out


def _neuro(rng: np.random.Generator, product: str, crs_day: float | None, day0: int,
           start: int) -> tuple[EpisodeModel | None, ReportsModel]:
    """The patient's ICANS episode (if any) and how its caregiver reports, from a stream of
    its own (spawn key (i, 6)): the draws of the vitals stay as they were. Adherence varies
    between caregivers: 5-15 % of single checks and 0-6 % of whole days missed."""
    u = rng.random(4)
    cfg = ReportsModel(missed=round(0.05 + 0.1 * u[0], 3), missed_days=round(0.06 * u[1], 3),
                       checkins_per_day=round(0.4 + 0.4 * u[2], 2),
                       noise=round(0.15 + 0.2 * u[3], 2))
    p = PRODUCTS[product]
    drawn = icans.draw_cohort_episode(rng, product, crs_day, p.any_crs, p.median)
    onset = None if drawn is None else day0 + drawn[1] * DAY - start
    if drawn is None or onset is None or onset < 0:
        return None, cfg
    return EpisodeModel(kind="icans", grade=drawn[0], onset=ms(onset)), cfg


# Home guidance asks for the temperature twice a day: a caregiver's oral spot check every 12 h
# (at a random phase), which calibrates a skin or axillary patch (stream_rules.calibration).
SPOT_CHECK = DeviceModel(id="app-1", type="thermometer", site="oral", interval="12h",
                         manual=True, status=False)


def _devices(rng: np.random.Generator, ox_interval: int
             ) -> tuple[DeviceModel, DeviceModel, DeviceModel]:
    u = rng.random(12)
    cum = np.cumsum([w for _, w, _ in SITES])
    site, _, interval = SITES[int(np.searchsorted(cum, u[0] * cum[-1]))]
    ox = DeviceModel(
        id="ox-1", type="oximeter", interval=f"{ox_interval}ms", rr=bool(u[1] < 0.3),
        clock_skew=ms(rng.normal(0, 5000)),
        battery=round(20 + 80 * u[2]), rates=RatesModel(
            probe_off_per_day=round(1 + 5 * u[3], 2), motion_per_hour=round(0.2 + 1.8 * u[4], 2),
            offline_per_day=round(0.5 * u[5], 2),
            clock_skew_per_day=0.2 if u[6] < 0.1 else 0.0, duplicate=0.0005, malformed=1e-5))
    th = DeviceModel(
        id="th-1", type="thermometer", site=site, interval=interval,
        unit="F" if u[7] < 0.05 else "C", ts_format="rfc3339" if u[8] < 0.25 else "epoch_ms",
        clock_skew=ms(rng.normal(0, 5000)), battery=round(20 + 80 * u[9]),
        rates=RatesModel(
            offline_per_day=round(0.3 * u[10], 2),
            patch_off_per_day=0.15 if site == "skin" else 0.0,
            blanket_per_night=round(0.5 * u[11], 2) if site in ("skin", "axillary") else 0.0,
            duplicate=0.0005, malformed=1e-3))
    return ox, th, SPOT_CHECK


def generate(n: int, seed: int, days: float, start: int, ox_interval: int = SECOND,
             reports: bool = True) -> Simulation:
    model = ScenarioModel(name=f"cohort of {n}", seed=seed, duration=ms(days * DAY),
                          patients=tuple(draw_patients(n, seed, days, start, ox_interval,
                                                       reports)))
    light = "" if ox_interval == SECOND else f", oximetry every {ox_interval / 1000:g} s"
    return build(model, start, seed,
                 source=f"cohort: {n} patients, seed {seed}, {days:g} days{light}")


def write_patients(sim: Simulation, path: Path) -> None:
    """The patients file (CONTRACT section 3) for ingest's VITALS_PATIENTS, devices listed."""
    lines = [f"# {sim.source}: the enrolled patients and their devices (vitals simulate)",
             "patients:"]
    for p in sim.patients:
        product = f", product: {p.product}" if p.product else ""
        devices = ", ".join(d.id for d in p.devices)
        lines.append(f"  - {{id: {p.id}, infusion: {p.infusion.isoformat()}{product}, "
                     f"team: {p.team}, devices: [{devices}]}}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
