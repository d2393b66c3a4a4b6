"""One `vitals rules` worker (Faust, its own process) on tansu: readings/s, p99 per-batch
latency (as the worker measures it), and state bytes per patient.

    .venv/bin/python -m bench.rules_worker_throughput [--patients 50] [--hours 2]

The readings are produced to `vitals.readings` first; the clock runs from the worker being
ready until it has emitted every trend point that the pure engine computes for the same
readings (so it has judged them all). Target on this 2-core machine: >= 10,000 readings/s
(a naive Faust agent with three windowed tables measured ~515/s here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.engine_throughput import patient_readings
from stream_rules import state as state_io
from stream_rules.config import load_rules
from stream_rules.engine import Engine
from vitals import servers
from vitals.patients import Patient
from vitals.records import encode


def count_records(bootstrap: str, topic: str) -> int:
    """Records on `topic`, by consuming it (tansu's high watermarks undercount)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time_ns()}"})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        n, idle = 0, 0
        while idle < 3:
            got = c.consume(10_000, 0.1)
            idle = 0 if got else idle + 1
            n += len(got)
        return n
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--hours", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitals-bench-rules-"))
    rules = load_rules(None)
    rng = np.random.default_rng(11)
    ids = [f"B{p:04d}" for p in range(args.patients)]
    (work / "patients.yaml").write_text("patients:\n" + "".join(
        f"  - {{id: {pid}, infusion: 2026-11-18, team: haem-a}}\n" for pid in ids))
    kafka = servers.tansu(work / "tansu")
    bootstrap = f"{servers.LOOPBACK}:{kafka.port}"
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                         "linger.ms": 20})
    total, trends, sizes = 0, 0, []
    for i, pid in enumerate(ids):
        rs = patient_readings(pid, args.hours, rng, sick=i % 3 == 0)
        engine = Engine(rules, Patient(id=pid, infusion=dt.date(2026, 11, 18), team="haem-a"))
        state = engine.new_state()
        trends += len(engine.process(state, rs).trends)
        sizes.append(len(state_io.dump(state)))
        for r in rs:
            while True:
                try:
                    producer.produce("vitals.readings", encode(r), pid.encode())
                    break
                except BufferError:
                    producer.poll(0.1)
        total += len(rs)
    producer.flush()
    env = {**os.environ, "VITALS_KAFKA_URL": f"kafka://{bootstrap}",
           "VITALS_PATIENTS": str(work / "patients.yaml")}
    log = work / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-c", "from vitals.cli import main; main()",
                                   "rules"], env=env, stdout=out, stderr=out)
    try:
        while "Worker]: Ready" not in log.read_text():
            if worker.poll() is not None:
                sys.exit(f"worker exited: {servers.tail(log)}")
            time.sleep(0.05)
        start = time.perf_counter()
        while (seen := count_records(bootstrap, "vitals.trends")) < trends:
            if time.perf_counter() - start > 600:
                sys.exit(f"worker emitted {seen} of {trends} trend points in 600 s")
            time.sleep(0.5)
        elapsed = time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(60)
        kafka.stop()
    stats = re.findall(r"rules: (judged .*)", log.read_text())
    print(f"rules worker: {total} readings of {args.patients} patients x {args.hours} h, "
          "one Faust worker on tansu")
    print(f"  readings/s            {total / elapsed:10.0f}   (target >= 10,000)")
    print(f"  worker says           {stats[-1] if stats else '(no stats line)'}")
    print(f"  state per patient     {max(sizes) / 1024:7.1f} KiB max ({args.hours} h of history)")


if __name__ == "__main__":
    main()
