"""One PNG per patient: what the devices sent (temperature, heart rate, SpO2, respiratory rate
when a device reports it) over days since infusion, with the truth's episodes and artefacts
shaded, and the model's core temperature when the plan is at hand.

`Collector` reads the traffic as published (it works the same on a live stream or a traffic
file), keeping a decimated copy of each patient's readings; `draw` renders them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import msgspec
import numpy as np

from simulators.plan import DAY, SECOND, Simulation
from simulators.truth import Truth
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


def draw(collector: Collector, truth: Truth, outdir: Path, sim: Simulation | None = None
         ) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    outdir.mkdir(parents=True, exist_ok=True)
    plans = {p.id: p for p in sim.patients} if sim else {}
    written = []
    for patient in truth.patients:
        day0 = dt.datetime.fromisoformat(patient.infusion).replace(tzinfo=dt.UTC).timestamp() * 1000

        def days(t: np.ndarray | list[int] | int, d0: float = day0) -> np.ndarray:
            return (np.asarray(t, float) - d0) / DAY

        ox = np.array(sorted(collector.ox.get(patient.id, [])), float).reshape(-1, 4)
        temp = np.array(sorted(collector.temp.get(patient.id, [])), float).reshape(-1, 2)
        has_rr = bool(len(ox)) and not np.isnan(ox[:, 3]).all()
        rows = 4 if has_rr else 3
        fig, axes = plt.subplots(rows, 1, figsize=(13, 2.4 * rows + 1), sharex=True)
        ax_t, ax_hr, ax_s = axes[0], axes[1], axes[2]
        device_axes = {d.id: ([ax_t] if d.type == "thermometer" else list(axes[1:]))
                       for d in patient.devices}
        if len(temp):
            # a patch off reads room temperature: mark it at the axis' edge, so that the
            # scale stays on the fever
            low = temp[:, 1] < TEMP_FLOOR
            ax_t.plot(days(temp[~low, 0]), temp[~low, 1], ".", ms=3, color="tab:red",
                      label="measured")
            if low.any():
                ax_t.plot(days(temp[low, 0]), np.full(low.sum(), TEMP_FLOOR + 0.1), "v",
                          ms=3, color="saddlebrown", label=f"below {TEMP_FLOOR:g} °C")
            ax_t.set_ylim(TEMP_FLOOR, max(40.5, float(temp[~low, 1].max(initial=0)) + 0.3))
        if patient.id in plans:
            from simulators.physiology import core_temperature
            grid = np.arange(truth.start, truth.end, 5 * 60_000, dtype=np.int64)
            ax_t.plot(days(grid), core_temperature(plans[patient.id], grid), "-", lw=1,
                      color="black", alpha=0.6, label="core (model)")
        ax_t.axhline(38.0, ls="--", lw=0.8, color="tab:red")
        ax_t.set_ylabel("temperature °C")
        ax_t.legend(loc="upper left", fontsize=7)
        if len(ox):
            x = days(ox[:, 0])
            ax_hr.plot(x, ox[:, 2], "-", lw=0.4, color="tab:green")
            ax_s.plot(x, ox[:, 1], "-", lw=0.4, color="tab:blue")
            if has_rr:
                axes[3].plot(x, ox[:, 3], "-", lw=0.4, color="tab:brown")
                axes[3].set_ylabel("resp. rate /min")
        ax_hr.axhline(130, ls="--", lw=0.8, color="tab:green")
        ax_hr.set_ylabel("heart rate /min")
        for y in (92, 88):
            ax_s.axhline(y, ls="--", lw=0.8, color="tab:blue")
        ax_s.set_ylabel("SpO2 %")

        shown: dict[str, str] = {}
        for e in (e for e in truth.episodes if e.patient == patient.id):
            label = f"{e.kind}" + (f" grade {e.grade}" if e.grade else "")
            colour = EPISODE_COLOURS.get(e.kind, "tab:red")
            for ax in axes:
                ax.axvspan(days(e.start), days(e.end), color=colour, alpha=0.07, lw=0)
            ax_t.annotate(label, (days(e.start), 1), xycoords=("data", "axes fraction"),
                          va="top", fontsize=8, color=colour)
            if e.fever_onset:
                ax_t.axvline(days(e.fever_onset), color=colour, lw=0.8, ls=":")
            for dose in e.antipyretics:
                ax_t.plot(days(dose), 0.96, "v", color="tab:cyan", ms=6,
                          transform=ax_t.get_xaxis_transform())
                shown["antipyretic"] = "tab:cyan"
            if e.tocilizumab:
                ax_t.plot(days(e.tocilizumab), 0.96, "D", color="tab:purple", ms=6,
                          transform=ax_t.get_xaxis_transform())
                shown["tocilizumab"] = "tab:purple"
            shown[label] = colour
        for a in (a for a in truth.artefacts if a.patient == patient.id):
            for ax in device_axes.get(a.device, []):
                if a.kind in ("malformed", "duplicate"):
                    ax.plot(days(a.start), 0.02 if a.kind == "malformed" else 0.06, "|",
                            color="black" if a.kind == "malformed" else "0.5", ms=6,
                            transform=ax.get_xaxis_transform())
                    shown[a.kind] = "black" if a.kind == "malformed" else "0.5"
                elif a.kind in ("low_battery", "clock_skew"):  # long: a bar, not a shade
                    colour = ARTEFACT_COLOURS[a.kind]
                    ax.axvspan(days(a.start), days(a.end), ymin=0.97, color=colour, lw=0)
                    shown[a.kind.replace("_", " ")] = colour
                else:
                    colour = ARTEFACT_COLOURS.get(a.kind, "0.3")
                    ax.axvspan(days(a.start), days(a.end), color=colour, alpha=0.3, lw=0)
                    shown[a.kind.replace("_", " ")] = colour
        fig.legend(handles=[Patch(color=c, label=k, alpha=0.6) for k, c in shown.items()],
                   loc="upper right", ncol=min(len(shown), 6) or 1, fontsize=8)
        axes[-1].set_xlabel("days since infusion")
        axes[-1].set_xlim(days(truth.start), days(truth.end))
        fig.suptitle(f"{patient.id}  {patient.product or ''}  infusion {patient.infusion}  "
                     f"team {patient.team}", x=0.01, ha="left", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        path = outdir / f"{patient.id}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
