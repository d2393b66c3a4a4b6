"""The resolved plan of a simulation: who the patients are, what will happen to them and to
their devices, with every time absolute (epoch ms UTC). A scenario file and the cohort
generator both produce one; physiology, devices and the truth only read it.

Everything random about a patient is drawn into the plan up front (episodes, artefact windows)
except the per-sample noise, which each device draws from its own seeded streams in sample
order, so that the output does not depend on how the timeline is cut into chunks.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_UNITS = {"ms": 1, "s": SECOND, "m": MINUTE, "min": MINUTE, "h": HOUR, "d": DAY}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|min|s|m|h|d)")


MAX_DURATION = 1000 * DAY  # longer than any scenario: larger values are typing errors


def parse_duration(value: object) -> int:
    """`2d6h`, `90s`, `1h30m`, `500ms`, `-30s` (or a number of seconds) -> milliseconds,
    finite and within +-MAX_DURATION (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 2d6h or 90s, got {value!r}")
    if isinstance(value, int | float):
        if not abs(value) * SECOND <= MAX_DURATION:  # also NaN
            raise ValueError(f"a duration must be finite and within 1000d, got {value!r}")
        return round(value * SECOND)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 2d6h or 90s, got {value!r}")
    text = value.strip().replace(" ", "")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for m in _PART.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError(f"expected a duration such as 2d6h or 90s, got {value!r}")
    if total > MAX_DURATION:
        raise ValueError(f"a duration must be within 1000d, got {value!r}")
    return sign * round(total)


def ms(value: float) -> str:
    """Milliseconds as a duration string: a bare number in a scenario means seconds."""
    return f"{round(value)}ms"


def format_duration(ms: int) -> str:
    """The inverse of `parse_duration`, for messages and files."""
    sign, ms = ("-" if ms < 0 else ""), abs(ms)
    parts = []
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND), ("ms", 1)):
        if ms >= size or (unit == "ms" and not parts):
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return sign + "".join(parts)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Windows:
    """Artefact windows of one kind on one device: [start, end) in epoch ms, with a value each
    (a depth, an offset, a temperature) and a flag (for motion: whether the device flags it)."""

    start: np.ndarray
    end: np.ndarray
    value: np.ndarray
    flag: np.ndarray

    @staticmethod
    def empty() -> Windows:
        z = np.zeros(0, np.int64)
        return Windows(z, z, np.zeros(0), np.zeros(0, bool))

    @staticmethod
    def of(rows: list[tuple[int, int, float, bool]]) -> Windows:
        rows = sorted(rows)
        if not rows:
            return Windows.empty()
        s, e, v, f = zip(*rows, strict=True)
        return Windows(np.array(s, np.int64), np.array(e, np.int64), np.array(v, float),
                       np.array(f, bool))

    def __len__(self) -> int:
        return len(self.start)

    def rows(self) -> list[tuple[int, int, float, bool]]:
        return list(zip(self.start.tolist(), self.end.tolist(), self.value.tolist(),
                        self.flag.tolist(), strict=True))

    def overlapping(self, lo: int, hi: int) -> np.ndarray:
        """Indices of the windows that intersect [lo, hi)."""
        return np.flatnonzero((self.start < hi) & (self.end > lo))

    def index_at(self, t: np.ndarray) -> np.ndarray:
        """For each time, the index of the (non-overlapping) window holding it, or -1."""
        i = np.searchsorted(self.start, t, side="right") - 1
        inside = (i >= 0) & (t < self.end[np.maximum(i, 0)]) if len(self) else np.zeros(
            len(t), bool)
        return np.where(inside, i, -1)


@dataclass(frozen=True)
class EpisodePlan:
    """One fever episode; times absolute. `grade` is the ASTCT grade of a CRS (or of the CRS
    under a masked fever), None for an infection."""

    kind: str  # crs | infection | masked
    grade: int | None
    onset: int  # the fever starts rising
    rise: int
    plateau: int
    recovery: int
    peak: float  # core temperature at the plateau, °C
    tachycardia: float  # heart rate beyond the ~10/min per °C of fever, at full intensity
    spo2_nadir: float | None  # SpO2 at full hypoxia (None: no fall)
    hypoxia_delay: int  # from onset to the start of the SpO2 fall
    hypoxia_rise: int
    antipyretics: tuple[int, ...] = ()
    antipyretic_drop: float = 1.0  # °C
    tocilizumab: int | None = None  # masked: from here the fever is suppressed, HR is not
    mask_depth: float = 0.0  # fraction of the fever suppressed

    @property
    def end(self) -> int:
        return self.onset + self.rise + self.plateau + self.recovery


@dataclass(frozen=True)
class IcansPlan:
    """One ICANS episode (CLINICAL.md, "ICANS and the ICE screen"); times absolute. The ICE
    falls from 10 to `ice_nadir` over `decline`, stays there for `plateau` and is back at 10
    after `recovery`. `seizure`: when one happens (grade >= 3 only), else None."""

    grade: int  # ASTCT ICANS grade 1-4: recorded in the truth, never stated by a page
    onset: int  # the first sign (the ICE starts to fall)
    decline: int
    plateau: int
    recovery: int
    ice_nadir: int  # 0-9
    seizure: int | None = None
    tremor: bool = False  # whether this episode shows a tremor

    @property
    def end(self) -> int:
        return self.onset + self.decline + self.plateau + self.recovery


@dataclass(frozen=True)
class Report:
    """A report the patient's app sends (CONTRACT section 6), planned: `at` is true time."""

    at: int
    kind: str  # symptoms | neuro_check
    by: str  # patient | caregiver
    why: str  # the truth: check, checkin, noise, fever, icans, seizure, ice_slip
    symptoms: tuple[str, ...] = ()
    ice: tuple[int, int, int, int, int] | None = None  # orientation naming commands writing
    #                                                    attention
    note: str | None = None
    missed: bool = False  # a planned neuro check nobody did: in the truth, never sent


@dataclass(frozen=True)
class DevicePlan:
    id: str
    type: str  # oximeter | thermometer
    interval: int  # ms between samples
    phase: int  # first sample at start + phase
    site: str | None = None  # thermometer: core, oral, tympanic, axillary, skin
    unit: str = "C"
    ts_format: str = "epoch_ms"  # or rfc3339
    rr: bool = False  # the oximeter reports respiratory rate
    seq_start: int = 0
    clock_skew: int = 0  # ms the device clock is ahead of true time (negative: behind)
    battery_start: float = 100.0
    drain_per_hour: float = 1.0  # %/h; recharged to 100 when it reaches 10
    buffer: bool = True  # stores readings while offline and uploads them on reconnect
    upload_delay: int = 0  # ms after reconnecting: live readings go first, the buffer after
    manual: bool = False  # a person's spot checks: every reading carries the flag `manual`
    status: bool = True  # publishes online status and has an offline last will
    duplicate_rate: float = 0.0  # per message: published twice (QoS 1 redelivery)
    malformed_rate: float = 0.0  # per reading: the payload is broken
    site_offset: float = 0.0  # thermometer: reads this much off core (°C)
    noise: float = 0.1  # thermometer noise sd (°C); oximeter SpO2 noise sd (%)
    bias: float = 0.0  # oximeter SpO2 bias (%)
    # artefact windows by kind: offline, probe_off, motion, patch_off, blanket, clock_skew
    windows: dict[str, Windows] = field(default_factory=dict)

    def w(self, kind: str) -> Windows:
        return self.windows.get(kind) or Windows.empty()


@dataclass(frozen=True)
class Baseline:
    temp: float = 36.8  # core, °C, daily mean
    hr: float = 72.0
    spo2: float = 97.0
    rr: float = 15.0
    circadian: float = 0.25  # half the peak-to-trough of core temperature, °C


@dataclass(frozen=True)
class PatientPlan:
    index: int  # position in the simulation: seeds its device streams
    id: str
    infusion: dt.date
    team: str
    product: str | None
    baseline: Baseline
    utc_offset: int = 0  # ms: local time for the circadian rhythm and RFC 3339 clocks
    episodes: tuple[EpisodePlan, ...] = ()
    devices: tuple[DevicePlan, ...] = ()
    # physiological SpO2 dips (sleep), not artefacts: start, end, depth
    dips: Windows = field(default_factory=Windows.empty)
    # slow deterministic wander: (amplitude, period ms, phase rad) rows for temp, hr, spo2
    wander: dict[str, np.ndarray] = field(default_factory=dict)
    icans: tuple[IcansPlan, ...] = ()
    # reports from the patient's app (`report_device`), in time order, missed checks included
    reports: tuple[Report, ...] = ()
    report_device: str | None = None

    @property
    def day0(self) -> int:
        """Epoch ms of midnight UTC of the infusion date (day 0)."""
        return int(dt.datetime.combine(self.infusion, dt.time(), tzinfo=dt.UTC).timestamp()
                   * 1000)


@dataclass(frozen=True)
class Simulation:
    start: int
    end: int
    seed: int
    patients: tuple[PatientPlan, ...]
    source: str = ""  # the scenario file, or how the cohort was drawn

    def seed_for(self, patient: int, *key: int) -> np.random.SeedSequence:
        """An independent stream per (patient, purpose...): the same whatever the cohort size."""
        return np.random.SeedSequence(self.seed, spawn_key=(patient, *key))
