"""Publishing traffic over MQTT at a chosen speed, used by `vitals simulate` and `vitals replay`.

- One paho client publishes every device's messages, in the order given, at QoS 1 (so
  per-device order is kept: Mosquitto delivers one connection's messages in order).
- At most `IN_FLIGHT` messages are unacknowledged: paho collapses with an unbounded QoS 1
  backlog (ENVIRONMENT.md), so the publisher waits for the oldest before sending more.
- The publishing thread runs paho's network loop itself (`loop_read`, `loop_write`,
  `loop_misc` on a `select`), also while it waits for its pace. With paho's own loop thread
  (`loop_start`) every publish woke that thread through a socket pair and the two passed the
  GIL back and forth: twice the CPU per message (164-170 us against 80-99 us measured, 50,000
  messages to a local Mosquitto), and the demo's publisher could not hold 10,000x.
- Pacing: a message published at simulated time `at` goes out `(at - t0) / speed` seconds
  after the start; `speed=None` publishes as fast as the broker acknowledges. Payloads (and
  the event times inside them) are never changed.
"""

from __future__ import annotations

import queue
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from vitals.settings import Endpoint

IN_FLIGHT = 100
ACK_TIMEOUT = 30.0  # seconds without an acknowledgement: the broker is gone
CONNECT_TIMEOUT = 10.0
READ_PACKETS = 100  # per readable socket: the acknowledgements that arrived together
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
        refused: list[str] = []

        def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                       _p: object) -> None:
            if reason.is_failure:
                refused.append(str(reason))

        c.on_connect = on_connect
        try:
            c.connect(endpoint.host, endpoint.port, keepalive=60)
        except OSError as exc:
            raise PublishError(f"cannot reach MQTT {endpoint.address}: {exc}") from None
        self._client = c
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while not (c.is_connected() or refused) and time.monotonic() < deadline:
            self._pump(0.1)
        if refused or not c.is_connected():
            c.disconnect()
            raise PublishError(f"MQTT {endpoint.address} refused the connection: "
                               f"{refused[0] if refused else 'no answer'}")
        self._window: deque[mqtt.MQTTMessageInfo] = deque()
        self.published = 0

    def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)  # written at once: no loop thread
        self._window.append(info)
        self.published += 1
        if len(self._window) >= self.in_flight:
            self._wait(self._window.popleft())

    def idle(self, seconds: float) -> None:
        """Wait `seconds`, reading acknowledgements and keeping the connection alive."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._pump(left)

    def _pump(self, timeout: float) -> None:
        """One turn of paho's network loop, waiting up to `timeout` for the socket."""
        c = self._client
        sock = c.socket()
        if sock is None:
            raise PublishError(f"MQTT {self.endpoint.address}: the connection was lost")
        readable, writable, _ = select.select([sock], [sock] if c.want_write() else [], [],
                                              timeout)
        rc = c.loop_read(READ_PACKETS) if readable else MQTTErrorCode.MQTT_ERR_SUCCESS
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and writable:
            rc = c.loop_write()
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = c.loop_misc()
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            raise PublishError(f"MQTT {self.endpoint.address}: {mqtt.error_string(rc)}")

    def _wait(self, info: mqtt.MQTTMessageInfo) -> None:
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            raise PublishError(f"MQTT {self.endpoint.address}: publishing failed: "
                               f"{mqtt.error_string(info.rc)}")
        deadline = time.monotonic() + ACK_TIMEOUT
        while not info.is_published():
            left = deadline - time.monotonic()
            if left <= 0:
                raise PublishError(f"MQTT {self.endpoint.address} acknowledged nothing for "
                                   f"{ACK_TIMEOUT:.0f} s")
            self._pump(min(left, 1.0))

    def flush(self) -> None:
        while self._window:
            self._wait(self._window.popleft())

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._client.disconnect()  # written at once, the socket closed after it

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
                publisher.idle(delay)
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
