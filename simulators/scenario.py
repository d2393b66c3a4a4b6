"""The scenario file (YAML, validated with pydantic): patients, their devices, what happens to
them and when. Times are durations from the scenario's start (`2d6h`, `90s`). A bad file
stops with one line naming the file and the field, as `vitals.patients` does.
`simulators/README.md` documents the format; `simulators/scenarios/example.yaml` uses all of it.

`build()` turns a scenario into a `Simulation` plan; the cohort generator builds its patients
with the same models, so both go through the same code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulators import draws
from simulators import reports as reports_
from simulators.episodes import draw_episode
from simulators.icans import draw_icans
from simulators.plan import (
    DAY,
    HOUR,
    MINUTE,
    SECOND,
    Baseline,
    DevicePlan,
    PatientPlan,
    Simulation,
    parse_duration,
)
from vitals.configfile import load_model
from vitals.patients import Ident

Duration = Annotated[int, BeforeValidator(parse_duration)]  # milliseconds, may be negative
Span = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]  # a time after the start
Site = Literal["core", "oral", "tympanic", "axillary", "skin"]
WINDOW_KINDS = {"offline": {"oximeter", "thermometer"}, "clock_skew": {"oximeter", "thermometer"},
                "probe_off": {"oximeter"}, "motion": {"oximeter"},
                "patch_off": {"thermometer"}, "blanket": {"thermometer"}}


class _Model(BaseModel):
    # allow_inf_nan=False: `.nan` or `.inf` in a scenario is a typing error, not a value
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


PER_DAY = 1440  # at most one artefact window a minute: more is a typing error


class RatesModel(_Model):
    probe_off_per_day: float = Field(0.0, ge=0, le=PER_DAY)
    motion_per_hour: float = Field(0.0, ge=0, le=60)
    motion_flagged: float = Field(0.5, ge=0, le=1)
    offline_per_day: float = Field(0.0, ge=0, le=PER_DAY)
    patch_off_per_day: float = Field(0.0, ge=0, le=PER_DAY)
    blanket_per_night: float = Field(0.0, ge=0, le=1)
    clock_skew_per_day: float = Field(0.0, ge=0, le=PER_DAY)
    duplicate: float = Field(0.0, ge=0, le=1)
    malformed: float = Field(0.0, ge=0, le=1)


class DeviceModel(_Model):
    id: Ident
    type: Literal["oximeter", "thermometer"]
    interval: Duration | None = None  # oximeter 1s, thermometer 5m
    site: Site | None = None  # thermometer; default axillary
    unit: Literal["C", "F"] = "C"
    ts_format: Literal["epoch_ms", "rfc3339"] = "epoch_ms"
    rr: bool = False  # the oximeter reports respiratory rate
    clock_skew: Annotated[Duration, Field(ge=-DAY, le=DAY)] = 0
    battery: float = Field(100.0, gt=10, le=100)
    drain_per_hour: float | None = Field(None, ge=0, le=50)  # oximeter 4, thermometer 0.5
    buffer: bool = True
    # a person's spot checks (contract flag `manual`): a home thermometer read now and then
    manual: bool = False
    # the gateway sends live readings first on reconnecting, and the buffer this long after
    upload_delay: Annotated[Duration, Field(ge=0, le=DAY)] = 0
    status: bool = True
    site_offset: float | None = Field(None, ge=-3, le=2)
    noise: float | None = Field(None, ge=0, le=3)
    seq_start: int = Field(0, ge=0)
    rates: RatesModel = RatesModel()

    @model_validator(mode="after")
    def _check(self) -> DeviceModel:
        if self.manual and self.type != "thermometer":
            raise ValueError("manual is for thermometers (spot checks)")
        if self.interval is not None and not 100 <= self.interval <= (
                DAY if self.manual else HOUR):
            raise ValueError("interval must be 100ms-1d" if self.manual
                             else "interval must be 100ms-1h")
        if self.type == "oximeter" and (self.site or self.unit != "C"):
            raise ValueError("site and unit are for thermometers")
        if self.type == "thermometer" and self.rr:
            raise ValueError("rr is for oximeters")
        return self


FEVER_ONLY = ("peak", "tachycardia", "spo2_nadir", "hypoxia_delay", "hypoxia_rise",
              "tocilizumab", "mask_depth")


class EpisodeModel(_Model):
    kind: Literal["none", "crs", "infection", "masked", "icans"]
    grade: int | None = Field(None, ge=1, le=4)
    onset: Span = 0
    peak: float | None = Field(None, ge=37.5, le=42.5)
    rise: Span | None = None
    plateau: Span | None = None
    recovery: Span | None = None
    tachycardia: float | None = Field(None, ge=0, le=100)
    spo2_nadir: float | None = Field(None, ge=60, le=99)
    hypoxia_delay: Span | None = None
    hypoxia_rise: Span | None = None
    antipyretics: tuple[Span, ...] = ()  # dose times, from the scenario start
    antipyretic_doses: int = Field(0, ge=0, le=20)  # or: this many, every 6 h ...
    antipyretic_delay: Span = 2 * HOUR  # ... the first this long after the rise
    antipyretic_drop: float = Field(1.0, ge=0, le=3)
    tocilizumab: Span | None = None  # masked: when (default: hours after the rise)
    mask_depth: float | None = Field(None, gt=0, lt=1)
    # icans: the ICE's lowest total (0-9) and whether a seizure happens (grade >= 3);
    # `rise`, `plateau`, `recovery` are the ICE's decline, plateau and recovery
    ice_nadir: int | None = Field(None, ge=0, le=9)
    seizure: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> EpisodeModel:
        if self.kind in ("crs", "icans") and self.grade is None:
            raise ValueError(f"a {self.kind} episode needs a grade (1-4)")
        if self.kind == "icans":
            given = [k for k in FEVER_ONLY if getattr(self, k) is not None] + (
                ["antipyretics"] if self.antipyretics or self.antipyretic_doses else [])
            if given:
                raise ValueError(f"{', '.join(given)}: for fever episodes, not icans")
            if self.seizure and (self.grade or 0) < 3:
                raise ValueError("a seizure makes ICANS grade >= 3")
            return self
        if self.ice_nadir is not None or self.seizure is not None:
            raise ValueError("ice_nadir and seizure are for icans episodes")
        if self.kind in ("infection", "none") and self.grade is not None:
            raise ValueError(f"a grade is for crs or masked episodes, not {self.kind}")
        if self.kind != "masked" and (self.tocilizumab is not None or self.mask_depth):
            raise ValueError("tocilizumab and mask_depth are for masked episodes")
        return self


class EventModel(_Model):
    device: Ident
    kind: Literal["offline", "probe_off", "motion", "patch_off", "blanket", "clock_skew"]
    start: Span
    duration: Span = Field(gt=0)
    value: float | None = Field(None, ge=-50, le=100)  # motion: SpO2 drop; patch_off: room
    # °C; blanket: +°C
    # clock_skew: how far ahead (negative: behind)
    offset: Annotated[Duration, Field(ge=-DAY, le=DAY)] | None = None
    flagged: bool = True  # motion: the device flags it


class ReportsModel(_Model):
    """Reports from the patient's app (simulators/reports.py): neuro checks, symptom
    check-ins and what episodes make people report. Rates are per check or per day."""

    device: Ident = "app-1"  # a listed manual device: the app, sharing its seq
    checks_per_day: int = Field(2, ge=1, le=2)
    check_days: float = Field(14.0, ge=0, le=60)
    missed: float = Field(0.1, ge=0, le=1)
    missed_days: float = Field(0.03, ge=0, le=1)
    checkins_per_day: float = Field(0.6, ge=0, le=3)
    noise: float = Field(0.25, ge=0, le=1)
    episode_reports: float = Field(0.6, ge=0, le=1)
    ice_slip: float = Field(0.005, ge=0, le=1)


class BaselineModel(_Model):
    temp: float | None = Field(None, ge=35.5, le=37.8)
    hr: float | None = Field(None, ge=40, le=120)
    spo2: float | None = Field(None, ge=88, le=100)
    rr: float | None = Field(None, ge=6, le=30)
    circadian: float | None = Field(None, ge=0, le=0.6)  # half the peak-to-trough, °C


class PatientModel(_Model):
    id: Ident
    # a date, or days from the scenario start's date (negative: infused before it)
    infusion: dt.date | Annotated[int, Field(ge=-400, le=400)] = 0
    team: Ident = "haem-a"
    product: str | None = None
    utc_offset: Annotated[Duration, Field(ge=-14 * HOUR, le=14 * HOUR)] = 0
    baseline: BaselineModel = BaselineModel()
    devices: tuple[DeviceModel, ...] = (DeviceModel(id="ox-1", type="oximeter"),
                                        DeviceModel(id="th-1", type="thermometer"))
    episodes: tuple[EpisodeModel, ...] = ()
    events: tuple[EventModel, ...] = ()
    sleep_dips_per_hour: float = Field(0.0, ge=0, le=30)
    reports: ReportsModel | None = None  # none: the patient's app sends no reports

    @model_validator(mode="after")
    def _check(self) -> PatientModel:
        types = {}
        for d in self.devices:
            if d.id in types:
                raise ValueError(f"device {d.id} is listed twice")
            types[d.id] = d.type
        if self.reports is not None and not any(
                d.id == self.reports.device and d.manual for d in self.devices):
            raise ValueError(f"reports come from the app: {self.reports.device} must be a "
                             f"listed manual device")
        for e in self.events:
            if e.device not in types:
                raise ValueError(f"event on device {e.device}, which is not listed")
            if types[e.device] not in WINDOW_KINDS[e.kind]:
                raise ValueError(f"{e.kind} does not happen to a {types[e.device]}")
            if e.kind == "clock_skew" and e.offset is None:
                raise ValueError("a clock_skew event needs an offset")
        return self


class ScenarioModel(_Model):
    name: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    start: dt.datetime | None = None  # default: the command's --start, or now - duration
    duration: Duration
    patients: tuple[PatientModel, ...]

    @model_validator(mode="after")
    def _check(self) -> ScenarioModel:
        if not self.patients:  # here, not min_length: that repeats any patient's error
            raise ValueError("no patients listed")
        if not SECOND <= self.duration <= 400 * DAY:
            raise ValueError("duration must be 1s-400d")
        seen = set()
        for p in self.patients:
            if p.id in seen:
                raise ValueError(f"patient id {p.id} is listed twice")
            seen.add(p.id)
            for e in p.episodes:
                if not 0 <= e.onset < self.duration:
                    raise ValueError(f"patient {p.id}: episode onset is outside the scenario")
        return self


def load_scenario(path: Path) -> ScenarioModel:
    return load_model(ScenarioModel, path, "scenario")


def _rng(ss: np.random.SeedSequence) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(ss))


def build(model: ScenarioModel, start: int, seed: int | None = None, source: str = ""
          ) -> Simulation:
    """The plan of a scenario starting at `start` (epoch ms)."""
    sim = Simulation(start, start + model.duration, model.seed if seed is None else seed, (),
                     source)
    patients = tuple(patient_plan(sim, i, p) for i, p in enumerate(model.patients))
    return Simulation(sim.start, sim.end, sim.seed, patients, source)


def patient_plan(sim: Simulation, index: int, m: PatientModel) -> PatientPlan:
    rng = _rng(sim.seed_for(index, 0))
    u = rng.random(5).tolist()  # baseline draws, all made so that a given value shifts nothing
    given = m.baseline
    base = Baseline(
        temp=given.temp if given.temp is not None else round(36.5 + 0.5 * u[0], 2),
        hr=given.hr if given.hr is not None else round(60 + 25 * u[1], 1),
        spo2=given.spo2 if given.spo2 is not None else round(94 + 5 * u[2], 1),
        rr=given.rr if given.rr is not None else round(12 + 6 * u[3], 1),
        circadian=given.circadian if given.circadian is not None else 0.2 + 0.1 * u[4])
    wander = draws.wander(rng)
    dips = draws.sleep_dips(rng, m.sleep_dips_per_hour, sim.start, sim.end, m.utc_offset)
    start_date = dt.datetime.fromtimestamp(sim.start / 1000, dt.UTC).date()
    infusion = (m.infusion if isinstance(m.infusion, dt.date)
                else start_date + dt.timedelta(days=m.infusion))
    episodes, neuro = [], []
    neuro_rng = _rng(sim.seed_for(index, 4))  # its own stream: the vitals' draws stay put
    for e in m.episodes:
        if e.kind == "icans":
            assert e.grade is not None
            neuro.append(draw_icans(neuro_rng, e.grade, sim.start + e.onset, ice_nadir=e.ice_nadir,
                                    seizure=e.seizure, decline=e.rise, plateau=e.plateau,
                                    recovery=e.recovery))
            continue
        if e.kind == "none":
            continue
        given_e = {k: getattr(e, k) for k in (
            "peak", "rise", "plateau", "recovery", "tachycardia", "spo2_nadir",
            "hypoxia_delay", "hypoxia_rise", "mask_depth")}
        given_e["antipyretic_drop"] = e.antipyretic_drop
        if e.tocilizumab is not None:
            given_e["tocilizumab"] = sim.start + e.tocilizumab
        grade = e.grade if e.grade is not None or e.kind != "masked" else 2
        plan = draw_episode(rng, e.kind, grade, sim.start + e.onset, base, **given_e)
        doses = [sim.start + a for a in e.antipyretics]
        first = plan.onset + plan.rise + e.antipyretic_delay
        doses += [first + k * 6 * HOUR for k in range(e.antipyretic_doses)
                  if first + k * 6 * HOUR < plan.onset + plan.rise + plan.plateau]
        episodes.append(replace(plan, antipyretics=tuple(sorted(doses))))
    devices = tuple(device_plan(sim, index, j, d, m) for j, d in enumerate(m.devices))
    plan = PatientPlan(index=index, id=m.id, infusion=infusion, team=m.team, product=m.product,
                       baseline=base, utc_offset=m.utc_offset, episodes=tuple(episodes),
                       devices=devices, dips=dips, wander=wander, icans=tuple(neuro))
    if m.reports is None:
        return plan
    cfg = reports_.ReportConfig(**m.reports.model_dump(exclude={"device"}))
    planned = reports_.plan(_rng(sim.seed_for(index, 5)), cfg, sim.start, sim.end, plan.day0,
                            m.utc_offset, plan.episodes, plan.icans)
    return replace(plan, reports=planned, report_device=m.reports.device)


def device_plan(sim: Simulation, index: int, j: int, d: DeviceModel, p: PatientModel
                ) -> DevicePlan:
    rng = _rng(sim.seed_for(index, 2, j))
    ox = d.type == "oximeter"
    interval = d.interval or (SECOND if ox else 5 * MINUTE)
    phase = int(rng.integers(0, interval))
    site = None if ox else (d.site or "axillary")
    offset, noise = draws.thermometer_params(rng, site or "axillary")
    bias, ox_noise = float(rng.uniform(-1, 1)), float(rng.uniform(0.6, 1.2))
    rows = draws.device_windows(rng, draws.Rates(**d.rates.model_dump()), d.type, sim.start,
                                sim.end, p.utc_offset)
    for e in p.events:
        if e.device == d.id:
            value = e.value
            if e.kind == "clock_skew":
                value = e.offset
            elif value is None:
                value = {"motion": 8.0, "patch_off": 24.0, "blanket": 0.7}.get(e.kind, 0.0)
            rows.setdefault(e.kind, []).append(
                (sim.start + e.start, min(sim.start + e.start + e.duration, sim.end),
                 float(value or 0.0), e.flagged))
    return DevicePlan(
        id=d.id, type=d.type, interval=interval, phase=phase, site=site, unit=d.unit,
        ts_format=d.ts_format, rr=d.rr, seq_start=d.seq_start, clock_skew=d.clock_skew,
        battery_start=d.battery,
        drain_per_hour=d.drain_per_hour if d.drain_per_hour is not None else (
            4.0 if ox else 0.5),
        buffer=d.buffer, upload_delay=d.upload_delay, manual=d.manual, status=d.status,
        duplicate_rate=d.rates.duplicate, malformed_rate=d.rates.malformed,
        site_offset=0.0 if ox else (d.site_offset if d.site_offset is not None else offset),
        noise=d.noise if d.noise is not None else (ox_noise if ox else noise),
        bias=bias if ox else 0.0,
        windows=draws.finish_windows(rows, sim.end))
