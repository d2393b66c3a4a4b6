"""Ingest recognises after a (re)start what it forwarded before it: the broker's redelivery of
messages that were on Kafka but not yet acknowledged when ingest died reaches Kafka once, not
twice (real Mosquitto and tansu)."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from ingest.dedup import DuplicateFilter
from ingest.recall import recall
from tests.support import publish, read_topic, start_ingest
from vitals import topics
from vitals.kafka import declare_topics, producer_config
from vitals.records import Reading, encode
from vitals.settings import Settings


def readings(seqs: range, t: int) -> list[tuple[str, dict]]:
    return [("vitals/v1/P001/ox-1",
             {"ts": t + i * 1000, "kind": "oximetry", "seq": i, "spo2": 95, "hr": 88})
            for i in seqs]


def test_what_was_forwarded_before_a_restart_is_not_forwarded_again(settings: Settings) -> None:
    t = int(time.time() * 1000) - 600_000
    first = start_ingest(settings)
    publish(settings.mqtt.port, readings(range(50), t))
    assert len(read_topic(settings.kafka, topics.READINGS.name, expect=50, timeout=30)) == 50
    first.stop()
    # What the broker redelivers after a crash between Kafka's confirmation and the MQTT ack
    # arrives again, the same messages, to an ingest whose memory is new; the device goes on.
    publish(settings.mqtt.port, readings(range(50), t))
    publish(settings.mqtt.port, readings(range(50, 60), t))
    second = start_ingest(settings)
    got = read_topic(settings.kafka, topics.READINGS.name, expect=60, timeout=30, settle=2.0)
    counts = second.stop()
    seqs = sorted(value["seq"] for _, value in got)
    assert seqs == list(range(60)), "forwarded twice, or lost"
    assert counts.duplicates == 50 and counts.accepted == 10


def test_only_the_tail_is_read_back_and_a_record_that_is_not_a_reading_is_skipped(
        settings: Settings) -> None:
    declare_topics(settings.kafka, topics.INGEST_TOPICS, settings.kafka_partitions)
    producer = Producer(producer_config(settings.kafka))
    now = int(time.time() * 1000)
    sent = [Reading(patient_id="P001", device_id="ox-1", ts=now + i, kind="oximetry",
                    received_at=now, seq=i, spo2=95.0) for i in range(30)]
    # one key: one partition, in order; a batch each, so that tansu's high watermark is exact
    for value in [*map(encode, sent), b"\xff not a reading"]:
        producer.produce(topics.READINGS.name, value, b"P001")
        assert producer.flush(10) == 0

    dedup = DuplicateFilter()
    assert recall(settings.kafka, dedup, tail=11) == 10  # the 10 newest readings, then junk
    assert [dedup.first_time(r) for r in sent[-10:]] == [False] * 10  # recognised
    assert dedup.first_time(sent[0])  # older than the tail: not read back


def test_an_empty_topic_recalls_nothing(settings: Settings) -> None:
    declare_topics(settings.kafka, topics.INGEST_TOPICS, settings.kafka_partitions)
    assert recall(settings.kafka, DuplicateFilter()) == 0
