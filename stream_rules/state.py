"""One patient's engine state, and its compact serialised form (a Faust table value).

Raw samples are kept only for minutes not yet judged; judged minutes live on as per-minute
medians in day-long rings: ~15 KiB of msgpack with a day of history, ~3 KiB once compressed
(zlib: the rings are mostly slow-moving values and missing minutes), a few hundred bytes for
a new patient.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import msgspec

from stream_rules.series import MinuteSeries
from vitals.seqset import SeqSet

# Signal -> (the kind of reading it comes from, wire scale of its ring)
SIGNALS = {"temp": ("temperature", 100.0), "hr": ("oximetry", 10.0),
           "spo2": ("oximetry", 10.0), "rr": ("oximetry", 10.0)}
KIND_SIGNALS = {"temperature": ("temp",), "oximetry": ("hr", "spo2", "rr")}
MAX_UNSEQUENCED = 512
GAPS_KEPT = 5  # a median of five: one dropout or a doubled reading does not move it


@dataclass(slots=True)
class KindState:
    """Event-time progress of one kind of reading (temperature or oximetry)."""

    max_ts: int = -1
    cursor: int = -1  # the last minute judged; -1 before any
    # minute -> signal -> valid samples, for minutes not yet judged
    open: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    # the same, for minutes judged already: late readings (a buffer sent after newer live
    # data) waiting for the engine's late pass (`stream_rules.late`)
    late: dict[int, dict[str, list[float]]] = field(default_factory=dict)


def _median(gaps: list[int]) -> int:
    """The middle of the gaps (the upper one of an even count); -1 before two."""
    return sorted(gaps)[len(gaps) // 2] if len(gaps) >= 2 else -1


@dataclass(slots=True)
class DeviceState:
    """One device of a patient: its duplicates filter, times, site, battery and sensor."""

    kind: str
    seqs: SeqSet = field(default_factory=lambda: SeqSet(64))
    unsequenced: dict[int, None] = field(default_factory=dict)  # ts of readings without seq
    first_ts: int = -1  # its first reading: silent since then if none was ever valid
    last_ts: int = -1  # newest reading
    last_valid_ts: int = -1  # newest reading that carried a vital sign
    last_received: int = -1
    site: str | None = None
    battery: float | None = None
    sensor_off: bool = False  # its newest temperature read like room air
    # when its MQTT last will said "offline" (received_at, ms), until data or "online": -1
    offline_at: int = -1
    # the last few gaps (ms) between its successive readings: its reporting interval
    gaps: list[int] = field(default_factory=list)
    # a thermometer: its newest valid reading as measured, and the offsets to core that spot
    # checks gave it (the newest last), and when the last was taken
    last_temp: float | None = None
    offsets: list[float] = field(default_factory=list)
    calibrated_at: int = -1
    manual: bool = False  # its newest reading was a person's spot check (flag `manual`)
    # an oximeter: the pulse of its last reading whose SpO2 was believed after a comparison,
    # and since when (ts) its pulse has leapt away from it (-1: it has not): motion (rules
    # `oximetry`)
    believed_hr: float | None = None
    leap_since: int = -1
    # a skin or axillary thermometer: when each offset's spot check was taken (it applies from
    # the next minute on), and its last hour of raw readings, for the spot checks to come
    # (stream_rules.calibration)
    offset_at: list[int] = field(default_factory=list)
    recent_ts: list[int] = field(default_factory=list)
    recent_temp: list[float] = field(default_factory=list)

    # its reporting interval, learned: the median of `gaps`; -1 before two (kept up to date
    # by `learn_gap`, not serialised: it follows from the gaps)
    interval_ms: int = -1

    def __post_init__(self) -> None:
        self.interval_ms = _median(self.gaps)

    def learn_gap(self, ts: int) -> None:
        """A new newest reading at `ts`: remember the gap since the previous one."""
        if self.last_ts >= 0 and ts > self.last_ts:
            gap, gaps = ts - self.last_ts, self.gaps
            if len(gaps) == GAPS_KEPT and gaps.count(gap) == GAPS_KEPT:
                return  # a steady cadence, the common case: nothing changes
            self.gaps = [*gaps[-(GAPS_KEPT - 1):], gap]
            self.interval_ms = _median(self.gaps)

    def first_time(self, seq: int | None, ts: int) -> bool:
        """Whether this reading is new (not a duplicate); remembers it."""
        if seq is not None:
            if self.seqs.add(seq):
                return True
            if ts <= self.last_ts:
                return False
            self.seqs.restart(seq)  # the device restarted its counter
            return True
        if ts in self.unsequenced:
            return False
        self.unsequenced[ts] = None
        if len(self.unsequenced) > MAX_UNSEQUENCED:
            del self.unsequenced[next(iter(self.unsequenced))]
        return True


class RuleState(msgspec.Struct):
    """Hysteresis of one rule (or one device, for no_data)."""

    firing: bool = False
    pending_since: int | None = None  # first minute of the current run of "fire"
    clearing_since: int | None = None  # first minute of the current run of "clear"
    start: int | None = None  # event time (ms) the firing condition began
    peak: float | None = None  # the worst value while firing
    detail: str | None = None  # e.g. the device of a no_data alert
    # its past episodes [start ms, end ms] (the newest few), so that a late pass over
    # minutes judged already knows which episodes were paged then
    past: list[list[int]] = []


PAST_KEPT = 16  # episodes per rule: a day of a flapping rule, at a few bytes each


class IceCheck(msgspec.Struct, array_like=True):
    """A patient's newest daily neuro check: its ICE total, when, and by whom."""

    total: int
    ts: int
    by: str


def remember_episode(rule_state: RuleState, end: int) -> None:
    """Note the episode that just cleared at `end` (ms) in the rule's `past`."""
    rule_state.past = [*rule_state.past[-(PAST_KEPT - 1):], [rule_state.start or end, end]]


@dataclass(slots=True)
class PatientState:
    """Everything the engine keeps about one patient between readings."""

    patient_id: str
    max_ts: int = -1
    first_ts: int = -1
    combined_cursor: int = -1
    kinds: dict[str, KindState] = field(default_factory=dict)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    series: dict[str, MinuteSeries] = field(
        default_factory=lambda: {signal: MinuteSeries(scale)
                                 for signal, (_, scale) in SIGNALS.items()})
    rules: dict[str, RuleState] = field(default_factory=dict)
    hr_baseline: float | None = None
    temp_baseline: float | None = None
    spo2_baseline: float | None = None
    last_fever_minute: int | None = None
    temp_site: str | None = None
    # late readings not used: for a minute that had data when judged, or older than a day
    stale_readings: int = 0
    # the correction to core of the newest temperature, and when a spot check set it (-1:
    # the site's default)
    temp_correction: float | None = None
    temp_calibrated_at: int = -1
    # the thermometer the patient's temperature is shown for (its site and correction, in the
    # pages): the one that gave the newest closed minute most readings
    temp_device: str | None = None
    # the patient's app (reports, CONTRACT section 6): its duplicates filter, apart from the
    # wearables so that no vital-sign rule judges it; and the newest neuro check
    reporters: dict[str, DeviceState] = field(default_factory=dict)
    last_ice: IceCheck | None = None
    # spot checks (ts, core-equivalent) waiting for their minute to close, to be paired
    spot_checks: list[tuple[int, float]] = field(default_factory=list)
    # per kind, what proves its rules quiet (`quiet_kinds`): not part of the state (`dump`
    # leaves it out; a restored state judges its next minute and starts again)
    quiet: dict[str, tuple[int, tuple[float | None, ...], tuple[int, ...]]] = field(
        default_factory=dict, compare=False, repr=False)

    def open(self, key: str, start: int) -> RuleState:
        """A rule judged per report (`rules.reports`) fires now, since `start`."""
        rule_state = self.rules[key] = RuleState(firing=True, start=start)
        return rule_state

    def close(self, key: str, end: int) -> None:
        """A rule judged per report clears at `end`."""
        rule_state = self.rules[key]
        remember_episode(rule_state, end)
        rule_state.firing, rule_state.start, rule_state.peak = False, None, None


# --- the wire form ----------------------------------------------------------------------

class _Kind(msgspec.Struct, array_like=True):
    max_ts: int
    cursor: int
    open: dict[int, dict[str, list[float]]]
    late: dict[int, dict[str, list[float]]] = {}  # last: older states decode without it


class _Device(msgspec.Struct, array_like=True):
    kind: str
    starts: list[int]
    ends: list[int]
    unsequenced: list[int]
    first_ts: int
    last_ts: int
    last_valid_ts: int
    last_received: int
    site: str | None
    battery: float | None
    sensor_off: bool
    offline_at: int = -1  # trailing defaults: a state written before them decodes
    gaps: list[int] = []
    last_temp: float | None = None
    offsets: list[float] = []
    calibrated_at: int = -1
    manual: bool = False
    believed_hr: float | None = None
    leap_since: int = -1
    offset_at: list[int] | None = None  # None: written before; its offsets apply throughout
    recent_ts: list[int] = []
    recent_temp: list[float] = []


class _Snapshot(msgspec.Struct, array_like=True):
    v: int
    patient_id: str
    max_ts: int
    first_ts: int
    combined_cursor: int
    kinds: dict[str, _Kind]
    devices: dict[str, _Device]
    heads: dict[str, int]
    series: dict[str, bytes]
    rules: dict[str, RuleState]
    hr_baseline: float | None
    temp_baseline: float | None
    last_fever_minute: int | None
    temp_site: str | None
    stale_readings: int
    temp_correction: float | None = None  # trailing defaults: older states decode
    temp_calibrated_at: int = -1
    spo2_baseline: float | None = None
    reporters: dict[str, _Device] = {}
    last_ice: IceCheck | None = None
    spot_checks: list[tuple[int, float]] = []
    temp_device: str | None = None


def _device(device: DeviceState) -> _Device:
    return _Device(device.kind, device.seqs.starts, device.seqs.ends, list(device.unsequenced),
                   device.first_ts, device.last_ts, device.last_valid_ts, device.last_received,
                   device.site, device.battery, device.sensor_off, device.offline_at,
                   device.gaps, device.last_temp, device.offsets, device.calibrated_at,
                   device.manual, device.believed_hr, device.leap_since, device.offset_at,
                   device.recent_ts, device.recent_temp)


def _device_state(device: _Device) -> DeviceState:
    return DeviceState(device.kind, SeqSet(64, device.starts, device.ends),
                       dict.fromkeys(device.unsequenced), device.first_ts, device.last_ts,
                       device.last_valid_ts, device.last_received, device.site, device.battery,
                       device.sensor_off, device.offline_at, device.gaps, device.last_temp,
                       device.offsets, device.calibrated_at, device.manual,
                       device.believed_hr, device.leap_since,
                       offset_at=(device.offset_at if device.offset_at is not None
                                  else [-1] * len(device.offsets)),
                       recent_ts=device.recent_ts, recent_temp=device.recent_temp)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Snapshot)
# A zlib stream starts 0x78; a snapshot (a msgpack array) never does, so states written before
# compression still load.
_ZLIB = 0x78


def dump(state: PatientState) -> bytes:
    """The state as compressed msgpack bytes (the Faust table's value). Level 1: ~50 us for a
    day's state, a fifth of its size."""
    return zlib.compress(_encoder.encode(_Snapshot(
        1, state.patient_id, state.max_ts, state.first_ts, state.combined_cursor,
        {name: _Kind(kind.max_ts, kind.cursor, kind.open, kind.late)
         for name, kind in state.kinds.items()},
        {device_id: _device(device) for device_id, device in state.devices.items()},
        {signal: series.head for signal, series in state.series.items()},
        {signal: series.to_bytes() for signal, series in state.series.items()},
        state.rules, state.hr_baseline, state.temp_baseline, state.last_fever_minute,
        state.temp_site, state.stale_readings, state.temp_correction,
        state.temp_calibrated_at, state.spo2_baseline,
        {device_id: _device(device) for device_id, device in state.reporters.items()},
        state.last_ice, state.spot_checks, state.temp_device)), 1)


def load(raw: bytes) -> PatientState:
    """The state `dump` wrote (compressed, or not as before)."""
    snapshot = _decoder.decode(zlib.decompress(raw) if raw[:1] == bytes([_ZLIB]) else raw)
    return PatientState(
        patient_id=snapshot.patient_id, max_ts=snapshot.max_ts, first_ts=snapshot.first_ts,
        combined_cursor=snapshot.combined_cursor,
        kinds={name: KindState(kind.max_ts, kind.cursor, kind.open, kind.late)
               for name, kind in snapshot.kinds.items()},
        devices={device_id: _device_state(device)
                 for device_id, device in snapshot.devices.items()},
        series={signal: MinuteSeries.from_bytes(SIGNALS[signal][1], snapshot.heads[signal],
                                                ring)
                for signal, ring in snapshot.series.items()},
        rules=snapshot.rules, hr_baseline=snapshot.hr_baseline,
        temp_baseline=snapshot.temp_baseline, last_fever_minute=snapshot.last_fever_minute,
        temp_site=snapshot.temp_site, stale_readings=snapshot.stale_readings,
        temp_correction=snapshot.temp_correction,
        temp_calibrated_at=snapshot.temp_calibrated_at, spo2_baseline=snapshot.spo2_baseline,
        reporters={device_id: _device_state(device)
                   for device_id, device in snapshot.reporters.items()},
        last_ice=snapshot.last_ice, spot_checks=snapshot.spot_checks,
        temp_device=snapshot.temp_device)
