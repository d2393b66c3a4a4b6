"""The records on the Kafka topics, as msgspec structs: what ingest produces and every later
stage consumes. Times are epoch milliseconds UTC, temperatures degrees Celsius."""

from __future__ import annotations

from typing import Literal

import msgspec

Kind = Literal["temperature", "oximetry"]
Site = Literal["core", "oral", "tympanic", "axillary", "skin"]

# Flags a device may send (CONTRACT section 1) plus `no_signal`, set by ingest for sentinels.
DEVICE_FLAGS = frozenset({"probe_off", "motion", "low_perfusion", "low_battery"})
NO_SIGNAL = "no_signal"


class Reading(msgspec.Struct, omit_defaults=True, frozen=True):
    """One validated, normalised reading on `vitals.readings`, keyed by `patient_id`.

    A field is absent when the device did not measure it or sent a "no value" sentinel (then
    `flags` holds `no_signal`); absent is never zero.
    """

    patient_id: str
    device_id: str
    ts: int
    kind: Kind
    received_at: int
    seq: int | None = None
    temp: float | None = None
    site: Site | None = None
    spo2: float | None = None
    hr: float | None = None
    rr: float | None = None
    pi: float | None = None
    battery: float | None = None
    flags: tuple[str, ...] = ()


class DeviceStatus(msgspec.Struct, omit_defaults=True, frozen=True):
    """A device's online/offline status (its MQTT last will included) on `vitals.status`.

    `ts` is the device's own time, which for a last will is when it connected; `received_at`
    is when the broker delivered it, the time that matters for "no data" logic.
    """

    patient_id: str
    device_id: str
    state: Literal["online", "offline"]
    received_at: int
    ts: int | None = None
    battery: float | None = None


class Rejection(msgspec.Struct, omit_defaults=True, frozen=True):
    """A message, or one reading of a batch, that ingest could not accept (`vitals.rejected`)."""

    reason: str
    detail: str
    topic: str
    received_at: int
    payload: str
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    patient_id: str | None = None
    device_id: str | None = None
    batch_index: int | None = None
    batch_size: int | None = None


encode = msgspec.json.Encoder().encode


Severity = Literal["critical", "error", "warning", "info"]


class AlertEvent(msgspec.Struct, omit_defaults=True, frozen=True):
    """A rule firing or clearing for a patient, on `vitals.alerts` keyed by `patient_id`.

    `alert_id` is stable for the alert's whole life: the same condition re-evaluated (a worker
    restart, a replay) gives the same id, so consumers treat a repeat idempotently. All times
    are event time (epoch ms UTC): `start` when the condition began, `detected_at` the time of
    the reading that made it fire (or clear), `late` when that reading arrived long after it was
    measured (a device's buffered upload)."""

    alert_id: str
    status: Literal["firing", "resolved"]
    rule: str
    severity: Severity
    patient_id: str
    start: int
    detected_at: int
    summary: str
    source: str = ""  # where the rule's threshold comes from (CLINICAL.md)
    day_since_infusion: float | None = None
    late: bool = False
    evidence: dict[str, object] = {}


class TrendPoint(msgspec.Struct, omit_defaults=True, frozen=True):
    """A patient's features at the end of one minute of event time, on `vitals.trends`."""

    patient_id: str
    ts: int
    temp: float | None = None  # sustained (median) temperature, °C
    hr: float | None = None  # sustained heart rate, /min
    spo2: float | None = None  # sustained SpO2, %
    rr: float | None = None
    temp_slope: float | None = None  # °C per hour, robust (Theil-Sen) over the trend window
    hr_slope: float | None = None  # beats/min per hour
    hr_baseline: float | None = None
    news2: int | None = None  # partial NEWS2 of the parameters measured
    news2_parameters: tuple[str, ...] = ()
