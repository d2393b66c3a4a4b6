"""One `vitals rules` worker (Faust, its own process) on tansu: readings/s, p99 per-batch
latency (as the worker measures it), state bytes per patient and changelog bytes per reading;
then, on the same topic in the same run, the Quix Streams app of bench/quix_rules.py for
comparison.

    .venv/bin/python -m bench.rules_worker_throughput [--patients 50] [--hours 2] [--no-quix]

The readings are produced to `vitals.readings` first; the clock runs from the worker's ready
line (`vitals rules: ready`, printed once its partitions are assigned and its state recovered;
Faust's own "Worker]: Ready" follows within ~30 ms) until it has emitted every trend point that
the pure engine computes for the same readings (so it has judged them all). Target on this
2-core machine: >= 10,000 readings/s (a naive Faust agent with three windowed tables measured
~515/s here). The Faust worker is stopped before the Quix app starts, so the two never share
the cores.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import quix_rules
from bench.readings import (
    RecordCounter,
    declare_readings,
    patients_yaml,
    prefill,
    topic_bytes,
)
from harness import servers, services
from stream_rules.faust_app import CHANGELOG

PARTITIONS = 8  # the worker's default VITALS_KAFKA_PARTITIONS


def faust_worker(bootstrap: str, work: Path, trends: int) -> tuple[float, str]:
    """Seconds from the worker's ready line until it emitted `trends` trend points, and its
    last stats line. The worker is stopped at the end (its last state writes flushed)."""
    env = services.environment({"kafka_url": f"kafka://{bootstrap}",
                                 "patients": work / "patients.yaml",
                                 "kafka_partitions": PARTITIONS, "state_dir": work / "state",
                                 "rules_metrics_addr": f"127.0.0.1:{servers.free_port()}"})
    worker = services.start("rules", env=env, log=work / "worker.log", timeout=120)
    try:
        start = time.perf_counter()
        # one consumer reading on, so the end is seen within ~50 ms of the last trend point
        with RecordCounter(bootstrap, "vitals.trends") as counter:
            while (seen := counter.poll()) < trends:
                if time.perf_counter() - start > 600:
                    sys.exit(f"worker emitted {seen} of {trends} trend points in 600 s")
        elapsed = time.perf_counter() - start
    finally:
        worker.stop(60)
    stats = re.findall(r"rules: (judged .*)", worker.output())
    return elapsed, stats[-1].strip() if stats else "(no stats line)"


def run(patients: int = 50, hours: int = 2, quix: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vitals-bench-rules-") as tmp:
        work = Path(tmp)
        kafka = servers.tansu(work / "tansu")
        bootstrap = f"{servers.LOOPBACK}:{kafka.port}"
        try:
            declare_readings(bootstrap, PARTITIONS)
            filled = prefill(bootstrap, patients, hours)
            (work / "patients.yaml").write_text(patients_yaml(filled.patients))
            elapsed, stats = faust_worker(bootstrap, work, filled.trends)
            changelog_records, changelog_bytes = topic_bytes(bootstrap, CHANGELOG)
            q = quix_rules.measure(bootstrap, filled, work) if quix else None
        finally:
            kafka.stop()
    total = filled.readings
    result: dict[str, Any] = {
        "readings": total, "readings_per_s": round(total / elapsed), "worker_says": stats,
        "state_kib_max": round(max(filled.state_sizes) / 1024, 1),
        "changelog_records": changelog_records,
        "changelog_bytes_per_reading": round(changelog_bytes / total, 1)}
    print(f"rules worker: {total} readings of {patients} patients x {hours} h, "
          "one Faust worker on tansu")
    print(f"  readings/s            {total / elapsed:10.0f}   (target >= 10,000)")
    print(f"  worker says           {stats}")
    print(f"  state per patient     {result['state_kib_max']:7.1f} KiB max ({hours} h of history)")
    print(f"  changelog per reading {changelog_bytes / total:10.1f} B   ({changelog_records} "
          f"state writes, {changelog_bytes / 2**20:.1f} MiB; target <= 64 B, issue #15)")
    if q is not None:
        result["quix"] = q
        print(f"  Quix Streams app      {quix_rules.describe(q)}")
        if "readings_per_s" in q:
            print(f"  Faust worker / Quix   {total / elapsed / q['readings_per_s']:10.2f}x  "
                  "(the same engine and rules in both: framework overhead; aim >= 1)")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--hours", type=int, default=2)
    ap.add_argument("--no-quix", dest="quix", action="store_false",
                    help="the Faust worker only")
    args = ap.parse_args()
    run(args.patients, args.hours, args.quix)


if __name__ == "__main__":
    main()
