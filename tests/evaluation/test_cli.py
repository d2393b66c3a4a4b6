"""`vitals evaluate` end to end, as a user runs it: a small generated cohort, and the same
cohort written by `vitals simulate --out` and evaluated from the file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from evaluation.targets import TARGETS
from harness import services
from harness.command import vitals as command

START = "2026-11-20T00:00:00Z"


def vitals(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=900,
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
    assert {t["target"] for t in doc["targets"]} >= {t.name for t in TARGETS}
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


def test_several_seeds_side_by_side_each_as_its_single_evaluation(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    small = ("--patients", "2", "--days", "0.5", "--workers", "1", "--no-plots")
    done = vitals("evaluate", "--seeds", "1,7", *small, "--out", str(out))
    one = vitals("evaluate", "--seed", "7", *small, "--out", str(tmp_path / "seven"))
    assert done.returncode == 0, done.stderr
    assert one.returncode == 0, one.stderr
    assert any("seed 1" in line and "seed 7" in line for line in done.stdout.splitlines())
    assert "seeds side by side" in done.stdout and "median delay" in done.stdout
    md = (out / "report.md").read_text()
    assert "| target | seed 1 | seed 7 |" in md and "](seed-7/report.md)" in md
    doc = json.loads((out / "report.json").read_text())
    assert doc["meta"]["seeds"] == [1, 7] and list(doc["seeds"]) == ["1", "7"]
    single = json.loads((tmp_path / "seven" / "report.json").read_text())
    folder = json.loads((out / "seed-7" / "report.json").read_text())
    for report in (doc["seeds"]["7"]["report"], folder):
        for key in ("episodes", "false_pages", "per_patient_day", "by_rule"):
            assert report[key] == single[key], key
        assert report["meta"]["readings"] == single["meta"]["readings"]
    assert doc["seeds"]["1"]["report"]["meta"]["source"].startswith("cohort: 2 patients, seed 1")
    assert (out / "seed-1" / "truth.json").is_file() and not (out / "truth.json").exists()


@pytest.mark.parametrize(("args", "says"), [
    (["--seed", "1", "--seeds", "1,7"], "vitals: --seed and --seeds: give one of them"),
    (["--seeds", "1,7,1"], "vitals: --seeds: 1 is given twice"),
    (["--seeds", "1,-7"], "vitals: --seeds: -7 is negative"),
    (["--seeds", "1;7"], "vitals: --seeds: '1;7' is not a whole number"),
    (["--seeds", "1,7", "--traffic", "c.jsonl"], "vitals: --seeds: generated cohorts only"),
])
def test_bad_seeds_are_one_line_and_write_nothing(tmp_path: Path, args: list[str],
                                                  says: str) -> None:
    done = subprocess.run(command("evaluate", *args), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=services.environment())
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(says), line
    assert done.stdout == "" and list(tmp_path.iterdir()) == []
