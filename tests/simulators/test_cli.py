"""`vitals simulate` and `vitals replay` as a user runs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import servers, services
from harness.command import vitals as command
from simulators import truth
from tests.simulators.test_publish import Subscriber
from vitals import trafficfile
from vitals.patients import load_patients


def vitals(*args: str, port: int | None = None, state: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = services.environment({"mqtt_url": f"mqtt://127.0.0.1:{port or servers.free_port()}",
                                "state_dir": state})
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=900, env=env)


def test_simulate_to_a_file_then_replay_it(mosquitto: servers.Server, tmp_path: Path) -> None:
    out = tmp_path / "cohort.jsonl"
    args = ["simulate", "--patients", "3", "--days", "0.02", "--seed", "2",
            "--start", "2026-11-20T00:00:00Z"]
    done = vitals(*args, "--out", str(out), "--plot", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    assert f"simulate: wrote {out}:" in done.stdout
    t = truth.load(tmp_path / "cohort.jsonl.truth.json")
    assert [p.id for p in t.patients] == ["S0001", "S0002", "S0003"]
    registry = load_patients(tmp_path / "cohort.jsonl.patients.yaml")
    assert [p.devices for p in registry] == [("ox-1", "th-1", "app-1")] * 3  # app: spot checks
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "S0001.png", "S0002.png", "S0003.png"]
    again = vitals(*args, "--out", str(tmp_path / "again.jsonl"))
    assert again.returncode == 0
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()  # same seed, same bytes

    sent = list(trafficfile.read(out))
    sub = Subscriber(mosquitto.port)
    done = vitals("replay", str(out), "--speed", "max", port=mosquitto.port)
    assert done.returncode == 0, done.stderr
    assert f"replay: published {len(sent)} messages" in done.stdout
    got = sub.wait(len(sent))
    assert [(m.topic, m.payload) for m in got] == [(m.topic, m.payload) for m in sent]


def test_simulate_publishes_a_scenario_over_mqtt(mosquitto: servers.Server, tmp_path: Path
                                                 ) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("""
duration: 10m
patients:
  - {id: A1, episodes: [{kind: crs, grade: 1, onset: 1m}]}
  - {id: A2, devices: [{id: ox-2, type: oximeter, interval: 2s}]}
""")
    sub = Subscriber(mosquitto.port)
    done = vitals("simulate", "--scenario", str(scenario), "--speed", "600",
                  port=mosquitto.port, state=tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert f"published to 127.0.0.1:{mosquitto.port}" in done.stdout
    n = int(done.stdout.split(": ")[2].split()[0])
    assert n == 600 + 2 + 300  # A1: oximeter 1 Hz, thermometer every 5 min; A2: every 2 s
    assert len(sub.wait(n)) == n
    truths = list((tmp_path / "state" / "simulate").glob("*.truth.json"))
    patients = list((tmp_path / "state" / "simulate").glob("*.patients.yaml"))
    assert len(truths) == 1 and len(patients) == 1
    assert [p.id for p in load_patients(patients[0])] == ["A1", "A2"]


def test_a_bad_scenario_or_option_stops_with_one_line_and_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration: 1d\npatients: [{id: A, episodes: [{kind: crs}]}]\n")
    done = vitals("simulate", "--scenario", str(bad), "--out", str(tmp_path / "x.jsonl"))
    assert done.returncode == 2
    assert done.stderr == (f"vitals: scenario ({bad}): patients[0].episodes[0]: a crs episode "
                           "needs a grade (1-4)\n")
    assert not (tmp_path / "x.jsonl").exists()
    done = vitals("simulate", "--speed", "fast", "--out", str(tmp_path / "x.jsonl"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--speed" in done.stderr
    done = vitals("replay", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and "missing.jsonl: no such traffic file" in done.stderr
    done = vitals("simulate", "--patients", "1", "--days", "0.01", "--speed", "max")
    assert done.returncode == 2 and "VITALS_MQTT_URL" in done.stderr  # nothing listening
    assert done.stderr.strip().count("\n") == 0
