"""`vitals demo`, the README's first command, as a user runs it: the whole pipeline as
processes, a report scored on what it paged, and nothing left running afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import servers
from harness.command import vitals
from tests.storage.support import vm_points

DEMO = vitals("demo")


def processes_of(workdir: str) -> list[str]:
    """Processes ("pid command line") whose command line, environment or working directory is
    the demo's work directory (Mosquitto's config path, tansu's cwd, the services'
    VITALS_STATE_DIR)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            blob = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(
                f"/proc/{pid}/environ").read_bytes() + os.readlink(f"/proc/{pid}/cwd").encode()
        except OSError:
            continue
        if workdir.encode() in blob:
            found.append(pid + " " + Path(f"/proc/{pid}/cmdline").read_bytes()
                         .replace(b"\0", b" ").decode(errors="replace"))
    return found


def workdir_of(output: str) -> str:
    m = re.search(r"\(logs in (\S+?)\)", output.replace("\n", ""))
    assert m, f"the demo did not say where its logs are: {output[-2000:]}"
    return m[1]


def test_the_demo_pages_a_crs_patient_stores_the_series_reports_and_leaves_nothing_running(
        tmp_path: Path) -> None:
    # seed 13, 4 patients, 1.5 days: a grade 2 CRS (onset day 0.6) and a grade 1 (day 1.2)
    out = tmp_path / "report"
    # A fixed start: the seed fixes the cohort relative to its start's date, so a start that
    # follows the clock would change which episodes fall inside 1.5 days with the time of day.
    # With VITALS_INFLUX_URL, the demo runs `vitals store` too (VictoriaMetrics takes the
    # InfluxDB writes); without it (the Ctrl-C test) it says where the series went.
    with servers.victoria_metrics(tmp_path / "vm") as vm:
        proc = subprocess.run([*DEMO, "--patients", "4", "--days", "1.5", "--speed", "4000",
                               "--seed", "13", "--auto-ack", "1", "--out", str(out),
                               "--start", "2026-11-20T19:00:00Z"],
                              capture_output=True, text=True, timeout=240, cwd=tmp_path,
                              env={**os.environ, "COLUMNS": "200",
                                   "VITALS_INFLUX_URL": f"http://127.0.0.1:{vm.port}"})
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "ingest, rules x2, alerting, store" in proc.stdout.replace("\n", "")
        pts = vm_points(vm)
    patients = {dict(labels).get("patient") for _, labels in pts.series}
    assert {"S0001", "S0002", "S0003", "S0004"} <= patients, sorted(pts.names())
    assert pts.distinct("readings_temp") > 0, sorted(pts.names())
    assert f"report in {out / 'report.md'}" in proc.stdout
    report = (out / "report.md").read_text()
    assert "through `vitals ingest`, 2 `vitals rules` workers and `vitals alerting`" in report
    doc = json.loads((out / "report.json").read_text())
    triggers = [e for e in doc["pagerduty"] if e["event_action"] == "trigger"]
    assert {t["payload"]["source"] for t in triggers} >= {"S0001", "S0002"}, triggers
    assert all("fever" in t["payload"]["summary"] or "temperature" in t["payload"]["summary"]
               for t in triggers if t["payload"]["source"] in ("S0001", "S0002")), triggers
    acks = [e for e in doc["pagerduty"] if e["event_action"] == "acknowledge"]
    assert acks, "the simulated nurse acknowledged nothing"
    assert {a["dedup_key"] for a in acks} <= {t["dedup_key"] for t in triggers}
    crs = [e for e in doc["episodes"] if e["label"].startswith(("crs", "masked"))]
    assert len(crs) == 2 and all(e["first_page"] is not None for e in crs), crs
    assert "## What PagerDuty received" in report and "| S0002 |" in report
    for pid in ("S0001", "S0002"):
        assert (out / "plots" / f"{pid}.png").stat().st_size > 10_000
    assert "written to InfluxDB" in report
    assert processes_of(workdir_of(proc.stdout)) == []


def ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal delivers it: a test run started in the background of a
    non-interactive shell inherits SIGINT ignored, and so would the demo (Python keeps an
    inherited SIG_IGN), which would then never see the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_every_process_and_still_reports(tmp_path: Path,
                                                                 signum: int) -> None:
    out = tmp_path / "report"
    log = tmp_path / "demo.out"
    with log.open("w") as f:
        proc = subprocess.Popen([*DEMO, "--patients", "3", "--days", "5", "--speed", "2000",
                                        "--seed", "13", "--out", str(out), "--keep"],
                                stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path,
                                env={**os.environ, "COLUMNS": "200"},
                                preexec_fn=ctrl_c_as_in_a_terminal)
    deadline = time.monotonic() + 180
    while "running:" not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the demo did not start its services"
        time.sleep(0.2)
    workdir = workdir_of(log.read_text())
    assert len(processes_of(workdir)) >= 6  # mosquitto, tansu, ingest, 2 rules, alerting
    assert "not stored" in log.read_text()  # VITALS_INFLUX_URL unset: says where series went
    time.sleep(3)  # some publishing
    proc.send_signal(signum)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        for pid in processes_of(workdir):  # leave no server behind for the next tests
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid.split()[0]), signal.SIGKILL)
        pytest.fail(f"the demo did not stop within 60 s of {signal.Signals(signum).name}: "
                    f"{log.read_text()[-2000:]}")
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert processes_of(workdir) == []
    assert "Interrupted (Ctrl-C)" in (out / "report.md").read_text()
