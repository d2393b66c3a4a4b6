"""Store throughput: readings already in Kafka (tansu) -> `vitals store` (its own process) ->
VictoriaMetrics through its InfluxDB write endpoint. Prints points/s.

    .venv/bin/python -m bench.store_throughput [--readings 500000] [--patients 500]

The readings are produced to `vitals.readings` first (confluent-kafka, acks=all), then the
store is started and drains them. Points/s is measured from the store's first committed batch
to its last: offsets are committed only after VictoriaMetrics confirmed the write, so this is
confirmed points. The rate from the process start (Python start-up and the ~3 s consumer group
join included) is printed too: its clock starts before `harness.services` starts the process,
not when the store prints its ready line, so it means what it always meant; the seconds until
that line (`ready_s`, before the group join) are printed beside it. Afterwards every point is
counted in VictoriaMetrics, from `/api/v1/export`, as distinct (series, timestamp) pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.procstats import cpu_seconds, peak_rss_mib
from harness import servers, services
from storage.writer import GROUP_ID
from vitals import topics
from vitals.kafka import consumer_config, declare_topics, producer_config
from vitals.records import Reading, encode

PARTITIONS = 8


def produce(bootstrap: str, n: int, patients: int) -> dict[int, int]:
    """1 Hz oximetry, and a temperature every 300th reading, from `patients` patients; returns
    the end offset of each partition written."""
    p = Producer(producer_config(bootstrap))
    ends: dict[int, int] = {}

    def delivered(err: object, msg: object) -> None:
        assert err is None, err
        part, off = msg.partition(), msg.offset()  # type: ignore[attr-defined]
        ends[part] = max(ends.get(part, 0), off + 1)

    t0 = int(time.time() * 1000) - n // patients * 1000 - 60_000
    for i in range(n):
        pid, s = f"B{i % patients:04d}", i // patients
        if s % 300 == 7:
            r = Reading(pid, "th-1", t0 + s * 1000, "temperature", t0 + s * 1000 + 40, seq=s,
                        temp=36.5 + (s % 20) / 10, site="axillary")
        else:
            r = Reading(pid, "ox-1", t0 + s * 1000, "oximetry", t0 + s * 1000 + 40, seq=s,
                        spo2=float(94 + s % 5), hr=float(70 + s % 40), pi=2.5)
        while True:
            try:
                p.produce(topics.READINGS.name, encode(r), pid.encode(), on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return ends


def committed(bootstrap: str, parts: list[int]) -> int:
    c = Consumer(consumer_config(bootstrap, GROUP_ID))  # reads the offsets, never joins
    try:
        tps = c.committed([TopicPartition(topics.READINGS.name, p) for p in parts], timeout=10)
        return sum(tp.offset for tp in tps if tp.offset > 0)
    finally:
        c.close()


def vm_points(port: int) -> tuple[int, int]:
    """(distinct (series, timestamp) points, raw samples) of the readings in VictoriaMetrics,
    counting one field per reading kind (hr for oximetry, temp for temperature)."""
    base = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(f"{base}/internal/force_flush").read()
    time.sleep(1)
    distinct = raw = 0
    for name in ("readings_hr", "readings_temp"):
        q = urllib.parse.urlencode({"match[]": name})
        with urllib.request.urlopen(f"{base}/api/v1/export?{q}") as r:
            for line in r:
                series = json.loads(line)
                raw += len(series["timestamps"])
                distinct += len(set(series["timestamps"]))
    return distinct, raw


def run(readings: int = 500_000, patients: int = 500) -> dict[str, Any]:
    n = readings
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with servers.tansu(work / "tansu") as kafka, \
                servers.victoria_metrics(work / "vm") as vm:
            bootstrap = f"127.0.0.1:{kafka.port}"
            declare_topics(bootstrap, (*topics.STORE_TOPICS, topics.REJECTED), PARTITIONS,
                           wait_s=10)
            t = time.perf_counter()
            ends = produce(bootstrap, n, patients)
            print(f"produced {n:,} readings to {topics.READINGS.name} in "
                  f"{time.perf_counter() - t:.1f} s")
            assert sum(ends.values()) == n, ends

            env = services.environment({
                "kafka_url": f"kafka://{bootstrap}", "kafka_partitions": PARTITIONS,
                "influx_url": f"http://127.0.0.1:{vm.port}", "state_dir": work / "state",
                "store_metrics_addr": f"127.0.0.1:{servers.free_port()}"})
            # the clock starts before the process does, as when the store was started by hand:
            # "from process start" includes start-up, the wait for the ready line and the join
            started = time.perf_counter()
            store = services.start("store", env=env, log=work / "store.log")
            ready = time.perf_counter()
            first: tuple[float, int] | None = None
            done = 0
            try:
                while done < n:
                    assert store.alive(), f"store exited: {store.tail(20)}"
                    assert time.perf_counter() - started < 600, "store did not finish in 600 s"
                    time.sleep(0.1)
                    done = committed(bootstrap, list(ends))
                    if first is None and done > 0:
                        first = (time.perf_counter(), done)
                finished = time.perf_counter()
                cpu, rss = cpu_seconds(store.pid), peak_rss_mib(store.pid)
            finally:
                store.stop()
            assert first is not None
            distinct, raw = vm_points(vm.port)
    drain = (n - first[1]) / (finished - first[0])
    overall = n / (finished - started)
    print(f"store drained {n:,} readings: {drain:,.0f} points/s from the first commit to the "
          f"last ({finished - first[0]:.1f} s); {overall:,.0f} points/s from process start "
          f"({finished - started:.1f} s, start-up and group join included; its ready line "
          f"after {ready - started:.1f} s)")
    print(f"store CPU {cpu:.1f} s ({cpu / n * 1e6:.0f} µs per point), peak RSS {rss:.0f} MiB")
    print(f"in VictoriaMetrics: {distinct:,} distinct points of {n:,} "
          f"({raw - distinct:,} raw samples written twice)")
    if distinct != n:
        sys.exit(f"expected {n} points in VictoriaMetrics, found {distinct}")
    return {"readings": n, "drain_points_per_s": round(drain),
            "from_start_points_per_s": round(overall), "ready_s": round(ready - started, 2),
            "cpu_us_per_point": round(cpu / n * 1e6, 1),
            "peak_rss_mib": round(rss), "distinct_points": distinct}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=500_000)
    ap.add_argument("--patients", type=int, default=500)
    args = ap.parse_args()
    run(args.readings, args.patients)


if __name__ == "__main__":
    main()
