"""Every benchmark in one run, each in a process of its own, then one table (Markdown and JSON)
of the headline numbers, their targets and the ratios measured side by side.

    .venv/bin/python -m bench [--quick] [--out bench/results/latest] [--only NAME,...]

Writes OUT.md and OUT.json (default bench/results/latest.*). `--quick` runs smaller sizes and
shorter load levels (~5 minutes instead of ~10) to check that everything works; its numbers
are not the ones to quote. What each number means: bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parents[1]

# name -> (full-size arguments, quick arguments)
BENCHMARKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ingest_throughput": ({}, {"readings": 20_000, "devices": 200}),
    "engine_throughput": ({}, {"patients": 10, "hours": 6}),
    "rules_worker_throughput": ({}, {"patients": 10, "hours": 2}),
    "store_throughput": ({}, {"readings": 100_000, "patients": 100}),
    "simulate_throughput": ({}, {"patients": 200, "minutes": 10, "publish_minutes": 1,
                                 "rounds": 1}),
    "alerting_latency": ({}, {"seconds": 5}),
    "alerting_failover": ({}, {"rounds": 1}),
    "end_to_end": ({}, {"seconds": 12, "probe_every": 1.0, "runs": 1}),
    # ~10 minutes in full: the standard evaluation three times
    "evaluation_speed": ({}, {"patients": 4, "days": 1.0, "runs": 1}),
    # ~17 minutes in full; --quick is the test suite's short form (tests/test_chaos.py)
    "chaos": ({}, {"patients": 4, "days": 2.0, "publish_s": 70.0, "kills": 1, "outages": 1,
                   "outage_s": 6.0}),
}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine(quick: bool) -> dict[str, Any]:
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "memory_gib": round(pages / 2**30, 1),
            "python": platform.python_version(), "commit": commit, "quick": quick,
            "load_before": load()}


def run_one(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The benchmark in its own process, its output passed through; its result, or the reason
    it failed (the last lines it printed)."""
    entry: dict[str, Any] = {"args": kwargs, "load_before": load()}
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.Popen([sys.executable, "-m", "bench.one", name, json.dumps(kwargs),
                                 str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        tail: collections.deque[str] = collections.deque(maxlen=8)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.strip() and "rdkafka" not in line:  # librdkafka's disconnect chatter
                tail.append(line.strip())
        code = proc.wait()
        if code == 0 and out.exists():
            entry["result"] = json.loads(out.read_text())
        else:
            entry["error"] = f"exit status {code}: " + " | ".join(tail)
    entry["seconds"] = round(time.monotonic() - start, 1)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, short levels")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest",
                    help="writes OUT.md and OUT.json")
    ap.add_argument("--only", help="comma-separated benchmark names (default: all)")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    facts = machine(args.quick)
    print(f"benchmarks on {facts['cores']} cores, load average {facts['load_before']}"
          f"{' (quick)' if args.quick else ''}", flush=True)
    results: dict[str, Any] = {}
    for name in names:
        print(f"\n== {name}", flush=True)
        results[name] = run_one(name, BENCHMARKS[name][1 if args.quick else 0])
    facts["load_after"] = load()
    out = args.out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    md = report.markdown(results, facts)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps({"machine": facts, "benchmarks": results},
                                                   indent=2) + "\n")
    print("\n" + md)
    print(f"written: {out.with_suffix('.md')}, {out.with_suffix('.json')}")
    if any("error" in e for e in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
