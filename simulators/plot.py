"""One PNG per patient: what the devices sent (temperature, heart rate, SpO2, respiratory rate
when a device reports it) over days since infusion, with the truth's episodes and artefacts
shaded, and the model's core temperature when the plan is at hand.

`Collector` reads the traffic as published (it works the same on a live stream or a traffic
file), keeping a decimated copy of each patient's readings; `draw` renders them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from simulators.plan import DAY, SECOND, PatientPlan, Simulation
from simulators.truth import Patient, Truth
from vitals.trafficfile import Message

MAX_POINTS = 40_000  # per patient and series, after decimation
TEMP_FLOOR = 34.5  # °C: the temperature axis starts here


class _Reading(msgspec.Struct):
    ts: int | str
    kind: str
    temp: float | None = None
    unit: str = "C"
    spo2: float | None = None
    hr: float | None = None
    rr: float | None = None


class _Batch(msgspec.Struct):
    readings: list[_Reading]


_single = msgspec.json.Decoder(_Reading).decode
_batch = msgspec.json.Decoder(_Batch).decode


def _ms(ts: int | str) -> int:
    if isinstance(ts, int):
        return ts
    return int(dt.datetime.fromisoformat(ts).timestamp() * 1000)


class Collector:
    def __init__(self, start: int, end: int) -> None:
        # keep one oximetry reading in `step` seconds
        self.step = max(1, (end - start) // SECOND // MAX_POINTS)
        self.temp: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.ox: dict[str, list[tuple[int, float, float, float]]] = defaultdict(list)

    def feed(self, m: Message) -> None:
        parts = m.topic.split("/")
        if len(parts) != 4:  # status messages
            return
        rs = _readings(m.payload)
        pid = parts[2]
        for r in rs:
            try:
                ts = _ms(r.ts)
            except ValueError:
                continue
            if r.kind == "temperature" and r.temp is not None:
                t = r.temp if r.unit != "F" else (r.temp - 32) * 5 / 9
                self.temp[pid].append((ts, t))
            elif r.kind == "oximetry" and (ts // SECOND) % self.step == 0:
                spo2 = np.nan if r.spo2 is None or r.spo2 in (0, 127) else r.spo2
                hr = np.nan if r.hr is None or r.hr in (0, 255) else r.hr
                self.ox[pid].append((ts, spo2, hr, np.nan if r.rr is None else r.rr))


def _readings(payload: bytes) -> list[_Reading]:
    """The readings of a message; a malformed one (or a malformed reading in a batch) is left
    out: the truth marks it with a tick."""
    try:
        if not payload.startswith(b'{"readings"'):
            return [_single(payload)]
        return _batch(payload).readings
    except (msgspec.DecodeError, ValueError):
        pass
    try:
        items = msgspec.json.decode(payload)["readings"]
    except (msgspec.DecodeError, KeyError, TypeError):
        return []
    out = []
    for item in items:
        try:
            out.append(msgspec.convert(item, _Reading))
        except msgspec.ValidationError:
            continue
    return out


ARTEFACT_COLOURS = {"offline": "0.55", "probe_off": "tab:blue", "motion": "tab:orange",
                    "patch_off": "saddlebrown", "blanket": "gold", "clock_skew": "tab:purple",
                    "low_battery": "tab:olive"}
EPISODE_COLOURS = {"crs": "tab:red", "masked": "tab:purple", "infection": "tab:orange"}


@dataclass
class _Figure:
    """One patient's figure: temperature, heart rate and SpO2 panels (and respiratory rate
    when a device reports it) over days since infusion, and the legend's entries so far."""

    figure: Any
    axes: Any
    day0: float  # the infusion, in ms
    shown: dict[str, str] = field(default_factory=dict)

    def days(self, t: np.ndarray | list[int] | int) -> np.ndarray:
        """Times in ms as days since infusion."""
        return (np.asarray(t, float) - self.day0) / DAY


def draw(collector: Collector, truth: Truth, outdir: Path, sim: Simulation | None = None
         ) -> list[Path]:
    """One PNG per patient of the truth in `outdir`; the model's core temperature too when the
    simulation's plan is given. Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")

    outdir.mkdir(parents=True, exist_ok=True)
    plans = {p.id: p for p in sim.patients} if sim else {}
    return [_draw_patient(collector, truth, patient, plans.get(patient.id), outdir)
            for patient in truth.patients]


def _draw_patient(collector: Collector, truth: Truth, patient: Patient,
                  plan: PatientPlan | None, outdir: Path) -> Path:
    """The patient's PNG: the panels, the truth's episodes and artefacts, the legend."""
    import matplotlib.pyplot as plt

    day0 = dt.datetime.fromisoformat(patient.infusion).replace(tzinfo=dt.UTC).timestamp() * 1000
    oximetry = np.array(sorted(collector.ox.get(patient.id, [])), float).reshape(-1, 4)
    temperature = np.array(sorted(collector.temp.get(patient.id, [])), float).reshape(-1, 2)
    has_rr = bool(len(oximetry)) and not np.isnan(oximetry[:, 3]).all()
    rows = 4 if has_rr else 3
    figure, axes = plt.subplots(rows, 1, figsize=(13, 2.4 * rows + 1), sharex=True)
    fig = _Figure(figure, axes, day0)
    _temperature_panel(fig, temperature, truth, plan)
    _oximetry_panels(fig, oximetry, has_rr)
    _episodes(fig, truth, patient.id)
    _artefacts(fig, truth, patient)
    _legend_and_titles(fig, truth, patient)
    path = outdir / f"{patient.id}.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _temperature_panel(fig: _Figure, temperature: np.ndarray, truth: Truth,
                       plan: PatientPlan | None) -> None:
    """What the thermometer measured, the model's core temperature, the 38 °C line."""
    axis = fig.axes[0]
    if len(temperature):
        # a patch off reads room temperature: mark it at the axis' edge, so that the
        # scale stays on the fever
        low = temperature[:, 1] < TEMP_FLOOR
        axis.plot(fig.days(temperature[~low, 0]), temperature[~low, 1], ".", ms=3,
                  color="tab:red", label="measured")
        if low.any():
            axis.plot(fig.days(temperature[low, 0]), np.full(low.sum(), TEMP_FLOOR + 0.1), "v",
                      ms=3, color="saddlebrown", label=f"below {TEMP_FLOOR:g} °C")
        axis.set_ylim(TEMP_FLOOR, max(40.5, float(temperature[~low, 1].max(initial=0)) + 0.3))
    if plan is not None:
        from simulators.physiology import core_temperature
        grid = np.arange(truth.start, truth.end, 5 * 60_000, dtype=np.int64)
        axis.plot(fig.days(grid), core_temperature(plan, grid), "-", lw=1,
                  color="black", alpha=0.6, label="core (model)")
    axis.axhline(38.0, ls="--", lw=0.8, color="tab:red")
    axis.set_ylabel("temperature °C")
    axis.legend(loc="upper left", fontsize=7)


def _oximetry_panels(fig: _Figure, oximetry: np.ndarray, has_rr: bool) -> None:
    """Heart rate, SpO2 and respiratory rate, with the heart rate and SpO2 thresholds."""
    heart_rate, spo2 = fig.axes[1], fig.axes[2]
    if len(oximetry):
        times = fig.days(oximetry[:, 0])
        heart_rate.plot(times, oximetry[:, 2], "-", lw=0.4, color="tab:green")
        spo2.plot(times, oximetry[:, 1], "-", lw=0.4, color="tab:blue")
        if has_rr:
            fig.axes[3].plot(times, oximetry[:, 3], "-", lw=0.4, color="tab:brown")
            fig.axes[3].set_ylabel("resp. rate /min")
    heart_rate.axhline(130, ls="--", lw=0.8, color="tab:green")
    heart_rate.set_ylabel("heart rate /min")
    for y in (92, 88):
        spo2.axhline(y, ls="--", lw=0.8, color="tab:blue")
    spo2.set_ylabel("SpO2 %")


def _episodes(fig: _Figure, truth: Truth, patient_id: str) -> None:
    """The truth's episodes shaded on every panel, labelled, with fever onset and doses."""
    days, temperature, shown = fig.days, fig.axes[0], fig.shown
    for episode in (e for e in truth.episodes if e.patient == patient_id):
        label = f"{episode.kind}" + (f" grade {episode.grade}" if episode.grade else "")
        colour = EPISODE_COLOURS.get(episode.kind, "tab:red")
        for axis in fig.axes:
            axis.axvspan(days(episode.start), days(episode.end), color=colour, alpha=0.07, lw=0)
        temperature.annotate(label, (days(episode.start), 1), xycoords=("data", "axes fraction"),
                             va="top", fontsize=8, color=colour)
        if episode.fever_onset:
            temperature.axvline(days(episode.fever_onset), color=colour, lw=0.8, ls=":")
        for dose in episode.antipyretics:
            temperature.plot(days(dose), 0.96, "v", color="tab:cyan", ms=6,
                             transform=temperature.get_xaxis_transform())
            shown["antipyretic"] = "tab:cyan"
        if episode.tocilizumab:
            temperature.plot(days(episode.tocilizumab), 0.96, "D", color="tab:purple", ms=6,
                             transform=temperature.get_xaxis_transform())
            shown["tocilizumab"] = "tab:purple"
        shown[label] = colour


def _artefacts(fig: _Figure, truth: Truth, patient: Patient) -> None:
    """The truth's device artefacts on the panels of the device they hit: ticks for malformed
    and duplicate messages, a bar for long ones, a shade for the rest."""
    days, shown = fig.days, fig.shown
    device_axes = {d.id: ([fig.axes[0]] if d.type == "thermometer" else list(fig.axes[1:]))
                   for d in patient.devices}
    for artefact in (a for a in truth.artefacts if a.patient == patient.id):
        kind, start, end = artefact.kind, days(artefact.start), days(artefact.end)
        for axis in device_axes.get(artefact.device, []):
            if kind in ("malformed", "duplicate"):
                axis.plot(start, 0.02 if kind == "malformed" else 0.06, "|",
                          color="black" if kind == "malformed" else "0.5", ms=6,
                          transform=axis.get_xaxis_transform())
                shown[kind] = "black" if kind == "malformed" else "0.5"
            elif kind in ("low_battery", "clock_skew"):  # long: a bar, not a shade
                colour = ARTEFACT_COLOURS[kind]
                axis.axvspan(start, end, ymin=0.97, color=colour, lw=0)
                shown[kind.replace("_", " ")] = colour
            else:
                colour = ARTEFACT_COLOURS.get(kind, "0.3")
                axis.axvspan(start, end, color=colour, alpha=0.3, lw=0)
                shown[kind.replace("_", " ")] = colour


def _legend_and_titles(fig: _Figure, truth: Truth, patient: Patient) -> None:
    """The legend of what is shaded and marked, the time axis, the patient's title."""
    from matplotlib.patches import Patch

    shown, axes = fig.shown, fig.axes
    fig.figure.legend(handles=[Patch(color=c, label=k, alpha=0.6) for k, c in shown.items()],
                      loc="upper right", ncol=min(len(shown), 6) or 1, fontsize=8)
    axes[-1].set_xlabel("days since infusion")
    axes[-1].set_xlim(fig.days(truth.start), fig.days(truth.end))
    fig.figure.suptitle(f"{patient.id}  {patient.product or ''}  infusion {patient.infusion}  "
                        f"team {patient.team}", x=0.01, ha="left", fontsize=10)
    fig.figure.tight_layout(rect=(0, 0, 1, 0.95))
