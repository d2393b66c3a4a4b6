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
from dataclasses import dataclass, field

import msgspec
from prometheus_client import CollectorRegistry

from ingest.acks import InOrderAcks
from ingest.counts import Counts, CountsCollector
from ingest.dedup import DuplicateFilter
from ingest.mqtt_source import MqttSource
from ingest.parse import Parser
from ingest.recall import recall
from ingest.sink import KafkaSink, Sink
from vitals import topics
from vitals.health_http import HealthServer
from vitals.kafka import declare_topics
from vitals.patients import load_patients
from vitals.progress import Progress, ProgressCollector
from vitals.records import SYNTHETIC, Rejection, echo, encode, is_entered
from vitals.settings import ConfigError, Settings, parse_hostport

log = logging.getLogger(__name__)

Record = tuple[str, bytes | None, bytes]  # topic, key, value


@dataclass(slots=True)
class Routed:
    """Where one message's entries go: the records to send, and what they count."""

    records: list[Record]
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    statuses: int = 0
    rejected: list[str] = field(default_factory=list)  # a reason per rejected entry


class IngestFailed(RuntimeError):
    """Ingest cannot go on (its MQTT thread died): the process must exit and be restarted."""


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

    def handle(self, topic: str, payload: bytes, mid: int, qos: int,
               retained: bool = False) -> None:
        """Route one MQTT message; acknowledged once Kafka has every record it became. Never
        raises for what a message holds: a failure on one message dead-letters that message
        (`internal_error`) and ingest goes on with the next."""
        if self.stopping:
            return  # left unacknowledged: the broker redelivers it to the next session
        received_at = int(self.clock() * 1000)
        try:
            routed = self._route(topic, payload, received_at, retained)
        except Exception as exc:
            log.exception("ingest failed on a message on %s; dead-lettered", echo(topic))
            dead = self._internal_error(topic, payload, received_at, repr(exc))
            routed = Routed([dead], received=1, rejected=["internal_error"])
        self._count(routed)
        ticket = self.acks.open(mid, qos, len(routed.records), received_at / 1000)
        for name, key, value in routed.records:
            try:
                self.sink.send(name, key, value, ticket.done)
            except Exception as exc:  # Kafka would not take it (too large, say): say so there
                log.exception("Kafka would not take a record for %s; dead-lettered", name)
                _, _, dead_value = self._internal_error(
                    topic, value, received_at, f"Kafka would not take the record: {exc!r}")
                self.sink.send(topics.REJECTED.name, None, dead_value, ticket.done)
        # Kafka's delivery reports served here, on paho's thread: the acknowledgements they
        # release go out from that thread itself. Served by the main loop alone, each one woke
        # paho's thread from another (a socket pair, the GIL passed back and forth): 12 % more
        # of ingest's CPU per reading (bench.ingest_throughput, 194-203 against 226 us).
        self.sink.poll(0)

    def _count(self, routed: Routed) -> None:
        """Count a routed message, all at once (a message that failed counts only as failed)."""
        counts = self.counts
        counts.messages += 1
        counts.received += routed.received
        counts.accepted += routed.accepted
        counts.duplicates += routed.duplicates
        counts.statuses += routed.statuses
        for reason in routed.rejected:
            counts.rejected[reason] += 1

    def _route(self, topic: str, payload: bytes, received_at: int, retained: bool) -> Routed:
        """The records one message becomes, and what they count."""
        if retained:
            # The broker replays a retained message to every new subscription: it was judged
            # when it was first published (CONTRACT section 1: retain false).
            rejection = Rejection.of(
                "retained", "a retained message, replayed by the broker on subscribing; devices "
                "must publish with retain false, so it is not forwarded again", topic,
                received_at, payload)
            return Routed([(topics.REJECTED.name, None, encode(rejection))], received=1,
                          rejected=["retained"])
        out = self.parser.parse(topic, payload, received_at)
        records: list[Record] = []
        accepted = duplicates = 0
        for reading in out.readings:
            if self.dedup.first_time(reading):
                accepted += 1
                if reading.patient_id == self.parser.canary_patient:
                    # marked, and copied for alerting: it learns that ingest passed this round
                    # whatever happens after
                    value = encode(msgspec.structs.replace(
                        reading, flags=(*reading.flags, SYNTHETIC)))
                    records.append((topics.CANARY.name, None, value))
                else:
                    value = encode(reading)
                    if is_entered(reading):  # for the nurse page (topics.REPORTS)
                        records.append((topics.REPORTS.name, reading.patient_id.encode(), value))
                records.append((topics.READINGS.name, reading.patient_id.encode(), value))
            else:
                duplicates += 1
        routed = Routed(records, received=out.entries, accepted=accepted,
                        duplicates=duplicates)
        for rejection in out.rejections:
            routed.rejected.append(rejection.reason)
            key = rejection.patient_id.encode() if rejection.patient_id else None
            records.append((topics.REJECTED.name, key, encode(rejection)))
        if out.status is not None:
            routed.statuses = 1
            records.append((topics.STATUS.name, out.status.patient_id.encode(),
                            encode(out.status)))
        return routed

    def report(self, progress: Progress) -> None:
        """Tell `progress` what waits (messages not yet acknowledged, the oldest received
        when) and when a message was last handed over: Kafka confirmed every record it became
        and MQTT was acknowledged."""
        pending, oldest = self.acks.waiting()
        progress.waiting(pending, oldest_event=oldest, since=oldest)
        if self.acks.last_acked is not None:
            progress.progressed(self.acks.last_acked)
        progress.beat()

    @staticmethod
    def _internal_error(topic: str, payload: bytes, received_at: int, why: str) -> Record:
        rejection = Rejection.of("internal_error", f"ingest failed on this message: {echo(why)}",
                                 topic, received_at, payload)
        return topics.REJECTED.name, None, encode(rejection)


def run(settings: Settings, stop: threading.Event,
        on_ready: Callable[[Ingest], None] | None = None) -> Counts:
    """Run until `stop` is set; then finish what was received, acknowledge it, and return the
    counts. `on_ready` is called once the subscription is granted, with the running pipeline."""
    registry = load_patients(settings.patients)
    log.info("%d enrolled patients from %s", len(registry), registry.source)
    if registry.get(settings.canary_patient) is not None:
        raise ConfigError(f"VITALS_CANARY_PATIENT: {settings.canary_patient} is an enrolled "
                          "patient; the canary needs an id of its own")
    declare_topics(settings.kafka, topics.INGEST_TOPICS, settings.kafka_partitions)
    sink = KafkaSink(settings.kafka)
    source: MqttSource | None = None

    def send_ack(mid: int, qos: int) -> None:
        assert source is not None
        source.ack(mid, qos)

    ingest = Ingest(Parser(registry, settings.canary_patient), sink, send_ack)
    # before subscribing: what the broker redelivers after a crash is recognised
    recalled = recall(settings.kafka, ingest.dedup)
    if recalled:
        log.info("recalled the %d newest readings on %s, to recognise redeliveries", recalled,
                 topics.READINGS.name)
    source = MqttSource(settings.mqtt, settings.ingest_client_id, ingest.handle,
                        on_reconnect=ingest.acks.reconnected,
                        share_group=settings.ingest_share_group)

    progress = Progress("MQTT messages waiting for Kafka", "ingest main loop")
    metrics = CollectorRegistry()
    metrics.register(CountsCollector(ingest.counts, lambda: len(ingest.acks)))
    metrics.register(ProgressCollector(
        "ingest", progress, "MQTT messages received and not yet acknowledged (waiting for "
        "Kafka)", "When the oldest message not yet acknowledged was received (Unix seconds)"))

    def health() -> str | None:
        if source is not None and not source.alive():  # about to exit; say why meanwhile
            return source.failure
        return progress.stalled(settings.stall_s)

    host, port = parse_hostport(settings.ingest_metrics_addr)
    server = HealthServer(host, port, metrics, health)

    source.start()
    try:
        while not stop.is_set():
            if not source.alive():
                raise IngestFailed(f"{source.failure}; exiting so that it is restarted")
            sink.poll(0.1)
            ingest.report(progress)
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
        server.close()
    return ingest.counts
