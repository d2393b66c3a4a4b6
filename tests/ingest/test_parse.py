"""`Parser.parse` at the boundaries of the wire contract (CONTRACT sections 1 and 2)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import pytest

from ingest import limits
from ingest.parse import Outcome, Parser
from vitals.patients import Patient, PatientRegistry
from vitals.records import MAX_DEAD_LETTER_BYTES, Reading, Rejection, encode

RECEIVED = int(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
T = RECEIVED - 60_000  # a minute before receipt
TOPIC = "vitals/v1/P001/ox-1"
STATUS_TOPIC = "vitals/v1/P001/ox-1/status"

REGISTRY = PatientRegistry([
    Patient(id="P001", infusion=dt.date(2026, 11, 18), team="haem-a"),
    Patient(id="P002", infusion=dt.date(2026, 11, 18), team="haem-a", devices=("ox-7",)),
])


def parse(payload: object, topic: str = TOPIC, received_at: int = RECEIVED) -> Outcome:
    raw = payload if isinstance(payload, bytes) else dumps(payload)
    return Parser(REGISTRY).parse(topic, raw, received_at)


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def accepted(payload: object, **kw: object) -> Reading:
    out = parse(payload, **kw)  # type: ignore[arg-type]
    assert out.rejections == [] and out.status is None, out.rejections
    assert len(out.readings) == 1
    return out.readings[0]


def expect_rejected(payload: object, reason: str, **kw: object) -> Rejection:
    out = parse(payload, **kw)  # type: ignore[arg-type]
    assert out.readings == [] and out.status is None, out.readings
    assert len(out.rejections) == 1
    rej = out.rejections[0]
    assert rej.reason == reason, rej
    assert rej.detail and "\n" not in rej.detail
    assert rej.received_at == kw.get("received_at", RECEIVED)
    assert rej.topic == kw.get("topic", TOPIC)
    return rej


def temp(value: float, **fields: object) -> dict[str, object]:
    return {"ts": T, "kind": "temperature", "temp": value, **fields}


def ox(**fields: object) -> dict[str, object]:
    return {"ts": T, "kind": "oximetry", **fields}


# --- temperature -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [25.0, 45.0, 37.2])
def test_temperature_inside_the_range_is_accepted(value: float) -> None:
    r = accepted(temp(value))
    assert r.temp == value and r.kind == "temperature"
    assert (r.patient_id, r.device_id, r.ts, r.received_at) == ("P001", "ox-1", T, RECEIVED)


@pytest.mark.parametrize("value", [24.9, 45.1, -40, 0])
def test_temperature_outside_the_range_is_out_of_range(value: float) -> None:
    rej = expect_rejected(temp(value), "out_of_range")
    assert "temp" in rej.detail and f"{value:g}" in rej.detail
    assert json.loads(rej.payload) == temp(value)  # the whole message, as sent
    assert (rej.patient_id, rej.device_id) == ("P001", "ox-1")
    assert rej.batch_index is None and rej.batch_size is None


def test_fahrenheit_is_converted_to_celsius_rounded_to_3_decimals() -> None:
    assert accepted(temp(100.4, unit="F")).temp == 38.0
    assert accepted(temp(101.3, unit="F")).temp == 38.5
    assert accepted(temp(98.6, unit="F")).temp == 37.0
    assert accepted(temp(99.5, unit="F")).temp == 37.5
    assert accepted(temp(100.0, unit="F")).temp == 37.778  # 37.7777... rounded
    assert accepted(temp(37.12345)).temp == 37.123


def test_fahrenheit_is_range_checked_after_conversion() -> None:
    assert accepted(temp(77.0, unit="F")).temp == 25.0
    assert accepted(temp(113.0, unit="F")).temp == 45.0
    # 40 would be a plausible Celsius value, but 40 °F is 4.4 °C
    rej = expect_rejected(temp(40.0, unit="F"), "out_of_range")
    assert "°F" in rej.detail and "4.4 °C" in rej.detail
    expect_rejected(temp(113.5, unit="F"), "out_of_range")
    expect_rejected(temp(76.9, unit="F"), "out_of_range")


def test_temperature_without_temp_is_schema() -> None:
    expect_rejected({"ts": T, "kind": "temperature"}, "schema")
    expect_rejected({"ts": T, "kind": "temperature", "spo2": 97}, "schema")


def test_site_defaults_to_axillary_and_keeps_what_was_sent() -> None:
    assert accepted(temp(37.0)).site == "axillary"
    assert accepted(temp(37.0, site="core")).site == "core"
    expect_rejected(temp(37.0, site="rectal"), "schema")
    expect_rejected(temp(37.0, unit="K"), "schema")


# --- oximetry --------------------------------------------------------------------------------

@pytest.mark.parametrize("hr", [20, 250, 20.0, 72.5])
def test_hr_inside_the_range_is_accepted(hr: float) -> None:
    assert accepted(ox(hr=hr)).hr == hr


@pytest.mark.parametrize("hr", [19.9, 250.1, 1, 254, 256])
def test_hr_outside_the_range_is_out_of_range(hr: float) -> None:
    assert "hr" in expect_rejected(ox(spo2=97, hr=hr), "out_of_range").detail


@pytest.mark.parametrize("spo2", [50, 100, 97.5])
def test_spo2_inside_the_range_is_accepted(spo2: float) -> None:
    r = accepted(ox(spo2=spo2))
    assert r.spo2 == spo2 and r.hr is None and r.site is None and r.temp is None


@pytest.mark.parametrize("spo2", [49, 101, 49.99, 126, 128])
def test_spo2_outside_the_range_is_out_of_range(spo2: float) -> None:
    assert "spo2" in expect_rejected(ox(spo2=spo2, hr=70), "out_of_range").detail


@pytest.mark.parametrize("rr", [3, 80])
def test_rr_at_the_limits_is_accepted(rr: float) -> None:
    assert accepted(ox(spo2=97, hr=70, rr=rr)).rr == rr


@pytest.mark.parametrize("rr", [2.9, 80.1, 0])
def test_rr_outside_the_range_is_out_of_range(rr: float) -> None:
    assert "rr" in expect_rejected(ox(spo2=97, hr=70, rr=rr), "out_of_range").detail
    expect_rejected(temp(37.0, rr=rr), "out_of_range")  # checked on temperature readings too


@pytest.mark.parametrize(("fields", "left"), [
    ({"spo2": 127, "hr": 72}, {"hr": 72}),
    ({"spo2": 0, "hr": 72}, {"hr": 72}),
    ({"spo2": 127.0, "hr": 72}, {"hr": 72}),
    ({"spo2": 97, "hr": 255}, {"spo2": 97}),
    ({"spo2": 97, "hr": 0}, {"spo2": 97}),
    ({"spo2": 127, "hr": 255}, {}),
    ({"spo2": 0, "hr": 0}, {}),
    ({"spo2": 127}, {}),
    ({"hr": 255}, {}),
])
def test_sentinels_become_an_absent_field_and_the_no_signal_flag(
        fields: dict[str, float], left: dict[str, float]) -> None:
    r = accepted(ox(seq=3, **fields))
    assert r.flags == ("no_signal",)
    assert r.spo2 == left.get("spo2") and r.hr == left.get("hr")
    assert r.seq == 3 and r.ts == T  # the reading is kept: a sign of life of the device


def test_no_sentinel_no_flag() -> None:
    assert accepted(ox(spo2=97, hr=72)).flags == ()


def test_oximetry_without_spo2_or_hr_is_schema() -> None:
    assert "spo2" in expect_rejected(ox(), "schema").detail
    expect_rejected(ox(rr=12, pi=3), "schema")
    expect_rejected(ox(temp=37.0), "schema")


def test_a_sentinel_does_not_hide_the_other_field_being_out_of_range() -> None:
    expect_rejected(ox(spo2=127, hr=300), "out_of_range")
    expect_rejected(ox(spo2=20, hr=255), "out_of_range")


# --- time ------------------------------------------------------------------------------------

def test_rfc3339_with_an_offset_and_epoch_ms_mean_the_same_instant() -> None:
    at = dt.datetime(2026, 11, 20, 11, 30, 15, 250_000, tzinfo=dt.UTC)
    ms = int(at.timestamp() * 1000)
    paris = at.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()
    assert paris == "2026-11-20T12:30:15.250000+01:00"
    zulu = "2026-11-20T11:30:15.250Z"
    new_york = at.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()
    assert {accepted(ox(ts=ts, spo2=97)).ts for ts in (paris, zulu, new_york, ms)} == {ms}


def test_rfc3339_without_an_offset_is_schema() -> None:
    assert "ts" in expect_rejected(ox(ts="2026-11-20T11:30:15", spo2=97), "schema").detail
    expect_rejected(ox(ts="2026-11-20", spo2=97), "schema")
    expect_rejected(ox(ts="yesterday", spo2=97), "schema")


@pytest.mark.parametrize("ts", [-1, 1.7e12, True, None, [], "1779998400000"])
def test_ts_of_another_type_is_schema(ts: object) -> None:
    expect_rejected(ox(ts=ts, spo2=97), "schema")


def test_missing_ts_or_kind_is_schema() -> None:
    expect_rejected({"kind": "oximetry", "spo2": 97}, "schema")
    expect_rejected({"ts": T, "spo2": 97}, "schema")
    expect_rejected({"ts": T, "kind": "ecg", "spo2": 97}, "schema")


def test_device_time_exactly_5_minutes_ahead_is_accepted_1_ms_more_is_clock_skew() -> None:
    assert accepted(ox(ts=RECEIVED + limits.MAX_AHEAD_MS, spo2=97)).ts == RECEIVED + 300_000
    rej = expect_rejected(ox(ts=RECEIVED + 300_001, spo2=97), "clock_skew")
    assert "ahead" in rej.detail
    expect_rejected(ox(ts=RECEIVED + 3_600_000, spo2=97), "clock_skew")


def test_device_time_before_2010_is_clock_skew() -> None:
    assert accepted(ox(ts=limits.EARLIEST_TS_MS, spo2=97)).ts == limits.EARLIEST_TS_MS
    assert "2010" in expect_rejected(ox(ts=limits.EARLIEST_TS_MS - 1, spo2=97), "clock_skew").detail
    expect_rejected(ox(ts=0, spo2=97), "clock_skew")  # a clock that booted at 1970
    expect_rejected(ox(ts="2000-01-01T00:00:00Z", spo2=97), "clock_skew")


def test_old_readings_are_accepted() -> None:
    day_ago = RECEIVED - 86_400_000
    assert accepted(ox(ts=day_ago, spo2=97)).ts == day_ago


def test_absurd_device_times_are_clock_skew_not_a_crash() -> None:
    expect_rejected(b'{"ts": %s, "kind": "oximetry", "spo2": 97}' % (b"9" * 400), "clock_skew")
    expect_rejected(ox(ts="9999-12-31T23:59:59-23:59", spo2=97), "clock_skew")
    expect_rejected(ox(ts="0001-01-01T00:00:00+01:00", spo2=97), "clock_skew")


# --- message shape ---------------------------------------------------------------------------

def test_unknown_extra_fields_are_ignored() -> None:
    r = accepted(ox(spo2=97, hr=72, firmware="1.2.3", extra={"a": [1, 2]}))
    assert (r.spo2, r.hr) == (97, 72)


def test_optional_fields_are_kept() -> None:
    r = accepted(ox(seq=12, spo2=97, hr=72, rr=16, pi=2.5, battery=80))
    assert (r.seq, r.rr, r.pi, r.battery) == (12, 16, 2.5, 80)
    assert accepted(ox(seq=2**63 - 1, spo2=97, hr=72)).seq == 2**63 - 1  # 64 bits, no more


@pytest.mark.parametrize("fields", [
    {"seq": -1}, {"seq": 2**63}, {"seq": 1.5}, {"seq": "1"}, {"battery": 101}, {"battery": -1},
    {"flags": ["probe_off", "on_fire"]}, {"flags": "motion"}, {"flags": ["no_signal"]},
    {"spo2": "97"}, {"hr": True},
])
def test_optional_fields_of_the_wrong_type_or_value_are_schema(fields: dict[str, object]) -> None:
    expect_rejected(ox(**{"spo2": 97, "hr": 72, **fields}), "schema")


def test_a_manual_spot_check_is_a_temperature_reading_flagged_manual() -> None:
    """CONTRACT v1.1: `manual` marks a reading a person took and entered (section 6)."""
    r = accepted(temp(37.2, site="oral", flags=["manual"]))
    assert (r.temp, r.site, r.flags) == (37.2, "oral", ("manual",))


def test_flags_are_deduplicated_and_no_signal_appended_once() -> None:
    r = accepted(ox(spo2=97, hr=72, flags=["motion", "low_battery", "motion"]))
    assert r.flags == ("motion", "low_battery")
    r = accepted(ox(spo2=127, hr=255, flags=["probe_off", "probe_off"]))
    assert r.flags == ("probe_off", "no_signal")


def test_payload_of_64_kib_is_accepted_one_byte_more_is_too_large() -> None:
    base = dumps(ox(spo2=97, hr=72, pad=""))
    pad = "x" * (limits.MAX_PAYLOAD_BYTES - len(base))
    exact = dumps(ox(spo2=97, hr=72, pad=pad))
    assert len(exact) == 64 * 1024
    assert accepted(exact).spo2 == 97
    over = dumps(ox(spo2=97, hr=72, pad=pad + "x"))
    rej = expect_rejected(over, "too_large")
    assert "65537" in rej.detail
    # the dead letter keeps a bounded prefix, and says what the whole was
    assert rej.payload == over[:MAX_DEAD_LETTER_BYTES].decode() and rej.payload_truncated
    assert rej.payload_bytes == 65537
    assert rej.payload_sha256 == hashlib.sha256(over).hexdigest()


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024, 10 * 1024 * 1024])
@pytest.mark.parametrize("utf8", [True, False])
def test_a_huge_payload_gives_a_small_dead_letter(size: int, utf8: bool) -> None:
    # a multi-byte character across the cut, or bytes that are not UTF-8 at all
    payload = ("é" * size).encode()[:size] if utf8 else b"\xff" * size
    rej = expect_rejected(payload, "too_large")
    assert len(encode(rej)) < 2 * MAX_DEAD_LETTER_BYTES
    assert rej.payload_bytes == size and rej.payload_truncated
    assert rej.payload_encoding == ("utf-8" if utf8 else "base64")
    if utf8:
        assert rej.payload == "é" * (MAX_DEAD_LETTER_BYTES // 2)


def test_a_huge_topic_is_echoed_cut_and_escaped() -> None:
    topic = "vitals/v1/" + "\n" * 70_000 + "/ox-1"
    rej = parse(b"{}", topic=topic).rejections[0]
    assert rej.reason == "bad_topic" and len(encode(rej)) < 4 * 1024
    assert "\n" not in rej.detail and rej.topic.endswith("(70015 characters)")


def test_batch_of_1000_is_accepted_1001_is_too_large() -> None:
    def batch(n: int) -> dict[str, object]:
        return {"readings": [{"ts": T - i, "kind": "oximetry", "seq": i, "spo2": 97}
                             for i in range(n)]}

    assert len(dumps(batch(1000))) <= limits.MAX_PAYLOAD_BYTES
    out = parse(batch(1000))
    assert len(out.readings) == 1000 and out.rejections == []
    assert [r.seq for r in out.readings] == list(range(1000))
    rej = expect_rejected(batch(1001), "too_large")
    assert "1001" in rej.detail and rej.batch_index is None


def test_a_malformed_batch_of_1001_is_also_too_large_as_one_entry() -> None:
    out = parse({"readings": [{"ts": T, "kind": "oximetry", "spo2": "x"}] * 1001})
    assert [r.reason for r in out.rejections] == ["too_large"]


def test_empty_batch_is_schema() -> None:
    assert "empty" in expect_rejected({"readings": []}, "schema").detail


@pytest.mark.parametrize("readings", [None, {}, "x", 3, {"ts": T}])
def test_readings_not_a_list_is_schema(readings: object) -> None:
    assert "`readings`" in expect_rejected({"readings": readings}, "schema").detail


@pytest.mark.parametrize("payload", [[ox(spo2=97)], [], "x", 3, None, True])
def test_top_level_json_that_is_not_an_object_is_schema(payload: object) -> None:
    rej = expect_rejected(payload, "schema")
    assert rej.payload == dumps(payload).decode()


@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,
    b'{"ts": 1, "kind": "oximetry", "spo2": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"readings": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"readings": [{"ts": 1, "kind": "oximetry", "x": ' + b"{\"a\": " * 3000 + b"1"
    + b"}" * 3000 + b"}]}",
], ids=["array", "in-a-field", "in-readings", "objects-in-a-batch"])
def test_json_nested_too_deep_is_schema_not_internal_error(body: bytes) -> None:
    rej = expect_rejected(body, "schema")
    assert "too deeply" in rej.detail and rej.payload_bytes == len(body)


def test_a_status_nested_too_deep_is_schema() -> None:
    expect_rejected(b'{"online": ' + b"[" * 5000 + b"]" * 5000 + b"}", "schema",
                    topic=STATUS_TOPIC)


@pytest.mark.parametrize("payload", [b"", b"{not json", b'{"ts": 1', b"\x00", b'{"a":1} x'])
def test_not_json_is_bad_json_with_the_payload_as_text(payload: bytes) -> None:
    rej = expect_rejected(payload, "bad_json")
    assert rej.payload == payload.decode() and rej.payload_encoding == "utf-8"


@pytest.mark.parametrize("payload", [
    b"\xff\xfe\x00",
    b'{"ts": 1, "kind": "ox\xffimetry"}',
    # the bad byte in a field the decoder skips, in a reading that is otherwise valid
    b'{"ts": %d, "kind": "oximetry", "spo2": 97, "note": "\xc3\x28"}' % T,
    # ... and in a message that is malformed after it
    b'{"ts": %d, "kind": "oximetry", "spo2": 97, "note": "\xff", "x": [' % T,
    b'{"readings": [{"k\xff": 1}]}',
    "{\"ts\": 1, \"kind\": \"oximetry\", \"note\": \"é\"}".encode("latin-1"),
])
def test_non_utf8_is_bad_json_with_the_payload_in_base64(payload: bytes) -> None:
    rej = expect_rejected(payload, "bad_json")
    assert rej.payload_encoding == "base64"
    assert base64.b64decode(rej.payload, validate=True) == payload


def test_non_utf8_status_is_bad_json() -> None:
    rej = expect_rejected(b'{"state": "on\xffline"}', "bad_json", topic=STATUS_TOPIC)
    assert base64.b64decode(rej.payload) == b'{"state": "on\xffline"}'


def test_utf8_beyond_ascii_is_fine() -> None:
    assert accepted(ox(spo2=97, note="Fingerclip verrutscht – ½ h")).spo2 == 97


# --- topic, patient, device ------------------------------------------------------------------

def test_unknown_patient_is_rejected() -> None:
    rej = expect_rejected(ox(spo2=97), "unknown_patient", topic="vitals/v1/P999/ox-1")
    assert "P999" in rej.detail and (rej.patient_id, rej.device_id) == ("P999", "ox-1")


def test_a_listed_device_is_accepted_an_unlisted_one_is_unknown_device() -> None:
    assert accepted(ox(spo2=97), topic="vitals/v1/P002/ox-7").device_id == "ox-7"
    rej = expect_rejected(ox(spo2=97), "unknown_device", topic="vitals/v1/P002/ox-8")
    assert "ox-8" in rej.detail and "P002" in rej.detail
    expect_rejected({"state": "online"}, "unknown_device", topic="vitals/v1/P002/ox-8/status")


@pytest.mark.parametrize("topic", [
    "", "vitals/v1/P001", "vitals/v1/P001/", "vitals/v2/P001/ox-1", "vitals/v1/P001/ox-1/x",
    "vitals/v1/P 001/ox-1", "vitals/v1/P001/ox.1", "/vitals/v1/P001/ox-1",
    "vitals/v1/P001/ox-1/status/x", "vitals/v1/P001/ox-1\n", "vitals/v1/" + "P" * 65 + "/ox-1",
    "vitals/v1/P001/ox-1/" + "status".upper(),
])
def test_a_topic_off_the_contract_is_bad_topic(topic: str) -> None:
    rej = expect_rejected(ox(spo2=97), "bad_topic", topic=topic)
    assert rej.patient_id is None and rej.payload == dumps(ox(spo2=97)).decode()


def test_ids_of_64_characters_are_fine() -> None:
    pid = "P" * 64
    registry = PatientRegistry([Patient(id=pid, infusion=dt.date(2026, 1, 1), team="t")])
    out = Parser(registry).parse(f"vitals/v1/{pid}/{'d' * 64}", dumps(ox(spo2=97)), RECEIVED)
    assert len(out.readings) == 1 and out.readings[0].device_id == "d" * 64


# --- status ----------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["online", "offline"])
def test_status_messages(state: str) -> None:
    out = parse({"ts": T, "state": state, "battery": 12}, topic=STATUS_TOPIC)
    assert out.readings == [] and out.rejections == [] and out.entries == 1
    s = out.status
    assert s is not None
    assert (s.patient_id, s.device_id, s.state, s.ts, s.battery, s.received_at) == (
        "P001", "ox-1", state, T, 12, RECEIVED)


def test_status_without_ts_or_with_an_old_or_rfc3339_ts() -> None:
    s = parse({"state": "offline"}, topic=STATUS_TOPIC).status
    assert s is not None and s.ts is None and s.battery is None and s.state == "offline"
    # a last will's ts is when the device connected: days old, even an unset clock, is fine
    for ts in (T - 7 * 86_400_000, 0):
        s = parse({"ts": ts, "state": "offline"}, topic=STATUS_TOPIC).status
        assert s is not None and s.ts == ts
    s = parse({"ts": "2026-11-20T12:59:00+01:00", "state": "online"}, topic=STATUS_TOPIC).status
    assert s is not None and s.ts == T


def test_status_far_ahead_is_clock_skew() -> None:
    expect_rejected({"ts": RECEIVED + 300_001, "state": "online"}, "clock_skew", topic=STATUS_TOPIC)
    assert parse({"ts": RECEIVED + 300_000, "state": "online"}, topic=STATUS_TOPIC).status


@pytest.mark.parametrize("payload", [
    {"state": "asleep"}, {"ts": T}, {"state": "online", "battery": 101},
    {"state": "online", "ts": "2026-11-20T11:00:00"}, [], {"state": None},
])
def test_bad_status_is_schema(payload: object) -> None:
    expect_rejected(payload, "schema", topic=STATUS_TOPIC)


def test_status_not_json_is_bad_json() -> None:
    expect_rejected(b"offline", "bad_json", topic=STATUS_TOPIC)


def test_status_of_an_unknown_patient_is_unknown_patient() -> None:
    expect_rejected({"state": "online"}, "unknown_patient", topic="vitals/v1/P999/ox-1/status")


# --- batches ---------------------------------------------------------------------------------

def test_a_batch_passes_its_good_readings_and_rejects_each_bad_one_on_its_own() -> None:
    items = [
        ox(seq=1, spo2=97, hr=72),
        ox(seq=2, spo2=97, hr=400, firmware="1.2"),  # out_of_range, with an unknown field
        ox(seq=3, ts=RECEIVED + 3_600_000, spo2=97),  # clock_skew
        temp(37.0, seq=4),
        {"ts": T, "kind": "temperature", "seq": 5},  # schema (no temp)
        ox(seq=6, spo2=127, hr=70),
    ]
    out = parse({"readings": items})
    assert [r.seq for r in out.readings] == [1, 4, 6]
    assert out.readings[2].flags == ("no_signal",)
    got = {r.batch_index: r for r in out.rejections}
    assert {i: r.reason for i, r in got.items()} == {
        1: "out_of_range", 2: "clock_skew", 4: "schema"}
    for i, r in got.items():
        assert r.batch_size == 6 and r.payload_encoding == "utf-8"
        assert json.loads(r.payload) == items[i]  # the item as the device sent it
        assert (r.patient_id, r.device_id, r.topic) == ("P001", "ox-1", TOPIC)
    assert out.entries == 6


def test_a_batch_with_a_malformed_item_still_passes_the_others() -> None:
    items: list[object] = [ox(seq=1, spo2=97), 5, ox(seq=3, spo2="97"), None,
                           ox(seq=5, spo2=101), ox(seq=6, hr=60)]
    out = parse({"readings": items})
    assert [r.seq for r in out.readings] == [1, 6]
    got = {r.batch_index: r for r in out.rejections}
    assert {i: r.reason for i, r in got.items()} == {
        1: "schema", 2: "schema", 3: "schema", 4: "out_of_range"}
    for i, r in got.items():
        assert r.batch_size == 6 and json.loads(r.payload) == items[i]


def test_a_single_reading_batch_is_a_batch() -> None:
    out = parse({"readings": [ox(spo2=40)]})
    assert [(r.reason, r.batch_index, r.batch_size) for r in out.rejections] == [
        ("out_of_range", 0, 1)]


def test_a_reading_that_merely_mentions_readings_is_a_single_reading() -> None:
    r = accepted(ox(spo2=97, note="readings"))
    assert r.spo2 == 97
