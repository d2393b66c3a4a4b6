"""The pure rule engine: readings/s, p99 per-batch latency, and state bytes per patient.

    .venv/bin/python -m bench.engine_throughput [--patients 50] [--hours 24] [--batch 500]

Synthetic readings: per patient an oximeter at 1 Hz and a thermometer every 5 min, with a fever
and a desaturation episode in part of the cohort, fed in batches as a Faust worker would
(`stream.take`). Targets on this 2-core machine: >= 100,000 readings/s; state <= 32 KiB per
patient with a day of history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

import numpy as np

from stream_rules import state as state_io
from stream_rules.config import load_rules
from stream_rules.engine import Engine
from vitals.patients import Patient
from vitals.records import Reading

T0 = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp() * 1000)


def patient_readings(pid: str, hours: int, rng: np.random.Generator, sick: bool) -> list[Reading]:
    n = hours * 3600
    s = np.arange(n)
    fever = np.clip((s - n * 0.5) / 7200, 0, 1.5) if sick else np.zeros(n)
    hr = np.round(72 + 10 * fever + rng.normal(0, 3, n)).tolist()
    spo2 = np.round(np.minimum(100, 97 - (4 * (s > n * 0.7) if sick else 0)
                               + rng.normal(0, 0.7, n))).tolist()
    temp = (36.6 + fever + rng.normal(0, 0.05, n)).round(2).tolist()
    out = []
    for i in range(n):
        ts = T0 + i * 1000
        out.append(Reading(pid, "ox-1", ts, "oximetry", ts + 300, seq=i, spo2=spo2[i], hr=hr[i]))
        if i % 300 == 0:
            out.append(Reading(pid, "th-1", ts, "temperature", ts + 300, seq=i // 300,
                               temp=temp[i], site="axillary"))
    return out


def run(patients: int = 50, hours: int = 24, batch: int = 500) -> dict[str, Any]:
    rules = load_rules(None)
    rng = np.random.default_rng(7)
    total, elapsed, latencies, alerts, sizes = 0, 0.0, [], 0, []
    for p in range(patients):
        pid = f"B{p:04d}"
        patient = Patient(id=pid, infusion=dt.date(2026, 11, 18), team="haem-a")
        readings = patient_readings(pid, hours, rng, sick=p % 3 == 0)
        engine = Engine(rules, patient)
        state = engine.new_state()
        for i in range(0, len(readings), batch):
            chunk = readings[i:i + batch]
            t = time.perf_counter()
            out = engine.process(state, chunk)
            dt_ = time.perf_counter() - t
            elapsed += dt_
            latencies.append(dt_)
            alerts += len(out.alerts)
        total += len(readings)
        sizes.append(len(state_io.dump(state)))
    lat = np.array(latencies) * 1000
    print(f"engine: {total} readings of {patients} patients x {hours} h, batches of {batch}")
    print(f"  readings/s            {total / elapsed:10.0f}   (target >= 100,000)")
    p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
    print(f"  per batch p50 / p99   {p50:7.2f} / {p99:.2f} ms")
    print(f"  alert events          {alerts:10d}")
    print(f"  state per patient     {np.mean(sizes) / 1024:7.1f} KiB mean, "
          f"{max(sizes) / 1024:.1f} KiB max (target <= 32 KiB with a day of history)")
    return {"readings": total, "readings_per_s": round(total / elapsed),
            "batch_p50_ms": round(float(p50), 2), "batch_p99_ms": round(float(p99), 2),
            "alerts": alerts, "state_kib_mean": round(float(np.mean(sizes)) / 1024, 1),
            "state_kib_max": round(max(sizes) / 1024, 1), "hours": hours}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    run(args.patients, args.hours, args.batch)


if __name__ == "__main__":
    main()
