"""Kafka records -> InfluxDB line protocol, one line per record, millisecond timestamps. Pure.

The schema (README, "Storage"), chosen for series cardinality: a tag is indexed and every
distinct tag set is a series, so tags hold only what identifies a stream and has few values
(patient, device, kind, site; rule, severity, status). Values, sequence numbers, alert ids,
summaries and evidence are fields: one per reading or alert, they would make a series each.

| measurement | time | tags | fields |
|---|---|---|---|
| `readings` | `ts` | patient, device, kind, site (temperature) | temp, spo2, hr, rr, pi, battery, seq, flags, received_at |
| `trends` | `ts` | patient | temp, hr, spo2, rr, temp_slope, hr_slope, hr_baseline, news2, news2_parameters |
| `alerts` | `detected_at` | patient, rule, severity, status | alert_id, summary, source, start, day_since_infusion, late, evidence |
| `reports` | `ts` | patient, device, kind (`symptoms`, `neuro_check`), by | symptoms, note, ice_orientation, ice_naming, ice_commands, ice_writing, ice_attention, ice_total, battery, seq, flags, received_at |
| `canary` | as above | as `readings` or `alerts` | as `readings` or `alerts` |

The canary's readings and round-trip events (CONTRACT section 7, a synthetic patient) go to
`canary`, never to the patients' measurements, so no dashboard or export shows it as one.

The same record always gives the same measurement, tag set and timestamp, so writing it again
overwrites the point instead of adding one (Kafka redelivers after a crash or a rebalance).
Numbers are always written with the same type (values as floats, counters as integers):
InfluxDB refuses a field whose type changes within a shard.

The line format is influxdb-client's own (`Point.to_line_protocol`: tags and fields sorted,
the same escaping, whole floats without `.0`); it is built here directly because this is the
store's hot path, and the tests check that both agree.
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable

import msgspec

from vitals import topics
from vitals.records import ICE_PARTS, REPORT_KINDS, AlertEvent, Reading, TrendPoint

READINGS = "readings"
REPORTS = "reports"  # what patients and caregivers report (CONTRACT section 6)
TRENDS = "trends"
ALERTS = "alerts"
CANARY = "canary"

READING_FIELDS = ("temp", "spo2", "hr", "rr", "pi", "battery")  # floats
TREND_FIELDS = ("temp", "hr", "spo2", "rr", "temp_slope", "hr_slope", "hr_baseline")  # floats


class BadRecord(ValueError):
    """A Kafka record that is not the record its topic carries (it cannot become a point)."""


_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                                     "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                             "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def tag(value: str) -> str:
    out = value.translate(_ESCAPE_KEY)
    return out + " " if out.endswith("\\") else out  # as influxdb-client does


def string(value: str) -> str:
    return '"' + value.translate(_ESCAPE_STRING) + '"'


def num(value: float) -> str:
    """A float field; a whole number is written without `.0` but is still a float."""
    s = repr(float(value))
    return s[:-2] if s.endswith(".0") else s


def line(measurement: str, tags: list[tuple[str, str]], fields: list[tuple[str, str]],
         ts: int) -> str | None:
    """One line from tags and fields already sorted by key, values already encoded; empty tag
    values are left out (line protocol has none). None when there is no field to write."""
    if not fields:
        return None
    head = measurement.translate(_ESCAPE_MEASUREMENT)
    tag_part = "".join(f",{k}={tag(v)}" for k, v in tags if v)
    field_part = ",".join(f"{k}={v}" for k, v in fields)
    return f"{head}{tag_part} {field_part} {ts}"


def reading_line(r: Reading, measurement: str = READINGS) -> str:
    if r.kind in REPORT_KINDS and measurement == READINGS:
        return report_line(r)
    fields: list[tuple[str, str]] = []
    if r.battery is not None:
        fields.append(("battery", num(r.battery)))
    if r.flags:
        fields.append(("flags", string(",".join(r.flags))))
    if r.hr is not None:
        fields.append(("hr", num(r.hr)))
    if r.pi is not None:
        fields.append(("pi", num(r.pi)))
    fields.append(("received_at", f"{r.received_at}i"))
    if r.rr is not None:
        fields.append(("rr", num(r.rr)))
    if r.seq is not None:
        fields.append(("seq", f"{r.seq}i"))
    if r.spo2 is not None:
        fields.append(("spo2", num(r.spo2)))
    if r.temp is not None:
        fields.append(("temp", num(r.temp)))
    tags = [("device", r.device_id), ("kind", r.kind), ("patient", r.patient_id),
            ("site", r.site or "")]
    out = line(measurement, tags, fields, r.ts)
    assert out is not None  # received_at is always there
    return out


def report_line(r: Reading, measurement: str = REPORTS) -> str:
    """A patient's or caregiver's report: the symptom codes (comma-separated), the note as
    text, the ICE parts and total as integers."""
    values: dict[str, str] = {"received_at": f"{r.received_at}i"}
    if r.battery is not None:
        values["battery"] = num(r.battery)
    if r.flags:
        values["flags"] = string(",".join(r.flags))
    if r.seq is not None:
        values["seq"] = f"{r.seq}i"
    if r.symptoms is not None:
        values["symptoms"] = string(",".join(r.symptoms))
    if r.note is not None:
        values["note"] = string(r.note)
    if r.ice is not None:
        for part in ICE_PARTS:
            values[f"ice_{part}"] = f"{getattr(r.ice, part)}i"
    if r.ice_total is not None:
        values["ice_total"] = f"{r.ice_total}i"
    tags = [("by", r.by or ""), ("device", r.device_id), ("kind", r.kind),
            ("patient", r.patient_id)]
    out = line(measurement, tags, sorted(values.items()), r.ts)
    assert out is not None  # received_at is always there
    return out


def trend_line(t: TrendPoint, measurement: str = TRENDS) -> str | None:
    values: dict[str, str] = {k: num(v) for k in TREND_FIELDS
                              if (v := getattr(t, k)) is not None}
    if t.news2 is not None:
        values["news2"] = f"{t.news2}i"
    if t.news2_parameters:
        values["news2_parameters"] = string(",".join(t.news2_parameters))
    return line(measurement, [("patient", t.patient_id)], sorted(values.items()), t.ts)


_evidence = msgspec.json.Encoder(order="sorted").encode


def alert_line(a: AlertEvent, measurement: str = ALERTS) -> str:
    values = {"alert_id": string(a.alert_id), "summary": string(a.summary),
              "start": f"{a.start}i", "late": "true" if a.late else "false"}
    if a.source:
        values["source"] = string(a.source)
    if a.day_since_infusion is not None:
        values["day_since_infusion"] = num(a.day_since_infusion)
    if a.evidence:
        values["evidence"] = string(_evidence(a.evidence).decode())
    tags = [("patient", a.patient_id), ("rule", a.rule), ("severity", a.severity),
            ("status", a.status)]
    out = line(measurement, tags, sorted(values.items()), a.detected_at)
    assert out is not None
    return out


Converter = Callable[[bytes, str | None], str | None]


def _converter(record_type: type, to_line: Callable) -> Converter:
    decode = msgspec.json.Decoder(record_type).decode

    def convert(value: bytes, canary_patient: str | None) -> str | None:
        try:
            record = decode(value)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: nested deeper than msgspec goes, even in a field it skips
            raise BadRecord(f"not a valid {record_type.__name__} record: {exc}") from None
        try:
            if record.patient_id == canary_patient:
                return to_line(record, CANARY)
            return to_line(record)
        except Exception as exc:  # a record the kernel's bounds let through but cannot be a point
            raise BadRecord(f"cannot store this {record_type.__name__}: {exc!r}") from None

    return convert


CONVERTERS: dict[str, Converter] = {
    topics.READINGS.name: _converter(Reading, reading_line),
    topics.TRENDS.name: _converter(TrendPoint, trend_line),
    topics.ALERTS.name: _converter(AlertEvent, alert_line),
}


def to_line(topic: str, value: bytes, canary_patient: str | None = None) -> str | None:
    """The line for a record of `topic` (of measurement `canary` for `canary_patient`'s);
    None when it has nothing to store (a trend point with no feature yet). Raises `BadRecord`
    when the record cannot be decoded."""
    try:
        convert = CONVERTERS[topic]
    except KeyError:
        raise BadRecord(f"the store does not read topic {topic!r}") from None
    return convert(value, canary_patient)
