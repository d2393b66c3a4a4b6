"""Reads `vitals.alerts` (and `vitals.trends` for the nurse page's charts) with a
confluent-kafka consumer. Offsets are committed by hand, only after the batch is recorded in
SQLite, so a crash in between reads the batch again; repeats are no-ops by alert_id."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from confluent_kafka import Consumer, KafkaError

from alerting.core import Alerting
from vitals import kafka, topics
from vitals.records import AlertEvent, TrendPoint

log = logging.getLogger(__name__)

GROUP = "vitals-alerting"
_alert = msgspec.json.Decoder(AlertEvent)
_trend = msgspec.json.Decoder(TrendPoint)


def consumer_config(bootstrap: str) -> dict[str, object]:
    # latency: a page should leave within ~100 ms of the event
    return {**kafka.consumer_config(bootstrap, GROUP), "fetch.wait.max.ms": 20}


class AlertConsumer:
    def __init__(self, bootstrap: str, core: Alerting) -> None:
        self.core = core
        self.bootstrap = bootstrap
        self.consumer = Consumer({**consumer_config(bootstrap), "error_cb": self._error})
        self.consumer.subscribe([topics.ALERTS.name, topics.TRENDS.name])
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
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            # consume() waits out its whole timeout unless the batch fills, so the timeout is
            # latency added to every page: 10 ms (p99 ~30 ms at 100 events/s; 50 ms gave ~67).
            msgs = await loop.run_in_executor(None, self.consumer.consume, 500, 0.01)
            msgs = [m for m in msgs if m.error() is None]
            if not msgs:
                continue
            if self.unreachable:
                self.unreachable = False
                log.warning("Kafka at %s is back", self.bootstrap)
            with self.core.store.tx():  # one durable commit per batch
                for m in msgs:
                    self._one(m.topic(), m.value())
            self.core.wake()
            await loop.run_in_executor(None, lambda: self.consumer.commit(asynchronous=False))

    def _one(self, topic: str, value: bytes | None) -> None:
        try:
            if topic == topics.TRENDS.name:
                self.core.trend(_trend.decode(value or b""))
                return
            ev = _alert.decode(value or b"")
        except msgspec.DecodeError as exc:
            self.bad += 1
            self.core.store.audit(self.core.now(), "bad_record", status="error",
                                  detail=f"{topic}: {exc}: {(value or b'')[:300]!r}")
            log.error("skipping a record of %s that is not valid: %s", topic, exc)
            return
        self.events += 1
        outcome = self.core.handle(ev)
        log.info("%s %s (%s %s): %s", ev.alert_id, ev.status, ev.rule, ev.severity, outcome)

    def close(self) -> None:
        self.consumer.close()
