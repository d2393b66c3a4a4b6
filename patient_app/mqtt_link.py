"""The app's one connection to the broker: it publishes what patients submit (the app device's
gateway, QoS 1, each publish waited on until the broker's PUBACK) and hears every device's
readings and status for the device states. One connection, not two: the production broker
takes the account name as the client id, so two connections on one account would knock each
other off. Clean session: nothing is held for the app while it is down (a submission not
acknowledged stays queued in the patient's browser instead)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from vitals.mqtt_client import device_client
from vitals.settings import Endpoint

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [("vitals/v1/+/+", 0), ("vitals/v1/+/+/status", 0)]
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
PUBACK_WAIT_S = 5.0  # then 503: the browser keeps the submission and sends it again


class Unavailable(Exception):
    """The broker did not take a submission (not connected, or no PUBACK in time)."""


class MqttLink:
    def __init__(self, endpoint: Endpoint, on_message: Callable[[str, bytes, int], None],
                 client_id: str | None = None) -> None:
        self.endpoint = endpoint
        self._on_message_cb = on_message
        self._lock = threading.Lock()
        self._connected = False
        self._down_since: float | None = None
        self._why = "not connected yet"
        self._started = time.monotonic()
        self._stopping = False
        self._loop_started = False
        # a client id of its own per process: two `vitals app` never take each other's session
        client_id = client_id or f"vitals-app-{secrets.token_hex(4)}"
        c = device_client(endpoint, client_id, RECONNECT_MIN_S, RECONNECT_MAX_S)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = self._on_connect_fail
        c.on_message = self._on_message
        self._client = c

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def problem(self) -> str | None:
        """None while connected; otherwise why not, and for how long (for /healthz)."""
        with self._lock:
            if self._connected:
                return None
            since, why = self._down_since or self._started, self._why
        return (f"MQTT {self.endpoint.address}: {why}, for {time.monotonic() - since:.0f} s; "
                "submissions wait in the browsers")

    @property
    def alive(self) -> bool:
        """Whether paho's network thread runs. Were it to end (a failure inside paho; the
        callbacks' exceptions are suppressed), nothing would reconnect: a case for a restart.
        True before `start`."""
        thread = getattr(self._client, "_thread", None)  # paho's loop_start thread
        return not self._loop_started or (thread is not None and thread.is_alive())

    def start(self) -> None:
        """Connect in the background; paho reconnects with backoff for as long as it runs."""
        log.info("the patient app publishes to and listens on MQTT %s", self.endpoint.address)
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self._client.loop_start()
        self._loop_started = True

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    async def publish(self, topic: str, payload: bytes, wait_s: float = PUBACK_WAIT_S) -> None:
        """Publish at QoS 1 and return once the broker has acknowledged it; `Unavailable`
        otherwise. Not connected: refused at once rather than queued in paho, where it would
        go out later behind the browser's back (the browser resends it, same `seq`)."""
        if not self.connected:
            raise Unavailable(f"not connected to MQTT {self.endpoint.address}")
        info = self._client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + wait_s
        try:
            while not info.is_published():
                if time.monotonic() >= deadline:
                    raise Unavailable(f"MQTT {self.endpoint.address} did not acknowledge "
                                      f"within {wait_s:g} s")
                await asyncio.sleep(0.02)
        except (RuntimeError, ValueError) as exc:  # paho: not sent (connection lost ...)
            raise Unavailable(f"MQTT {self.endpoint.address}: {exc}") from None

    # --- paho's callbacks, on its network thread ------------------------------------------
    def _outage(self, why: str) -> None:
        """One warning when an outage starts, not one per reconnection attempt."""
        with self._lock:
            self._connected = False
            self._why = why
            starts = self._down_since is None
            if starts:
                self._down_since = time.monotonic()
        if starts:
            log.warning("MQTT %s: %s; submissions are answered 503 (kept in the browsers) "
                        "until it is back", self.endpoint.address, why)

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object,
                    reason: mqtt.ReasonCode, _p: object) -> None:
        if reason.is_failure:
            self._outage(f"the broker refused the connection ({reason})")
            return
        client.subscribe(SUBSCRIPTIONS)
        with self._lock:
            self._connected = True
            since, self._down_since = self._down_since, None
        if since is not None:
            log.info("MQTT %s is back after %.0f s", self.endpoint.address,
                     time.monotonic() - since)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object,
                       reason: mqtt.ReasonCode, _p: object) -> None:
        if self._stopping:
            with self._lock:
                self._connected = False
            return
        self._outage(f"lost the connection ({reason})")

    def _on_connect_fail(self, _c: mqtt.Client, _u: object) -> None:
        self._outage("cannot reach it")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._on_message_cb(msg.topic, msg.payload, int(time.time() * 1000))
