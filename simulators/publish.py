"""Publishing traffic over MQTT at a chosen speed, used by `vitals simulate` and `vitals replay`.

- One paho client publishes every device's messages, in the order given, at QoS 1 (so
  per-device order is kept: Mosquitto delivers one connection's messages in order).
- At most `IN_FLIGHT` messages are unacknowledged: paho collapses with an unbounded QoS 1
  backlog (ENVIRONMENT.md), so the publisher waits for the oldest before sending more.
- Pacing: a message published at simulated time `at` goes out `(at - t0) / speed` seconds
  after the start; `speed=None` publishes as fast as the broker acknowledges. Payloads (and
  the event times inside them) are never changed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitals.settings import Endpoint

IN_FLIGHT = 100
ACK_TIMEOUT = 30.0  # seconds without an acknowledgement: the broker is gone
T = TypeVar("T")


class PublishError(RuntimeError):
    pass


class Publisher:
    def __init__(self, endpoint: Endpoint, client_id: str, in_flight: int = IN_FLIGHT) -> None:
        self.endpoint, self.in_flight = endpoint, in_flight
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(in_flight)
        if endpoint.username:
            c.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            c.tls_set()
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                       _p: object) -> None:
            if reason.is_failure:
                refused.append(str(reason))
            connected.set()

        c.on_connect = on_connect
        try:
            c.connect(endpoint.host, endpoint.port, keepalive=60)
        except OSError as exc:
            raise PublishError(f"cannot reach MQTT {endpoint.address}: {exc}") from None
        c.loop_start()
        if not connected.wait(10) or refused:
            c.loop_stop()
            raise PublishError(f"MQTT {endpoint.address} refused the connection: "
                               f"{refused[0] if refused else 'no answer'}")
        self._client = c
        self._window: deque[mqtt.MQTTMessageInfo] = deque()
        self.published = 0

    def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)
        self._window.append(info)
        self.published += 1
        if len(self._window) >= self.in_flight:
            self._wait(self._window.popleft())

    def _wait(self, info: mqtt.MQTTMessageInfo) -> None:
        try:
            info.wait_for_publish(ACK_TIMEOUT)
        except (RuntimeError, ValueError) as exc:
            raise PublishError(f"MQTT {self.endpoint.address}: publishing failed: {exc}"
                               ) from None
        if not info.is_published():
            raise PublishError(f"MQTT {self.endpoint.address} acknowledged nothing for "
                               f"{ACK_TIMEOUT:.0f} s")

    def flush(self) -> None:
        while self._window:
            self._wait(self._window.popleft())

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class Paced:
    published: int
    seconds: float


def pace(items: Iterable[tuple[int, str, bytes]], publisher: Publisher, speed: float | None,
         t0: int | None = None, progress: Callable[[int, int], None] | None = None,
         every: int = 2000) -> Paced:
    """Publish (at, topic, payload) in order; at simulated time `at` (ms) a message is due
    (at - t0) / speed seconds after the start (t0: the first message's `at` unless given).
    `progress(count, at)` is called every `every` messages and at the end."""
    start = time.monotonic()
    n, at = 0, 0
    for at, topic, payload in items:
        if speed is not None:
            if t0 is None:
                t0 = at
            delay = start + (at - t0) / 1000 / speed - time.monotonic()
            if delay > 0.002:  # messages due within 2 ms go out together
                time.sleep(delay)
        publisher.publish(topic, payload)
        n += 1
        if progress and n % every == 0:
            progress(n, at)
    publisher.flush()
    if progress:
        progress(n, at)
    return Paced(n, time.monotonic() - start)


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Produce `items` on a thread, `depth` ahead: the next chunk of the simulation is
    generated while this one is published, so a real-time run does not stall at chunk ends."""
    q: queue.Queue[tuple[bool, object]] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((True, item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((False, None))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((False, exc))

    t = threading.Thread(target=produce, daemon=True, name="simulate-generate")
    t.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
