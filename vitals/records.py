"""The records on the Kafka topics, as msgspec structs: what ingest produces and every later
stage consumes. Times are epoch milliseconds UTC, temperatures degrees Celsius."""

from __future__ import annotations

import base64
import hashlib
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


# A dead letter keeps at most this much of what was refused: enough for a person to see what
# was sent, never enough for one hostile message to be too large for Kafka (1 MB by default).
MAX_DEAD_LETTER_BYTES = 4096
# ... and of the text fields that come from the sender (the topic, names in the detail).
MAX_ECHO_CHARS = 200


def cut(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """A sender's text cut to `limit` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def echo(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """A sender's text for details and log lines: `cut`, with line breaks and other control
    characters escaped so that it cannot forge a log line."""
    text = cut(text, limit)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class Rejection(msgspec.Struct, omit_defaults=True, frozen=True):
    """A message, or one reading of a batch, that ingest could not accept (`vitals.rejected`).

    `payload` is what was sent, as text or base64. A payload longer than
    `MAX_DEAD_LETTER_BYTES` is cut to that: then `payload_truncated` is set and
    `payload_bytes` and `payload_sha256` say what the whole was."""

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
    payload_truncated: bool = False
    payload_bytes: int | None = None
    payload_sha256: str | None = None

    @classmethod
    def of(cls, reason: str, detail: str, topic: str, received_at: int, payload: bytes,
           **fields: object) -> Rejection:
        """A dead letter whose size is bounded whatever the sender sent."""
        kept = payload[:MAX_DEAD_LETTER_BYTES]
        truncated = len(kept) < len(payload)
        try:
            text, encoding = kept.decode("utf-8"), "utf-8"
        except UnicodeDecodeError as exc:
            if truncated and exc.start >= len(kept) - 3:  # a character cut in two by the limit
                kept = kept[:exc.start]
                text, encoding = kept.decode("utf-8", "replace"), "utf-8"
            else:
                text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
        if truncated:
            fields.update(payload_truncated=True, payload_bytes=len(payload),
                          payload_sha256=hashlib.sha256(payload).hexdigest())
        return cls(reason=reason, detail=detail, topic=cut(topic, 256),
                   received_at=received_at, payload=text,
                   payload_encoding=encoding, **fields)  # type: ignore[arg-type]


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
