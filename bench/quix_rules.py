"""The alternative a user would pick: a Quix Streams app (bench/quix_app.py) running the project's
pure rule engine, on the same tansu broker and the same pre-filled `vitals.readings` as the
Faust rules worker, so that the two frameworks do equal work (same rules, same alert events:
checked). Prints readings/s.

    .venv/bin/python -m bench.quix_rules [--patients 50] [--hours 2]

`python -m bench.rules_worker_throughput` runs this on its own topic right after the Faust
worker, and `python -m bench` reports the ratio. quixstreams cannot share the project's
environment (it pins confluent-kafka < 2.13 and pydantic < 2.14; the project pins 2.16 and
2.14), so the app runs in bench/.quix-venv, made on first use from bench/quix-requirements.txt
(which adds what the engine needs: numpy, scipy, msgspec, PyYAML; the engine accepts
pydantic >= 2.7), with the project's source on its path.

Running it on tansu needs one setting: tansu answers DescribeConfigs with only the configs
given when a topic was created (none for a topic declared without any), and Quix Streams
3.28 reads the input topic's `retention.ms` unconditionally to derive its changelog topics
(`TopicManager.derive_topic_config`: KeyError 'retention.ms'). bench.readings therefore
creates vitals.readings with `retention.ms` and `retention.bytes` set (-1, as Kafka's
defaults would be reported). Without that the app stops before consuming anything.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.readings import INFUSION, TEAM, Prefilled, declare_readings, prefill
from harness import servers
from vitals import topics

HERE = Path(__file__).resolve().parent
VENV = HERE / ".quix-venv"
REQUIREMENTS = HERE / "quix-requirements.txt"
PROJECT = HERE.parent
APP = HERE / "quix_app.py"
OUTPUTS_TOPIC = "bench.quix.outputs"


IMPORTS = "import quixstreams, numpy, scipy, msgspec, yaml"  # the app's and the engine's


class QuixUnavailable(RuntimeError):
    pass


def venv_python() -> Path:
    """bench/.quix-venv/bin/python with quixstreams installed (made on first use)."""
    python = VENV / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", IMPORTS],
                                          capture_output=True).returncode == 0:
        return python
    print(f"  making {VENV} for quixstreams (once) ...", flush=True)
    steps = ([sys.executable, "-m", "venv", "--clear", str(VENV)],
             [python, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)])
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise QuixUnavailable(f"{' '.join(map(str, cmd))} failed: "
                                  f"{(done.stderr or done.stdout).strip()[-500:]}")
    return python


def app_params(bootstrap: str, expect: int, group: str, state_dir: Path, patients: list[str]
               ) -> dict[str, Any]:
    """The app's settings: where the project's source is, the broker, the patients."""
    return {"project": str(PROJECT), "bootstrap": bootstrap, "topic": topics.READINGS.name,
            "outputs_topic": OUTPUTS_TOPIC, "group": group, "state_dir": str(state_dir),
            "expect": expect, "patients": patients, "infusion": INFUSION.isoformat(),
            "team": TEAM}


def measure(bootstrap: str, filled: Prefilled, work: Path) -> dict[str, Any]:
    """Run the app over the readings already on vitals.readings; readings/s from its first
    reading to its last, and whether its alert events are the pure engine's. On failure the
    dict has `error` (the precise reason)."""
    expect = filled.readings
    try:
        python = venv_python()
    except QuixUnavailable as exc:
        return {"error": str(exc)}
    params = app_params(bootstrap, expect, f"bench-quix-{time.time_ns()}", work / "quix-state",
                        filled.patients)
    log = work / "quix.log"
    timeout = 120 + expect / 1000
    with log.open("w") as err:
        try:
            done = subprocess.run([python, str(APP), json.dumps(params)], stdout=subprocess.PIPE,
                                  stderr=err, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"the Quix app did not process {expect} readings in "
                             f"{timeout:.0f} s: {servers.tail(log, 3)}"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        return {"error": f"the Quix app exited with {done.returncode}: {servers.tail(log, 3)}"}
    r = json.loads(lines[-1])
    seconds = max(r["last"] - r["first"], 1e-9)
    out: dict[str, Any] = {
        "readings": r["readings"], "seconds": round(seconds, 2),
        "readings_per_s": round(r["readings"] / seconds),
        "startup_s": round(r["first"] - r["started"], 2)}
    if r["readings"] < expect:
        out["error"] = f"processed {r['readings']} of {expect} readings"
    quix = {(alert_id, status) for alert_id, status in r["events"]}
    out["agreement"] = {"both": len(quix & filled.events),
                        "engine_only": len(filled.events - quix),
                        "quix_only": len(quix - filled.events)}
    return out


def describe(q: dict[str, Any]) -> str:
    if "readings_per_s" not in q:
        return f"NOT MEASURED: {q.get('error')}"
    text = (f"{q['readings_per_s']:,} readings/s ({q['readings']:,} readings in {q['seconds']} s;"
            f" group join and start {q['startup_s']} s before the first)")
    if "agreement" in q:
        a = q["agreement"]
        same = "the same" if not a["engine_only"] and not a["quix_only"] else "NOT the same"
        text += (f"; alert events {same} as the pure engine's ({a['both']} both, "
                 f"{a['engine_only']} engine only, {a['quix_only']} Quix only)")
    if "error" in q:
        text += f"; {q['error']}"
    return text


def run(patients: int = 50, hours: int = 2) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vitals-bench-quix-") as tmp:
        work = Path(tmp)
        kafka = servers.tansu(work / "tansu")
        bootstrap = f"{servers.LOOPBACK}:{kafka.port}"
        try:
            declare_readings(bootstrap, 8)
            filled = prefill(bootstrap, patients, hours)
            q = measure(bootstrap, filled, work)
        finally:
            kafka.stop()
    print(f"Quix Streams app, the pure engine: {filled.readings} readings of "
          f"{patients} patients x {hours} h on tansu")
    print(f"  {describe(q)}")
    return q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--hours", type=int, default=2)
    args = ap.parse_args()
    q = run(args.patients, args.hours)
    if "readings_per_s" not in q:
        sys.exit(1)


if __name__ == "__main__":
    main()
