"""Chaos, in full: a seeded cohort with known truth published through the whole pipeline while
every fault kind is injected several times at seeded random times (SIGKILL and restart of
ingest, each rules worker, the store and alerting; Mosquitto restarted with persistence on;
the Kafka connection cut; PagerDuty answering 500, and 429 with Retry-After; the time-series
server down), outages a minute long. Then one table: the faults, the readings published,
accepted, on Kafka and stored, and every finding that must be 0 (readings lost or doubled,
alert events missing or extra against the pure engine, pages missed or doubled).

    .venv/bin/python -m bench.chaos [--patients 20] [--days 4] [--seed 1] [--publish-s 720]
                                    [--kills 3] [--outages 2] [--outage-s 60]

The engine is `harness/chaos.py` (the short form runs in tests/test_chaos.py). What the
checks mean: bench/README.md, "Chaos".
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.chaos import Chaos, Spec
from harness.chaos_plan import OUTAGES


def run(patients: int = 20, days: float = 4.0, seed: int = 1, publish_s: float = 720.0,
        kills: int = 3, outages: int = 2, outage_s: float = 60.0, keep: str | None = None,
        skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """One full chaos run; prints the table and the details, returns the summary."""
    spec = Spec(patients=patients, days=days, seed=seed, publish_s=publish_s, kills=kills,
                outages=outages, outage_s=(outage_s, outage_s), drain_timeout_s=900.0,
                stall_s=180.0, skip=skip)
    with tempfile.TemporaryDirectory(prefix="vitals-chaos-") as tmp:
        work = Path(keep) if keep else Path(tmp)
        result = Chaos(spec, work, say=lambda line: print(line, flush=True)).run()
    print("\n" + result.table() + "\n\n" + result.details(), flush=True)
    return result.summary()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--days", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--publish-s", type=float, default=720.0,
                    help="how long publishing the traffic takes (sets the speed)")
    ap.add_argument("--kills", type=int, default=3, help="SIGKILLs of each service")
    ap.add_argument("--outages", type=int, default=2, help="of each other fault kind")
    ap.add_argument("--outage-s", type=float, default=60.0, help="how long an outage lasts")
    ap.add_argument("--skip", action="append", default=[], choices=OUTAGES,
                    help="leave this fault kind out (to isolate another's effect); repeatable")
    ap.add_argument("--keep", help="work directory to keep (logs, traffic), else a temporary one")
    ap.add_argument("--json", type=Path, help="write the summary here as JSON")
    args = ap.parse_args()
    # SIGTERM (a timeout, Ctrl-C in a wrapper) unwinds, so that every process is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary = run(args.patients, args.days, args.seed, args.publish_s, args.kills,
                  args.outages, args.outage_s, args.keep, tuple(args.skip))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
