"""Reads `vitals.alerts` (and, for the nurse page, `vitals.trends` for its charts and
`vitals.reports` for what patients entered in the app; `vitals.canary` for the canary watch)
with a confluent-kafka consumer. Offsets are committed by hand, only after the batch is
recorded in the store (one transaction, on the store thread), so a crash in between reads the
batch again; repeats are no-ops by alert_id."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException

from alerting.core import Alerting
from vitals import canary, topics
from vitals import kafka as kafka_config
from vitals.records import AlertEvent, Reading, TrendPoint, echo

log = logging.getLogger(__name__)

GROUP = "vitals-alerting"
_alert = msgspec.json.Decoder(AlertEvent)
_trend = msgspec.json.Decoder(TrendPoint)
_reading = msgspec.json.Decoder(Reading)
_CONTEXT = frozenset({topics.REPORTS.name, topics.TRENDS.name})  # what a page shows beside


# tansu answers a fetch that finds nothing only when this wait is over, even if records arrive
# meanwhile: an event waits at most this long, and each fetch costs the broker CPU (idle, at
# 20 ms tansu spent 0.14 of a core on this group's fetches, at 100 ms 0.05).
FETCH_WAIT_MS = 50


def consumer_config(kafka: kafka_config.KafkaConnection | str) -> dict[str, object]:
    """The group's configuration, tuned so that a page leaves within ~100 ms of the event."""
    return {**kafka_config.consumer_config(kafka, GROUP), "fetch.wait.max.ms": FETCH_WAIT_MS}


class AlertConsumer:
    """Batches of alert events and trend points: recorded on the store thread, then committed."""

    def __init__(self, kafka: kafka_config.KafkaConnection | str, core: Alerting) -> None:
        self.core = core
        self.bootstrap = kafka_config.connection(kafka).bootstrap
        self.consumer = Consumer({**consumer_config(kafka), "error_cb": self._error})
        self.consumer.subscribe([topics.ALERTS.name, topics.TRENDS.name, topics.REPORTS.name,
                                 topics.CANARY.name])
        self.unreachable = False
        self.events = 0
        self.bad = 0

    def _error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            if not self.unreachable:
                self.unreachable = True
                log.warning("Kafka at %s is unreachable (%s); waiting", self.bootstrap,
                            err.str())
        else:
            log.error("Kafka: %s", err.str())

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: poll, record each batch durably, then commit its offsets."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            # consume() waits out its whole timeout unless the batch fills, so the timeout is
            # latency added to every page: 10 ms (p99 ~30 ms at 100 events/s; 50 ms gave ~67).
            messages = await loop.run_in_executor(None, self.consumer.consume, 500, 0.01)
            self.core.polled_at = self.core.now()
            batch = [(message.topic(), message.value()) for message in messages
                     if message.error() is None]
            if not batch:
                continue
            if self.unreachable:
                self.unreachable = False
                log.warning("Kafka at %s is back", self.bootstrap)
            self.core.kafka_read_at = self.core.now()
            await self.core.off_loop(self.record, batch)  # its events woke the dispatcher
            await loop.run_in_executor(None, self._commit)

    def _commit(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            # Recorded but not committed: the group moved on (its membership lapsed while Kafka
            # was cut off) or Kafka is gone. The batch is read again, a no-op by alert_id; an
            # outage must not stop paging (the chaos run's 60 s cut did).
            log.warning("could not commit Kafka offsets (%s); this batch will be read again",
                        exc)

    def record(self, batch: list[tuple[str, bytes | None]]) -> None:
        """On the store thread: a batch of (topic, value) in one durable commit; the reports
        and trend points first, so that a page built from this batch shows them."""
        with self.core.store.tx():
            for topic, value in sorted(batch, key=lambda item: item[0] not in _CONTEXT):
                self._one(topic, value)

    def _one(self, topic: str, value: bytes | None) -> None:
        try:
            if topic == topics.TRENDS.name:
                self.core.trend(_trend.decode(value or b""))
                return
            if topic == topics.REPORTS.name:
                self.core.report(_reading.decode(value or b""))
                return
            if topic == topics.CANARY.name:
                self.core.canary_ingested(_reading.decode(value or b"").received_at)
                return
            event = _alert.decode(value or b"")
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than msgspec goes (an unknown field, skipped,
            # is still parsed). A validation error quotes the value it refused, which may be
            # a megabyte long.
            self.bad += 1
            self.core.bad_record(f"{topic}: {echo(str(exc))}: {(value or b'')[:300]!r}")
            log.error("skipping a record of %s that is not valid: %s", topic, echo(str(exc)))
            return
        if event.patient_id == self.core.canary_patient or event.rule == canary.RULE:
            # a round trip, whatever its rule says: the canary is never paged to a nurse
            self.core.canary_event(event)
            return
        self.events += 1
        try:
            verdict = self.core.process(event)
        except Exception as exc:
            # One event must not stop paging for every patient (its offset would never be
            # committed, so a restart would meet it again): audit it loudly and go on.
            self.bad += 1
            log.exception("could not process alert event %s", echo(event.alert_id))
            self.core.bad_record(f"{topic}: processing failed: {echo(repr(exc))}: "
                                 f"{(value or b'')[:300]!r}")
            return
        log.info("%s %s (%s %s): %s (%s)", event.alert_id, event.status, event.rule,
                 event.severity, verdict.outcome, verdict.stage)

    def close(self) -> None:
        """Leave the consumer group."""
        self.consumer.close()
