"""Where ingest's records go: a small interface, and the Kafka producer behind it."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from confluent_kafka import KafkaError, Message, Producer

from vitals.kafka import KafkaConnection, connection, producer_config

log = logging.getLogger(__name__)

OnDone = Callable[[], None]


class Sink(ABC):
    """Accepts records and calls `on_done` once each is durably stored, never before."""

    @abstractmethod
    def send(self, topic: str, key: bytes | None, value: bytes, on_done: OnDone) -> None: ...

    @abstractmethod
    def poll(self, timeout: float) -> None:
        """Serve delivery reports (and so `on_done` calls) for up to `timeout` seconds."""

    @abstractmethod
    def flush(self, timeout: float) -> int:
        """Wait for everything sent; returns how many records are still not stored."""

    def close(self) -> None:  # noqa: B027 - optional for sinks that hold nothing
        """Release connections (after `flush`)."""


class KafkaSink(Sink):
    RETRY_AFTER_S = 1.0

    def __init__(self, kafka: KafkaConnection | str, **overrides: object) -> None:
        self.bootstrap = connection(kafka).bootstrap
        self.unreachable = False
        config = {**producer_config(kafka), "error_cb": self._error, "log_level": 2,
                  **overrides}
        self._producer = Producer(config)
        # Records whose delivery failed with a non-retriable error, produced again later.
        self._retry: list[tuple[float, str, bytes | None, bytes, OnDone]] = []
        self._retry_lock = threading.Lock()

    def send(self, topic: str, key: bytes | None, value: bytes, on_done: OnDone) -> None:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                if self.unreachable:
                    self.unreachable = False
                    log.warning("Kafka at %s is back; catching up", self.bootstrap)
                on_done()
            else:
                log.error("Kafka refused a record for %s (%s); trying again in %.0f s",
                          topic, err.str(), self.RETRY_AFTER_S)
                with self._retry_lock:
                    self._retry.append((time.monotonic() + self.RETRY_AFTER_S, topic, key,
                                        value, on_done))

        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=delivered)
                return
            except BufferError:
                # The local queue is full (Kafka slow or down): wait here, which stops reading
                # MQTT, so the backlog stays at the MQTT broker rather than in memory.
                self._producer.poll(0.1)

    def _error(self, err: KafkaError) -> None:
        """librdkafka retries by itself; say once that Kafka is unreachable, not per attempt."""
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            if not self.unreachable:
                self.unreachable = True
                log.warning("Kafka at %s is unreachable (%s); holding messages unacknowledged "
                            "at the MQTT broker until it is back", self.bootstrap, err.str())
        else:
            log.error("Kafka: %s", err.str())

    def poll(self, timeout: float) -> None:
        self._producer.poll(timeout)
        if self._retry:
            now = time.monotonic()
            with self._retry_lock:
                due = [r for r in self._retry if r[0] <= now]
                self._retry = [r for r in self._retry if r[0] > now]
            for _, topic, key, value, on_done in due:
                self.send(topic, key, value, on_done)

    def flush(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self._producer.flush(min(0.5, max(0.0, deadline - time.monotonic())))
            self.poll(0)
            if left == 0 and not self._retry:
                return 0
        return len(self._producer) + len(self._retry)

    def close(self) -> None:
        self._producer.close()
