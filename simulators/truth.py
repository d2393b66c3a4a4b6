"""The truth of a simulation: what happened to each patient and each device, written beside
the traffic as JSON (`<traffic>.truth.json`) for `vitals evaluate`. The format is documented
in `simulators/README.md`; all times are epoch ms UTC, temperatures core °C.

    from simulators import truth
    t = truth.load(path)          # -> truth.Truth
    truth.dump(t, path)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from simulators.plan import EpisodePlan, PatientPlan, Simulation
    from simulators.stream import Injected

FORMAT = "vitals-truth/1"
FEVER = 38.0  # CRS fever (ASTCT): fever onset is the first time core >= this
GRID = 30_000  # ms between the model evaluations that find onset, peak, extremes


class Device(msgspec.Struct, omit_defaults=True):
    id: str
    type: str  # oximeter | thermometer
    interval_ms: int
    ts_format: str = "epoch_ms"
    site: str | None = None
    unit: str | None = None
    rr: bool = False
    clock_skew_ms: int = 0
    buffer: bool = True
    manual: bool = False  # a person's spot checks (readings flagged manual)


class Patient(msgspec.Struct, omit_defaults=True):
    id: str
    infusion: str  # YYYY-MM-DD, day 0
    team: str
    product: str | None = None
    max_crs_grade: int = 0  # 0: no CRS in the timeline
    baseline: dict[str, float] = {}  # temp (core °C), hr, spo2, rr, circadian
    devices: list[Device] = []


class Episode(msgspec.Struct, omit_defaults=True):
    patient: str
    kind: str  # crs | infection | masked
    start: int  # the fever starts rising
    end: int  # fully recovered (may be after the simulation's end)
    grade: int | None = None  # ASTCT grade of the CRS (crs, masked); never seen by a wearable
    fever_onset: int | None = None  # first time core >= 38.0 °C
    peak_temp: float = 0.0  # highest core temperature in [start, end]
    max_hr: float = 0.0
    min_spo2: float = 0.0
    antipyretics: list[int] = []  # dose times
    tocilizumab: int | None = None
    # the sustained SpO2 the episode's hypoxia falls to (model, before sleep dips and
    # wander); None: no hypoxia (min_spo2 may still dip, from sleep)
    spo2_nadir: float | None = None


class Artefact(msgspec.Struct, omit_defaults=True):
    """Something a device did that is not physiology. `value` by kind: motion: SpO2 drop
    (points); patch_off: room °C; blanket: +°C; clock_skew: ms ahead (negative: behind)."""

    patient: str
    device: str
    kind: str  # offline probe_off motion patch_off blanket clock_skew low_battery
    start: int  #   malformed duplicate
    end: int  # malformed: publish time; duplicate: the second publish
    value: float | None = None
    flagged: bool | None = None  # motion: whether the device flagged it
    seq: int | None = None  # malformed, duplicate: the reading's (first) seq
    detail: str = ""


class Dip(msgspec.Struct):
    """A short physiological desaturation (sleep): real, but not an episode."""

    patient: str
    start: int
    end: int
    depth: float


class Icans(msgspec.Struct, omit_defaults=True):
    """An ICANS episode: the ICE screen falls from 10 at `start` to `worst_ice`, and is back
    at 10 by `end` (may be after the simulation's end)."""

    patient: str
    grade: int  # ASTCT ICANS grade; never stated by a page (a home screen is not a clinician's)
    start: int
    end: int
    worst_ice: int
    worst_at: int  # when the ICE reaches its lowest (the plateau's start)
    seizure: int | None = None  # when a seizure happened


class Report(msgspec.Struct, omit_defaults=True):
    """A report the patient's app sent (or a planned neuro check nobody did: `missed`).
    `why`: check (a routine neuro check), checkin (a symptom check-in with nothing new),
    noise (a symptom that is nothing: headache, fatigue, nausea ...), fever (what a fever
    episode made them report), icans (ICANS signs, or an ICE below 10 in an episode), seizure,
    ice_slip (an ICE of 9 without ICANS: a counting slip)."""

    patient: str
    device: str
    at: int  # true time (the app's `ts` less its clock skew)
    kind: str  # symptoms | neuro_check
    why: str
    by: str = ""
    symptoms: list[str] = []
    ice_total: int | None = None
    missed: bool = False


class Truth(msgspec.Struct, omit_defaults=True):
    format: str
    source: str
    seed: int
    start: int
    end: int
    patients: list[Patient] = []
    episodes: list[Episode] = []
    artefacts: list[Artefact] = []
    dips: list[Dip] = []
    icans: list[Icans] = []
    reports: list[Report] = []


_decode = msgspec.json.Decoder(Truth).decode


def load(path: Path) -> Truth:
    t = _decode(Path(path).read_bytes())
    if t.format != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} truth file ({t.format})")
    return t


def dump(truth: Truth, path: Path) -> None:
    Path(path).write_bytes(msgspec.json.format(msgspec.json.encode(truth), indent=1) + b"\n")


def build(sim: Simulation, injected: list[Injected]) -> Truth:
    """The truth of a plan, plus the message-level faults found while generating it."""
    episodes, artefacts, patients, dips = [], [], [], []
    neuro, reports = [], []
    for p in sim.patients:
        neuro += [Icans(p.id, e.grade, e.onset, e.end, e.ice_nadir, e.onset + e.decline,
                        e.seizure) for e in p.icans]
        reports += [Report(p.id, p.report_device or "", r.at, r.kind, r.why, r.by,
                           list(r.symptoms), None if r.ice is None else sum(r.ice), r.missed)
                    for r in p.reports]
        eps = [_episode(p, e) for e in p.episodes]
        episodes += eps
        patients.append(_patient(p, max((e.grade or 0 for e in eps if e.kind != "infection"),
                                        default=0)))
        artefacts += _windows(sim, p)
        dips += [Dip(p.id, s, e, round(v, 2)) for s, e, v, _ in p.dips.rows()]
    artefacts += [Artefact(i.patient, i.device, i.kind, i.start, i.end, seq=i.seq,
                           detail=i.detail) for i in injected]
    artefacts.sort(key=lambda a: (a.patient, a.device, a.start, a.kind, a.seq or 0, a.end))
    return Truth(FORMAT, sim.source, sim.seed, sim.start, sim.end, patients, episodes,
                 artefacts, dips, neuro, reports)


def _patient(p: PatientPlan, grade: int) -> Patient:
    b = p.baseline
    devices = [Device(d.id, d.type, d.interval, d.ts_format, d.site,
                      d.unit if d.type == "thermometer" else None, d.rr, d.clock_skew, d.buffer,
                      d.manual)
               for d in p.devices]
    return Patient(p.id, p.infusion.isoformat(), p.team, p.product, grade,
                   {"temp": float(b.temp), "hr": float(b.hr), "spo2": float(b.spo2),
                    "rr": float(b.rr), "circadian": round(float(b.circadian), 3)}, devices)


def _episode(p: PatientPlan, e: EpisodePlan) -> Episode:
    import numpy as np

    from simulators import physiology

    t = np.arange(e.onset, e.end + GRID, GRID, dtype=np.int64)
    v = physiology.vitals(p, t)
    hot = np.flatnonzero(v.temp >= FEVER)
    return Episode(p.id, e.kind, e.onset, e.end, e.grade,
                   int(t[hot[0]]) if len(hot) else None, round(float(v.temp.max()), 2),
                   round(float(v.hr.max()), 1), round(float(v.spo2.min()), 1),
                   list(e.antipyretics), e.tocilizumab,
                   None if e.spo2_nadir is None else round(float(e.spo2_nadir), 1))


def _windows(sim: Simulation, p: PatientPlan) -> list[Artefact]:
    out = []
    for d in p.devices:
        if d.clock_skew:
            out.append(Artefact(p.id, d.id, "clock_skew", sim.start, sim.end,
                                value=float(d.clock_skew)))
        for kind, w in sorted(d.windows.items()):
            for s, e, v, f in w.rows():
                a = Artefact(p.id, d.id, kind, s, e)
                if kind == "motion":
                    a.value, a.flagged = round(v, 2), f
                elif kind in ("patch_off", "blanket"):
                    a.value = round(v, 2)
                elif kind == "clock_skew":
                    a.value = float(d.clock_skew + v)
                elif kind == "offline":
                    a.detail = ("lost (no buffer)" if not d.buffer else
                                "uploaded on reconnect" if not d.upload_delay else
                                f"uploaded {d.upload_delay // 1000} s after live readings resumed")
                out.append(a)
        out += [Artefact(p.id, d.id, "low_battery", s, e)
                for s, e in low_battery(sim, d.battery_start, d.drain_per_hour)]
    return out


def low_battery(sim: Simulation, start_level: float, drain_per_hour: float
                ) -> list[tuple[int, int]]:
    """Windows with battery < 15 % under the devices' model: level = floor(100.5 - x), where
    x = (100 - start + drain * hours) mod 90 (recharged to 100 at 10 %); low when x > 85.5."""
    a = 100 - start_level
    if drain_per_hour <= 0:
        return [(sim.start, sim.end)] if a % 90 > 85.5 else []
    out, k = [], int((a - 90) // 90)
    hour = 3_600_000
    while True:
        lo = sim.start + (85.5 + 90 * k - a) / drain_per_hour * hour
        hi = sim.start + (90 + 90 * k - a) / drain_per_hour * hour
        if lo >= sim.end:
            return out
        if hi > sim.start:
            out.append((max(sim.start, int(lo)), min(sim.end, int(hi))))
        k += 1
