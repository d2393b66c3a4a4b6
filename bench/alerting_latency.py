"""Alerting latency: an alert event produced to Kafka (tansu) -> `vitals alerting` (its own
process) -> the PagerDuty request arriving at a local receiver. Prints p50, p99 and max.

    .venv/bin/python -m bench.alerting_latency [--rate 100] [--seconds 20] [--postgres]

Each event is for a distinct patient, so each opens an incident and pages (step 1). The
receiver runs in this process and matches each request to its event by payload.source (the
patient id); both times come from this process's monotonic clock. Latency includes the
consumer's fetch wait, the SQLite commit (synchronous=FULL) of the event and its intent,
the HTTP request, and the receiver's parsing. Target: p99 <= 200 ms at 100 events/s.
`--postgres` keeps alerting's state in a real PostgreSQL (started here) instead of SQLite: the
store two instances share (alerting/README.md), each commit a round trip to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from confluent_kafka import Producer

from harness import servers, services
from vitals import topics
from vitals.kafka import declare_topics, producer_config
from vitals.records import AlertEvent

PARTITIONS = 8


def receiver(port: int, arrived: dict[str, float], ready: threading.Event) -> None:
    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        if body["event_action"] == "trigger":
            arrived.setdefault(body["payload"]["source"], time.monotonic())
        return web.json_response({"status": "success"}, status=202)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v2/enqueue", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def patient(i: int, prefix: str = "B") -> str:
    return f"{prefix}{i:05d}"


def write_files(work: Path, n: int, prefix: str = "B") -> tuple[Path, Path]:
    """Patients PREFIX00000... in one team, and an on-call file paging one PagerDuty key."""
    patients = work / "patients.yaml"
    patients.write_text("patients:\n" + "".join(
        f"  - {{id: {patient(i, prefix)}, infusion: 2026-11-18, team: haem-a}}\n"
        for i in range(n)))
    oncall = work / "oncall.yaml"
    oncall.write_text("targets: {nurse: {pagerduty: bench-routing-key}}\n"
                      "teams: {haem-a: {escalation: [{after_min: 0, notify: [nurse]}]}}\n")
    return patients, oncall


def event(i: int) -> AlertEvent:
    return fever(patient(i))


def fever(patient_id: str) -> AlertEvent:
    """A paging fever event of this patient, detected now."""
    now = int(time.time() * 1000)
    return AlertEvent(alert_id=f"{patient_id}/fever/{now}", status="firing", rule="fever",
                      severity="error", patient_id=patient_id, start=now - 600_000,
                      detected_at=now, summary=f"{patient_id}: fever: temperature 38.4 °C",
                      source="bench", day_since_infusion=2.0,
                      evidence={"value": 38.4, "window_min": 20})


def send(producer: Producer, ev: AlertEvent) -> None:
    producer.produce(topics.ALERTS.name, msgspec.json.encode(ev), ev.patient_id.encode())


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--postgres", action="store_true",
                    help="alerting's state in PostgreSQL instead of SQLite")
    args = ap.parse_args()
    run(args.rate, args.seconds, args.postgres)


def run(rate: float = 100.0, seconds: float = 20.0, postgres: bool = False) -> dict[str, Any]:
    args = argparse.Namespace(rate=rate, seconds=seconds)
    n = int(args.rate * args.seconds)
    work = Path(tempfile.mkdtemp(prefix="bench-alerting-"))
    patients, oncall = write_files(work, n + 1)
    arrived: dict[str, float] = {}
    pd_port, api_port = servers.free_port(), servers.free_port()
    ready = threading.Event()
    threading.Thread(target=receiver, args=(pd_port, arrived, ready), daemon=True).start()
    ready.wait(5)

    with servers.tansu(work / "tansu") as kafka, contextlib.ExitStack() as database:
        db_url = None
        if postgres:
            pg = servers.postgres(work / "postgres")
            database.callback(pg.stop)
            db_url = pg.url
        bootstrap = f"127.0.0.1:{kafka.port}"
        declare_topics(bootstrap, (topics.ALERTS, topics.TRENDS), PARTITIONS, wait_s=10)
        env = services.environment({
            "kafka_url": f"kafka://{bootstrap}", "kafka_partitions": PARTITIONS,
            "patients": patients, "oncall": oncall, "state_dir": work / "state",
            "pagerduty_url": f"http://127.0.0.1:{pd_port}/v2/enqueue",
            "alerting_addr": f"127.0.0.1:{api_port}", "alerting_db_url": db_url})
        alerting = services.start("alerting", env=env, log=work / "alerting.log")
        try:
            producer = Producer({**producer_config(bootstrap), "linger.ms": 0, "log_level": 3})
            # warm-up: ready comes before the consumer has joined its group; wait until it has
            # joined and paged once
            warm = event(n)
            send(producer, warm)
            producer.flush(10)
            deadline = time.monotonic() + 60
            while warm.patient_id not in arrived:
                if not alerting.alive() or time.monotonic() > deadline:
                    sys.exit(f"alerting did not page: {alerting.tail(20)}")
                time.sleep(0.05)

            sent: dict[str, float] = {}
            start = time.monotonic()
            for i in range(n):
                due = start + i / args.rate
                while (delay := due - time.monotonic()) > 0:
                    time.sleep(min(delay, 0.005))
                ev = event(i)
                sent[ev.patient_id] = time.monotonic()
                send(producer, ev)
                producer.poll(0)
            producer.flush(10)
            deadline = time.monotonic() + 30
            while len([p for p in sent if p in arrived]) < n and time.monotonic() < deadline:
                time.sleep(0.05)
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz") as r:
                json.load(r)  # still serving after the load
        finally:
            alerting.stop()
    shutil.rmtree(work, ignore_errors=True)

    lat = [(arrived[p] - t) * 1000 for p, t in sent.items() if p in arrived]
    missing = n - len(lat)
    print(f"alerting latency, Kafka -> vitals alerting -> PagerDuty receiver: {n} events at "
          f"{args.rate:.0f}/s, distinct patients, state in "
          f"{'PostgreSQL' if postgres else 'SQLite'}")
    print(f"  p50 {pct(lat, 50):.1f} ms   p99 {pct(lat, 99):.1f} ms   max {max(lat):.1f} ms   "
          f"paged {len(lat)}/{n}{'' if not missing else f'  MISSING {missing}'}")
    print(f"  target p99 <= 200 ms: {'met' if pct(lat, 99) <= 200 and not missing else 'NOT met'}")
    return {"events": n, "rate": args.rate, "store": "postgres" if postgres else "sqlite",
            "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1),
            "max_ms": round(max(lat), 1), "paged": len(lat)}


if __name__ == "__main__":
    main()
