"""A pre-filled `vitals.readings` topic, shared by the rules benchmarks (the Faust worker and the
Quix Streams app read the same records), and counting a topic's records by consuming them
(tansu's high watermarks undercount)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.engine_throughput import patient_readings
from stream_rules import state as state_io
from stream_rules.config import load_rules
from stream_rules.engine import Engine
from vitals import topics
from vitals.kafka import producer_config, reader_config
from vitals.patients import Patient
from vitals.records import encode

INFUSION = dt.date(2026, 11, 18)
TEAM = "haem-a"


@dataclass
class Prefilled:
    patients: list[str]
    readings: int = 0
    trends: int = 0  # trend points the pure engine emits for these readings
    state_sizes: list[int] = field(default_factory=list)
    firing: set[tuple[str, str]] = field(default_factory=set)  # (patient, rule) that fired
    events: set[tuple[str, str]] = field(default_factory=set)  # (alert_id, status) emitted


def declare_readings(bootstrap: str, partitions: int) -> None:
    """Create vitals.readings with its retention set explicitly: tansu's DescribeConfigs
    answers only the configs given at creation, and Quix Streams needs `retention.ms` (it
    derives its changelog topics' retention from the input topic's)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topics.READINGS.name, partitions, 1,
                   config={"retention.ms": "-1", "retention.bytes": "-1"})
    for fut in admin.create_topics([new], operation_timeout=10).values():
        try:
            fut.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def prefill(bootstrap: str, patients: int, hours: int, seed: int = 11) -> Prefilled:
    """Synthetic readings (bench.engine_throughput), patient after patient, to
    vitals.readings; the pure engine's trend points and firings for the same readings."""
    rules = load_rules(None)
    rng = np.random.default_rng(seed)
    out = Prefilled([f"B{p:04d}" for p in range(patients)])
    producer = Producer({**producer_config(bootstrap), "linger.ms": 20})
    for i, pid in enumerate(out.patients):
        rs = patient_readings(pid, hours, rng, sick=i % 3 == 0)
        engine = Engine(rules, Patient(id=pid, infusion=INFUSION, team=TEAM))
        state = engine.new_state()
        result = engine.process(state, rs)
        out.trends += len(result.trends)
        out.firing |= {(pid, a.rule) for a in result.alerts if a.status == "firing"}
        out.events |= {(a.alert_id, a.status) for a in result.alerts}
        out.state_sizes.append(len(state_io.dump(state)))
        for r in rs:
            while True:
                try:
                    producer.produce(topics.READINGS.name, encode(r), pid.encode())
                    break
                except BufferError:
                    producer.poll(0.1)
        out.readings += len(rs)
    producer.flush()
    return out


def patients_yaml(ids: list[str]) -> str:
    return "patients:\n" + "".join(
        f"  - {{id: {pid}, infusion: {INFUSION}, team: {TEAM}}}\n" for pid in ids)


class RecordCounter:
    """Counts a topic's records as they arrive, from the beginning, by consuming them."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.n = 0
        # a short fetch wait: the end is seen within ~10 ms (the default waits up to 500 ms)
        self._c = Consumer({**reader_config(bootstrap, "bench"), "fetch.wait.max.ms": 10})
        md = self._c.list_topics(topic, timeout=10).topics[topic]
        self._c.assign([TopicPartition(topic, p, 0) for p in md.partitions])

    def poll(self, timeout: float = 0.05) -> int:
        self.n += len(self._c.consume(10_000, timeout))
        return self.n

    def __enter__(self) -> RecordCounter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._c.close()


def topic_bytes(bootstrap: str, topic: str, quiet_s: float = 2.0) -> tuple[int, int]:
    """(records, key + value bytes) on `topic`, read from the beginning until nothing more
    comes for `quiet_s`: for a changelog, all that the worker wrote (tansu's in-memory
    storage does not compact)."""
    consumer = Consumer({**reader_config(bootstrap, "bench-bytes"), "fetch.wait.max.ms": 10})
    try:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        records = size = 0
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            got = [m for m in consumer.consume(10_000, 0.2) if m.error() is None]
            if got:
                last = time.monotonic()
            records += len(got)
            size += sum(len(m.key() or b"") + len(m.value() or b"") for m in got)
        return records, size
    finally:
        consumer.close()
