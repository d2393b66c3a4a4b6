"""Hostile and broken input against a real Mosquitto and a real Kafka-protocol broker: no single
MQTT message stops ingest, and each one is accounted for on `vitals.rejected`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ingest import service
from ingest.parse import Parser
from tests.support import publish, read_topic, start_ingest, start_ingest_process
from vitals.records import MAX_DEAD_LETTER_BYTES
from vitals.settings import Settings

TOPIC = "vitals/v1/P001/ox-1"


def reading(seq: int) -> dict[str, object]:
    return {"ts": int(time.time() * 1000) - 60_000, "kind": "oximetry", "seq": seq,
            "spo2": 97, "hr": 72}


@pytest.mark.slow
def test_huge_messages_are_dead_lettered_small_and_ingest_goes_on(settings: Settings,
                                                                   tmp_path: Path) -> None:
    sizes = [64 * 1024 + 1, 1024 * 1024, 10 * 1024 * 1024]
    ingest = start_ingest_process(settings, tmp_path / "ingest.log")
    try:
        publish(settings.mqtt.port, [(TOPIC, b"{" + b" " * (n - 2) + b"}") for n in sizes]
                + [(TOPIC, reading(1))])
        rejected = read_topic(settings.kafka_bootstrap, "vitals.rejected", expect=3)
        readings = read_topic(settings.kafka_bootstrap, "vitals.readings", expect=1)
        assert ingest.alive(), ingest.tail()
    finally:
        assert ingest.stop() == 0, ingest.tail(20)
    assert [v["seq"] for _, v in readings] == [1]
    assert sorted(v["payload_bytes"] for _, v in rejected) == sizes
    for _, dead in rejected:
        assert dead["reason"] == "too_large" and dead["payload_truncated"]
        assert len(dead["payload"]) <= MAX_DEAD_LETTER_BYTES
    assert "1 readings accepted" in ingest.output()
    assert "3 rejected (too_large 3)" in ingest.output()


def test_a_retained_reading_is_forwarded_once_however_often_ingest_restarts(
        settings: Settings) -> None:
    ingest = start_ingest(settings)
    publish(settings.mqtt.port, [(TOPIC, reading(1))], retain=True)
    assert len(read_topic(settings.kafka_bootstrap, "vitals.readings", expect=1)) == 1
    ingest.stop()
    # each new subscription makes the broker replay the retained message
    for restart in (1, 2):
        ingest = start_ingest(settings)
        rejected = read_topic(settings.kafka_bootstrap, "vitals.rejected", expect=restart)
        counts = ingest.stop()
        assert [v["reason"] for _, v in rejected] == ["retained"] * restart
        assert counts.rejected["retained"] == 1 and counts.accounted == counts.received
    assert len(read_topic(settings.kafka_bootstrap, "vitals.readings", expect=1)) == 1


def test_a_message_that_breaks_ingest_is_dead_lettered_and_ingest_goes_on(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    parse = Parser.parse

    def breaks_on_boom(self: Parser, topic: str, payload: bytes, received_at: int
                       ) -> object:
        if payload == b"boom":
            raise RuntimeError("a bug that only this message finds")
        return parse(self, topic, payload, received_at)

    monkeypatch.setattr(Parser, "parse", breaks_on_boom)
    ingest = start_ingest(settings)
    publish(settings.mqtt.port, [(TOPIC, b"boom"), (TOPIC, reading(1))])
    rejected = read_topic(settings.kafka_bootstrap, "vitals.rejected", expect=1)
    readings = read_topic(settings.kafka_bootstrap, "vitals.readings", expect=1)
    counts = ingest.stop()
    assert [v["reason"] for _, v in rejected] == ["internal_error"]
    assert rejected[0][1]["payload"] == "boom"
    assert "a bug that only this message finds" in rejected[0][1]["detail"]
    assert [v["seq"] for _, v in readings] == [1]
    assert counts.accounted == counts.received == 2


def test_when_delivering_fails_ingest_exits_and_the_message_is_redelivered(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    handle = service.Ingest.handle

    def fails(self: service.Ingest, *args: object, **kwargs: object) -> None:
        raise RuntimeError("the network thread's callback failed")

    monkeypatch.setattr(service.Ingest, "handle", fails)
    failure: list[BaseException] = []
    subscribed = threading.Event()

    def run() -> None:
        try:
            service.run(settings, threading.Event(), lambda _: subscribed.set())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert subscribed.wait(60), "ingest did not subscribe"
    publish(settings.mqtt.port, [(TOPIC, reading(1))])
    thread.join(60)
    assert not thread.is_alive(), "ingest stayed up after its MQTT callback failed"
    assert isinstance(failure[0], service.IngestFailed), failure
    assert "delivering a message failed" in str(failure[0])
    # nothing was acknowledged: the next ingest gets the reading from the broker
    monkeypatch.setattr(service.Ingest, "handle", handle)
    ingest = start_ingest(settings)
    readings = read_topic(settings.kafka_bootstrap, "vitals.readings", expect=1)
    ingest.stop()
    assert [v["seq"] for _, v in readings] == [1]
