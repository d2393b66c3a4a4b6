"""The `vitals` command line: a bad option, NaN and inf included, stops the command at start
with one line naming it and exit status 2, as a bad setting or file does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.command import vitals


@pytest.mark.parametrize(("args", "says"), [
    (["demo", "--speed", "inf"], "--speed"),
    (["demo", "--speed", "nan"], "--speed"),
    (["demo", "--days", "nan"], "--days"),
    (["demo", "--auto-ack", "-inf"], "--auto-ack"),
    (["demo", "--patients", "0"], "--patients"),
    (["simulate", "--patients", "100000000", "--out", "x.jsonl"], "--patients"),
    (["simulate", "--days", "inf", "--out", "x.jsonl"], "--days"),
    (["simulate", "--chunk-minutes", "nan", "--out", "x.jsonl"], "--chunk-minutes"),
    (["evaluate", "--days", "-1"], "--days"),
    (["evaluate", "--workers", "0"], "--workers"),
    (["demo", "--bogus"], "--bogus"),
    (["nosuch"], "nosuch"),
])
def test_a_bad_option_is_one_line_naming_it_and_status_2(tmp_path: Path, args: list[str],
                                                         says: str) -> None:
    proc = subprocess.run(vitals(*args), cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("vitals: ") and says in line, line
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []


def test_help_still_works() -> None:
    proc = subprocess.run(vitals("demo", "--help"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--speed" in proc.stdout, proc.stderr
