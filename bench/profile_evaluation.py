"""Where `vitals evaluate` spends its time: a cProfile of the evaluation path (simulated traffic
-> ingest's parser -> duplicate filter -> the pure engine, oximeters' readings on the fast path
of `evaluation.columns`) on a small generated cohort, and the top functions by their own time.

    .venv/bin/python -m bench.profile_evaluation [--patients 2] [--days 1] [--top 10]

One process, no workers: the profile sees every call. cProfile adds overhead per Python call,
so the shares, not the seconds, are what to compare before and after a change (issue #15 asks
for the top 10 before and after).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

from evaluation.run import run_subset
from simulators import cohort
from simulators.run import parse_start
from stream_rules.config import load_rules

START = "2026-11-20T00:00Z"


def run(patients: int = 2, days: float = 1.0, top: int = 10, seed: int = 3) -> dict[str, Any]:
    sim = cohort.generate(patients, seed, days, parse_start(START))
    rules = load_rules(None)
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    result = run_subset(sim, rules, list(range(patients)))
    profile.disable()
    seconds = time.perf_counter() - began
    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(((own, calls, f"{path.rsplit('/', 1)[-1]}:{line}({name})")
                   for (path, line, name), (_, calls, own, _cum, _) in
                   stats.stats.items()),  # type: ignore[attr-defined]
                  reverse=True)[:top]
    readings = result.counts.readings
    print(f"profile of the evaluation path: {readings:,} readings of {patients} patients x "
          f"{days:g} days in {seconds:.1f} s under cProfile")
    print(f"  {'own s':>7} {'share':>6} {'calls':>10}  function")
    for own, calls, where in rows:
        print(f"  {own:7.2f} {100 * own / total:5.1f}% {calls:10,}  {where}")
    return {"readings": readings, "seconds": round(seconds, 2),
            "top": [{"function": where, "own_s": round(own, 3),
                     "share": round(own / total, 4), "calls": calls}
                    for own, calls, where in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    run(args.patients, args.days, args.top)


if __name__ == "__main__":
    main()
