"""`vitals store`: Kafka (`vitals.readings`, `vitals.trends`, `vitals.alerts`) -> batches of
line protocol -> InfluxDB -> commit the Kafka offsets.

Nothing is lost: offsets are committed only after the server confirmed every point of the batch
(or the point was dead-lettered and Kafka confirmed that), so a crash or an outage means the
records are read again, and writing a point again overwrites it (storage/schema.py).
While the server is down or slow the store retries the same batch with capped exponential
backoff and reads nothing new: the backlog waits in Kafka, not in memory. It says so once when
the outage starts and once when it ends.

A point the server refuses as invalid goes to `vitals.rejected` (reason `store_refused`, the
server's message, the original record) and the rest of its batch is written: the batch is split
in halves until each refused point is alone. A record that is not a record of its topic goes
there too (`store_bad_record`).

`/metrics` and `/healthz` at `VITALS_STORE_METRICS_ADDR` say when a batch was last written and
what waits (`storage.lag`); `/healthz` turns 503 when records have waited `VITALS_STALL_S`
seconds with none written (InfluxDB or Kafka down, or the store stuck).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from storage import schema
from storage.lag import consumer_lag, oldest_timestamp
from storage.target import InfluxTarget, Refused, Unavailable, WriteTarget
from vitals import topics
from vitals.health_http import HealthServer
from vitals.kafka import consumer_config, declare_topics, producer_config
from vitals.progress import Progress, ProgressCollector
from vitals.records import Rejection, echo, encode
from vitals.settings import ConfigError, Settings, parse_hostport

log = logging.getLogger(__name__)

GROUP_ID = "vitals-store"


class Stopped(Exception):
    """Asked to stop while a batch was not written yet; its offsets stay uncommitted."""


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.5
    cap_s: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(self.cap_s, delay * 2)


class Writer:
    """Writes a batch of lines, retrying while the target is unavailable; returns the lines it
    refused, each with the server's reason. Raises `Stopped` if `stop` is set meanwhile."""

    def __init__(self, target: WriteTarget, stop: threading.Event,
                 backoff: Backoff = Backoff(), clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.stop = stop
        self.backoff = backoff
        self.clock = clock
        self.down_since: float | None = None  # when the current outage began
        self.requests = 0

    def write(self, lines: list[str]) -> list[tuple[int, str]]:
        if not lines:
            return []
        return self._write(lines, 0)

    def _write(self, lines: list[str], start: int) -> list[tuple[int, str]]:
        try:
            self._write_retrying("\n".join(lines).encode())
            return []
        except Refused as exc:
            if len(lines) == 1:
                return [(start, str(exc))]
            # Rewriting the half that was fine is harmless: the same point overwrites itself.
            mid = len(lines) // 2
            return self._write(lines[:mid], start) + self._write(lines[mid:], start + mid)

    def _write_retrying(self, body: bytes) -> None:
        delays = self.backoff.delays()
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                self.requests += 1
                self.target.write(body)
            except Unavailable as exc:
                delay = max(next(delays), exc.retry_after_s or 0.0)
                if self.down_since is None:
                    self.down_since = self.clock()
                    log.warning("%s is unavailable (%s); waiting for it, retrying with backoff up "
                                "to %.0f s; Kafka offsets stay uncommitted until points are "
                                "written", self.target.name, exc, self.backoff.cap_s)
                else:
                    log.debug("%s still unavailable (%s); next try in %.1f s",
                              self.target.name, exc, delay)
                self.stop.wait(delay)
                continue
            if self.down_since is not None:
                log.warning("%s is back after %.1f s; catching up", self.target.name,
                            self.clock() - self.down_since)
                self.down_since = None
            return


@dataclass
class StoreCounts:
    records: int = 0
    written: int = 0
    refused: int = 0
    bad: int = 0
    empty: int = 0  # trend points with no feature yet: nothing to store
    by_topic: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.records} records: {self.written} points written, {self.refused} refused "
                f"and {self.bad} unreadable (to {topics.REJECTED.name}), {self.empty} empty")


class Store:
    """One consumer, one write target, one producer for dead letters."""

    def __init__(self, consumer: Consumer, producer: Producer, writer: Writer,
                 batch_size: int = 10_000, clock: Callable[[], float] = time.time,
                 canary_patient: str | None = None) -> None:
        self.consumer = consumer
        self.canary_patient = canary_patient  # its records go to measurement `canary`
        self.producer = producer
        self.writer = writer
        self.batch_size = batch_size
        self.clock = clock
        self.counts = StoreCounts()
        self.kafka_unreachable = False
        self.progress = Progress("records not yet written", "store main loop", clock)

    def kafka_error(self, err: KafkaError) -> None:
        """librdkafka reconnects by itself; say once that Kafka is unreachable."""
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            if not self.kafka_unreachable:
                self.kafka_unreachable = True
                log.warning("Kafka is unreachable (%s); waiting for it", err.str())
        else:
            log.error("Kafka: %s", err.str())

    def step(self, timeout: float = 0.5) -> int:
        """Consume one batch, write it, dead-letter what cannot be written, commit; returns how
        many records it handled. Raises `Stopped` (nothing committed) if asked to stop."""
        messages = self.consumer.consume(self.batch_size, timeout)
        self._report(messages)
        if not messages:
            return 0
        if self.kafka_unreachable:
            self.kafka_unreachable = False
            log.warning("Kafka is back; catching up")
        lines: list[str] = []
        origin: list[Message] = []  # the record behind each line
        dead: list[Rejection] = []
        offsets: dict[tuple[str, int], int] = {}
        c = self.counts
        for m in messages:
            if (err := m.error()) is not None:
                if err.code() == KafkaError._MAX_POLL_EXCEEDED:
                    # A long outage kept us from polling: the group moved on without us. We
                    # rejoin now; the batch being written is read and written again after.
                    log.info("rejoining the consumer group after waiting longer than "
                             "max.poll.interval.ms")
                else:
                    log.error("Kafka: %s", err.str())
                continue
            topic = m.topic()
            offsets[topic, m.partition()] = m.offset() + 1
            c.records += 1
            c.by_topic[topic] = c.by_topic.get(topic, 0) + 1
            try:
                text = schema.to_line(topic, m.value() or b"", self.canary_patient)
            except schema.BadRecord as exc:
                c.bad += 1
                dead.append(self._rejection(m, "store_bad_record", str(exc)))
                continue
            if text is None:
                c.empty += 1
                continue
            lines.append(text)
            origin.append(m)
        refused = self.writer.write(lines)
        c.written += len(lines) - len(refused)
        c.refused += len(refused)
        if refused:
            log.warning("%s refused %d points of a batch of %d (first: %s); sent to %s",
                        self.writer.target.name, len(refused), len(lines), refused[0][1],
                        topics.REJECTED.name)
        for index, reason in refused:
            dead.append(self._rejection(origin[index], "store_refused",
                                        f"InfluxDB refused this record's point: {reason}"))
        if dead:
            self._dead_letter(dead)
        self._commit(offsets)
        self.progress.progressed()
        self._report([])
        return len(messages)

    def _report(self, in_hand: list[Message]) -> None:
        """Tell `progress` that the loop turns and what waits: the batch in hand, and what
        Kafka holds beyond it."""
        self.progress.beat()
        self.progress.waiting(len(in_hand) + consumer_lag(self.consumer),
                              oldest_timestamp(in_hand))

    def _rejection(self, m: Message, reason: str, detail: str) -> Rejection:
        key = m.key()
        patient = echo(key.decode("utf-8", "replace")) if key else None
        return Rejection.of(reason, detail, m.topic() or "", int(self.clock() * 1000),
                            m.value() or b"", patient_id=patient)

    def _dead_letter(self, dead: list[Rejection]) -> None:
        """Produce and wait for Kafka's confirmation: the offsets of these records are committed
        next, so an unconfirmed dead letter would be a lost record."""
        pending = list(dead)
        while pending:
            failed: list[Rejection] = []
            for rej in pending:
                def delivered(err: KafkaError | None, _msg: Message, rej: Rejection = rej,
                              failed: list[Rejection] = failed) -> None:
                    if err is not None:
                        log.error("Kafka refused a dead letter (%s); trying again", err.str())
                        failed.append(rej)
                key = rej.patient_id.encode() if rej.patient_id else None
                self.producer.produce(topics.REJECTED.name, encode(rej), key, on_delivery=delivered)
            while self.producer.flush(0.5):
                if self.writer.stop.is_set():
                    raise Stopped
            pending = failed

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self.consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            # Written but not committed (a rebalance, Kafka gone): these records will be read and
            # written again, which overwrites the same points.
            log.warning("could not commit Kafka offsets (%s); the records of this batch will be "
                        "read and written again", exc)


def influx_target(settings: Settings) -> InfluxTarget:
    if not settings.influx_url:
        raise ConfigError("VITALS_INFLUX_URL is not set: `vitals store` needs the InfluxDB 2 URL, "
                          "e.g. http://127.0.0.1:8086")
    return InfluxTarget(settings.influx_url, settings.influx_token, settings.influx_org,
                        settings.influx_bucket)


def run(settings: Settings, stop: threading.Event, *, target: WriteTarget | None = None,
        backoff: Backoff = Backoff(), batch_size: int = 10_000,
        consumer_options: dict[str, object] | None = None,
        on_ready: Callable[[Store], None] | None = None) -> StoreCounts:
    """Run until `stop` is set, then return the counts. A batch still unwritten at that moment
    keeps its offsets uncommitted and is read again at the next start."""
    target = target or influx_target(settings)
    declare_topics(settings.kafka, (*topics.STORE_TOPICS, topics.REJECTED),
                   settings.kafka_partitions)
    writer = Writer(target, stop, backoff)
    store: Store | None = None

    def error(err: KafkaError) -> None:
        if store is not None:
            store.kafka_error(err)

    consumer = Consumer({**consumer_config(settings.kafka, GROUP_ID), "error_cb": error,
                         **(consumer_options or {})})
    producer = Producer({**producer_config(settings.kafka), "error_cb": error,
                         "log_level": 2})
    store = Store(consumer, producer, writer, batch_size,
                  canary_patient=settings.canary_patient)
    names = [t.name for t in topics.STORE_TOPICS]

    def assigned(_consumer: Consumer, parts: list[TopicPartition]) -> None:
        log.info("reading %d partitions of %s", len(parts), ", ".join(names))

    metrics = CollectorRegistry()
    metrics.register(ProgressCollector(
        "store", store.progress, "Records waiting: consumed and not yet written, and beyond "
        "the consumer's position in Kafka", "Kafka timestamp of the oldest record of the batch "
        "being written (Unix seconds)"))
    host, port = parse_hostport(settings.store_metrics_addr)
    server = HealthServer(host, port, metrics,
                          lambda: store.progress.stalled(settings.stall_s) if store else None)
    consumer.subscribe(names, on_assign=assigned)
    log.info("storing %s into %s", ", ".join(names), target.name)
    if on_ready is not None:
        on_ready(store)
    try:
        while not stop.is_set():
            store.step()
    except Stopped:
        log.warning("stopped while %s was unavailable; the unwritten records stay uncommitted "
                    "in Kafka and are written at the next start", target.name)
    finally:
        consumer.close()
        producer.flush(5)
        producer.close()
        target.close()
        server.close()
    return store.counts
