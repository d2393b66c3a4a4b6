"""`vitals canary` against a real Mosquitto: the canary's rounds are contract readings on its
topic at QoS 1 with a strictly increasing `seq` (across restarts too), it says online when it
connects and offline when it stops or dies, and a broker restart costs it rounds, not its life,
with one log line per outage rather than one per attempt. Timeouts are generous: a busy
two-core machine must not fail these."""

from __future__ import annotations

import itertools
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from canary.publisher import CanaryPublisher, Counts, reading_topic, status_topic
from harness import servers, services
from ingest.parse import Parser
from tests.support import wait_for
from vitals import canary
from vitals.patients import load_patients
from vitals.records import DeviceStatus, Reading
from vitals.settings import Settings, load_settings

PATIENT = "CANARY"
EVERY_S = 0.2
TIMEOUT_S = 60.0  # polling deadlines: long enough for a loaded machine, never waited in full


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    at: float  # wall seconds


@dataclass
class Subscriber:
    """A paho client subscribed to everything under vitals/v1/ at QoS 1; it subscribes again
    whenever it reconnects (a broker restart)."""

    port: int
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-canary-watcher")
        c.reconnect_delay_set(1, 2)
        c.on_connect = lambda cl, _u, _f, rc, _p: None if rc.is_failure else cl.subscribe(
            "vitals/v1/#", qos=1)
        c.on_subscribe = lambda *_a: self.subscribed.set()
        c.on_message = self._message
        self.client = c

    def _message(self, _c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(Received(m.topic, m.payload, m.qos, time.time()))

    def start(self) -> Subscriber:
        self.client.connect_async("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.subscribed.wait(TIMEOUT_S), "the test's subscriber did not subscribe"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, topic: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def readings(self) -> list[Reading]:
        """The canary's readings so far, each parsed as ingest parses a device's message."""
        parser = Parser(load_patients(None), PATIENT)
        out = []
        for m in self.on(reading_topic(PATIENT)):
            outcome = parser.parse(m.topic, m.payload, int(m.at * 1000))
            assert outcome.rejections == [], (m.payload, outcome.rejections)
            [reading] = outcome.readings
            out.append(reading)
        return out

    def statuses(self) -> list[DeviceStatus]:
        parser = Parser(load_patients(None), PATIENT)
        out = []
        for m in self.on(status_topic(PATIENT)):
            outcome = parser.parse(m.topic, m.payload, int(m.at * 1000))
            assert outcome.rejections == [] and outcome.status is not None, m.payload
            out.append(outcome.status)
        return out


@pytest.fixture
def watcher(mosquitto: servers.Server) -> Iterator[Subscriber]:
    s = Subscriber(mosquitto.port).start()
    yield s
    s.stop()


def canary_settings(port: int) -> Settings:
    return load_settings(_env_file=None, mqtt_url=f"mqtt://127.0.0.1:{port}",
                         canary_patient=PATIENT, canary_every_s=EVERY_S)


@dataclass
class Running:
    publisher: CanaryPublisher
    stop: threading.Event
    ready: threading.Event
    thread: threading.Thread
    result: list[Counts]

    def finish(self) -> Counts:
        self.stop.set()
        self.thread.join(TIMEOUT_S)
        assert not self.thread.is_alive(), "the canary did not stop"
        return self.result[0]


def start(settings: Settings) -> Running:
    publisher = CanaryPublisher(settings.mqtt, settings.canary_patient, settings.canary_every_s)
    stop, ready, result = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(publisher.run(stop, ready.set)),
                              daemon=True)
    thread.start()
    return Running(publisher, stop, ready, thread, result)


def strictly_increasing(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


def test_rounds_are_contract_readings_at_qos_1_with_increasing_seq_across_restarts(
        mosquitto: servers.Server, watcher: Subscriber) -> None:
    settings = canary_settings(mosquitto.port)
    first = start(settings)
    assert first.ready.wait(TIMEOUT_S), "the canary was not ready"
    wait_for(lambda: len(watcher.readings()) >= 3, TIMEOUT_S, "3 canary readings")
    counts = first.finish()
    assert counts.rounds >= 3 and counts.acked >= 3 and counts.outages == 0, counts

    received = watcher.on(reading_topic(PATIENT))
    assert {m.topic for m in received} == {"vitals/v1/CANARY/canary"}
    assert {m.qos for m in received} == {1}  # min(published, subscribed): published at QoS 1
    readings = watcher.readings()
    for r, m in zip(readings, received, strict=True):
        assert (r.patient_id, r.device_id, r.kind, r.temp, r.site) == (
            PATIENT, canary.DEVICE_ID, "temperature", canary.TEMP_C, "core")
        assert json.loads(m.payload) == canary.reading(r.seq, r.ts)  # the kernel's payload
        assert abs(r.ts - m.at * 1000) < 30_000  # wall time, now: live monitoring
    assert strictly_increasing([r.seq for r in readings])
    # published every EVERY_S seconds, not in a burst
    span_s = (readings[-1].ts - readings[0].ts) / 1000
    assert span_s >= EVERY_S * (len(readings) - 1) * 0.5, (span_s, len(readings))

    # online when it connected, offline (published by itself) when it stopped cleanly
    states = [s.state for s in watcher.statuses()]
    assert states[0] == "online" and states[-1] == "offline", states
    online = watcher.statuses()[0]
    assert online.battery == 100 and online.ts is not None

    # a second process of the canary goes on where the first stopped
    before = len(readings)
    second = start(settings)
    wait_for(lambda: len(watcher.readings()) >= before + 3, TIMEOUT_S, "3 more readings")
    second.finish()
    assert strictly_increasing([r.seq for r in watcher.readings()])


def test_a_broker_restart_costs_rounds_not_the_canary_and_one_line_per_outage(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="canary.publisher")
    broker = servers.mosquitto(tmp_path / "mosquitto")
    port = broker.port
    watcher = Subscriber(port).start()
    running = start(canary_settings(port))
    try:
        assert running.ready.wait(TIMEOUT_S), "the canary was not ready"
        wait_for(lambda: len(watcher.readings()) >= 2, TIMEOUT_S, "readings before the restart")
        broker.stop()
        # down long enough for several reconnection attempts (1 s, then 2 s apart)
        time.sleep(4)
        assert running.thread.is_alive(), "the canary stopped with the broker"
        broker = servers.mosquitto(tmp_path / "mosquitto", port=port)
        restarted = time.time()
        wait_for(lambda: any(m.at > restarted for m in watcher.on(reading_topic(PATIENT))),
                 TIMEOUT_S, "a reading after the broker came back")
        wait_for(lambda: len([m for m in watcher.on(reading_topic(PATIENT))
                              if m.at > restarted]) >= 3, TIMEOUT_S, "publishing resumed")
        counts = running.finish()
    finally:
        running.stop.set()
        watcher.stop()
        broker.stop()
    assert counts.outages == 1 and counts.skipped >= 1, counts
    assert strictly_increasing([r.seq for r in watcher.readings()])
    # online again after the restart
    assert [s.state for s in watcher.statuses()].count("online") >= 2
    # the outage: one warning when it began and one line when it ended, not one per attempt
    mine = [r for r in caplog.records if r.name == "canary.publisher"]
    warnings = [r for r in mine if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "reconnecting" in warnings[0].getMessage(), [
        r.getMessage() for r in warnings]
    assert sum("is back after" in r.getMessage() for r in mine) == 1
    # and one line per round, at debug level only
    rounds = [r for r in mine if r.getMessage().startswith("canary round ")]
    assert len(rounds) == counts.rounds and {r.levelno for r in rounds} == {logging.DEBUG}


def test_vitals_canary_is_a_service_that_leaves_its_last_will_when_killed(
        mosquitto: servers.Server, watcher: Subscriber, tmp_path: Path) -> None:
    env = services.environment(canary_settings(mosquitto.port))
    log = tmp_path / "canary.log"
    proc = services.start("canary", env=env, log=log, timeout=TIMEOUT_S)  # its ready line
    try:
        wait_for(lambda: len(watcher.readings()) >= 2, TIMEOUT_S, "readings of `vitals canary`")
    finally:
        proc.kill()  # SIGKILL, as a crash: the broker publishes the last will
    wait_for(lambda: [s.state for s in watcher.statuses()][-1:] == ["offline"], TIMEOUT_S,
             "the last will")
    assert watcher.statuses()[0].state == "online"
    # SIGTERM: a clean stop, with its summary
    proc = services.start("canary", env=env, log=log, timeout=TIMEOUT_S)
    assert proc.stop() == 0, proc.tail()
    assert "canary: " in proc.output() and "rounds published" in proc.output()
    assert signal.SIGTERM.name in proc.output()
