"""Helpers for tests against the real servers: publish over MQTT, read Kafka topics back."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from harness import services
from ingest import service
from ingest.counts import Counts
from vitals.kafka import KafkaConnection, reader_config
from vitals.settings import Settings

T = TypeVar("T")


def publish(port: int, messages: Iterable[tuple[str, bytes | str | dict]], qos: int = 1,
            client_id: str = "test-device", username: str | None = None,
            password: str | None = None, retain: bool = False) -> None:
    """Publish and wait until the broker has acknowledged every message."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if username:
        c.username_pw_set(username, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        infos = []
        for topic, payload in messages:
            if isinstance(payload, dict):
                payload = json.dumps(payload)
            infos.append(c.publish(topic, payload, qos=qos, retain=retain))
        for info in infos:
            info.wait_for_publish(60)
    finally:
        c.disconnect()
        c.loop_stop()


def read_topic(bootstrap: KafkaConnection | str, topic: str, expect: int, timeout: float = 10.0,
               settle: float = 0.5) -> list[tuple[bytes | None, dict]]:
    """Every record of `topic` from the beginning: waits for `expect` records, then `settle`
    seconds more so that extra (duplicate) records would be seen too."""
    c = Consumer(reader_config(bootstrap, "test"))
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        out: list[tuple[bytes | None, dict]] = []
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline:
            for m in c.consume(1000, 0.1):
                if m.error() is None:
                    out.append((m.key(), json.loads(m.value())))
            if len(out) >= expect:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
        return out
    finally:
        c.close()


def write_patients(path: Path, ids: Iterable[str], devices: dict[str, list[str]] | None = None
                   ) -> Path:
    lines = ["patients:"]
    for pid in ids:
        lines.append(f"  - id: {pid}\n    infusion: 2026-11-18\n    team: haem-a")
        if devices and pid in devices:
            lines.append(f"    devices: [{', '.join(devices[pid])}]")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(kw_only=True)
class RunningService(Generic[T]):
    """A service's `run(settings, stop, ...)` on a thread of the test process; `stop()` asks
    it to finish and returns what `run` returned."""

    name: str
    stop_event: threading.Event
    thread: threading.Thread
    result: list[T]

    def stop(self) -> T:
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), f"{self.name} did not stop"
        return self.result[0]


@dataclass(kw_only=True)
class RunningIngest(RunningService[Counts]):
    settings: Settings


def start_ingest(settings: Settings) -> RunningIngest:
    stop, ready, result = threading.Event(), threading.Event(), []
    t = threading.Thread(
        target=lambda: result.append(service.run(settings, stop, lambda _: ready.set())),
        daemon=True)
    t.start()
    assert ready.wait(20), "ingest did not start"
    return RunningIngest(name="ingest", settings=settings, stop_event=stop, thread=t,
                         result=result)


def start_ingest_process(settings: Settings, log: Path) -> services.ServiceProcess:
    """`vitals ingest` as its own process, returned once its subscription is granted."""
    return services.start("ingest", env=services.environment(settings), log=log)


def metric(settings: Settings, name: str) -> float:
    with urllib.request.urlopen(f"http://{settings.ingest_metrics_addr}/metrics") as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def scrape(addr: str) -> dict[str, float]:
    """A service's /metrics at `addr` (host:port), by series (name and labels as written)."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    return {name: float(value) for name, _, value in
            (line.rpartition(" ") for line in lines if line and not line.startswith("#"))}


def healthz(addr: str) -> tuple[int, dict]:
    """A service's /healthz at `addr`: the status (200 or 503) and the JSON it answered."""
    try:
        with urllib.request.urlopen(f"http://{addr}/healthz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def stalled_gauges(addr: str, stage: str, reason: str, pending: int, since: float
                   ) -> dict[str, float]:
    """Wait (generously: a busy 2-core machine) until the service at `addr` says on /healthz
    that it is stuck, with `reason` in its reason; check that its gauges show `pending` work
    waiting since no earlier than `since` (Unix seconds, less 5 s of slack) and return them."""
    wait_for(lambda: healthz(addr)[0] == 503, timeout=60, what="/healthz saying stuck")
    status, body = healthz(addr)
    assert status == 503 and body["status"] == "stalled"
    assert reason in body["reason"], body
    gauges = scrape(addr)
    assert gauges[f"vitals_{stage}_pending"] == pending, gauges
    oldest = gauges[f"vitals_{stage}_oldest_pending_event_seconds"]
    assert since - 5 <= oldest <= time.time(), gauges
    return gauges


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
             ) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
