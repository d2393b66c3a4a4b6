"""`vitals demo`: the pipeline as far as it is built, on embedded defaults, in one command.

Today that is the ingest stage: a real Mosquitto and a real Kafka-protocol broker (tansu) on
free loopback ports, `vitals ingest`, and the embedded cohort's devices publishing readings with
the faults real devices have (finger out, a re-sent buffer, a malformed payload, a device of a
patient who is not enrolled, a skewed clock). A live table shows where every entry went; at
the end the dead-letter topic is read back so each rejection's reason can be seen.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ingest import service
from ingest.counts import Counts
from vitals import servers
from vitals.patients import load_patients
from vitals.settings import load_settings

IN_FLIGHT = 100


def traffic(patient_ids: list[str], minutes: int, seed: int) -> list[tuple[str, bytes]]:
    """Oximetry at 1 Hz and temperature every 5 min per patient over the last `minutes`, with
    a few faults mixed in; deterministic for a seed."""
    rng = random.Random(seed)
    end = int(time.time() * 1000) // 1000 * 1000
    start = end - minutes * 60_000
    out: list[tuple[str, dict | bytes]] = []
    for pid in patient_ids:
        hr0, spo0, t0 = rng.uniform(62, 90), rng.uniform(95, 99), rng.uniform(36.3, 37.1)
        finger_out = rng.randrange(minutes * 60)
        for s in range(minutes * 60):
            blind = finger_out <= s < finger_out + 20
            out.append((f"vitals/v1/{pid}/ox-1", {
                "ts": start + s * 1000, "kind": "oximetry", "seq": s,
                "spo2": 127 if blind else min(100, round(spo0 + rng.gauss(0, 0.7))),
                "hr": 255 if blind else round(hr0 + rng.gauss(0, 3)),
                **({"flags": ["probe_off"]} if blind else {})}))
        for k in range(0, minutes, 5):
            out.append((f"vitals/v1/{pid}/th-1", {
                "ts": start + k * 60_000, "kind": "temperature", "seq": k // 5,
                "temp": round(t0 + rng.gauss(0, 0.1), 2)}))
    out.sort(key=lambda m: m[1]["ts"])  # type: ignore[index]
    first = patient_ids[0]
    resent = [m[1] for m in out if m[0] == f"vitals/v1/{first}/ox-1"][:50]
    out += [
        (f"vitals/v1/{first}/ox-1", {"readings": resent}),  # a buffer sent twice
        (f"vitals/v1/{first}/ox-1", b'{"ts": 17, "kind": "oxim'),  # cut off mid-message
        ("vitals/v1/X999/ox-1", {"ts": end, "kind": "oximetry", "spo2": 97, "hr": 70}),
        (f"vitals/v1/{first}/th-1", {"ts": end + 3_600_000, "kind": "temperature", "temp": 37}),
        (f"vitals/v1/{first}/th-1", {"ts": end, "kind": "temperature", "temp": 99.1,
                                     "unit": "F"}),
    ]
    return [(t, p if isinstance(p, bytes) else json.dumps(p).encode()) for t, p in out]


def publish(port: int, messages: list[tuple[str, bytes]], sent: list[int]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-devices")
    c.max_inflight_messages_set(IN_FLIGHT)
    c.connect(servers.LOOPBACK, port)
    c.loop_start()
    window = []
    for topic, body in messages:
        window.append(c.publish(topic, body, qos=1))
        if len(window) >= IN_FLIGHT:
            window.pop(0).wait_for_publish()
        sent[0] += 1
    for info in window:
        info.wait_for_publish()
    c.disconnect()
    c.loop_stop()


def table(counts: Counts, sent: int, total: int) -> Table:
    t = Table(title="vitals demo: devices -> Mosquitto -> ingest -> Kafka", min_width=60)
    t.add_column("")
    t.add_column("count", justify="right")
    t.add_row("MQTT messages published", f"{sent} / {total}")
    t.add_row("entries received by ingest", str(counts.received))
    t.add_row("  readings -> vitals.readings", str(counts.accepted))
    t.add_row("  duplicates (forwarded once)", str(counts.duplicates))
    for reason, n in sorted(counts.rejected.items()):
        t.add_row(f"  rejected: {reason} -> vitals.rejected", str(n))
    return t


def dead_letters(bootstrap: str) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo"})
    try:
        c.assign([TopicPartition("vitals.rejected", 0, 0)])
        out, idle = [], 0
        while idle < 5:
            batch = c.consume(100, 0.2)
            idle = 0 if batch else idle + 1
            out += [json.loads(m.value()) for m in batch if m.error() is None]
        return out
    finally:
        c.close()


def run(minutes: int, seed: int, console: Console) -> Counts:
    with tempfile.TemporaryDirectory(prefix="vitals-demo-") as tmp:
        work = Path(tmp)
        broker = servers.mosquitto(work / "mosquitto")
        kafka = servers.tansu(work / "tansu")
        try:
            settings = load_settings(
                mqtt_url=f"mqtt://{servers.LOOPBACK}:{broker.port}",
                kafka_url=f"kafka://{servers.LOOPBACK}:{kafka.port}",
                ingest_metrics_addr=f"{servers.LOOPBACK}:{servers.free_port()}",
                state_dir=work / "state")
            cohort = [p.id for p in load_patients(settings.patients)]
            console.print(f"Mosquitto on :{broker.port}, tansu on :{kafka.port}; "
                          f"{len(cohort)} patients from the embedded cohort, {minutes} simulated "
                          f"minutes each; metrics on http://{settings.ingest_metrics_addr}/metrics")
            stop, ready, result = threading.Event(), threading.Event(), []
            running: list[service.Ingest] = []

            def started(ingest: service.Ingest) -> None:
                running.append(ingest)
                ready.set()

            worker = threading.Thread(
                target=lambda: result.append(service.run(settings, stop, started)), daemon=True)
            worker.start()
            if not ready.wait(30):
                raise RuntimeError("ingest did not subscribe within 30 s")
            counts = running[0].counts  # live: the table below reads them as they grow
            messages = traffic(cohort, minutes, seed)
            sent = [0]
            publisher = threading.Thread(target=publish, args=(broker.port, messages, sent))
            publisher.start()
            with Live(table(counts, 0, len(messages)), console=console, refresh_per_second=8
                      ) as live:
                while publisher.is_alive() or counts.messages < len(messages):
                    live.update(table(counts, sent[0], len(messages)))
                    time.sleep(0.125)
                live.update(table(counts, sent[0], len(messages)))
            stop.set()
            worker.join(60)
            report(dead_letters(settings.kafka_bootstrap), console)
            return result[0]
        finally:
            broker.stop()
            kafka.stop()


def report(rejected: list[dict], console: Console) -> None:
    reasons = Counter(r["reason"] for r in rejected)
    console.print(f"\nvitals.rejected holds {len(rejected)} entries "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}):")
    shown: Counter[str] = Counter()
    for r in rejected:  # a few examples of each reason
        shown[r["reason"]] += 1
        if shown[r["reason"]] <= 3:
            console.print(f"  [bold]{r['reason']}[/bold] on {r['topic']}: {r['detail']}")
    console.print("\nThis demo runs the ingest stage: devices -> MQTT -> ingest -> Kafka. The "
                  "rules (vitals rules), paging (vitals alerting) and storage (vitals store) are "
                  "built and run on their own (README); wiring them into this one command is "
                  "the next step.")
