"""Records -> line protocol: the documented measurements, tags and fields, the same bytes as
influxdb-client's own `Point`, and the same point for the same record."""

from __future__ import annotations

import pytest
from influxdb_client import Point, WritePrecision

from storage import schema
from vitals.records import AlertEvent, Ice, Reading, TrendPoint, encode

T = 1_795_240_000_123

OXIMETRY = Reading("P001", "ox-1", T, "oximetry", T + 40, seq=17, spo2=94.0, hr=112.0, pi=2.5,
                   flags=("motion", "no_signal"))
TEMPERATURE = Reading("P001", "th-1", T, "temperature", T + 900, temp=38.25, site="axillary",
                      battery=80.0)
TREND = TrendPoint("P001", T, temp=38.1, hr=118.0, spo2=95.0, temp_slope=0.42, news2=3,
                   news2_parameters=("temp", "hr"))
ALERT = AlertEvent("a1b2c3", "firing", "fever", "critical", "P001", T - 600_000, T,
                   summary='P001: fever 38.6 °C, "sustained" since 10:02, day 3',
                   source="CLINICAL.md#fever", day_since_infusion=3.2,
                   evidence={"temp": 38.6, "window_min": 10})


def point(measurement: str, tags: dict, fields: dict, ts: int) -> str:
    p = Point(measurement).time(ts, WritePrecision.MS)
    for k, v in tags.items():
        p.tag(k, v)
    for k, v in fields.items():
        p.field(k, v)
    return p.to_line_protocol()


def test_a_reading_has_patient_device_kind_site_as_tags_and_values_as_fields() -> None:
    line = schema.reading_line(OXIMETRY)
    assert line == ("readings,device=ox-1,kind=oximetry,patient=P001 "
                    'flags="motion,no_signal",hr=112,pi=2.5,received_at=1795240000163i,seq=17i,'
                    "spo2=94 1795240000123")
    assert line == point("readings", {"patient": "P001", "device": "ox-1", "kind": "oximetry"},
                         {"spo2": 94.0, "hr": 112.0, "pi": 2.5, "seq": 17,
                          "flags": "motion,no_signal", "received_at": T + 40}, T)
    temp = schema.reading_line(TEMPERATURE)
    assert temp.startswith("readings,device=th-1,kind=temperature,patient=P001,site=axillary ")
    assert "temp=38.25" in temp and "battery=80" in temp and "seq" not in temp


def test_values_are_always_floats_and_counters_integers() -> None:
    """InfluxDB refuses a field whose type changes, so a whole pulse rate stays a float."""
    r = Reading("P001", "ox-1", T, "oximetry", T, seq=0, spo2=97.0, hr=80.0)
    fields = schema.reading_line(r).split(" ")[1]
    assert "hr=80," in fields and "hr=80i" not in fields and "seq=0i" in fields


def test_a_trend_point_and_an_empty_one() -> None:
    assert schema.trend_line(TREND) == point(
        "trends", {"patient": "P001"},
        {"temp": 38.1, "hr": 118.0, "spo2": 95.0, "temp_slope": 0.42, "news2": 3,
         "news2_parameters": "temp,hr"}, T)
    assert schema.trend_line(TrendPoint("P001", T)) is None  # nothing measured yet


def test_an_alert_keeps_its_id_and_summary_in_fields() -> None:
    line = schema.alert_line(ALERT)
    head, _ = line.split(" ", 1)
    assert head == "alerts,patient=P001,rule=fever,severity=critical,status=firing"
    assert 'alert_id="a1b2c3"' in line
    assert r'summary="P001: fever 38.6 °C, \"sustained\" since 10:02, day 3"' in line
    assert line.endswith(f" {T}")  # detected_at
    assert line == point(
        "alerts", {"patient": "P001", "rule": "fever", "severity": "critical",
                   "status": "firing"},
        {"alert_id": "a1b2c3", "summary": ALERT.summary, "source": ALERT.source,
         "start": ALERT.start, "late": False, "day_since_infusion": 3.2,
         "evidence": '{"temp":38.6,"window_min":10}'}, T)


@pytest.mark.parametrize("device", ["ox 1", "ox,1", "ox=1", "ox\\", "ox\n1", "ox\\ 1"])
def test_tag_values_are_escaped_as_influxdb_client_does(device: str) -> None:
    r = Reading("P001", device, T, "oximetry", T, spo2=97.0)
    assert schema.reading_line(r) == point(
        "readings", {"patient": "P001", "device": device, "kind": "oximetry"},
        {"spo2": 97.0, "received_at": T}, T)


def test_the_same_reading_again_is_the_same_point() -> None:
    """Measurement, tag set and timestamp are equal, so InfluxDB overwrites rather than adds;
    a redelivery through ingest may differ in `received_at`, a field, which is overwritten."""
    again = Reading(**{**{f: getattr(OXIMETRY, f) for f in OXIMETRY.__struct_fields__},
                       "received_at": T + 5000})

    def key(line: str) -> tuple[str, str]:
        head, _fields, ts = line.rsplit(" ", 2)
        return head, ts

    assert key(schema.reading_line(OXIMETRY)) == key(schema.reading_line(again))
    assert schema.reading_line(OXIMETRY) == schema.reading_line(OXIMETRY)


def test_records_by_topic_and_unreadable_ones() -> None:
    assert schema.to_line("vitals.readings", encode(OXIMETRY)) == schema.reading_line(OXIMETRY)
    assert schema.to_line("vitals.alerts", encode(ALERT)) == schema.alert_line(ALERT)
    assert schema.to_line("vitals.trends", encode(TREND)) == schema.trend_line(TREND)
    with pytest.raises(schema.BadRecord, match="not a valid Reading"):
        schema.to_line("vitals.readings", b'{"patient_id": "P001"}')
    with pytest.raises(schema.BadRecord, match="not a valid AlertEvent"):
        schema.to_line("vitals.alerts", b"\xff\xfe")
    with pytest.raises(schema.BadRecord, match="does not read"):
        schema.to_line("vitals.status", b"{}")


def test_a_report_goes_to_the_reports_measurement_with_who_reported_as_a_tag() -> None:
    said = Reading("P001", "app-1", T, "symptoms", T + 500, seq=41, by="caregiver",
                   symptoms=("chills", "other"), note='says "the light hurts", a\\b')
    line = schema.to_line("vitals.readings", encode(said))
    assert line == point("reports", {"patient": "P001", "device": "app-1", "kind": "symptoms",
                                     "by": "caregiver"},
                         {"symptoms": "chills,other", "note": 'says "the light hurts", a\\b',
                          "seq": 41, "received_at": T + 500}, T)
    check = Reading("P001", "app-1", T, "neuro_check", T + 500, seq=42, by="patient",
                    ice=Ice(3, 2, 1, 0, 1), ice_total=7)
    assert schema.to_line("vitals.readings", encode(check)) == point(
        "reports", {"patient": "P001", "device": "app-1", "kind": "neuro_check", "by": "patient"},
        {"ice_orientation": 3, "ice_naming": 2, "ice_commands": 1, "ice_writing": 0,
         "ice_attention": 1, "ice_total": 7, "seq": 42, "received_at": T + 500}, T)
