"""Kafka plumbing shared by the services: the one client configuration (producer and
consumer), declaring the topics, waiting for the broker."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from vitals.topics import Topic

log = logging.getLogger(__name__)

# The partitioner of the Java client, aiokafka and Faust: a patient's key lands on the same
# partition whoever produces it, so a patient's readings and its rules state (a Faust table
# keyed the same way) always share a partition.
PARTITIONER = "murmur2_random"


def producer_config(bootstrap: str) -> dict[str, object]:
    """Every producer of the project: acknowledged by all replicas, never giving up."""
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        # Never give up on a record: an outage backs up into the producer's queue, then into
        # unacknowledged MQTT messages at the broker; nothing is dropped.
        "message.timeout.ms": 0,
        "linger.ms": 5,
        "compression.type": "lz4",
        "partitioner": PARTITIONER,
        "queue.buffering.max.messages": 200_000,
        # After an outage, reconnect within 2 s rather than librdkafka's default of up to 10 s.
        "reconnect.backoff.max.ms": 2000,
    }


def consumer_config(bootstrap: str, group: str) -> dict[str, object]:
    """Every consumer group of the project: offsets committed by hand, after the work is done,
    and a new group starts from the beginning (what is already waiting is judged or paged)."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # Joining a group takes about half the session timeout; heartbeats come from
        # librdkafka's own thread, so long work does not expire the session.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 2000,
        "reconnect.backoff.max.ms": 2000,
        "log_level": 2,
    }


def reader_config(bootstrap: str, name: str) -> dict[str, object]:
    """A consumer that reads topics by assignment, outside any shared group (observers, tests,
    benchmarks): a group id of its own and nothing committed."""
    return {"bootstrap.servers": bootstrap, "group.id": f"{name}-{time.monotonic_ns()}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 2}


def declare_topics(bootstrap: str, topics: tuple[Topic, ...], partitions: int,
                   wait_s: float = 300.0) -> dict[str, int]:
    """Create the topics that do not exist yet, waiting (and saying so, once) while the broker
    is unreachable; returns each topic's partition count. Existing topics are left alone, and a
    partition count that differs from the one declared is logged, since keyed consumers such as
    Faust tables depend on it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + wait_s
    waiting_said = False
    while True:
        try:
            existing = admin.list_topics(timeout=5).topics
            break
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"Kafka at {bootstrap} is unreachable: {exc}") from None
            if not waiting_said:
                log.warning("waiting for Kafka at %s ...", bootstrap)
                waiting_said = True
            time.sleep(1)
    wanted = {t.name: (1 if t.single_partition else partitions) for t in topics}
    config = {t.name: {"cleanup.policy": "compact"} if t.compacted else {} for t in topics}
    missing = [NewTopic(name, n, 1, config=config[name]) for name, n in wanted.items()
               if name not in existing]
    if missing:
        for name, fut in admin.create_topics(missing, operation_timeout=10).items():
            try:
                fut.result()
                log.info("created topic %s with %d partitions", name, wanted[name])
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    found = {name: len(md.partitions) for name, md in admin.list_topics(timeout=10).topics.items()
             if name in wanted}
    for name, n in found.items():
        if n != wanted[name]:
            log.warning("topic %s has %d partitions, not the %d declared", name, n, wanted[name])
    return found
