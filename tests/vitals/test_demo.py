"""`vitals demo`, the README's first command, as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_on_embedded_defaults_and_accounts_for_every_entry() -> None:
    proc = subprocess.run([sys.executable, "-c", "from vitals.cli import main; main()", "demo",
                           "--minutes", "2", "--seed", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    # 20 patients x (120 oximetry + 1 temperature) = 2420 messages, plus a re-sent buffer of 50
    # readings (duplicates), a Fahrenheit reading (accepted) and three faulty messages
    assert last.startswith("ingest: 2425 messages, 2474 entries: 2421 readings accepted")
    assert "50 duplicates, 3 rejected (bad_json 1, clock_skew 1, unknown_patient 1)" in last
    assert "not enrolled" in proc.stdout and "ahead of receipt" in proc.stdout
