"""Several `vitals ingest` processes share the device traffic through an MQTT 5 shared
subscription, against a real Mosquitto (2.0.11 here) and tansu: every reading reaches Kafka, the
instances each carry a part, and killing one loses nothing.

What Mosquitto does, as these tests see it: messages are handed round-robin to the members of
the group; a member that dies keeps its share (its unacknowledged messages, and new ones the
broker goes on assigning to its session) in its session until it reconnects with the same client
id. So a reading can reach `vitals.readings` twice only after a crash (forwarded, not yet
acknowledged, redelivered to a process whose de-duplication memory is new), never in steady
state."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from confluent_kafka import Consumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from harness import servers
from harness.relay import TcpRelay
from harness.services import ServiceProcess
from ingest.mqtt_source import DEPLOYED_SHARE_GROUP
from tests.support import publish, scrape, start_ingest, start_ingest_process, wait_for
from vitals.kafka import reader_config
from vitals.settings import Settings

DEPLOY_README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
PATIENTS = ("P001", "P002", "P003")  # tests/conftest.py enrols them, with any devices
Key = tuple[str, str, int]  # patient, device, seq


def readings(devices: int, per_device: int, start: int = 0) -> list[tuple[str, dict]]:
    """`per_device` readings (seq from `start`) of each of `devices` devices, interleaved."""
    t = int(time.time() * 1000) - 3_600_000
    out = []
    for seq in range(start, start + per_device):
        for d in range(devices):
            patient = PATIENTS[d % len(PATIENTS)]
            out.append((f"vitals/v1/{patient}/ox-{d}",
                        {"ts": t + seq * 1000, "kind": "oximetry", "seq": seq, "spo2": 96,
                         "hr": 70 + d % 20}))
    return out


def key_of(topic: str, payload: dict) -> Key:
    _, _, patient, device = topic.split("/")
    return patient, device, payload["seq"]


class ReadingsTopic:
    """`vitals.readings` from the beginning, read on as it grows: (patient, device, seq) of
    every record, duplicates included."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(reader_config(settings.kafka_bootstrap, "test-shared"))
        md = self._consumer.list_topics("vitals.readings", timeout=10).topics["vitals.readings"]
        self._consumer.assign([TopicPartition("vitals.readings", p, 0) for p in md.partitions])
        self.keys: list[Key] = []

    def poll(self, seconds: float = 0.2) -> int:
        """Read what arrived within `seconds`; how many records that was."""
        got = [m for m in self._consumer.consume(1000, seconds) if m.error() is None]
        for m in got:
            v = json.loads(m.value())
            self.keys.append((v["patient_id"], v["device_id"], v["seq"]))
        return len(got)

    def until_covers(self, expected: set[Key], timeout: float) -> None:
        """Read until every key of `expected` has arrived (or fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        while not expected <= set(self.keys):
            missing = len(expected - set(self.keys))
            assert time.monotonic() < deadline, f"{missing} readings never reached Kafka"
            self.poll()

    def until_quiet(self, quiet_s: float = 3.0) -> None:
        """Read until nothing has arrived for `quiet_s` seconds."""
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            if self.poll():
                last = time.monotonic()

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def kafka_readings(settings: Settings) -> Iterator[ReadingsTopic]:
    topic = ReadingsTopic(settings)
    yield topic
    topic.close()


def instance(settings: Settings, client_id: str) -> Settings:
    """The settings of one ingest instance: a client id and a /metrics port of its own."""
    return settings.model_copy(update={
        "ingest_client_id": client_id, "ingest_share_group": DEPLOYED_SHARE_GROUP,
        "ingest_metrics_addr": f"127.0.0.1:{servers.free_port()}"})


def messages_received(settings: Settings) -> float:
    return scrape(settings.ingest_metrics_addr)["vitals_ingest_messages_total"]


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    """Ingest processes a test started; stopped (SIGTERM) at its end, whatever happened."""
    started: list[ServiceProcess] = []
    yield started
    for p in started:
        p.stop()


@pytest.mark.slow
def test_two_instances_share_the_traffic_and_each_reading_reaches_kafka_once(
        settings: Settings, tmp_path: Path, kafka_readings: ReadingsTopic,
        processes: list[ServiceProcess]) -> None:
    a, b = instance(settings, "vitals-ingest-a"), instance(settings, "vitals-ingest-b")
    processes += [start_ingest_process(a, tmp_path / "a.log"),
                  start_ingest_process(b, tmp_path / "b.log")]
    sent = readings(devices=30, per_device=20)  # 600 messages, one reading each
    publish(settings.mqtt.port, sent)
    expected = {key_of(t, p) for t, p in sent}

    kafka_readings.until_covers(expected, timeout=180)
    kafka_readings.until_quiet()  # a duplicate, had there been one, would be in by now
    # steady state: each message went to one member, once (no crash, no redelivery)
    assert sorted(kafka_readings.keys) == sorted(expected)
    wait_for(lambda: messages_received(a) + messages_received(b) == len(sent), timeout=60,
             what="both instances' counts to add up")
    split = messages_received(a), messages_received(b)
    # Mosquitto hands messages round-robin: each instance carried a real part of the traffic
    assert min(split) >= len(sent) / 4, split

    for p in processes:
        assert p.stop() == 0, p.tail(20)
    summaries = [p.output() for p in processes]
    assert all("subscribed to $share/vitals-ingest/vitals/v1/+/+" in s for s in summaries)
    accepted = [int(re.findall(r"(\d+) readings accepted", s)[-1]) for s in summaries]
    assert sum(accepted) == len(sent) and min(accepted) > 0, accepted


class SteadyPublisher:
    """A device fleet publishing on a thread at QoS 1, a few messages in flight at a time, until
    `stop()`; `published` counts the messages the broker acknowledged."""

    def __init__(self, port: int, devices: int) -> None:
        self.devices = devices
        self.published = 0
        self.sent: list[tuple[str, dict]] = []
        self._stop = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-fleet")
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            batch = readings(self.devices, per_device=1, start=seq)
            infos = [self._client.publish(t, json.dumps(p), qos=1) for t, p in batch]
            for info in infos:
                info.wait_for_publish(60)
            self.sent += batch
            self.published += len(batch)
            seq += 1
            time.sleep(0.02)  # a fleet, not a flood: the kill lands mid-stream

    def wait_published(self, at_least: int) -> None:
        wait_for(lambda: self.published >= at_least, timeout=120,
                 what=f"{at_least} messages published")

    def stop(self) -> list[tuple[str, dict]]:
        """Stop publishing; every message the broker acknowledged."""
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive(), "the publisher did not stop"
        self._client.disconnect()
        self._client.loop_stop()
        return self.sent


@pytest.mark.slow
def test_killing_one_instance_loses_nothing_once_it_is_back_with_its_client_id(
        settings: Settings, tmp_path: Path, kafka_readings: ReadingsTopic,
        processes: list[ServiceProcess]) -> None:
    a, b = instance(settings, "vitals-ingest-a"), instance(settings, "vitals-ingest-b")
    first_a = start_ingest_process(a, tmp_path / "a.log")
    processes += [first_a, start_ingest_process(b, tmp_path / "b.log")]
    fleet = SteadyPublisher(settings.mqtt.port, devices=20)
    try:
        # a crashes while readings flow: whatever it held unacknowledged stays at the broker
        wait_for(lambda: messages_received(a) >= 100, timeout=120, what="instance a at work")
        first_a.kill()
        at_kill = fleet.published
        fleet.wait_published(at_kill + 400)  # the fleet goes on; b carries on with its share
    finally:
        sent = fleet.stop()
    expected = {key_of(t, p) for t, p in sent}

    # b has handled all it was given: the rest waits in a's session (Mosquitto does not hand
    # a dead member's share to the others), so Kafka lacks it while a is down
    wait_for(lambda: scrape(b.ingest_metrics_addr)["vitals_ingest_unacked_messages"] == 0,
             timeout=120, what="b to hand everything it received to Kafka")
    kafka_readings.until_quiet()
    waiting = expected - set(kafka_readings.keys)
    assert waiting, "every reading reached Kafka without a: Mosquitto redistributed its share"

    # a is back under its client id (its supervisor's job): its session delivers what waited
    second_a = start_ingest_process(a, tmp_path / "a.log")
    processes.append(second_a)
    kafka_readings.until_covers(expected, timeout=180)
    assert set(kafka_readings.keys) == expected  # nothing lost, nothing made up
    kafka_readings.until_quiet()
    # Duplicates are possible: a reading a had forwarded to Kafka but not yet acknowledged to
    # the broker when it was killed comes again, to a process that has not seen it; at most
    # what the broker lets a member hold unacknowledged (max_inflight_messages, 1000).
    duplicates = len(kafka_readings.keys) - len(expected)
    assert 0 <= duplicates <= 1000, duplicates
    assert "session resumed" in second_a.output()
    assert messages_received(a) >= len(waiting)


def unacked(settings: Settings) -> float:
    return scrape(settings.ingest_metrics_addr)["vitals_ingest_unacked_messages"]


@pytest.mark.slow
def test_what_a_killed_instance_held_unacknowledged_waits_for_it_not_for_the_other(
        cut_kafka: tuple[Settings, TcpRelay], tmp_path: Path,
        processes: list[ServiceProcess]) -> None:
    """Kafka cut off, so that both instances hold their share unacknowledged; one is killed.
    Its share is not handed to the other; it arrives once the killed one is back."""
    settings, relay = cut_kafka
    a, b = instance(settings, "vitals-ingest-a"), instance(settings, "vitals-ingest-b")
    first_a = start_ingest_process(a, tmp_path / "a.log")
    processes += [first_a, start_ingest_process(b, tmp_path / "b.log")]
    relay.block()
    before = readings(devices=20, per_device=10)
    publish(settings.mqtt.port, before)
    wait_for(lambda: messages_received(a) + messages_received(b) == len(before), timeout=120,
             what="both instances to hold their share")
    held = unacked(a)
    assert held == messages_received(a) > 0  # nothing of it reached Kafka
    first_a.kill()
    after = readings(devices=20, per_device=10, start=10)
    publish(settings.mqtt.port, after)
    relay.unblock()
    expected = {key_of(t, p) for t, p in before + after}

    kafka_readings = ReadingsTopic(settings)
    try:
        wait_for(lambda: unacked(b) == 0 and messages_received(b) > len(before) - held,
                 timeout=120, what="b to catch up after the outage")
        kafka_readings.until_quiet()
        waiting = expected - set(kafka_readings.keys)
        # a's unacknowledged share and its part of what came after wait in a's session
        assert len(waiting) >= held, (len(waiting), held)
        processes.append(start_ingest_process(a, tmp_path / "a.log"))
        kafka_readings.until_covers(expected, timeout=180)
        assert set(kafka_readings.keys) == expected
    finally:
        kafka_readings.close()


def test_an_ingest_upgraded_from_a_plain_subscription_session_gets_its_queue_once(
        settings: Settings) -> None:
    """The session an ingest from before shared subscriptions left at the broker (MQTT 3.1.1,
    plain filters, same client id) still holds what was queued for it: that arrives, and the
    plain filters are dropped, so later messages arrive once, not twice."""
    settings = instance(settings, settings.ingest_client_id)
    old = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.ingest_client_id,
                      clean_session=False, protocol=mqtt.MQTTv311)
    subscribed = threading.Event()
    old.on_subscribe = lambda *_a: subscribed.set()
    old.connect("127.0.0.1", settings.mqtt.port)
    old.loop_start()
    old.subscribe([("vitals/v1/+/+", 1), ("vitals/v1/+/+/status", 1)])
    assert subscribed.wait(30), "the old-style session did not subscribe"
    old.disconnect()
    old.loop_stop()

    queued = readings(devices=5, per_device=10)
    publish(settings.mqtt.port, queued)  # held in the old session
    ingest = start_ingest(settings)
    later = readings(devices=5, per_device=10, start=10)
    publish(settings.mqtt.port, later)
    wait_for(lambda: messages_received(settings) >= len(queued) + len(later), timeout=60,
             what="the queued and the later messages")
    counts = ingest.stop()
    assert counts.messages == len(queued) + len(later)  # none twice
    assert counts.accepted == len(queued) + len(later) and counts.duplicates == 0


def cleanup_command(port: int, client_id: str) -> list[str]:
    """deploy/README.md's command that cleans up a removed instance's session, for this test's
    broker: its port, no account (the test broker is anonymous), the instance's client id."""
    section = DEPLOY_README.read_text().split("**Removing an instance", 1)[1]
    command = re.search(r"sh -c '(mosquitto_sub [^']+)'", section)
    assert command is not None, "the cleanup command is gone from deploy/README.md"
    args = shlex.split(command.group(1))
    for flag in ("-u", "-P"):  # the account: this broker has none
        i = args.index(flag)
        del args[i:i + 2]
    args[args.index("-p") + 1] = str(port)
    args[args.index("-i") + 1] = client_id
    return [servers.which("mosquitto_sub", "mosquitto-clients"), *args[1:]]


def test_a_removed_instances_session_collects_its_share_until_cleaned_up_as_the_runbook_says(
        settings: Settings, kafka_readings: ReadingsTopic) -> None:
    a, b = instance(settings, "vitals-ingest-a"), instance(settings, "vitals-ingest-b")
    running_b = start_ingest(b)
    start_ingest(a).stop()  # a was there, and is removed for good: its session stays
    try:
        first = readings(devices=10, per_device=4)
        publish(settings.mqtt.port, first)
        wait_for(lambda: unacked(b) == 0 and messages_received(b) > 0, timeout=60,
                 what="b to take its share")
        kafka_readings.until_quiet()
        stranded = {key_of(t, p) for t, p in first} - set(kafka_readings.keys)
        assert stranded, "the removed instance's session got no share of the traffic"

        result = subprocess.run(cleanup_command(settings.mqtt.port, a.ingest_client_id),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        later = readings(devices=10, per_device=4, start=4)
        publish(settings.mqtt.port, later)
        # with a's session gone, b gets all that comes now; what a's session held went with it
        kafka_readings.until_covers({key_of(t, p) for t, p in later}, timeout=120)
        kafka_readings.until_quiet()
        assert not stranded & set(kafka_readings.keys)
    finally:
        running_b.stop()
