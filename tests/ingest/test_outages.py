"""Nothing is lost when Kafka is unreachable, when ingest crashes while it is, or when a device
drops off the network: against real Mosquitto and tansu, with ingest as its own process where a
crash is staged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support import (
    healthz,
    metric,
    publish,
    read_topic,
    scrape,
    stalled_gauges,
    start_ingest,
    start_ingest_process,
    wait_for,
)
from vitals.settings import Settings


def readings(patient: str, n: int) -> list[tuple[str, dict]]:
    t = int(time.time() * 1000) - 600_000
    return [(f"vitals/v1/{patient}/ox-1",
             {"ts": t + i * 1000, "kind": "oximetry", "seq": i, "spo2": 95, "hr": 88})
            for i in range(n)]


def test_kafka_outage_holds_messages_unacknowledged_then_catches_up(cut_kafka) -> None:
    settings, relay = cut_kafka
    ingest = start_ingest(settings)
    relay.block()
    publish(settings.mqtt.port, readings("P001", 300))
    wait_for(lambda: metric(settings, "vitals_ingest_messages_total") == 300, what="receipt")
    # received, but nothing may be acknowledged while Kafka has not confirmed it
    assert metric(settings, "vitals_ingest_unacked_messages") == 300
    relay.unblock()
    wait_for(lambda: metric(settings, "vitals_ingest_unacked_messages") == 0, timeout=30,
             what="catch-up after the outage")
    counts = ingest.stop()
    got = read_topic(settings.kafka_bootstrap, "vitals.readings", 300)
    assert sorted(v["seq"] for _, v in got) == list(range(300))
    assert counts.accepted == 300


def test_healthz_says_stuck_while_kafka_is_unreachable_and_recovers_after(cut_kafka) -> None:
    settings, relay = cut_kafka
    settings = settings.model_copy(update={"stall_s": 2.0})
    addr = settings.ingest_metrics_addr
    ingest = start_ingest(settings)
    try:
        assert healthz(addr)[0] == 200
        relay.block()
        published = time.time()
        publish(settings.mqtt.port, readings("P001", 20))
        # work waits and nothing moves: after stall_s, an orchestrator is told so; the oldest
        # waiting is when the first of them was received
        stalled_gauges(addr, "ingest", "20 MQTT messages waiting for Kafka, no progress for",
                       20, published)
        relay.unblock()
        wait_for(lambda: healthz(addr)[0] == 200, timeout=60, what="healthy after the outage")
        assert scrape(addr)["vitals_ingest_pending"] == 0
    finally:
        relay.unblock()
        ingest.stop()


@pytest.mark.slow
def test_crash_before_kafka_confirms_loses_nothing(cut_kafka, tmp_path: Path) -> None:
    settings, relay = cut_kafka
    log = tmp_path / "ingest.log"
    first = start_ingest_process(settings, log)
    relay.block()
    publish(settings.mqtt.port, readings("P002", 200))
    wait_for(lambda: metric(settings, "vitals_ingest_messages_total") == 200, what="receipt")
    first.kill()  # a crash: whatever it held in memory is gone
    relay.unblock()
    second = start_ingest_process(settings, log)  # the broker redelivers the unacknowledged
    try:
        got = read_topic(settings.kafka_bootstrap, "vitals.readings", 200, timeout=30)
    finally:
        second.stop()
    assert sorted(v["seq"] for _, v in got) == list(range(200))
    assert "200 readings accepted" in log.read_text()


def test_last_will_of_a_vanished_device_reaches_the_status_topic(settings: Settings) -> None:
    ingest = start_ingest(settings)
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="P003-ox-1")
    device.will_set("vitals/v1/P003/ox-1/status",
                    json.dumps({"ts": int(time.time() * 1000), "state": "offline"}), qos=1)
    device.connect("127.0.0.1", settings.mqtt.port, keepalive=5)
    device.loop_start()
    device.publish("vitals/v1/P003/ox-1/status",
                   json.dumps({"ts": int(time.time() * 1000), "state": "online", "battery": 80}),
                   qos=1).wait_for_publish(5)
    device.loop_stop()
    device.socket().close()  # the device vanishes without DISCONNECT: the broker sends its will
    got = read_topic(settings.kafka_bootstrap, "vitals.status", expect=2, timeout=20)
    ingest.stop()
    states = [v["state"] for _, v in got]
    assert states == ["online", "offline"]
    assert all(k == b"P003" and v["device_id"] == "ox-1" for k, v in got)
