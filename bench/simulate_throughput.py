"""Simulator throughput: how many readings/s `vitals simulate` generates into a traffic file,
and how fast `vitals simulate` and `vitals replay` publish to a real Mosquitto compared with
the raw paho ceiling measured in the same run.

    .venv/bin/python -m bench.simulate_throughput [--patients 1000] [--minutes 60]
                                                  [--publish-minutes 3] [--rounds 2]

1. `vitals simulate --out` (its own process): a cohort of `--patients` at 1 Hz for
   `--minutes`; readings/s as the command reports it (generation and writing), the wall time
   of the whole command (start-up, planning and truth included) and its peak memory.
2. Publishing, each run with one paho subscriber on vitals/# counting deliveries, QoS 1:
   - raw ceiling: a bare paho publisher (its own process, at most 100 in flight, the same
     payloads) -> Mosquitto -> the subscriber;
   - `vitals replay FILE --speed max` of `--publish-minutes` of the same cohort;
   - `vitals simulate --speed max`: generating and publishing at once.
   Rates are deliveries per second at the subscriber, first to last message; each is measured
   in `--rounds` interleaved rounds and the best kept (single runs on two shared cores vary).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness import servers, services
from harness.command import vitals
from vitals import trafficfile

START = "2026-11-20T00:00:00Z"
RAW_PUBLISHER = """
import sys, time
from pathlib import Path
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from vitals import trafficfile
messages = [(m.topic, m.payload) for m in trafficfile.read(Path(sys.argv[2]))]
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw")
c.max_inflight_messages_set(100)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_start()
window = []
for topic, payload in messages:
    window.append(c.publish(topic, payload, qos=1))
    if len(window) >= 100:
        window.pop(0).wait_for_publish()
for info in window:
    info.wait_for_publish()
c.disconnect()
c.loop_stop()
"""


class Counter:
    """A paho subscriber on vitals/# counting deliveries, first and last arrival."""

    def __init__(self, port: int) -> None:
        self.n, self.first, self.last = 0, 0.0, 0.0
        ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")
        c.on_message = self._on_message
        c.on_subscribe = lambda *_a: ready.set()
        c.connect(servers.LOOPBACK, port)
        c.subscribe("vitals/#", qos=1)
        c.loop_start()
        if not ready.wait(5):
            sys.exit("subscriber did not subscribe")
        self.client = c

    def _on_message(self, *_a: object) -> None:
        now = time.perf_counter()
        if not self.n:
            self.first = now
        self.n += 1
        self.last = now

    def wait(self, expect: int, timeout: float = 300) -> float:
        """Deliveries per second once `expect` have arrived (or the timeout)."""
        deadline = time.monotonic() + timeout
        while self.n < expect and time.monotonic() < deadline:
            time.sleep(0.02)
        self.client.disconnect()
        self.client.loop_stop()
        if self.n < expect:
            sys.exit(f"only {self.n} of {expect} messages arrived")
        return self.n / max(self.last - self.first, 1e-9)


def run_vitals(*args: str, env: dict[str, str]) -> tuple[str, float]:
    """`vitals ARGS...` to the end: its standard output and its wall time."""
    start = time.perf_counter()
    done = subprocess.run(vitals(*args), capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"vitals {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout, time.perf_counter() - start


def child_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--publish-minutes", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    run(args.patients, args.minutes, args.publish_minutes, args.rounds)


def run(patients: int = 1000, minutes: float = 60, publish_minutes: float = 3,
        rounds: int = 2) -> dict[str, Any]:
    args = argparse.Namespace(patients=patients, minutes=minutes,
                              publish_minutes=publish_minutes, rounds=rounds)
    work = Path(tempfile.mkdtemp(prefix="vitals-bench-sim-"))
    try:
        return measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    env = services.environment({"state_dir": work / "state"})
    cohort = ["--patients", str(args.patients), "--seed", "1", "--start", START]
    print(f"simulate benchmark: {args.patients} patients (oximeter 1 Hz, thermometer every "
          f"1-10 min), {os.cpu_count()} cores")

    # 1. generation into a file
    out = work / "cohort.jsonl"
    stdout, wall = run_vitals("simulate", *cohort, "--days", str(args.minutes / 1440),
                              "--out", str(out), env=env)
    m = re.search(r"(\d+) messages, (\d+) readings in ([\d.]+) s \(([\d,]+) readings/s\)",
                  stdout)
    if not m:
        sys.exit(f"unexpected output: {stdout}")
    messages, readings, seconds = int(m[1]), int(m[2]), max(float(m[3]), 1e-3)
    size = out.stat().st_size
    print(f"  to a file        {readings / seconds:9,.0f} readings/s  ({readings:,} readings in "
          f"{messages:,} messages, {size / 2**20:,.0f} MiB, {seconds:.1f} s; whole command "
          f"{wall:.1f} s = {readings / wall:,.0f}/s; peak RSS {child_peak_rss_mib():.0f} MiB)")
    out.unlink()

    # 2. publishing through Mosquitto
    minutes = str(args.publish_minutes / 1440)
    sample = work / "publish.jsonl"
    run_vitals("simulate", *cohort, "--days", minutes, "--out", str(sample), env=env)
    n = sum(1 for _ in trafficfile.read(sample))
    with servers.mosquitto(work / "mosquitto") as broker:
        env = services.environment({"state_dir": work / "state",
                                     "mqtt_url": f"mqtt://{servers.LOOPBACK}:{broker.port}"})

        def raw_ceiling() -> float:
            counter = Counter(broker.port)
            subprocess.run([sys.executable, "-c", RAW_PUBLISHER, str(broker.port),
                            str(sample)], check=True, cwd=Path(__file__).parents[1])
            return counter.wait(n)

        def replay() -> float:
            counter = Counter(broker.port)
            run_vitals("replay", str(sample), "--speed", "max", env=env)
            return counter.wait(n)

        def live() -> float:
            counter = Counter(broker.port)
            run_vitals("simulate", *cohort, "--days", minutes, "--speed", "max", env=env)
            return counter.wait(n)

        # two rounds, the best of each: on two shared cores single runs vary by +-20 %
        rounds = [(raw_ceiling(), replay(), live()) for _ in range(args.rounds)]
        raw, replayed, simulated = (max(r[i] for r in rounds) for i in range(3))
    print(f"  {n:,} messages ({args.publish_minutes:g} simulated minutes) through Mosquitto, "
          "QoS 1, one subscriber:")
    print(f"  raw paho ceiling {raw:9,.0f} msg/s  (bare publisher, same payloads, 100 in flight)")
    print(f"  vitals replay    {replayed:9,.0f} msg/s  ({replayed / raw:.0%} of the ceiling)")
    print(f"  vitals simulate  {simulated:9,.0f} msg/s  ({simulated / raw:.0%} of the ceiling; "
          "generating while publishing)")
    print(f"  (best of {args.rounds} rounds each)")
    return {"to_file_readings_per_s": round(readings / seconds),
            "whole_command_readings_per_s": round(readings / wall),
            "replay_msg_per_s": round(replayed), "simulate_msg_per_s": round(simulated),
            "raw_ceiling_msg_per_s": round(raw), "messages": n}


if __name__ == "__main__":
    main()
