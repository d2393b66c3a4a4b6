"""MQTT message -> normalised readings and rejections (CONTRACT sections 1 and 2). Pure: no I/O,
no clock (the receipt time is passed in), and it never raises on any input."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ingest import limits
from vitals import canary
from vitals.patients import PatientRegistry
from vitals.records import (
    DEVICE_FLAGS,
    MAX_NOTE_CHARS,
    NO_SIGNAL,
    REPORT_KINDS,
    Count,
    DeviceStatus,
    Ice,
    Kind,
    Reading,
    Rejection,
    Reporter,
    Site,
    Symptom,
    echo,
)

TOPIC = re.compile(r"vitals/v1/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})(/status)?")

Timestamp = Annotated[dt.datetime, Meta(tz=True)] | Annotated[int, Meta(ge=0)]
DeviceFlag = Literal["probe_off", "motion", "low_perfusion", "low_battery", "manual"]
assert set(DeviceFlag.__args__) == DEVICE_FLAGS  # type: ignore[attr-defined]


class RawReading(msgspec.Struct):
    """A reading as a device sends it; unknown fields are ignored for forward compatibility."""

    ts: Timestamp
    kind: Kind
    seq: Count | None = None  # beyond 64 bits no later stage could hold it
    temp: float | None = None
    unit: Literal["C", "F"] = "C"
    site: Site = "axillary"
    spo2: float | None = None
    hr: float | None = None
    rr: float | None = None
    pi: float | None = None
    battery: Annotated[float, Meta(ge=0, le=100)] | None = None
    flags: list[DeviceFlag] = []
    # CONTRACT section 6, reports: an unknown symptom code, an ICE part out of range or an
    # unknown ICE part is refused here (reason `schema`)
    by: Reporter | None = None
    symptoms: Annotated[list[Symptom], Meta(max_length=32)] | None = None
    note: Annotated[str, Meta(max_length=MAX_NOTE_CHARS)] | None = None
    ice: Ice | None = None


class RawBatch(msgspec.Struct):
    readings: list[RawReading]


class RawStatus(msgspec.Struct):
    state: Literal["online", "offline"]
    ts: Timestamp | None = None
    battery: Annotated[float, Meta(ge=0, le=100)] | None = None


_single = msgspec.json.Decoder(RawReading)
_batch = msgspec.json.Decoder(RawBatch)
_status = msgspec.json.Decoder(RawStatus)
_any = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class Outcome:
    """Where each entry of one message goes. An entry is a reading of a batch, or the whole
    message when it cannot be split into readings; a status message is one entry."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    status: DeviceStatus | None = None

    @property
    def entries(self) -> int:
        return len(self.readings) + len(self.rejections) + (self.status is not None)


class Invalid(Exception):
    """One entry is rejected: `reason` is the stable code, the message a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Parser:
    def __init__(self, registry: PatientRegistry, canary_patient: str | None = None) -> None:
        self.registry = registry
        # CONTRACT section 7: the canary needs no enrolment (its one device only)
        self.canary_patient = canary_patient

    def parse(self, topic: str, payload: bytes, received_at: int) -> Outcome:
        try:
            return self._parse(topic, payload, received_at)
        except Invalid as exc:
            return Outcome(rejections=[reject(exc, topic, payload, received_at)])
        except Exception as exc:  # a bug here must not lose the message: dead-letter it
            bug = Invalid("internal_error", f"ingest failed on this message: {echo(repr(exc))}")
            return Outcome(rejections=[reject(bug, topic, payload, received_at)])

    def _parse(self, topic: str, payload: bytes, received_at: int) -> Outcome:
        m = TOPIC.fullmatch(topic)
        if m is None:
            raise Invalid("bad_topic",
                          f"topic {echo(topic)!r} is not vitals/v1/{{patient}}/{{device}}")
        patient_id, device_id, is_status = m.groups()
        if len(payload) > limits.MAX_PAYLOAD_BYTES:
            raise Invalid("too_large", f"payload is {len(payload)} bytes; the limit is "
                                       f"{limits.MAX_PAYLOAD_BYTES}")
        if patient_id == self.canary_patient:
            if device_id != canary.DEVICE_ID:
                raise Invalid("unknown_device", f"the canary patient {patient_id} has one "
                                                f"device, {canary.DEVICE_ID}")
        elif self.registry.get(patient_id) is None:
            raise Invalid("unknown_patient", f"patient {patient_id} is not enrolled")
        elif not self.registry.knows_device(patient_id, device_id):
            raise Invalid("unknown_device",
                          f"device {device_id} is not registered for patient {patient_id}")
        if not payload.isascii():
            # msgspec does not check bytes it skips (an unknown field), and raises
            # UnicodeDecodeError rather than DecodeError on some others: check once, here.
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Invalid("bad_json", f"payload is not UTF-8: {exc.reason} at byte "
                                          f"{exc.start}") from None
        if is_status:
            return Outcome(status=parse_status(payload, patient_id, device_id, received_at))
        return self._readings(topic, payload, patient_id, device_id, received_at)

    def _readings(self, topic: str, payload: bytes, patient_id: str, device_id: str,
                  received_at: int) -> Outcome:
        is_batch, entries = split_entries(payload)
        out = Outcome()
        items: list[object] = []  # the batch as plain JSON, read only when a typed item is bad
        for i, entry in enumerate(entries):
            try:
                raw = entry if isinstance(entry, RawReading) else msgspec.convert(entry, RawReading)
                out.readings.append(normalise(raw, patient_id, device_id, received_at))
            except (msgspec.ValidationError, Invalid) as exc:
                invalid = exc if isinstance(exc, Invalid) else Invalid(
                    "schema", f"reading does not follow the contract: {exc}")
                index, size = (i, len(entries)) if is_batch else (None, None)
                sent = _as_sent(payload, entries, i, items) if is_batch else payload
                out.rejections.append(reject(invalid, topic, sent, received_at, patient_id,
                                             device_id, index, size))
        return out


def _as_sent(payload: bytes, entries: list[RawReading] | list[object], i: int,
             items: list[object]) -> bytes:
    """The JSON the device sent for entry `i` of a batch; a typed entry re-encoded would show
    defaults it never sent and lose the fields it did. `items` is the batch as plain JSON,
    split on first need."""
    if isinstance(entries[i], RawReading):
        if not items:
            items.extend(_split_generic(payload)[1])
        return _encode(items[i])
    return _encode(entries[i])


def split_entries(payload: bytes) -> tuple[bool, list[RawReading] | list[object]]:
    """(is_batch, entries). A well-formed message is decoded straight into typed readings; one
    the typed decoder refuses is split into plain JSON values, so that each bad reading of a
    batch is found and rejected on its own while the good ones pass."""
    is_batch = b'"readings"' in payload
    entries: list[RawReading] | list[object] | None
    try:
        entries = _batch.decode(payload).readings if is_batch else [_single.decode(payload)]
    except (msgspec.DecodeError, RecursionError):  # nested too deep: told apart below
        entries = None
    if entries is None:
        is_batch, entries = _split_generic(payload)
    if is_batch and not entries:
        raise Invalid("schema", "`readings` is an empty list")
    if len(entries) > limits.MAX_BATCH_READINGS:
        raise Invalid("too_large", f"batch has {len(entries)} readings; the limit is "
                                   f"{limits.MAX_BATCH_READINGS}")
    return is_batch, entries


def _split_generic(payload: bytes) -> tuple[bool, list[object]]:
    try:
        obj = _any.decode(payload)
    except msgspec.DecodeError as exc:
        raise Invalid("bad_json", f"payload is not UTF-8 JSON: {exc}") from None
    except RecursionError:  # msgspec's depth limit: no contract message nests this deep
        raise Invalid("schema", "payload nests JSON arrays or objects too deeply for any "
                                "contract message") from None
    if not isinstance(obj, dict):
        raise Invalid("schema", f"payload must be a JSON object, got {type_name(obj)}")
    if "readings" not in obj:
        return False, [obj]
    if not isinstance(obj["readings"], list):
        raise Invalid("schema", f"`readings` must be a list, got {type_name(obj['readings'])}")
    return True, obj["readings"]


def type_name(obj: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(obj), "a value")


def to_epoch_ms(ts: dt.datetime | int) -> int:
    if isinstance(ts, int):
        return ts
    return (ts - EPOCH) // dt.timedelta(milliseconds=1)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso(ms: int) -> str:
    try:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return f"{ms} ms"


def check_time(ts: int, received_at: int) -> None:
    if ts < limits.EARLIEST_TS_MS:
        raise Invalid("clock_skew", f"device time {iso(ts)} is before 2010: its clock is not set")
    ahead = ts - received_at
    if ahead > limits.MAX_AHEAD_MS:
        # `ts` is any JSON integer, which a float may not hold
        minutes = f"{ahead / 60000:.1f}" if ahead < 10**300 else "far more than 5"
        raise Invalid("clock_skew", f"device time {iso(ts)} is {minutes} min ahead of "
                                    f"receipt at {iso(received_at)} (limit 5 min)")


def check_range(name: str, value: float, unit: str, as_sent: str | None = None) -> None:
    lo, hi = limits.PLAUSIBLE[name]
    if not lo <= value <= hi:
        shown = as_sent or f"{value:g} {unit}"
        raise Invalid("out_of_range", f"{name} {shown} is outside the plausible "
                                      f"{lo:g}-{hi:g} {unit}")


CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
VITAL_FIELDS = ("temp", "spo2", "hr", "rr", "pi")


def clean_note(note: str | None) -> str | None:
    """A note as text on one line: line breaks and other control characters become one space
    (the nurse sees the words; a note can never forge a line in a log or a page)."""
    if note is None:
        return None
    return CONTROL.sub(" ", note).strip() or None


def normalise_report(raw: RawReading, ts: int, patient_id: str, device_id: str,
                     received_at: int) -> Reading:
    """A report (CONTRACT section 6) as it was given: nothing in it is guessed."""
    if raw.by is None:
        raise Invalid("schema", f"{raw.kind} report without `by` (patient or caregiver)")
    vitals = [name for name in VITAL_FIELDS if getattr(raw, name) is not None]
    if vitals:
        raise Invalid("schema", f"a {raw.kind} report carries no vital signs, got "
                                f"{', '.join(vitals)}")
    note = clean_note(raw.note)
    symptoms: tuple[str, ...] | None = None
    ice_total = None
    if raw.kind == "symptoms":
        if raw.symptoms is None:
            raise Invalid("schema", "symptoms report without `symptoms` ([] for nothing new)")
        if raw.ice is not None:
            raise Invalid("schema", "a symptoms report carries no `ice`: that is a neuro_check")
        symptoms = tuple(dict.fromkeys(raw.symptoms))
        if "other" in symptoms and note is None:
            raise Invalid("schema", "symptom `other` needs a `note` saying what")
    else:
        if raw.ice is None:
            raise Invalid("schema", "neuro_check report without `ice`")
        if raw.symptoms is not None:
            raise Invalid("schema", "a neuro_check carries no `symptoms`: send a symptoms "
                                    "report")
        ice_total = raw.ice.total
    return Reading(patient_id=patient_id, device_id=device_id, ts=ts, kind=raw.kind,
                   received_at=received_at, seq=raw.seq, battery=raw.battery,
                   flags=tuple(dict.fromkeys(raw.flags)), by=raw.by, symptoms=symptoms,
                   note=note, ice=raw.ice, ice_total=ice_total)


def normalise(raw: RawReading, patient_id: str, device_id: str, received_at: int) -> Reading:
    """Celsius, epoch ms UTC, sentinels to `no_signal`, plausible ranges; `Invalid` if not."""
    ts = to_epoch_ms(raw.ts)
    check_time(ts, received_at)
    if raw.kind in REPORT_KINDS:
        return normalise_report(raw, ts, patient_id, device_id, received_at)
    if raw.symptoms is not None or raw.ice is not None:
        raise Invalid("schema", f"a {raw.kind} reading carries no `symptoms` or `ice`")
    flags = list(dict.fromkeys(raw.flags)) if raw.flags else []
    temp = spo2 = hr = None
    site = None
    if raw.kind == "temperature":
        if raw.temp is None:
            raise Invalid("schema", "temperature reading without `temp`")
        temp = raw.temp if raw.unit == "C" else (raw.temp - 32) * 5 / 9
        as_sent = f"{raw.temp:g} °F ({temp:.1f} °C)" if raw.unit == "F" else None
        check_range("temp", temp, "°C", as_sent)
        temp = round(temp, 3)
        site = raw.site
    else:
        if raw.spo2 is None and raw.hr is None:
            raise Invalid("schema", "oximetry reading without `spo2` or `hr`")
        spo2 = None if raw.spo2 in limits.SPO2_SENTINELS else raw.spo2
        hr = None if raw.hr in limits.HR_SENTINELS else raw.hr
        if (spo2 is None and raw.spo2 is not None) or (hr is None and raw.hr is not None):
            flags.append(NO_SIGNAL)
        if spo2 is not None:
            check_range("spo2", spo2, "%")
        if hr is not None:
            check_range("hr", hr, "/min")
    if raw.rr is not None:
        check_range("rr", raw.rr, "/min")
    if raw.pi is not None:
        check_range("pi", raw.pi, "%")
    return Reading(patient_id=patient_id, device_id=device_id, ts=ts, kind=raw.kind,
                   received_at=received_at, seq=raw.seq, temp=temp, site=site, spo2=spo2, hr=hr,
                   rr=raw.rr, pi=raw.pi, battery=raw.battery, flags=tuple(flags), by=raw.by,
                   note=clean_note(raw.note))


def parse_status(payload: bytes, patient_id: str, device_id: str, received_at: int
                 ) -> DeviceStatus:
    try:
        raw = _status.decode(payload)
    except msgspec.ValidationError as exc:
        raise Invalid("schema", f"status does not follow the contract: {exc}") from None
    except msgspec.DecodeError as exc:
        raise Invalid("bad_json", f"payload is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise Invalid("schema", "status nests JSON too deeply for the contract") from None
    # A last will's `ts` is when the device connected, so a stale one is normal; only a clock
    # far ahead is refused.
    ts = None if raw.ts is None else to_epoch_ms(raw.ts)
    if ts is not None and ts - received_at > limits.MAX_AHEAD_MS:
        check_time(ts, received_at)
    return DeviceStatus(patient_id=patient_id, device_id=device_id, state=raw.state,
                        received_at=received_at, ts=ts, battery=raw.battery)


def reject(exc: Invalid, topic: str, payload: bytes, received_at: int,
           patient_id: str | None = None, device_id: str | None = None,
           index: int | None = None, size: int | None = None) -> Rejection:
    """The dead letter of one entry, its payload bounded (`Rejection.of`)."""
    if patient_id is None and (m := TOPIC.fullmatch(topic)):
        patient_id, device_id = m.group(1), m.group(2)
    return Rejection.of(exc.reason, str(exc), topic, received_at, payload,
                        patient_id=patient_id, device_id=device_id, batch_index=index,
                        batch_size=size)
