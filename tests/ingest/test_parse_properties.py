"""Properties of the pure ingest core on any input: `Parser.parse` never raises, accounts for
every entry, rejects with a known reason and the original payload, and accepts only readings
that follow the contract; `Ingest` counts every entry once and acknowledges every QoS 1
message once, in arrival order (CONTRACT sections 1 and 2)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import re
from typing import Any

import msgspec
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ingest import limits
from ingest.parse import Outcome, Parser
from ingest.service import Ingest
from ingest.sink import OnDone, Sink
from vitals import topics
from vitals.patients import Patient, PatientRegistry
from vitals.records import DEVICE_FLAGS, MAX_DEAD_LETTER_BYTES, NO_SIGNAL, Reading, is_entered

RECEIVED = int(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
DAY = 86_400_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

REGISTRY = PatientRegistry([
    Patient(id="P001", infusion=dt.date(2026, 11, 18), team="haem-a"),
    Patient(id="P002", infusion=dt.date(2026, 11, 18), team="haem-a", devices=("ox-7", "th-7")),
])
PARSER = Parser(REGISTRY)

# The reasons a message or reading may be rejected for; `internal_error` means a bug.
REASONS = {"bad_topic", "too_large", "unknown_patient", "unknown_device", "bad_json", "schema",
           "out_of_range", "clock_skew"}
# Written from the contract, not taken from the parser.
CONTRACT_TOPIC = re.compile(r"vitals/v1/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})(/status)?")

FAST = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --- strategies ------------------------------------------------------------------------------

GOOD_TOPICS = ["vitals/v1/P001/ox-1", "vitals/v1/P001/th-1", "vitals/v1/P002/ox-7"]
STATUS_TOPICS = ["vitals/v1/P001/ox-1/status", "vitals/v1/P002/ox-7/status"]
ODD_TOPICS = ["vitals/v1/P001/ox-1/status", "vitals/v1/P002/ox-8", "vitals/v1/P999/ox-1",
              "vitals/v1/P001", "vitals/v2/P001/ox-1", "vitals/v1/P001/ox 1", "",
              "vitals/v1/P001/ox-1/status/x", "vitals/v1/P001/" + "d" * 65]
ident = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
topics_st = st.one_of(
    st.sampled_from(GOOD_TOPICS), st.sampled_from(GOOD_TOPICS), st.sampled_from(GOOD_TOPICS),
    st.sampled_from(ODD_TOPICS),
    st.builds(lambda p, d, s: f"vitals/v1/{p}/{d}{s}", st.sampled_from(["P001", "P002"]) | ident,
              ident, st.sampled_from(["", "/status", "/x"])),
    st.text(max_size=80),
)


def rfc3339(ms: int, offset_min: int, zulu: bool, precision: str) -> str:
    at = EPOCH + dt.timedelta(milliseconds=ms)
    if zulu:
        return at.isoformat(timespec=precision).replace("+00:00", "Z")
    return at.astimezone(dt.timezone(dt.timedelta(minutes=offset_min))).isoformat(
        timespec=precision)


good_ms = st.integers(RECEIVED - 30 * DAY, RECEIVED + limits.MAX_AHEAD_MS)
good_ts = st.one_of(
    good_ms,
    st.builds(rfc3339, good_ms, st.integers(-14 * 60, 14 * 60), st.booleans(),
              st.just("milliseconds")),
)
flags_st = st.lists(st.sampled_from(sorted(DEVICE_FLAGS)), max_size=5)
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "seq": st.integers(0, 10**6),
    "rr": st.floats(3, 80) | st.integers(3, 80),
    "pi": st.floats(0, 100),
    "battery": st.integers(0, 100) | st.floats(0, 100),
    "flags": flags_st,
}


@st.composite
def valid_readings(draw: st.DrawFn) -> dict[str, Any]:
    r: dict[str, Any] = {"ts": draw(good_ts)}
    if draw(st.booleans()):
        r["kind"] = "temperature"
        unit = draw(st.sampled_from([None, "C", "F"]))
        if unit == "F":
            r["temp"] = draw(st.floats(77, 113) | st.integers(77, 113))
        else:
            r["temp"] = draw(st.floats(25, 45) | st.integers(25, 45))
        if unit is not None:
            r["unit"] = unit
        if draw(st.booleans()):
            r["site"] = draw(st.sampled_from(["core", "oral", "tympanic", "axillary", "skin"]))
    else:
        r["kind"] = "oximetry"
        spo2 = st.floats(50, 100) | st.integers(50, 100) | st.sampled_from([127, 0, 127.0])
        hr = st.floats(20, 250) | st.integers(20, 250) | st.sampled_from([255, 0, 255.0])
        which = draw(st.sampled_from(["spo2", "hr", "both"]))
        if which != "hr":
            r["spo2"] = draw(spo2)
        if which != "spo2":
            r["hr"] = draw(hr)
    for name, strategy in OPTIONAL.items():
        if draw(st.booleans()):
            r[name] = draw(strategy)
    return r


EVIL: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, 127, 255, 0.0, -0.0, 127.0, 255.0, -1, 2**63, 2**64, 10**30, -(10**30),
                     10**400, -(10**400),
                     1e308, -1e308, 5e-324, 24.9, 45.1, 19.9, 250.1, 49, 101, 2.9, 80.1,
                     "F", "C", "K", "", "temperature", "oximetry", "readings",
                     RECEIVED + limits.MAX_AHEAD_MS, RECEIVED + limits.MAX_AHEAD_MS + 1,
                     limits.EARLIEST_TS_MS - 1, limits.EARLIEST_TS_MS,
                     "2026-11-20T11:00:00", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00+01:00",
                     "2026-11-20T11:00:00.123456-05:30", "2026-11-20", "2009-12-31T23:59:59Z",
                     "2026-11-20 11:00:00+00:00", "1779998400000", ["motion"], ["no_signal"],
                     ["motion", "motion"], {}, []]),
    st.integers(),
    st.integers(-(10**20), 10**20),
    st.floats(),  # NaN and infinities too: not JSON, so the whole message is bad_json
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
)
FIELDS = ["ts", "kind", "seq", "temp", "unit", "site", "spo2", "hr", "rr", "pi", "battery",
          "flags"]


@st.composite
def near_valid_readings(draw: st.DrawFn) -> dict[str, Any]:
    """A valid reading with one thing wrong (or, sometimes, merely unusual)."""
    r = draw(valid_readings())
    action = draw(st.sampled_from(["set", "set", "set", "time", "delete", "extra", "fahrenheit"]))
    if action == "set":
        r[draw(st.sampled_from(FIELDS))] = draw(EVIL)
    elif action == "time":
        r["ts"] = draw(st.one_of(
            st.integers(RECEIVED + limits.MAX_AHEAD_MS - 2, RECEIVED + limits.MAX_AHEAD_MS + 2),
            st.integers(limits.EARLIEST_TS_MS - 2, limits.EARLIEST_TS_MS + 2),
            st.integers(RECEIVED, RECEIVED + 10 * 365 * DAY), st.integers(0, RECEIVED),
            st.builds(rfc3339, st.integers(0, RECEIVED + DAY), st.integers(-900, 900),
                      st.booleans(), st.sampled_from(["seconds", "milliseconds"])),
            st.builds(lambda ms: rfc3339(ms, 0, False, "seconds")[:-6], good_ms),  # no offset
        ))
    elif action == "delete":
        r.pop(draw(st.sampled_from(sorted(r))), None)
    elif action == "extra":
        r[draw(st.text(max_size=10))] = draw(EVIL)
    else:
        r["unit"] = "F"
    return r


readings_st = st.one_of(valid_readings(), near_valid_readings())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=20,
)


@st.composite
def big_batches(draw: st.DrawFn) -> bytes:
    """Batches of 0, 1, 999, 1000 or 1001 readings, a few of them bad."""
    n = draw(st.sampled_from([0, 1, 2, 999, 1000, 1001]))
    template = draw(valid_readings())
    template.pop("flags", None)
    items: list[Any] = []
    for i in range(n):
        item = dict(template)
        item["seq"] = i
        if isinstance(item["ts"], int):
            item["ts"] -= i
        items.append(item)
    for _ in range(draw(st.integers(0, 3)) if n else 0):
        items[draw(st.integers(0, n - 1))] = draw(near_valid_readings() | json_values)
    return dumps({"readings": items})


@st.composite
def near_64_kib(draw: st.DrawFn) -> bytes:
    """A message padded to 64 KiB give or take a few bytes."""
    obj = draw(valid_readings() | st.lists(valid_readings(), min_size=1, max_size=3).map(
        lambda rs: {"readings": rs}))
    obj["pad"] = ""
    target = limits.MAX_PAYLOAD_BYTES + draw(st.integers(-3, 3))
    obj["pad"] = "x" * (target - len(dumps(obj)))
    payload = dumps(obj)
    assert len(payload) == target
    return payload


def as_payload(obj: object) -> bytes:
    return json.dumps(obj).encode()


NOT_UTF8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf",
                            b"\xf8\x88\x80\x80\x80"])


@st.composite
def not_utf8_json(draw: st.DrawFn) -> bytes:
    """JSON readings (or a batch) with bytes that are not UTF-8 inside a string, anywhere."""
    obj = draw(readings_st | st.lists(readings_st, min_size=1, max_size=3).map(
        lambda rs: {"readings": rs}))
    obj[draw(st.sampled_from(["note", "kind", "site", "unit", "readings"]))] = "@@"
    bad = draw(NOT_UTF8)
    payload = dumps(obj).replace(b"@@", bad, 1)
    if draw(st.booleans()):  # and maybe truncated after the bad bytes
        payload = payload[:draw(st.integers(payload.index(bad) + len(bad), len(payload)))]
    return payload


payloads_st = st.one_of(
    st.binary(max_size=300),
    json_values.map(as_payload),
    readings_st.map(dumps),
    readings_st.map(as_payload),
    st.lists(readings_st, max_size=12).map(lambda rs: dumps({"readings": rs})),
    st.lists(readings_st | json_values, max_size=6).map(lambda rs: dumps({"readings": rs})),
    st.dictionaries(st.sampled_from(["state", "ts", "battery", "readings"]),
                    EVIL | st.sampled_from(["online", "offline"])).map(dumps),
    not_utf8_json(),
)


# --- the oracle ------------------------------------------------------------------------------

class NotJson(Exception):
    pass


def _refuse_constant(name: str) -> float:
    raise NotJson(name)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotJson(text)
    return value


def json_of(payload: bytes) -> Any:
    """The JSON value of a payload per the contract (UTF-8, no NaN, finite numbers), or raise."""
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite)
    except (UnicodeDecodeError, ValueError, NotJson) as exc:
        raise NotJson(str(exc)) from None


def batch_items(topic: str, payload: bytes) -> list[Any] | None:
    """The readings of the message when it is a batch the contract splits, else None."""
    m = CONTRACT_TOPIC.fullmatch(topic)
    if m is None or m.group(3) or len(payload) > limits.MAX_PAYLOAD_BYTES:
        return None
    if REGISTRY.get(m.group(1)) is None or not REGISTRY.knows_device(m.group(1), m.group(2)):
        return None
    try:
        obj = json_of(payload)
    except NotJson:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("readings"), list):
        items = obj["readings"]
        return items if 1 <= len(items) <= limits.MAX_BATCH_READINGS else None
    return None


def epoch_ms(ts: int | str) -> int:
    if isinstance(ts, int):
        return ts
    return (dt.datetime.fromisoformat(ts) - EPOCH) // dt.timedelta(milliseconds=1)


def is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_reading(r: Reading, src: Any, topic: str) -> None:
    """An accepted reading follows the contract and says what the device sent."""
    patient, device = topic.split("/")[2:4]
    assert isinstance(src, dict)
    assert (r.patient_id, r.device_id, r.received_at) == (patient, device, RECEIVED)
    assert type(r.ts) is int
    assert limits.EARLIEST_TS_MS <= r.ts <= RECEIVED + limits.MAX_AHEAD_MS
    assert r.ts == epoch_ms(src["ts"])
    assert r.kind == src["kind"]
    assert r.seq == src.get("seq")
    assert r.battery == src.get("battery")
    assert r.rr == src.get("rr") and (r.rr is None or 3 <= r.rr <= 80)
    assert r.pi == src.get("pi")
    device_flags = [f for f in r.flags if f != NO_SIGNAL]
    assert device_flags == list(dict.fromkeys(src.get("flags", [])))
    assert len(set(r.flags)) == len(r.flags) and set(r.flags) <= DEVICE_FLAGS | {NO_SIGNAL}
    if r.kind == "temperature":
        assert is_number(src["temp"])
        celsius = src["temp"] if src.get("unit", "C") == "C" else (src["temp"] - 32) * 5 / 9
        assert r.temp is not None and 25 <= r.temp <= 45
        assert r.temp == round(celsius, 3)
        assert r.site == src.get("site", "axillary")
        assert r.spo2 is None and r.hr is None and NO_SIGNAL not in r.flags
    else:
        assert r.temp is None and r.site is None
        sent_spo2, sent_hr = src.get("spo2"), src.get("hr")
        spo2_sentinel = sent_spo2 is not None and sent_spo2 in limits.SPO2_SENTINELS
        hr_sentinel = sent_hr is not None and sent_hr in limits.HR_SENTINELS
        assert (NO_SIGNAL in r.flags) == (spo2_sentinel or hr_sentinel)
        assert r.spo2 == (None if spo2_sentinel else sent_spo2)
        assert r.hr == (None if hr_sentinel else sent_hr)
        assert r.spo2 is None or (50 <= r.spo2 <= 100 and r.spo2 not in (0, 127))
        assert r.hr is None or (20 <= r.hr <= 250 and r.hr not in (0, 255))
    # what goes to Kafka decodes back to the same record
    assert msgspec.json.decode(msgspec.json.encode(r), type=Reading) == r


def check_outcome(topic: str, payload: bytes, out: Outcome) -> None:
    assert isinstance(out, Outcome)
    items = batch_items(topic, payload)
    assert out.entries == (len(items) if items is not None else 1)
    for rej in out.rejections:
        assert rej.reason in REASONS, rej
        assert rej.detail.strip(), rej
        assert rej.topic == topic and rej.received_at == RECEIVED
        if rej.batch_index is None:
            assert rej.batch_size is None
            # the whole payload, or (over the dead-letter limit) a prefix and what the whole was
            kept = payload[:MAX_DEAD_LETTER_BYTES]
            assert rej.payload_truncated == (len(kept) < len(payload))
            if rej.payload_truncated:
                assert rej.payload_bytes == len(payload)
                assert rej.payload_sha256 == hashlib.sha256(payload).hexdigest()
            if rej.payload_encoding == "utf-8":
                sent = rej.payload.encode("utf-8")
                assert sent == payload or (rej.payload_truncated and kept.startswith(sent)
                                           and len(sent) > len(kept) - 4)
            else:
                assert rej.payload_encoding == "base64"
                assert base64.b64decode(rej.payload, validate=True) == kept
                try:
                    kept.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    raise AssertionError("base64 for a UTF-8 payload")
        else:
            assert items is not None, rej
            assert rej.batch_size == len(items) and 0 <= rej.batch_index < len(items)
            assert rej.payload_encoding == "utf-8"
            assert json.loads(rej.payload) == items[rej.batch_index]
    if items is not None:
        assert out.status is None
        assert all(rej.batch_index is not None for rej in out.rejections)
        rejected = [rej.batch_index for rej in out.rejections]
        assert len(set(rejected)) == len(rejected)
        kept = [i for i in range(len(items)) if i not in set(rejected)]
        assert len(kept) == len(out.readings)
        for i, r in zip(kept, out.readings, strict=True):
            check_reading(r, items[i], topic)
    elif out.readings:
        assert len(out.readings) == 1 and not out.rejections and out.status is None
        check_reading(out.readings[0], json_of(payload), topic)
    if out.status is not None:
        assert topic.endswith("/status") and out.entries == 1
        assert out.status.state in ("online", "offline")
        assert out.status.received_at == RECEIVED


def check_parse(topic: str, payload: bytes) -> Outcome:
    out = PARSER.parse(topic, payload, RECEIVED)
    check_outcome(topic, payload, out)
    for outcome in {r.reason for r in out.rejections} | ({"accepted"} if out.readings else set()):
        event(outcome)
    if out.status is not None:
        event("status")
    return out


# --- Parser.parse ----------------------------------------------------------------------------

@FAST
@given(topics_st, st.binary(max_size=500))
def test_arbitrary_bytes(topic: str, payload: bytes) -> None:
    check_parse(topic, payload)


@FAST
@given(topics_st, json_values)
def test_arbitrary_json_values(topic: str, value: object) -> None:
    check_parse(topic, as_payload(value))
    check_parse(topic, as_payload({"readings": value}))


@FAST
@given(st.sampled_from(GOOD_TOPICS), valid_readings())
def test_valid_readings_are_accepted(topic: str, reading: dict[str, Any]) -> None:
    out = check_parse(topic, dumps(reading))
    assert len(out.readings) == 1, out.rejections
    out = check_parse(topic, dumps({"readings": [reading, reading]}))
    assert len(out.readings) == 2, out.rejections


@FAST
@given(st.sampled_from(GOOD_TOPICS + STATUS_TOPICS), not_utf8_json())
def test_bytes_that_are_not_utf8_inside_json(topic: str, payload: bytes) -> None:
    out = check_parse(topic, payload)
    assert [(r.reason, r.payload_encoding) for r in out.rejections] == [("bad_json", "base64")]


@FAST
@given(topics_st, near_valid_readings())
def test_near_valid_readings(topic: str, reading: dict[str, Any]) -> None:
    check_parse(topic, as_payload(reading))


@FAST
@given(topics_st, st.lists(readings_st | json_values, max_size=15))
# a batch that decodes as typed readings, one of which fails a later check
@example("vitals/v1/P001/ox-1", [{"ts": RECEIVED, "kind": "oximetry", "spo2": 97},
                                 {"ts": 0, "kind": "oximetry", "spo2": 97, "firmware": "2"}])
# a device time no float holds, next to a good reading
@example("vitals/v1/P001/ox-1", [{"ts": RECEIVED, "kind": "oximetry", "spo2": 97},
                                 {"ts": 10**400, "kind": "oximetry", "spo2": 97}])
def test_batches_mixing_good_and_bad_readings(topic: str, items: list[Any]) -> None:
    out = check_parse(topic, dumps({"readings": items}))
    try:
        json.dumps(items, allow_nan=False)
    except ValueError:
        return  # NaN or an infinity somewhere: not JSON, the whole message is bad_json
    if topic in GOOD_TOPICS and items:
        # each bad reading is rejected on its own: never the whole batch as one
        assert out.entries == len(items)
        assert all(r.batch_index is not None for r in out.rejections)


@st.composite
def statuses(draw: st.DrawFn) -> dict[str, Any]:
    """A valid status message, or one with one field set to anything."""
    message = draw(st.fixed_dictionaries(
        {"state": st.sampled_from(["online", "offline"])},
        optional={"ts": good_ts | st.integers(0, RECEIVED), "battery": st.integers(0, 100)}))
    if draw(st.booleans()):
        message[draw(st.sampled_from(["state", "ts", "battery", "x"]))] = draw(EVIL)
    return message


@FAST
@given(st.sampled_from(STATUS_TOPICS * 3 + GOOD_TOPICS + ["vitals/v1/P002/ox-8/status"]),
       statuses())
def test_status_like_messages(topic: str, message: dict[str, Any]) -> None:
    out = check_parse(topic, as_payload(message))
    if out.status is not None:
        assert message["state"] == out.status.state
        assert out.status.ts is None or out.status.ts == epoch_ms(message["ts"])


@SLOW
@given(st.sampled_from(GOOD_TOPICS), big_batches())
def test_batches_of_0_1_1000_1001(topic: str, payload: bytes) -> None:
    out = check_parse(topic, payload)
    n = len(json.loads(payload)["readings"])
    if n > limits.MAX_BATCH_READINGS or n == 0:
        assert [r.reason for r in out.rejections] == ["too_large" if n else "schema"]


@SLOW
@given(st.sampled_from(GOOD_TOPICS), near_64_kib())
def test_payloads_near_64_kib(topic: str, payload: bytes) -> None:
    out = check_parse(topic, payload)
    too_large = [r for r in out.rejections if r.reason == "too_large"]
    assert bool(too_large) == (len(payload) > limits.MAX_PAYLOAD_BYTES)
    if len(payload) <= limits.MAX_PAYLOAD_BYTES:
        assert out.readings and not out.rejections


# --- Ingest ----------------------------------------------------------------------------------

class RecordingSink(Sink):
    """Test double: stores every record and confirms it at once, as a Kafka that never fails."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes]] = []

    def send(self, topic: str, key: bytes | None, value: bytes, on_done: OnDone) -> None:
        self.records.append((topic, key, value))
        on_done()

    def poll(self, timeout: float) -> None:
        pass

    def flush(self, timeout: float) -> int:
        return 0


def make_ingest() -> tuple[Ingest, RecordingSink, list[tuple[int, int]]]:
    sink, acks = RecordingSink(), []
    ingest = Ingest(PARSER, sink, lambda mid, qos: acks.append((mid, qos)),
                    clock=lambda: RECEIVED / 1000)
    return ingest, sink, acks


messages_st = st.tuples(topics_st, payloads_st, st.sampled_from([0, 1, 1, 1]))


def deliver(ingest: Ingest, pool: list[tuple[str, bytes, int]], order: list[int]
            ) -> list[tuple[int, int]]:
    """Deliver the pool's messages in `order` (repeats are redeliveries); the expected acks."""
    expected = []
    for mid, i in enumerate(order, start=1):
        topic, payload, qos = pool[i]
        ingest.handle(topic, payload, mid, qos)
        if qos > 0:
            expected.append((mid, qos))
    return expected


def check_counts(ingest: Ingest, sink: RecordingSink) -> None:
    c = ingest.counts
    assert c.accepted + c.statuses + c.duplicates + c.rejected.total() == c.received
    assert c.accounted == c.received
    by_topic = [t for t, _, _ in sink.records]
    assert by_topic.count(topics.READINGS.name) == c.accepted
    assert by_topic.count(topics.STATUS.name) == c.statuses
    assert by_topic.count(topics.REJECTED.name) == c.rejected.total()
    # what a person entered is copied for the nurse page, and only that
    readings = [value for topic, _, value in sink.records if topic == topics.READINGS.name]
    copies = [value for topic, _, value in sink.records if topic == topics.REPORTS.name]
    assert copies == [value for value in readings if is_entered(msgspec.json.decode(
        value, type=Reading))]
    assert len(ingest.acks) == 0  # every message is done with


@FAST
@given(st.lists(messages_st, min_size=1, max_size=8), st.data())
def test_ingest_accounts_for_every_entry_and_acks_every_qos1_message_in_order(
        pool: list[tuple[str, bytes, int]], data: st.DataObject) -> None:
    order = data.draw(st.lists(st.integers(0, len(pool) - 1), max_size=20))
    ingest, sink, acks = make_ingest()
    expected_acks = deliver(ingest, pool, order)
    assert acks == expected_acks
    assert ingest.counts.messages == len(order)
    check_counts(ingest, sink)
    expected_entries = 0
    for i in order:
        topic, payload, _ = pool[i]
        items = batch_items(topic, payload)
        expected_entries += len(items) if items is not None else 1
    assert ingest.counts.received == expected_entries


@st.composite
def device_streams(draw: st.DrawFn) -> list[tuple[str, bytes, int]]:
    """Messages of a few devices whose seqs each stand for one reading (one `ts`), sent as
    singles and batches."""
    out = []
    for topic in draw(st.lists(st.sampled_from(GOOD_TOPICS), min_size=1, max_size=3,
                               unique=True)):
        seqs = draw(st.lists(st.integers(0, 60), min_size=1, max_size=30, unique=True))
        readings = [{"ts": RECEIVED - DAY + seq * 1000, "kind": "oximetry", "seq": seq,
                     "spo2": 97, "hr": 70} for seq in seqs]
        i = 0
        while i < len(readings):
            size = draw(st.integers(1, 5))
            chunk = readings[i:i + size]
            payload = dumps(chunk[0]) if size == 1 else dumps({"readings": chunk})
            out.append((topic, payload, 1))
            i += size
    return out


@FAST
@given(device_streams(), st.data())
def test_redelivered_readings_are_forwarded_once(pool: list[tuple[str, bytes, int]],
                                                  data: st.DataObject) -> None:
    # every message at least once, some again (redeliveries, re-sent buffers), in any order
    again = data.draw(st.lists(st.integers(0, len(pool) - 1), max_size=2 * len(pool)))
    order = data.draw(st.permutations(list(range(len(pool))) + again))
    ingest, sink, acks = make_ingest()
    assert acks == deliver(ingest, pool, order)
    check_counts(ingest, sink)
    forwarded = [msgspec.json.decode(v, type=Reading) for t, _, v in sink.records
                 if t == topics.READINGS.name]
    keys = [(r.patient_id, r.device_id, r.seq) for r in forwarded]
    sent = set()
    for topic, payload, _ in pool:
        obj = json.loads(payload)
        for item in obj.get("readings", [obj]):
            sent.add((*topic.split("/")[2:4], item["seq"]))
    assert len(keys) == len(set(keys)) and set(keys) == sent
    assert ingest.counts.duplicates == ingest.counts.received - len(sent)
    assert all(k == r.patient_id.encode() for (t, k, _), r in zip(
        [rec for rec in sink.records if rec[0] == topics.READINGS.name], forwarded, strict=True))
