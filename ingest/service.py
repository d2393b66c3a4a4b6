"""`vitals ingest`: MQTT -> parse -> de-duplicate -> Kafka, acknowledging MQTT only after Kafka.

Every entry of every message ends in exactly one place (CONTRACT section 2): a reading on
`vitals.readings`, a status on `vitals.status`, a rejection on `vitals.rejected`, or the
duplicate count. `Counts.accounted == Counts.received` always holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, start_http_server

from ingest.acks import InOrderAcks
from ingest.counts import Counts, CountsCollector
from ingest.dedup import DuplicateFilter
from ingest.mqtt_source import MqttSource
from ingest.parse import Parser
from ingest.sink import KafkaSink, Sink
from vitals import topics
from vitals.kafka import declare_topics
from vitals.patients import load_patients
from vitals.records import encode
from vitals.settings import Settings, parse_hostport

log = logging.getLogger(__name__)


class Ingest:
    """The pipeline of one message, independent of where messages come from."""

    def __init__(self, parser: Parser, sink: Sink, send_ack: Callable[[int, int], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.parser = parser
        self.sink = sink
        self.clock = clock
        self.dedup = DuplicateFilter()
        self.acks = InOrderAcks(send_ack)
        self.counts = Counts()
        self.stopping = False

    def handle(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        if self.stopping:
            return  # left unacknowledged: the broker redelivers it to the next session
        out = self.parser.parse(topic, payload, int(self.clock() * 1000))
        c = self.counts
        c.messages += 1
        c.received += out.entries
        records: list[tuple[str, bytes | None, bytes]] = []
        for r in out.readings:
            if self.dedup.first_time(r):
                records.append((topics.READINGS.name, r.patient_id.encode(), encode(r)))
            else:
                c.duplicates += 1
        c.accepted += len(records)
        for rej in out.rejections:
            c.rejected[rej.reason] += 1
            key = rej.patient_id.encode() if rej.patient_id else None
            records.append((topics.REJECTED.name, key, encode(rej)))
        if out.status is not None:
            c.statuses += 1
            records.append((topics.STATUS.name, out.status.patient_id.encode(),
                            encode(out.status)))
        ticket = self.acks.open(mid, qos, len(records))
        for name, key, value in records:
            self.sink.send(name, key, value, ticket.done)


def run(settings: Settings, stop: threading.Event,
        on_ready: Callable[[Ingest], None] | None = None) -> Counts:
    """Run until `stop` is set; then finish what was received, acknowledge it, and return the
    counts. `on_ready` is called once the subscription is granted, with the running pipeline."""
    registry = load_patients(settings.patients)
    log.info("%d enrolled patients from %s", len(registry), registry.source)
    declare_topics(settings.kafka_bootstrap, topics.INGEST_TOPICS, settings.kafka_partitions)
    sink = KafkaSink(settings.kafka_bootstrap)
    source: MqttSource | None = None

    def send_ack(mid: int, qos: int) -> None:
        assert source is not None
        source.ack(mid, qos)

    ingest = Ingest(Parser(registry), sink, send_ack)
    source = MqttSource(settings.mqtt, settings.ingest_client_id, ingest.handle,
                        on_reconnect=ingest.acks.reconnected)

    metrics = CollectorRegistry()
    metrics.register(CountsCollector(ingest.counts, lambda: len(ingest.acks)))
    host, port = parse_hostport(settings.ingest_metrics_addr)
    server, _ = start_http_server(port, host, registry=metrics)
    log.info("metrics on http://%s:%d/metrics", host, port)

    source.start()
    try:
        while not stop.is_set():
            sink.poll(0.1)
            if on_ready is not None and source.subscribed.is_set():
                on_ready(ingest)
                on_ready = None
    finally:
        ingest.stopping = True
        left = sink.flush(30)
        if left:
            log.error("%d records not confirmed by Kafka at shutdown; their MQTT messages stay "
                      "unacknowledged and will be redelivered", left)

        source.stop()
        sink.close()
        server.shutdown()
    return ingest.counts
