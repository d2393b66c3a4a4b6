"""The MQTT side of ingest: a paho-mqtt 2.x MQTT 5 subscriber with a persistent session and
manual acknowledgements; alone (plain subscriptions) or one of several in a shared subscription.

Several ingest instances share the device traffic: each subscribes through
`$share/<group>/<filter>` (VITALS_INGEST_SHARE_GROUP), and the broker hands each message to one
member of the group. Each instance has a client id of its own (VITALS_INGEST_CLIENT_ID) and a
session that never expires. Measured on Mosquitto 2.0.11 (tests/ingest/test_shared.py): the
broker round-robins messages between the members; when one member dies, its unacknowledged
messages, and the new ones Mosquitto keeps assigning to its session, wait in that session (they
are not handed to the other member) and arrive when the member reconnects with the same client
id. Had the session expired meanwhile, they would be lost, hence no expiry. So a dead instance
must be restarted (its supervisor's job), and an instance removed for good must have its session
cleaned up (deploy/README.md, "Ingest: several instances").

Also measured (tests/ingest/test_broker_restart.py): after a restart with persistence on,
Mosquitto 2.0.11 restores a session's plain subscriptions but not its shared ones. A shared
member is subscribed again only when it reconnects and asks, and what devices publish between
the broker's start and that moment matches no subscription and is dropped, although the broker
acknowledged it to the device. Hence the default, one instance with plain subscriptions (the
group ""): its session goes on collecting across a broker restart. Several instances reconnect
quickly (`RECONNECT_MIN_S`) to keep that window short, but cannot close it; deploy/README.md
says how to restart the broker of a scaled-out ingest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from vitals.settings import Endpoint

log = logging.getLogger(__name__)

# The device topics (CONTRACT section 1); ingest subscribes to each through the share group.
TOPIC_FILTERS = ("vitals/v1/+/+", "vitals/v1/+/+/status")
QOS = 1
# MQTT 5 Session Expiry Interval: 0xFFFFFFFF means the session never expires. A session that
# expired while its instance was down would take the messages assigned to it along.
SESSION_NEVER_EXPIRES = 0xFFFFFFFF
DEFAULT_SHARE_GROUP = ""  # VITALS_INGEST_SHARE_GROUP's default: one instance
# the group deploy/ runs several instances in, and the default before plain subscriptions
DEPLOYED_SHARE_GROUP = "vitals-ingest"

OnMessage = Callable[[str, bytes, int, int, bool], None]  # topic, payload, mid, qos, retained


# The first reconnect comes this soon, so that after a broker restart a shared member asks for
# its subscriptions again about as soon as the devices are back (see above); then backoff.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.1, 30


def shared_filters(group: str) -> list[str]:
    """The topic filters ingest subscribes to, as shared subscriptions of `group`."""
    return [f"$share/{group}/{f}" for f in TOPIC_FILTERS]


def filters(group: str) -> list[str]:
    """What ingest subscribes to: `group`'s shared filters, or the plain ones if it is ""."""
    return shared_filters(group) if group else list(TOPIC_FILTERS)


def former_filters(group: str) -> list[str]:
    """What a resumed session may hold from another mode and must drop, so that no message is
    delivered twice: the plain filters when shared, the deployed group's when plain."""
    return list(TOPIC_FILTERS) if group else shared_filters(DEPLOYED_SHARE_GROUP)


class MqttSource:
    """Delivers each message to `on_message` on the network thread; the caller acknowledges
    it later with `ack`. With clean start off and a session that never expires, the broker keeps
    the subscriptions and queues this instance's share while it is down, and redelivers what was
    never acknowledged.

    If delivering a message ever raises, or paho's network thread dies, `alive()` turns False
    and `failure` says why: the service must then exit rather than stay up deaf."""

    def __init__(self, endpoint: Endpoint, client_id: str, on_message: OnMessage,
                 on_reconnect: Callable[[], None] = lambda: None,
                 share_group: str = DEFAULT_SHARE_GROUP) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.filters = filters(share_group)
        self._former = former_filters(share_group)
        # Set once the broker granted the subscriptions (and dropped a pre-shared session's
        # plain ones): from then on nothing published is missed, even while ingest is down
        # (the persistent session queues its share).
        self.subscribed = threading.Event()
        self._awaiting: set[str] = set()  # "subscribe", "unsubscribe": acks not yet received
        self._on_reconnect = on_reconnect
        self._on_message = on_message
        self._connects = 0
        self._stopping = False
        self.failure: str | None = None
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        if endpoint.username:
            c.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            c.tls_set()
        c.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        c.on_connect = self._connected
        c.on_subscribe = self._granted
        c.on_unsubscribe = self._unsubscribed
        c.on_disconnect = self._disconnected
        c.on_connect_fail = lambda _c, _u: log.warning(
            "cannot reach MQTT %s; retrying", self.endpoint.address)
        c.on_message = self._message
        self._client = c

    def start(self) -> None:
        """Connect (and reconnect, with backoff) on paho's network thread, and subscribe."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        # clean_start False on every connect, the first included: resume this id's session
        self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30,
                                   clean_start=False, properties=props)
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
            # With Retain As Published off (the default), the broker sets retain only on a
            # retained message it replays on subscribing. Mosquitto 2.0.11 replays them to
            # shared subscriptions too (measured), although MQTT 5 says it should not.
            self._on_message(message.topic, message.payload, message.mid, message.qos,
                             bool(message.retain))
        except Exception as exc:
            self.failure = f"delivering a message failed: {exc!r}"
            log.critical("%s", self.failure)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge message `mid` to the broker (PUBACK for QoS 1)."""
        self._client.ack(mid, qos)

    def stop(self) -> None:
        """Disconnect; the session, and what this instance left unacknowledged, stay."""
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
        log.info("connected to MQTT %s as %s (session %s)", self.endpoint.address,
                 self.client_id, "resumed" if flags.session_present else "new")
        self._awaiting = {"subscribe"}
        client.subscribe([(f, SubscribeOptions(qos=QOS)) for f in self.filters])
        if flags.session_present:
            # A session made in the other mode (plain or shared) holds the other filters: they
            # would deliver messages to this instance twice. Dropped after the current ones are
            # asked for (same connection, in order), so nothing falls between; a filter the
            # session does not hold is acknowledged as such, harmlessly.
            self._awaiting.add("unsubscribe")
            client.unsubscribe(self._former)

    def _granted(self, _c: mqtt.Client, _u: object, _mid: int, codes: list[mqtt.ReasonCode],
                 _p: object) -> None:
        refused = [topic for topic, code in zip(self.filters, codes, strict=True)
                   if code.is_failure]
        if refused:
            log.error("MQTT broker refused the subscription to %s (%s): check this account's "
                      "ACL", ", ".join(refused), ", ".join(str(c) for c in codes))
            return
        log.info("subscribed to %s", ", ".join(self.filters))
        self._acked("subscribe")

    def _unsubscribed(self, _c: mqtt.Client, _u: object, _mid: int,
                      _codes: list[mqtt.ReasonCode], _p: object) -> None:
        self._acked("unsubscribe")

    def _acked(self, what: str) -> None:
        self._awaiting.discard(what)
        if not self._awaiting:
            self.subscribed.set()

    def _disconnected(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode,
                      _p: object) -> None:
        if reason.is_failure:
            log.warning("lost MQTT %s (%s); reconnecting", self.endpoint.address, reason)
