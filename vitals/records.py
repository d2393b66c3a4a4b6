"""The records on the Kafka topics, as msgspec structs: what ingest produces and every later
stage consumes. Times are epoch milliseconds UTC, temperatures degrees Celsius.

Every later stage decodes these from Kafka, where anything may have been written: the field
types carry bounds (ids as the contract spells them, times between 1970 and 2100, finite
numbers, texts of bounded length, evidence at most three levels deep), so that decoding refuses
a hostile record (`msgspec.ValidationError`) before any stage computes with it."""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Literal

import msgspec

# Bounds on what a record may hold. Constructing a record does not check them; decoding does.
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_EPOCH_MS)]
Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# no control characters: a line break in a record must not forge a line in a log
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=PRINTABLE)]
Text = Annotated[str, msgspec.Meta(max_length=4000, pattern=PRINTABLE)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
# finite and far from overflow; what is plausible for a vital sign is ingest's business
Value = Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]
Scalar = str | int | float | bool | None
Evidence = Annotated[dict[Name, Scalar | list[Scalar] | dict[Name, Scalar | list[Scalar]]],
                     msgspec.Meta(max_length=64)]
Flags = Annotated[tuple[Name, ...], msgspec.Meta(max_length=16)]

Kind = Literal["temperature", "oximetry", "symptoms", "neuro_check"]
Site = Literal["core", "oral", "tympanic", "axillary", "skin"]
# CONTRACT section 6: what a patient or a caregiver reports from the patient's app
VITAL_KINDS = frozenset({"temperature", "oximetry"})
REPORT_KINDS = frozenset({"symptoms", "neuro_check"})
Reporter = Literal["patient", "caregiver"]
Symptom = Literal[
    "chills", "fatigue", "headache", "severe_headache", "confusion", "trouble_speaking",
    "trouble_writing", "tremor", "drowsiness", "seizure", "dizziness", "fainting",
    "breathing_difficulty", "cough", "fast_heartbeat", "nausea", "vomiting", "diarrhea",
    "rash", "joint_pain", "bleeding", "sore_throat", "painful_urination", "not_drinking",
    "other"]
MAX_NOTE_CHARS = 500
Note = Annotated[str, msgspec.Meta(max_length=MAX_NOTE_CHARS, pattern=PRINTABLE)]

# Flags a device may send (CONTRACT section 1; `manual` since v1.1: a reading a person took
# and entered, e.g. a spot check from the patient's app) plus `no_signal`, set by ingest for
# sentinels.
DEVICE_FLAGS = frozenset({"probe_off", "motion", "low_perfusion", "low_battery", "manual"})
NO_SIGNAL = "no_signal"
# set by ingest on the canary's readings (CONTRACT section 7): a synthetic patient, never data
SYNTHETIC = "synthetic"


# the ICE screen's parts, in the order clinicians score them, and each part's most points
ICE_PARTS = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}


class Ice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ICE screen (CLINICAL.md), each part as scored; the total is 0-10."""

    orientation: Annotated[int, msgspec.Meta(ge=0, le=4)]
    naming: Annotated[int, msgspec.Meta(ge=0, le=3)]
    commands: Annotated[int, msgspec.Meta(ge=0, le=1)]
    writing: Annotated[int, msgspec.Meta(ge=0, le=1)]
    attention: Annotated[int, msgspec.Meta(ge=0, le=1)]

    @property
    def total(self) -> int:
        """The ICE score, 0-10 (10 is normal)."""
        return self.orientation + self.naming + self.commands + self.writing + self.attention


class Reading(msgspec.Struct, omit_defaults=True, frozen=True):
    """One validated, normalised reading on `vitals.readings`, keyed by `patient_id`.

    A field is absent when the device did not measure it or sent a "no value" sentinel (then
    `flags` holds `no_signal`); absent is never zero. A report (CONTRACT section 6: kind
    `symptoms` or `neuro_check`, from the patient's app) carries who reported (`by`) and what:
    `symptoms` (possibly none) with an optional `note`, or the `ice` screen with its
    `ice_total`; never a vital sign.
    """

    patient_id: Ident
    device_id: Ident
    ts: EpochMs
    kind: Kind
    received_at: EpochMs
    seq: Count | None = None
    temp: Value | None = None
    site: Site | None = None
    spo2: Value | None = None
    hr: Value | None = None
    rr: Value | None = None
    pi: Value | None = None
    battery: Value | None = None
    flags: Flags = ()
    by: Reporter | None = None
    symptoms: Annotated[tuple[Symptom, ...], msgspec.Meta(max_length=32)] | None = None
    note: Note | None = None
    ice: Ice | None = None
    ice_total: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None


def is_entered(reading: Reading) -> bool:
    """A reading a person entered in the app: a report, or a manual measurement."""
    return reading.kind in REPORT_KINDS or "manual" in reading.flags


class DeviceStatus(msgspec.Struct, omit_defaults=True, frozen=True):
    """A device's online/offline status (its MQTT last will included) on `vitals.status`.

    `ts` is the device's own time, which for a last will is when it connected; `received_at`
    is when the broker delivered it, the time that matters for "no data" logic.
    """

    patient_id: Ident
    device_id: Ident
    state: Literal["online", "offline"]
    received_at: EpochMs
    ts: EpochMs | None = None
    battery: Value | None = None


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
        """A dead letter whose size is bounded whatever the sender sent (the detail may quote
        it too: a validation error names the value it refused)."""
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
        return cls(reason=reason, detail=echo(detail, 1000), topic=cut(topic, 256),
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

    alert_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=PRINTABLE)]
    status: Literal["firing", "resolved"]
    rule: Name
    severity: Severity
    patient_id: Ident
    start: EpochMs
    detected_at: EpochMs
    summary: Text
    source: Text = ""  # where the rule's threshold comes from (CLINICAL.md)
    day_since_infusion: Value | None = None
    late: bool = False
    evidence: Evidence = {}


class TrendPoint(msgspec.Struct, omit_defaults=True, frozen=True):
    """A patient's features at the end of one minute of event time, on `vitals.trends`."""

    patient_id: Ident
    ts: EpochMs
    temp: Value | None = None  # sustained (median) temperature, °C
    hr: Value | None = None  # sustained heart rate, /min
    spo2: Value | None = None  # sustained SpO2, %
    rr: Value | None = None
    temp_slope: Value | None = None  # °C per hour, robust (Theil-Sen) over the trend window
    hr_slope: Value | None = None  # beats/min per hour
    hr_baseline: Value | None = None
    news2: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None  # partial NEWS2
    news2_parameters: Flags = ()
