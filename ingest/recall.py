"""What ingest forwarded before this start: the tail of `vitals.readings`, read back once at
start to seed the duplicate filter.

Ingest acknowledges a message over MQTT only after Kafka confirmed its records. A crash in
between (SIGKILL, a lost node) leaves those messages unacknowledged: the broker delivers them
again to the restarted ingest, whose de-duplication memory is new, and without this they would
reach Kafka twice. They were forwarded moments before the crash, at most the broker's in-flight
window (`max_inflight_messages`) of messages ago, so the newest records of each partition
cover them. Reading back more than that costs start-up time and nothing else.

Best effort by design: the stages downstream are idempotent by (device, seq), so a tail that
cannot be read (Kafka slow, a record that does not decode) costs a repeat, never a reading.
"""

from __future__ import annotations

import logging
import time

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from ingest.dedup import DuplicateFilter
from vitals import topics
from vitals.kafka import KafkaConnection, reader_config
from vitals.records import Reading

log = logging.getLogger(__name__)

# Records read back per partition: the in-flight window (1,000 messages in deploy/) of batches
# of a few dozen readings, spread over the partitions, with room to spare.
TAIL_RECORDS = 20_000
IDLE_S = 0.5  # the tail is read once nothing more has come for this long
_decode = msgspec.json.Decoder(Reading).decode


def recall(kafka: KafkaConnection | str, dedup: DuplicateFilter,
           tail: int = TAIL_RECORDS, budget_s: float = 30.0) -> int:
    """Mark the newest `tail` readings of each partition as seen; returns how many were read.
    Gives up (saying so) after `budget_s`: ingest must not wait long to start."""
    consumer = Consumer(reader_config(kafka, "vitals-ingest-recall"))
    try:
        return _read_tail(consumer, dedup, tail, budget_s)
    except KafkaException as exc:
        log.warning("could not read back what was forwarded before this start (%s): a message "
                    "redelivered after a crash may be forwarded twice", exc)
        return 0
    finally:
        consumer.close()


def _read_tail(consumer: Consumer, dedup: DuplicateFilter, tail: int, budget_s: float) -> int:
    deadline = time.monotonic() + budget_s
    name = topics.READINGS.name
    partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
    assignment, behind = [], {}
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
        if high > low:
            assignment.append(TopicPartition(name, partition, max(low, high - tail)))
            behind[partition] = high - 1
    if not assignment:
        return 0
    consumer.assign(assignment)
    # Up to the high watermarks, then until nothing more comes: tansu reports the last
    # batch's first offset + 1 as its high watermark, not the last record's + 1.
    read, quiet_since = 0, time.monotonic()
    while behind or time.monotonic() - quiet_since < IDLE_S:
        if time.monotonic() > deadline:
            log.warning("read back only %d readings forwarded before this start within %.0f "
                        "s: a message redelivered after a crash may be forwarded twice", read,
                        budget_s)
            break
        messages = consumer.consume(1000, IDLE_S / 2)
        if messages:
            quiet_since = time.monotonic()
        for message in messages:
            if message.error() is not None:
                continue
            if message.offset() >= behind.get(message.partition(), -1):
                behind.pop(message.partition(), None)
            try:
                dedup.first_time(_decode(message.value() or b""))
            except msgspec.DecodeError:
                continue  # not ingest's: nothing of ours to recognise
            read += 1
    return read
