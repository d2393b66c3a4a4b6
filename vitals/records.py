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
