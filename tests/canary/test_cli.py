"""`vitals canary` on the command line: a bad setting stops it at start with one line naming
it and exit status 2, before it connects to anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import services
from harness.command import vitals


@pytest.mark.parametrize(("setting", "value"), [
    ("canary_every_s", "nan"),
    ("canary_every_s", "0"),
    ("canary_patient", "no/slash"),
    ("mqtt_url", "http://127.0.0.1:1883"),
])
def test_a_bad_setting_stops_vitals_canary_with_one_line_naming_it(tmp_path: Path, setting: str,
                                                                  value: str) -> None:
    env = services.environment({setting: value})
    proc = subprocess.run(vitals("canary"), cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"vitals: VITALS_{setting.upper()}: "), line
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []
