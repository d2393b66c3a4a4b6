"""Publishing through a real Mosquitto: replay keeps payloads, timestamps and per-device
order; accelerated publishing delivers every message, on time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console

from harness import servers
from simulators import cohort, run, stream
from simulators.publish import Publisher, PublishError, pace
from tests.simulators.helpers import START, by_device, sim_of
from tests.simulators.test_stream import FAULTY
from vitals import trafficfile
from vitals.settings import Endpoint


class Subscriber:
    """Collects every message on vitals/# (QoS 1), in arrival order."""

    def __init__(self, port: int) -> None:
        self.got: list[trafficfile.Message] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{time.monotonic_ns()}")
        c.on_message = lambda _c, _u, m: self._add(m)
        c.on_subscribe = lambda *_a: ready.set()
        c.connect(servers.LOOPBACK, port)
        c.subscribe("vitals/#", qos=1)
        c.loop_start()
        assert ready.wait(30)
        self.client = c

    def _add(self, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append(trafficfile.Message(0, m.topic, m.payload))

    def wait(self, n: int, timeout: float = 30) -> list[trafficfile.Message]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # anything extra would show up now
        self.client.disconnect()
        self.client.loop_stop()
        return self.got


def endpoint(port: int) -> Endpoint:
    return Endpoint("mqtt", servers.LOOPBACK, port)


def test_replay_preserves_payloads_timestamps_and_per_device_order(
        mosquitto: servers.Server, tmp_path: Path) -> None:
    path = tmp_path / "faulty.jsonl.gz"
    stream.write(stream.Stream(sim_of(FAULTY), line=True), path)
    sent = list(trafficfile.read(path))
    sub = Subscriber(mosquitto.port)
    n, _ = run.replay(path, None, endpoint(mosquitto.port), Console(quiet=True))
    got = sub.wait(len(sent))
    assert n == len(sent) == len(got)
    assert by_device(got) == by_device(sent)  # per device: the same payloads, same order
    # one publisher, one subscriber: the whole sequence arrives as sent, malformed included
    assert [(m.topic, m.payload) for m in got] == [(m.topic, m.payload) for m in sent]


def test_accelerated_publishing_delivers_every_message_never_early(
        mosquitto: servers.Server) -> None:
    sim = cohort.generate(20, 4, 10 / 1440, START)  # 20 patients x 10 minutes
    messages = list(stream.Stream(sim, line=False))
    sub = Subscriber(mosquitto.port)
    with Publisher(endpoint(mosquitto.port), "test-sim") as pub:
        paced = pace(((m.at, m.topic, m.payload) for m in messages), pub, 600.0, t0=sim.start)
    got = sub.wait(len(messages))
    assert paced.published == len(messages) == len(got) > 20 * 600
    assert by_device(got) == by_device(messages)
    # 10 simulated minutes at 600x take a second, never less (publish time = at / speed); how
    # much more is the machine's business, measured by bench.simulate_throughput, not here
    assert paced.seconds > 0.95


def test_pacing_follows_the_simulated_clock(mosquitto: servers.Server) -> None:
    items = [(START + i * 1000, "vitals/v1/A/ox-1", b"{}") for i in range(0, 21)]
    arrivals: list[float] = []
    c = Publisher(endpoint(mosquitto.port), "test-pace", in_flight=1)
    original = c.publish

    def publish(topic: str, payload: bytes) -> None:
        arrivals.append(time.monotonic())
        original(topic, payload)

    c.publish = publish  # type: ignore[method-assign]
    with c:
        pace(iter(items), c, 20.0)  # 20 simulated seconds in one
    offsets = [a - arrivals[0] for a in arrivals]
    assert all(o >= i / 20 - 0.003 for i, o in enumerate(offsets))  # never early
    # Nor paced slower than the clock: half speed would take 2 s. The bound is that loose
    # because a loaded machine wakes a sleeping thread late; lateness is the benchmark's.
    assert offsets[-1] < 1.9


def test_a_broker_that_dies_stops_the_publisher_with_an_error(mosquitto: servers.Server
                                                              ) -> None:
    """The publishing thread runs paho's network loop itself: a lost connection is an error
    at the next wait, not a hang or a silent loss."""
    pub = Publisher(endpoint(mosquitto.port), "test-lost", in_flight=10)
    for _ in range(20):
        pub.publish("vitals/v1/A/ox-1", b"{}")
    pub.flush()
    assert pub.published == 20
    mosquitto.kill()
    with pytest.raises(PublishError, match=r"connection was lost|publishing failed|"
                                           r"acknowledged nothing"):
        for _ in range(1000):
            pub.publish("vitals/v1/A/ox-1", b"{}")
        pub.flush()


def test_idle_reads_acknowledgements(mosquitto: servers.Server) -> None:
    """While it waits for its pace, the publisher still runs the network loop: an
    acknowledgement arrives during the pause, and publishing goes on after it."""
    pub = Publisher(endpoint(mosquitto.port), "test-idle", in_flight=100)
    pub.publish("vitals/v1/A/ox-1", b"{}")
    info = pub._window[0]
    deadline = time.monotonic() + 30  # a loaded machine may need more than one pause
    while not info.is_published() and time.monotonic() < deadline:
        pub.idle(0.5)
    assert info.is_published()
    with pub:
        pub.publish("vitals/v1/A/ox-1", b"{}")
    assert pub.published == 2
