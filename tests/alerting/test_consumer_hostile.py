"""Hostile records on the topics alerting reads (real tansu, real `vitals alerting` process):
each one is audited or judged, its offset committed, and the next patient's alert still pages.
Before the kernel's record bounds, one alert whose `start` was year 33658 or a trend with `ts`
2^64-1 put alerting in a crash loop."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer

from harness import servers, services
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import event, make_settings
from tests.hostile import variants
from tests.support import wait_for
from vitals import topics
from vitals.kafka import producer_config
from vitals.records import AlertEvent, TrendPoint

pytestmark = pytest.mark.slow


def valid_alert() -> dict[str, object]:
    return msgspec.to_builtins(event("P001"))


def valid_trend() -> dict[str, object]:
    return {"patient_id": "P001", "ts": 1_795_000_000_000, "temp": 37.2, "hr": 80.0}


def refused(record_type: type, body: bytes) -> bool:
    try:
        msgspec.json.decode(body, type=record_type)
    except (msgspec.DecodeError, RecursionError):
        return True
    return False


def test_hostile_alerts_and_trends_are_audited_and_paging_goes_on(
        tmp_path: Path, receiver: PagerDutyStandIn, kafka: servers.Server) -> None:
    settings = make_settings(tmp_path, receiver)
    bootstrap = f"127.0.0.1:{kafka.port}"
    records = [(topics.ALERTS.name, body) for _, body in variants(valid_alert())]
    records += [(topics.TRENDS.name, body) for _, body in variants(valid_trend())]
    # the reported crash loops, by name
    records += [(topics.ALERTS.name, json.dumps({**valid_alert(), "start": 10**15}).encode()),
                (topics.TRENDS.name, json.dumps({**valid_trend(), "ts": 2**64 - 1}).encode())]
    types = {topics.ALERTS.name: AlertEvent, topics.TRENDS.name: TrendPoint}
    expected_bad = sum(refused(types[topic], body) for topic, body in records)
    producer = Producer(producer_config(bootstrap))
    for topic, body in records:
        producer.produce(topic, body, b"P001")
    # and another patient's alert (in another partition: it may page before the last of them)
    producer.produce(topics.ALERTS.name, msgspec.json.encode(event("P002")), b"P002")
    assert producer.flush(30) == 0

    env = services.environment(settings, {"kafka_url": f"kafka://{bootstrap}",
                                           "kafka_partitions": 4})
    alerting = services.start("alerting", env=env, log=tmp_path / "alerting.log")
    try:
        receiver.wait(1, timeout=120)
        while not any(b["payload"]["source"] == "P002" for b in receiver.pd("trigger")):
            assert alerting.alive(), alerting.tail(20)
            receiver.wait(len(receiver.requests) + 1, timeout=120)
        # every hostile record judged, on both topics (a busy machine may take a while)
        wait_for(lambda: alerting.output().count("that is not valid") >= expected_bad,
                 timeout=120, what="every hostile record to be judged")
        assert alerting.alive()
    finally:
        assert alerting.stop() == 0, alerting.tail(30)
    log = alerting.output()
    assert log.count("that is not valid") == expected_bad > 100
    assert "Traceback" not in log
