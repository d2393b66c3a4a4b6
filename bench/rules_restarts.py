"""Two `vitals rules` workers, and nothing else, SIGKILLed and restarted while a seeded cohort's
readings flow: do their alert events equal the pure engine's on the same records?

    .venv/bin/python -m bench.rules_restarts [--patients 20] [--days 5] [--seed 1] [--rate 400]
                                            [--no-kills]

The cohort's readings (ingest's parser and duplicate filter, no MQTT) are produced to
`vitals.readings` at `--rate` per second, stamped with the wall clock as ingest would (the live
silence check reads it); a worker is killed every 15-35 s (seeded) and restarted at once. At
the end every alert event on `vitals.alerts` is compared, by (alert_id, status), with the
engine run on `vitals.readings` as Kafka holds it. The full chaos run (`bench.chaos`) tests the
whole pipeline under every fault; this one isolates the rules workers' state handling, and
runs in ~8 minutes. It found the table keys that hashed to another changelog partition than
their readings (issue #17): 29-37 events missing before, 0 after.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Producer

from harness import servers, services
from harness.expected import judge_in_order
from harness.gateway import write_cohort
from harness.readback import read_topic
from ingest.dedup import DuplicateFilter
from ingest.parse import Parser
from vitals import topics, trafficfile
from vitals.kafka import producer_config
from vitals.patients import load_patients
from vitals.records import Reading, encode

START_MS = 1_793_577_600_000  # 2026-11-02 00:00 UTC
PARTITIONS = 4
WORKERS = ("rules-1", "rules-2")


def cohort_readings(work: Path, patients: int, days: float, seed: int
                    ) -> tuple[Path, list[Reading]]:
    """The patients file and the readings ingest would forward, in publish order."""
    traffic = work / "traffic.jsonl"
    patients_file, _, _ = write_cohort(traffic, patients, seed, days, START_MS)
    registry = load_patients(patients_file)
    parser, dedup = Parser(registry), DuplicateFilter()
    out = [r for m in trafficfile.read(traffic)
           for r in parser.parse(m.topic, m.payload, m.at).readings if dedup.first_time(r)]
    return patients_file, out


def feed(bootstrap: str, readings: list[Reading], rate: float, done: threading.Event) -> None:
    """Produce at `rate` readings/s, keyed by patient and received now."""
    producer = Producer({**producer_config(bootstrap), "linger.ms": 20})
    started = time.monotonic()
    for i, r in enumerate(readings):
        value = encode(msgspec.structs.replace(r, received_at=int(time.time() * 1000)))
        while True:
            try:
                producer.produce(topics.READINGS.name, value, r.patient_id.encode())
                break
            except BufferError:
                producer.poll(0.1)
        if i % 200 == 0:
            producer.poll(0)
            time.sleep(max(0.0, i / rate - (time.monotonic() - started)))
    producer.flush(60)
    done.set()


def run(patients: int = 20, days: float = 5, seed: int = 1, rate: float = 400,
        kills: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vitals-bench-rules-restarts-") as tmp:
        work = Path(tmp)
        patients_file, readings = cohort_readings(work, patients, days, seed)
        kafka = servers.tansu(work / "tansu")
        bootstrap = f"{servers.LOOPBACK}:{kafka.port}"
        procs: dict[str, services.ServiceProcess] = {}

        def start(name: str) -> None:
            env = services.environment({
                "kafka_url": f"kafka://{bootstrap}", "patients": patients_file,
                "kafka_partitions": PARTITIONS, "state_dir": work / name,
                "rules_metrics_addr": f"{servers.LOOPBACK}:{servers.free_port()}"})
            procs[name] = services.start("rules", env=env, log=work / f"{name}.log", name=name,
                                         timeout=180)

        killed: list[tuple[float, str]] = []
        try:
            for name in WORKERS:
                start(name)
            done = threading.Event()
            feeder = threading.Thread(target=feed, args=(bootstrap, readings, rate, done),
                                      daemon=True)
            began = time.monotonic()
            feeder.start()
            rng = random.Random(seed)
            while kills and not done.wait(rng.uniform(15, 35)):
                name = rng.choice(WORKERS)
                procs[name].kill()
                killed.append((round(time.monotonic() - began, 1), name))
                start(name)
            done.wait()
            # every worker judges to the end: the alerts stop coming
            alerts = read_topic(bootstrap, topics.ALERTS.name, timeout=900, quiet_s=30)
            on_kafka = read_topic(bootstrap, topics.READINGS.name, timeout=900, quiet_s=5)
        finally:
            for proc in procs.values():
                proc.kill()
            kafka.stop()
        expected = judge_in_order(on_kafka, patients_file)
    want = {(a["alert_id"], a["status"]) for events in expected.values() for a in events}
    got = {(a["alert_id"], a["status"]) for a in alerts}
    return {"readings": len(on_kafka), "kills": killed, "alert_events_expected": len(want),
            "alert_events_sent": len(alerts), "missing": sorted(want - got),
            "extra": sorted(got - want), "wall_s": round(time.monotonic() - began)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--days", type=float, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--no-kills", action="store_true")
    args = parser.parse_args()
    result = run(args.patients, args.days, args.seed, args.rate, not args.no_kills)
    print(f"readings {result['readings']}, {len(result['kills'])} SIGKILLs "
          f"{result['kills']}, {result['wall_s']} s")
    print(f"alert events: {result['alert_events_expected']} expected, "
          f"{len(result['missing'])} missing, {len(result['extra'])} extra "
          f"({result['alert_events_sent']} sent, repeats after a restart included)")
    for label in ("missing", "extra"):
        for key in result[label][:20]:
            print(f"  {label} {json.dumps(key)}")


if __name__ == "__main__":
    main()
