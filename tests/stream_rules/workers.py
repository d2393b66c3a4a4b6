"""Rules workers as processes on a test's broker, and what the worker tests feed them."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import msgspec
from confluent_kafka import Consumer, Producer, TopicPartition

from harness import servers, services
from tests.stream_rules.test_engine import readings
from tests.support import write_patients
from vitals.kafka import producer_config, reader_config
from vitals.records import Reading, encode


class Workers:
    """`vitals rules` processes sharing one log, on this test's broker."""

    def __init__(self, kafka: servers.Server, tmp_path: Path) -> None:
        self.bootstrap = f"127.0.0.1:{kafka.port}"
        self.log = tmp_path / "worker.log"
        self.env = services.environment({
            "kafka_url": f"kafka://{self.bootstrap}", "kafka_partitions": 4,
            "patients": write_patients(tmp_path / "p.yaml", ["P001"]),
            "state_dir": tmp_path / "state"})
        self.procs: list[services.ServiceProcess] = []
        self.metrics: list[str] = []  # each worker's /metrics URL

    def start(self) -> services.ServiceProcess:
        """Another worker, once it judges (partitions assigned, state recovered)."""
        addr = f"127.0.0.1:{servers.free_port()}"
        self.metrics.append(f"http://{addr}/metrics")
        self.procs.append(services.start("rules", env={**self.env,
                                                       "VITALS_RULES_METRICS_ADDR": addr},
                                         log=self.log))
        return self.procs[-1]

    def counters(self, index: int = -1) -> dict[str, float]:
        """A worker's `vitals_rules_*` metrics, by name."""
        with urllib.request.urlopen(self.metrics[index], timeout=10) as r:
            lines = r.read().decode().splitlines()
        return {name: float(value) for name, _, value in
                (line.rpartition(" ") for line in lines if line.startswith("vitals_rules_"))}

    def stop_all(self) -> None:
        for worker in self.procs:
            worker.stop()


def produce(bootstrap: str, rs: list[Reading], received_later_ms: int = 0) -> int:
    """As ingest would: stamped with the time of receipt (the worker's live silence check
    reads it; `received_later_ms` moves it ahead), keyed by patient. Returns that time."""
    p = Producer(producer_config(bootstrap))
    now = int(time.time() * 1000) + received_later_ms
    for r in rs:
        p.produce("vitals.readings", encode(msgspec.structs.replace(r, received_at=now)),
                  r.patient_id.encode())
    assert p.flush(30) == 0
    return now


def episode() -> list[Reading]:
    """Fever rising through 38 and 39 C, then a racing heart and falling SpO2."""
    return readings(150, temp=lambda s: 37.0 + min(2.3, max(0.0, (s - 600) / 2000)),
                    spo2=lambda s: 97 - (8 if s > 6000 else 0),
                    hr=lambda s: 75 + (60 if s > 5400 else 0), temp_every_s=120)


def records_at(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None]]:
    """(partition, offset, key) of every record of `topic`, read until quiet."""
    c = Consumer(reader_config(bootstrap, "test"))
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out = []
        quiet = time.monotonic()
        while time.monotonic() - quiet < 3:
            for m in c.consume(1000, 0.2):
                if m.error() is None:
                    out.append((m.partition(), m.offset(), m.key()))
                    quiet = time.monotonic()
        return out
    finally:
        c.close()
