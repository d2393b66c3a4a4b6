"""Helpers for the end-to-end tests (tests/test_end_to_end.py, tests/test_canary_end_to_end.py):
the test's on-call file, a nurse's token, and the alerting API as a nurse uses it. What the
pure engine says about a traffic file (`harness.expected`), reading Kafka and VictoriaMetrics
back (`harness.readback`) and bounded waits (`harness.waits`) are in the harness, which the
chaos run shares."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from alerting.oncall import default_oncall_path
from harness.stack import Stack


def write_oncall(path: Path) -> Path:
    """The embedded on-call file with `paging.resolve_hold_min: 0`.

    The embedded file holds a resolve for 5 minutes of wall-clock time (a patient who fires
    again meanwhile returns silently to the open incident instead of churning resolve/trigger).
    This test plays a whole fever in seconds, so with the hold its `resolve` would reach
    PagerDuty 5 wall minutes after the fever cleared, long after the test is over.
    The embedded file has no API tokens (a public file holds no secret): fresh random ones."""
    oncall = yaml.safe_load(default_oncall_path().read_text())
    oncall["paging"]["resolve_hold_min"] = 0
    oncall["tokens"] = {name: secrets.token_urlsafe(24)
                        for name in ("nurse-alice", "nurse-bob", "nurse-carol")}
    path.write_text(yaml.safe_dump(oncall, sort_keys=False))
    return path


def nurse_token(oncall: Path, person: str = "nurse-alice") -> str:
    return str(yaml.safe_load(oncall.read_text())["tokens"][person])


def api(stack: Stack, method: str, path: str, token: str) -> tuple[int, Any]:
    """A request to the alerting API with a bearer token: (status, JSON body)."""
    req = urllib.request.Request(f"{stack.alerting_url}{path}", method=method,
                                 headers={"Authorization": f"Bearer {token}"},
                                 data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
