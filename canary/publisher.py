"""`vitals canary` (CONTRACT section 7): the canary patient's one device.

- Every VITALS_CANARY_EVERY_S seconds of wall time (the first round at once, and at once again
  after each reconnection) it publishes `vitals.canary.reading(seq, now_ms)` as JSON to
  `vitals/v1/{VITALS_CANARY_PATIENT}/canary` at QoS 1. `seq` is the publish time in epoch ms
  (one more than the last if the clock has not moved on), so it increases across restarts too.
- Like any device it says `{"ts", "state": "online", "battery": 100}` on
  `.../canary/status` when it connects, and leaves `"state": "offline"` there as its last will
  (and publishes it itself when it stops).
- It never stops because the broker is down: paho reconnects with backoff (1 s doubling to
  30 s), rounds that fall due meanwhile are skipped, not made up (a late reading would prove
  nothing about now), and the outage is one warning line when it starts and one line when it
  ends, never a line per attempt. Each round is one debug line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from vitals import canary
from vitals.mqtt_client import device_client
from vitals.settings import Endpoint, Settings

log = logging.getLogger(__name__)

CLIENT_ID = "vitals-canary"
BATTERY = 100  # the canary runs on mains power
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
POLL_S = 0.5  # how soon the loop notices a (re)connection or a dead network thread
STOP_FLUSH_S = 2.0  # at most this long for the broker to take the offline status at stop


def reading_topic(patient_id: str) -> str:
    """`vitals/v1/{patient_id}/canary`: where the canary's readings go."""
    return f"vitals/v1/{patient_id}/{canary.DEVICE_ID}"


def status_topic(patient_id: str) -> str:
    return f"{reading_topic(patient_id)}/status"


def status(state: str, ts_ms: int) -> bytes:
    """A status payload (CONTRACT section 1)."""
    return _json({"ts": ts_ms, "state": state, "battery": BATTERY})


def _json(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Counts:
    rounds: int = 0  # readings handed to the broker
    acked: int = 0  # of which the broker acknowledged (PUBACK)
    skipped: int = 0  # rounds that fell due while the broker was unreachable
    outages: int = 0

    def summary(self) -> str:
        return (f"{self.rounds} rounds published ({self.acked} acknowledged by the broker), "
                f"{self.skipped} skipped while the broker was unreachable, "
                f"{self.outages} outage{'s' if self.outages != 1 else ''}")


class CanaryPublisher:
    """The canary device of `patient_id` on the broker at `endpoint`; `run` until stopped.
    `clock` is wall time in seconds (the period is on wall time: this is live monitoring)."""

    def __init__(self, endpoint: Endpoint, patient_id: str, every_s: float,
                 client_id: str = CLIENT_ID, clock: Callable[[], float] = time.time) -> None:
        self.endpoint = endpoint
        self.patient_id = patient_id
        self.every_s = every_s
        self.clock = clock
        self.topic = reading_topic(patient_id)
        self.status_topic = status_topic(patient_id)
        self.counts = Counts()
        self._lock = threading.Lock()  # never held while calling into paho (its own locks)
        self._connected = False
        self._fresh = False  # connected since the loop last looked: a round at once
        self._connects = 0
        self._down_since: float | None = None
        self._stopping = False
        self._last_seq = 0
        self._status_mids: set[int] = set()  # on the network thread only
        self._acked = threading.Event()  # the broker acknowledged a reading
        c = device_client(endpoint, client_id, RECONNECT_MIN_S, RECONNECT_MAX_S)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = self._on_connect_fail
        c.on_publish = self._on_publish
        self._client = c

    # --- the loop, on the caller's thread -------------------------------------------------
    def run(self, stop: threading.Event, on_ready: Callable[[], None] | None = None) -> Counts:
        """Publish a round every `every_s` seconds until `stop` is set, then say offline and
        disconnect. `on_ready` is called once, when the broker has acknowledged a reading."""
        log.info("the canary %s publishes to MQTT %s on %s every %g s", self.patient_id,
                 self.endpoint.address, self.topic, self.every_s)
        self._arm_will()
        self._start_network()
        next_due = self.clock()  # the first round at once
        try:
            while not stop.is_set():
                self._watch_network()
                now = self.clock()
                with self._lock:
                    connected, fresh, self._fresh = self._connected, self._fresh, False
                    down = self._down_since is not None
                if fresh or next_due - now > self.every_s:  # (re)connected, or clock set back
                    next_due = now
                if now >= next_due:
                    if connected:
                        self._publish_round(now)
                    elif down:
                        self.counts.skipped += 1
                    next_due += self.every_s
                    if next_due <= now:  # rounds missed (a pause, a suspend) are not made up
                        next_due = now + self.every_s
                if on_ready is not None and self._acked.is_set():
                    on_ready()
                    on_ready = None
                stop.wait(min(max(next_due - self.clock(), 0.0), POLL_S))
        finally:
            self._close()
        return self.counts

    def _publish_round(self, now: float) -> None:
        now_ms = int(now * 1000)
        seq = max(now_ms, self._last_seq + 1)  # strictly increasing, also across restarts
        self._last_seq = seq
        self._client.publish(self.topic, _json(canary.reading(seq, now_ms)), qos=1)
        self.counts.rounds += 1
        log.debug("canary round %d published", seq)

    def _start_network(self) -> None:
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self._client.loop_start()

    def _watch_network(self) -> None:
        """Start paho's network thread again if it ended (it should not: the callbacks do not
        raise), so that the canary never stops on its own. paho clears `_thread` when its loop
        ends; there is no public way to ask."""
        if not self._stopping and self._client._thread is None:
            log.error("the MQTT network thread ended; starting it again")
            with self._lock:
                self._connected = False
            self._start_network()

    def _close(self) -> None:
        self._stopping = True
        with self._lock:
            connected = self._connected
        if connected:  # a clean disconnect drops the will: say offline ourselves
            info = self._client.publish(self.status_topic,
                                        status("offline", int(self.clock() * 1000)), qos=1)
            with contextlib.suppress(RuntimeError, ValueError):  # gone meanwhile: the will
                info.wait_for_publish(STOP_FLUSH_S)
        self._client.disconnect()
        self._client.loop_stop()

    # --- paho's callbacks, on its network thread ------------------------------------------
    def _arm_will(self) -> None:
        """The last will for the next connection; its `ts` is when that connection starts."""
        self._client.will_set(self.status_topic, status("offline", int(self.clock() * 1000)),
                              qos=1, retain=False)

    def _outage(self, why: str) -> None:
        """One warning line when an outage starts, none for each failed attempt."""
        with self._lock:
            self._connected = False
            starts = self._down_since is None
            if starts:
                self._down_since = self.clock()
                self.counts.outages += 1
        if starts:
            log.warning("MQTT %s: %s; reconnecting with backoff (one line when it is back)",
                        self.endpoint.address, why)

    def _on_connect(self, client: mqtt.Client, _u: object, _flags: mqtt.ConnectFlags,
                    reason: mqtt.ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self._outage(f"the broker refused the connection ({reason})")
            return
        with self._lock:
            self._connected = self._fresh = True
            self._connects += 1
            first, since, self._down_since = self._connects == 1, self._down_since, None
        if since is not None:
            log.info("MQTT %s is back after %.0f s; publishing again", self.endpoint.address,
                     self.clock() - since)
        elif first:
            log.info("connected to MQTT %s", self.endpoint.address)
        info = client.publish(self.status_topic, status("online", int(self.clock() * 1000)),
                              qos=1)
        self._status_mids.add(info.mid)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                       _p: object) -> None:
        with self._lock:
            self._connected = False
        if self._stopping:
            return
        self._outage(f"lost the connection ({reason})")
        self._arm_will()

    def _on_connect_fail(self, _c: mqtt.Client, _u: object) -> None:
        self._outage("cannot reach it")
        self._arm_will()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _reason: object,
                    _p: object) -> None:
        if mid in self._status_mids:
            self._status_mids.discard(mid)
            return
        if self._stopping:
            return
        with self._lock:
            self.counts.acked += 1
        self._acked.set()


def run(settings: Settings, stop: threading.Event,
        on_ready: Callable[[], None] | None = None) -> Counts:
    """`vitals canary`: publish the canary's rounds to VITALS_MQTT_URL until `stop` is set."""
    publisher = CanaryPublisher(settings.mqtt, settings.canary_patient, settings.canary_every_s)
    return publisher.run(stop, on_ready)
