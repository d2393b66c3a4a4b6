"""The MQTT side of ingest: a paho-mqtt 2.x subscriber with a persistent session and manual
acknowledgements."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitals.settings import Endpoint

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [("vitals/v1/+/+", 1), ("vitals/v1/+/+/status", 1)]

OnMessage = Callable[[str, bytes, int, int, bool], None]  # topic, payload, mid, qos, retained


class MqttSource:
    """Delivers each message to `on_message` on the network thread; the caller acknowledges
    it later with `ack`. With `clean_session=False` the broker keeps the subscription and
    queues messages while ingest is down, and redelivers what was never acknowledged.

    If delivering a message ever raises, or paho's network thread dies, `alive()` turns False
    and `failure` says why: the service must then exit rather than stay up deaf."""

    def __init__(self, endpoint: Endpoint, client_id: str, on_message: OnMessage,
                 on_reconnect: Callable[[], None] = lambda: None) -> None:
        self.endpoint = endpoint
        # Set once the broker granted the subscriptions: from then on nothing published is
        # missed, even while ingest is down (the persistent session queues it).
        self.subscribed = threading.Event()
        self._on_reconnect = on_reconnect
        self._on_message = on_message
        self._connects = 0
        self._stopping = False
        self.failure: str | None = None
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                        protocol=mqtt.MQTTv311, manual_ack=True)
        if endpoint.username:
            c.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            c.tls_set()
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._connected
        c.on_subscribe = self._granted
        c.on_disconnect = self._disconnected
        c.on_connect_fail = lambda _c, _u: log.warning(
            "cannot reach MQTT %s; retrying", self.endpoint.address)
        c.on_message = self._message
        self._client = c

    def start(self) -> None:
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        self._client.loop_start()

    def alive(self) -> bool:
        """False once delivering failed or the network thread ended (see `failure`)."""
        if self._stopping:
            return True
        # paho clears `_thread` when its network loop ends, which it does only on disconnect()
        # or an exception; there is no public way to ask.
        if self.failure is None and self._client._thread is None:
            self.failure = "the MQTT network thread ended"
        return self.failure is None

    def _message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
                 ) -> None:
        if self.failure is not None:
            return  # left unacknowledged for the next process
        try:
            # MQTT 3.1.1: the broker sets retain only on a message it replays to a new
            # subscription.
            self._on_message(message.topic, message.payload, message.mid, message.qos,
                             bool(message.retain))
        except Exception as exc:
            self.failure = f"delivering a message failed: {exc!r}"
            log.critical("%s", self.failure)

    def ack(self, mid: int, qos: int) -> None:
        self._client.ack(mid, qos)

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def _connected(self, client: mqtt.Client, _u: object, flags: mqtt.ConnectFlags,
                   reason: mqtt.ReasonCode, _p: object) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.endpoint.address, reason)
            return
        self._connects += 1
        if self._connects > 1:
            self._on_reconnect()
        log.info("connected to MQTT %s (session %s)", self.endpoint.address,
                 "resumed" if flags.session_present else "new")
        client.subscribe(SUBSCRIPTIONS)

    def _granted(self, _c: mqtt.Client, _u: object, _mid: int, codes: list[mqtt.ReasonCode],
                 _p: object) -> None:
        refused = [topic for (topic, _), code in zip(SUBSCRIPTIONS, codes, strict=True)
                   if code.is_failure]
        if refused:
            log.error("MQTT broker refused the subscription to %s: check this account's ACL",
                      ", ".join(refused))
            return
        log.info("subscribed to %s", ", ".join(t for t, _ in SUBSCRIPTIONS))
        self.subscribed.set()

    def _disconnected(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                      _p: object) -> None:
        if reason.is_failure:
            log.warning("lost MQTT %s (%s); reconnecting", self.endpoint.address, reason)
