"""Kafka plumbing shared by the services: where Kafka is and how to reach it
(`KafkaConnection`: TLS for `kafkas://`, SASL/SCRAM when the URL carries an account), the one
client configuration (producer, consumer group, reader), declaring the topics."""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from vitals.topics import Topic

log = logging.getLogger(__name__)

# The partitioner of the Java client, aiokafka and Faust: a patient's key lands on the same
# partition whoever produces it, so a patient's readings and its rules state (a Faust table
# keyed the same way) always share a partition.
PARTITIONER = "murmur2_random"
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaConnection:
    """Where Kafka is and how to reach it: `tls` for kafkas://, SASL when there is an account
    (only over TLS: a password never crosses the network in clear)."""

    bootstrap: str
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    mechanism: str = "SCRAM-SHA-512"
    ca_file: Path | None = None  # None: the system's trusted CAs

    def client_config(self) -> dict[str, object]:
        """librdkafka's connection settings."""
        config: dict[str, object] = {"bootstrap.servers": self.bootstrap}
        if self.username is not None:
            config.update({"security.protocol": "SASL_SSL", "sasl.mechanism": self.mechanism,
                           "sasl.username": self.username, "sasl.password": self.password or ""})
        elif self.tls:
            config["security.protocol"] = "SSL"
        if self.tls and self.ca_file is not None:
            config["ssl.ca.location"] = str(self.ca_file)
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """For the asyncio clients (aiokafka under Faust); None without TLS."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def connection(kafka: KafkaConnection | str) -> KafkaConnection:
    """A bare `host:port[,host:port]` string is a plaintext connection (tests, the demo)."""
    return KafkaConnection(kafka) if isinstance(kafka, str) else kafka


def producer_config(kafka: KafkaConnection | str) -> dict[str, object]:
    """Every producer of the project: acknowledged by all replicas, never giving up."""
    return {
        **connection(kafka).client_config(),
        "acks": "all",
        # A batch sent again after a cut connection (its acknowledgement lost) is recognised by
        # the broker from its producer id and sequence and written once, not twice.
        "enable.idempotence": True,
        # Never give up on a record: an outage backs up into the producer's queue, then into
        # unacknowledged MQTT messages at the broker; nothing is dropped.
        "message.timeout.ms": 0,
        # Fewer, fuller produce requests: at 5 ms tansu spent 0.43-0.5 of a core on ingest's
        # at 1,000-3,000 readings/s, at 20 ms 0.25-0.32 (bench.end_to_end), for ~15 ms of latency.
        "linger.ms": 20,
        "compression.type": "lz4",
        "partitioner": PARTITIONER,
        "queue.buffering.max.messages": 200_000,
        # After an outage, reconnect within 2 s rather than librdkafka's default of up to 10 s.
        "reconnect.backoff.max.ms": 2000,
    }


def consumer_config(kafka: KafkaConnection | str, group: str) -> dict[str, object]:
    """Every consumer group of the project: offsets committed by hand, after the work is done,
    and a new group starts from the beginning (what is already waiting is judged or paged)."""
    return {
        **connection(kafka).client_config(),
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


def reader_config(kafka: KafkaConnection | str, name: str) -> dict[str, object]:
    """A consumer that reads topics by assignment, outside any shared group (observers, tests,
    benchmarks): a group id of its own and nothing committed."""
    return {**connection(kafka).client_config(), "group.id": f"{name}-{time.monotonic_ns()}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 2}


def declare_topics(kafka: KafkaConnection | str, topics: tuple[Topic, ...], partitions: int,
                   wait_s: float = 300.0) -> dict[str, int]:
    """Create the topics that do not exist yet, waiting (and saying so, once) while the broker
    is unreachable; returns each topic's partition count. Existing topics are left alone, and a
    partition count that differs from the one declared is logged, since keyed consumers such as
    Faust tables depend on it."""
    kafka = connection(kafka)
    bootstrap = kafka.bootstrap
    admin = AdminClient(kafka.client_config())
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
