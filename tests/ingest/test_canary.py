"""The canary through ingest (CONTRACT section 7): no enrolment, its one device only, marked
synthetic on `vitals.readings` and copied to `vitals.canary` for alerting's watch."""

from __future__ import annotations

import json
import time

import msgspec

from ingest.parse import Parser
from ingest.service import Ingest
from tests.ingest.test_parse_properties import REGISTRY, RecordingSink
from vitals import canary, topics
from vitals.records import SYNTHETIC, Reading


def make(canary_patient: str | None = "CANARY") -> tuple[Ingest, RecordingSink]:
    sink = RecordingSink()
    return Ingest(Parser(REGISTRY, canary_patient), sink, lambda mid, qos: None), sink


def payload(seq: int) -> bytes:
    return json.dumps(canary.reading(seq, int(time.time() * 1000))).encode()


def test_a_canary_reading_needs_no_enrolment_and_is_copied_for_alerting() -> None:
    ingest, sink = make()
    sent = payload(1)
    ingest.handle("vitals/v1/CANARY/canary", sent, 1, 1)
    ingest.handle("vitals/v1/CANARY/canary", sent, 2, 1)  # a redelivery: once only
    by_topic = {topic: [msgspec.json.decode(v, type=Reading) for t, _, v in sink.records
                        if t == topic] for topic in {t for t, _, _ in sink.records}}
    assert set(by_topic) == {topics.READINGS.name, topics.CANARY.name}
    [reading] = by_topic[topics.READINGS.name]
    assert by_topic[topics.CANARY.name] == [reading]
    assert reading.patient_id == "CANARY" and reading.temp == canary.TEMP_C
    assert SYNTHETIC in reading.flags and ingest.counts.duplicates == 1


def test_only_the_canary_device_and_only_when_a_canary_is_named() -> None:
    ingest, sink = make()
    ingest.handle("vitals/v1/CANARY/thermo", payload(1), 1, 1)
    ingest.handle("vitals/v1/CANARY/canary/status",
                  b'{"ts": 1795000000000, "state": "online", "battery": 100}', 2, 1)
    reasons = [json.loads(v)["reason"] for t, _, v in sink.records
               if t == topics.REJECTED.name]
    assert reasons == ["unknown_device"]
    assert [t for t, _, _ in sink.records] == [topics.REJECTED.name, topics.STATUS.name]

    without, sink = make(None)
    without.handle("vitals/v1/CANARY/canary", payload(2), 1, 1)
    assert [json.loads(v)["reason"] for _, _, v in sink.records] == ["unknown_patient"]


def test_a_patients_reading_is_not_marked_or_copied() -> None:
    ingest, sink = make()
    ingest.handle("vitals/v1/P001/thermo-1", payload(3), 1, 1)
    assert [t for t, _, _ in sink.records] == [topics.READINGS.name]
    for t, _, v in sink.records:
        if t == topics.READINGS.name:
            assert SYNTHETIC not in msgspec.json.decode(v, type=Reading).flags
