"""The models do what the scenario says: fever peaks, antipyretics, HR coupling, masked fever,
SpO2 falls by CRS grade, the circadian rhythm."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulators import physiology
from tests.simulators.helpers import HOUR, MIN, START, live_series, run, sim_of

FEVER = """
seed: 3
duration: 1d
patients:
  - id: F1
    baseline: {temp: 36.8, hr: 70, spo2: 97, rr: 14}
    devices:
      - {id: ox-1, type: oximeter, interval: 5s}
      - {id: core-1, type: thermometer, interval: 1m, site: core}
      - {id: ax-1, type: thermometer, interval: 1m, site: axillary, site_offset: -0.5}
    episodes:
      - {kind: crs, grade: 1, onset: 2h, peak: 39.4, rise: 2h, plateau: 12h, recovery: 4h,
         tachycardia: 0}
"""


def test_a_fever_reaches_its_configured_peak_in_core_and_measured_temperature() -> None:
    r = run(sim_of(FEVER))
    (episode,) = r.truth.episodes
    assert abs(episode.peak_temp - 39.4) < 0.05  # the model's core
    plateau = (START + 4 * HOUR, START + 16 * HOUR)
    t, core = live_series(r, "F1", "core-1", "temp")
    at_peak = core[(t >= plateau[0]) & (t < plateau[1])]
    assert abs(at_peak.max() - 39.4) < 0.2  # a core thermometer: noise sd 0.04
    assert abs(np.median(at_peak) - 39.4) < 0.3  # the plateau dips by up to 10 %
    ta, ax = live_series(r, "F1", "ax-1", "temp")
    both = np.intersect1d(t // MIN, ta // MIN)  # readings of the same minute
    offset = ax[np.isin(ta // MIN, both)] - core[np.isin(t // MIN, both)]
    assert abs(np.mean(offset) + 0.5) < 0.03  # the axillary site reads 0.5 lower, noisier
    # before the episode: baseline with the circadian rhythm, well below 38
    assert core[t < START + 2 * HOUR].max() < 37.3
    assert episode.fever_onset is not None and START + 2 * HOUR < episode.fever_onset < (
        START + 4 * HOUR)


def test_an_antipyretic_dose_lowers_the_temperature_by_about_a_degree_for_hours() -> None:
    sim = sim_of(FEVER)
    p = sim.patients[0]
    dose = START + 8 * HOUR
    dosed = replace(p, episodes=(replace(p.episodes[0], antipyretics=(dose,)),))
    t = np.arange(START, START + 24 * HOUR, MIN, dtype=np.int64)
    drop = physiology.core_temperature(p, t) - physiology.core_temperature(dosed, t)
    assert np.allclose(drop[t < dose], 0)
    held = (t >= dose + HOUR) & (t < dose + 4 * HOUR)
    assert np.all(np.abs(drop[held] - 1.0) < 0.05)  # ~1 °C for 4-6 h
    assert np.allclose(drop[t >= dose + 6 * HOUR], 0)
    # the pulse follows the temperature down
    hr = physiology.vitals(p, t).hr - physiology.vitals(dosed, t).hr
    assert np.all(np.abs(hr[held] - 10) < 0.5)


def test_heart_rate_follows_temperature_by_about_ten_per_degree() -> None:
    r = run(sim_of(FEVER))
    p = r.sim.patients[0]
    t = np.arange(START, START + 24 * HOUR, MIN, dtype=np.int64)
    v = physiology.vitals(p, t)
    assert 9.0 < np.polyfit(v.temp, v.hr, 1)[0] < 11.0  # the model, with its wander
    # what the devices measured: minute means of pulse against the core thermometer
    tt, temp = live_series(r, "F1", "core-1", "temp")
    th, hr = live_series(r, "F1", "ox-1", "hr")
    minute_hr = np.array([hr[(th >= a) & (th < a + MIN)].mean() for a in tt])
    assert 8.5 < np.polyfit(temp, minute_hr, 1)[0] < 11.5


MASKED = """
seed: 4
duration: 2d
patients:
  - id: M1
    baseline: {temp: 36.8, hr: 68, spo2: 97, rr: 14}
    devices:
      - {id: ox-1, type: oximeter, interval: 5s}
      - {id: th-1, type: thermometer, interval: 2m, site: core}
    episodes:
      - {kind: masked, grade: 2, onset: 2h, peak: 39.6, rise: 2h, plateau: 30h,
         recovery: 6h, tocilizumab: 6h}
"""


def test_a_masked_fever_keeps_the_heart_rate_high_while_the_temperature_is_below_38() -> None:
    r = run(sim_of(MASKED))
    (episode,) = r.truth.episodes
    assert episode.kind == "masked" and episode.grade == 2 and episode.peak_temp > 39.5
    masked = (START + 9 * HOUR, START + 34 * HOUR)  # tocilizumab + 3 h to the plateau's end
    t, temp = live_series(r, "M1", "th-1", "temp")
    assert temp[(t >= masked[0]) & (t < masked[1])].max() < 38.0
    th, hr = live_series(r, "M1", "ox-1", "hr")
    during = hr[(th >= masked[0]) & (th < masked[1])]
    assert np.median(during) > 100 and np.percentile(during, 5) > 95
    before = hr[th < START + 2 * HOUR]
    assert np.median(during) - np.median(before) > 30


GRADES = """
seed: 5
duration: 2d
patients:
  - id: G3
    baseline: {temp: 36.8, hr: 72, spo2: 97, rr: 14}
    devices: [{id: ox-1, type: oximeter, interval: 5s, rr: true}]
    episodes:
      - {kind: crs, grade: 3, onset: 2h, peak: 39.5, rise: 1h, plateau: 30h, spo2_nadir: 89,
         hypoxia_delay: 2h, hypoxia_rise: 2h}
  - id: G4
    baseline: {temp: 36.8, hr: 72, spo2: 97, rr: 14}
    devices: [{id: ox-1, type: oximeter, interval: 5s, rr: true}]
    episodes:
      - {kind: crs, grade: 4, onset: 2h, plateau: 30h}
"""


def test_crs_grade_3_and_4_saturation_falls_as_configured() -> None:
    r = run(sim_of(GRADES))
    full = (START + 8 * HOUR, START + 30 * HOUR)  # hypoxia fully in force
    t, spo2 = live_series(r, "G3", "ox-1", "spo2")
    s3 = spo2[(t >= full[0]) & (t < full[1])]
    assert abs(np.median(s3) - 89) <= 1.5  # measured: + the device's bias (+-1) and noise
    g4 = next(e for e in r.truth.episodes if e.patient == "G4")
    assert g4.grade == 4 and g4.peak_temp >= 39.8 and g4.max_hr > 130 and g4.min_spo2 < 88
    t, spo2 = live_series(r, "G4", "ox-1", "spo2")
    assert np.median(spo2[(t >= full[0]) & (t < full[1])]) < 88
    t, hr = live_series(r, "G4", "ox-1", "hr")
    assert np.median(hr[(t >= full[0]) & (t < full[1])]) > 125
    t, rr = live_series(r, "G4", "ox-1", "rr")
    assert np.median(rr[(t >= full[0]) & (t < full[1])]) > 22  # breathing faster
    before = spo2[t < START + 2 * HOUR]
    assert np.median(before) > 94


def test_the_circadian_rhythm_is_low_at_4_and_high_at_18_local_time() -> None:
    sim = sim_of("""
duration: 2d
patients:
  - {id: C1, utc_offset: 2h, baseline: {temp: 36.8, circadian: 0.25}}
""")
    p = sim.patients[0]
    t = np.arange(START, START + 48 * HOUR, MIN, dtype=np.int64)
    local_hour = ((t + 2 * HOUR) % (24 * HOUR)) / HOUR
    rhythm = physiology.circadian(p, t)
    assert np.all(np.abs(local_hour[rhythm < -0.999] - 4) < 0.5)
    assert np.all(np.abs(local_hour[rhythm > 0.999] - 18) < 0.5)
    temp = physiology.core_temperature(p, t)  # with the slow wander on top
    low = temp[np.abs(local_hour - 4) < 1].mean()
    high = temp[np.abs(local_hour - 18) < 1].mean()
    assert 0.4 < high - low < 0.55  # ~0.5 °C peak to trough
