"""Ingest throughput: simulated devices -> real Mosquitto -> `vitals ingest` (its own process)
-> tansu. Prints readings/s sustained and the ingest process's peak memory.

    .venv/bin/python -m bench.ingest_throughput [--readings 100000] [--batch 1]

Readings/s is measured from the first publish until ingest has handled every message and has
none left unacknowledged; since ingest acknowledges a message only after Kafka confirmed its
records, that includes Kafka's acknowledgements. Afterwards the topic is consumed to check that
every reading is there exactly once (tansu's high watermarks undercount, so they are not used).
The raw ceiling, one
paho publisher to one paho subscriber through the same Mosquitto, is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from bench.procstats import cpu_seconds, peak_rss_mib
from harness import servers, services
from vitals.kafka import reader_config

IN_FLIGHT = 100  # paho collapses with unbounded QoS 1 in flight (ENVIRONMENT.md)


def payloads(n: int, devices: int, batch: int, t0: int) -> list[tuple[str, bytes]]:
    """1 Hz oximetry from `devices` devices, as single readings or batches."""
    out = []
    per_device = n // devices
    for d in range(devices):
        topic = f"vitals/v1/B{d:04d}/ox-1"
        for start in range(0, per_device, batch):
            readings = [{"ts": t0 + s * 1000, "kind": "oximetry", "seq": s,
                         "spo2": 95 + s % 4, "hr": 60 + s % 30}
                        for s in range(start, min(start + batch, per_device))]
            body = readings[0] if batch == 1 else {"readings": readings}
            out.append((topic, json.dumps(body, separators=(",", ":")).encode()))
    # interleave devices as live traffic would
    out.sort(key=lambda tp: json.loads(tp[1]).get("seq", 0) if batch == 1 else 0)
    return out


def publish_all(port: int, messages: list[tuple[str, bytes]], client_id: str) -> float:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.max_inflight_messages_set(IN_FLIGHT)
    c.connect(servers.LOOPBACK, port)
    c.loop_start()
    start = time.perf_counter()
    window = []
    for topic, body in messages:
        window.append(c.publish(topic, body, qos=1))
        if len(window) >= IN_FLIGHT:
            window.pop(0).wait_for_publish()
    for info in window:
        info.wait_for_publish()
    c.disconnect()
    c.loop_stop()
    return start


def metric(addr: str, name: str) -> float:
    with urllib.request.urlopen(f"http://{addr}/metrics") as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def distinct_on_kafka(bootstrap: str, topic: str, expect: int) -> tuple[int, int]:
    """(records, distinct (patient, seq)) by consuming the topic from the beginning."""
    c = Consumer(reader_config(bootstrap, "bench"))
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        seen, records, idle = set(), 0, 0
        while idle < 20 and records < expect * 2:
            batch = c.consume(10_000, 0.1)
            idle = 0 if batch else idle + 1
            for m in batch:
                r = json.loads(m.value())
                seen.add((r["patient_id"], r["seq"]))
                records += 1
        return records, len(seen)
    finally:
        c.close()


def raw_ceiling(port: int, messages: list[tuple[str, bytes]]) -> float:
    """One paho publisher to one paho subscriber through the same broker, QoS 1."""
    got, done = [0], threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw-sub")

    def on_message(*_a: object) -> None:
        got[0] += 1
        if got[0] == len(messages):
            done.set()

    sub.on_message = on_message
    sub.connect(servers.LOOPBACK, port)
    sub.subscribe("raw/#", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    start = publish_all(port, [("raw/" + t, b) for t, b in messages], "bench-raw-pub")
    done.wait(120)
    elapsed = time.perf_counter() - start
    sub.disconnect()
    sub.loop_stop()
    return got[0] / elapsed


def wait_handled(addr: str, messages: int, since: float) -> float:
    """Seconds from `since` until ingest handled `messages` and has none unacknowledged."""
    while (metric(addr, "vitals_ingest_messages_total") < messages
           or metric(addr, "vitals_ingest_unacked_messages") > 0):
        if time.perf_counter() - since > 300:
            sys.exit("ingest did not finish within 300 s")
        time.sleep(0.02)
    return time.perf_counter() - since


def publish_parallel(port: int, messages: list[tuple[str, bytes]], publishers: int) -> float:
    """Publish from several processes (one paho client is slower than ingest); returns the
    perf_counter time at which they started."""
    chunks = [messages[i::publishers] for i in range(publishers)]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(publishers + 1)
    procs = [ctx.Process(target=_publisher, args=(port, chunk, f"bench-pub-{i}", barrier))
             for i, chunk in enumerate(chunks)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    for p in procs:
        p.join()
    return start


def _publisher(port: int, chunk: list[tuple[str, bytes]], client_id: str, barrier: object
               ) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    publish_all(port, chunk, client_id)


def run(readings: int = 100_000, devices: int = 1000, batch: int = 1, publishers: int = 2
        ) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="vitals-bench-"))
    patients = work / "patients.yaml"
    patients.write_text("patients:\n" + "".join(
        f"  - {{id: B{d:04d}, infusion: 2026-11-01, team: haem-a}}\n"
        for d in range(devices)))
    t0 = int(time.time() * 1000) - 2 * 86_400_000
    messages = payloads(readings, devices, batch, t0)
    n = sum(1 if batch == 1 else len(json.loads(b)["readings"]) for _, b in messages)
    print(f"ingest benchmark: {n} readings in {len(messages)} MQTT messages (batch {batch}) "
          f"from {devices} devices, QoS 1; Mosquitto, tansu, `vitals ingest` on 2 cores")

    broker = servers.mosquitto(work / "mosquitto")
    kafka = servers.tansu(work / "tansu")
    bootstrap = f"{servers.LOOPBACK}:{kafka.port}"
    addr = f"{servers.LOOPBACK}:{servers.free_port()}"
    env = services.environment({
        "mqtt_url": f"mqtt://{servers.LOOPBACK}:{broker.port}",
        "kafka_url": f"kafka://{bootstrap}", "patients": patients,
        "ingest_metrics_addr": addr, "state_dir": work / "state"})
    log = work / "ingest.log"
    half = len(messages) // 2
    ingest: services.ServiceProcess | None = None
    try:
        # 1. live: devices publish while ingest runs (started once subscribed: its ready line)
        ingest = services.start("ingest", env=env, log=log, timeout=30)
        cpu0 = cpu_seconds(ingest.pid)
        start = publish_parallel(broker.port, messages[:half], publishers)
        published = time.perf_counter() - start
        live = wait_handled(addr, half, start)
        live_cpu = cpu_seconds(ingest.pid) - cpu0
        rss = peak_rss_mib(ingest.pid)
        ingest.stop(60)

        # 2. backlog: the rest is published while ingest is down, then drained
        publish_parallel(broker.port, messages[half:], publishers)
        ingest = services.start("ingest", env=env, log=log, timeout=30)
        drain = wait_handled(addr, len(messages) - half, time.perf_counter())
        rss = max(rss, peak_rss_mib(ingest.pid))
        ingest.stop(60)

        records, stored = distinct_on_kafka(bootstrap, "vitals.readings", n)
        ceiling = raw_ceiling(broker.port, messages[: min(len(messages), 50_000)])
    finally:
        if ingest is not None and ingest.alive():
            ingest.kill()
        broker.stop()
        kafka.stop()
        last_line = servers.tail(log, 1)
        shutil.rmtree(work, ignore_errors=True)

    live_n = half * (1 if batch == 1 else batch)
    drain_n = n - live_n
    print(f"  on Kafka afterwards   {stored}/{n} distinct readings, {records} records")
    print(f"  live                  {live_n / live:9.0f} readings/s  ({publishers} publishers "
          f"offered {live_n / published:.0f}/s; ingest used {live_cpu / live:.2f} cores, "
          f"{live_cpu / live_n * 1e6:.0f} us CPU/reading)")
    print(f"  backlog drain         {drain_n / drain:9.0f} readings/s  (ingest alone, "
          f"{drain_n} queued at the broker while it was down)")
    print(f"  ingest peak RSS       {rss:9.1f} MiB")
    print(f"  raw MQTT ceiling      {ceiling:9.0f} msg/s  (one paho publisher -> one subscriber)")
    print(f"  {last_line}")
    return {"readings": n, "live_readings_per_s": round(live_n / live),
            "offered_per_s": round(live_n / published),
            "backlog_drain_readings_per_s": round(drain_n / drain),
            "cpu_us_per_reading": round(live_cpu / live_n * 1e6, 1),
            "peak_rss_mib": round(rss, 1), "distinct_on_kafka": stored,
            "records_on_kafka": records, "raw_ceiling_msg_per_s": round(ceiling)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=100_000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1, help="readings per MQTT message")
    ap.add_argument("--publishers", type=int, default=2, help="publishing processes (live)")
    args = ap.parse_args()
    run(args.readings, args.devices, args.batch, args.publishers)


if __name__ == "__main__":
    main()
