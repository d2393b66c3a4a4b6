"""A Mosquitto restart with persistence on, as deployed, on a real Mosquitto (2.0.11 here) and
tansu: what the broker keeps of ingest's session, and why one ingest subscribes plainly.

Measured: after the restart a session's plain subscriptions are back at once; its shared ones are
not, until the member asks again. Devices that reconnect before it publish into nothing, though
the broker acknowledges each message (ingest/mqtt_source.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness import servers
from ingest.mqtt_source import DEPLOYED_SHARE_GROUP, SESSION_NEVER_EXPIRES, filters
from tests.ingest.test_shared import ReadingsTopic, key_of, readings
from tests.support import publish, start_ingest, wait_for
from vitals.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[servers.Server]:
    broker = servers.mosquitto(tmp_path / "persistent", persistence=True)
    try:
        yield broker
    finally:
        broker.stop()


def restart(broker: servers.Server) -> None:
    broker.stop()  # SIGTERM: Mosquitto saves its sessions and queues first
    broker.start()


class Member:
    """An MQTT 5 session that never expires, as ingest's, holding `filters`."""

    def __init__(self, port: int, client_id: str, subscribe: list[str] | None = None) -> None:
        self.received: list[str] = []
        self.granted = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5)
        c.on_message = lambda _c, _u, m: self.received.append(m.payload.decode())
        c.on_subscribe = lambda *_a: self.granted.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
        c.loop_start()
        if subscribe:
            c.subscribe([(f, 1) for f in subscribe])
            assert self.granted.wait(30), "the subscription was not granted"
        self.client = c

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def published_after_restart_reaches(port: int, broker: servers.Server,
                                    subscription: list[str], client_id: str) -> bool:
    """Subscribe a session, leave, restart the broker, publish, come back without asking
    again: does the message published after the restart arrive?"""
    member = Member(port, client_id, subscription)
    member.close()
    restart(broker)
    publish(port, [("vitals/v1/P001/ox-1", {"seq": 1})])
    again = Member(port, client_id)
    try:
        # what the session holds arrives right after the connect; a marker of our own, on the
        # same connection, comes after it
        again.granted.clear()
        again.client.subscribe("marker/#", 1)
        assert again.granted.wait(60), "the marker's subscription was not granted"
        publish(port, [("marker/done", {"done": True})])
        wait_for(lambda: any("done" in m for m in again.received), timeout=60,
                 what="the marker")
        return any('"seq": 1' in m for m in again.received)
    finally:
        again.close()


def test_mosquitto_restores_plain_subscriptions_after_a_restart_but_not_shared_ones(
        persistent_broker: servers.Server) -> None:
    port = persistent_broker.port
    assert published_after_restart_reaches(port, persistent_broker, filters(""), "plain")
    shared = filters(DEPLOYED_SHARE_GROUP)
    assert not published_after_restart_reaches(port, persistent_broker, shared, "shared"), (
        "Mosquitto now restores shared subscriptions after a restart: the default of one "
        "ingest on plain subscriptions, ingest/mqtt_source.py and deploy/README.md can say so")


def test_one_ingest_loses_nothing_published_before_it_is_back_after_a_broker_restart(
        settings: Settings, persistent_broker: servers.Server) -> None:
    """The default (no share group): a broker restart, then devices publish before ingest is
    back (here: ingest is down; live, it merely reconnects later than the devices)."""
    settings = settings.model_copy(update={
        "mqtt_url": f"mqtt://127.0.0.1:{persistent_broker.port}"})
    assert settings.ingest_share_group == ""
    start_ingest(settings).stop()  # its session, with its subscriptions, stays at the broker
    restart(persistent_broker)
    sent = readings(devices=10, per_device=10)
    publish(persistent_broker.port, sent)
    kafka = ReadingsTopic(settings)
    ingest = start_ingest(settings)
    try:
        kafka.until_covers({key_of(t, p) for t, p in sent}, timeout=120)
        kafka.until_quiet()
        assert sorted(kafka.keys) == sorted(key_of(t, p) for t, p in sent)  # each once
    finally:
        ingest.stop()
        kafka.close()
