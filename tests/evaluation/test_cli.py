"""`vitals evaluate` end to end, as a user runs it: a small generated cohort, and the same
cohort written by `vitals simulate --out` and evaluated from the file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from harness import services
from harness.command import vitals as command

START = "2026-11-20T00:00:00Z"


def vitals(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=120,
                          env=services.environment())


def test_evaluate_a_generated_cohort(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    done = vitals("evaluate", "--patients", "3", "--days", "2", "--seed", "1",
                  "--out", str(out), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "whole evaluation <= 60 s" in done.stdout
    assert all(line.startswith(("evaluate: met", "evaluate: NOT MET"))
               for line in done.stdout.splitlines())
    doc = json.loads((out / "report.json").read_text())
    assert doc["meta"]["patients"] == 3 and doc["meta"]["readings"] > 400_000
    assert doc["patient_days"] == 6
    assert {t["target"] for t in doc["targets"]} >= {"<= 0.1 false pages per patient-day"}
    assert doc["episodes"] and "crs_suspicion" in doc["by_rule"]
    assert len(doc["page_events"]) == doc["pages"]
    md = (out / "report.md").read_text()
    assert "## Targets" in md and "## Per rule" in md and "](plots/delays.png)" in md
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "delays.png" in pngs and len(pngs) >= 2
    assert all((out / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_a_traffic_file_gives_the_same_alerts_as_the_generated_cohort(tmp_path: Path) -> None:
    traffic = tmp_path / "c.jsonl"
    sim = vitals("simulate", "--patients", "2", "--days", "0.5", "--seed", "3", "--start",
                 START, "--out", str(traffic))
    assert sim.returncode == 0, sim.stderr
    a = vitals("evaluate", "--traffic", str(traffic), "--patients-file",
               str(tmp_path / "c.jsonl.patients.yaml"), "--out", str(tmp_path / "a"),
               "--no-plots")
    b = vitals("evaluate", "--patients", "2", "--days", "0.5", "--seed", "3", "--start", START,
               "--out", str(tmp_path / "b"), "--no-plots", "--workers", "2")
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    ja, jb = (json.loads((tmp_path / x / "report.json").read_text()) for x in "ab")
    for key in ("episodes", "false_pages", "by_rule", "shifts"):
        assert ja[key] == jb[key], key
    assert ja["meta"]["readings"] == jb["meta"]["readings"]


def test_a_missing_traffic_file_is_one_line(tmp_path: Path) -> None:
    done = vitals("evaluate", "--traffic", str(tmp_path / "nope.jsonl"), "--out",
                  str(tmp_path / "ev"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("vitals: --traffic: no such file")
