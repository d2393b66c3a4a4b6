"""The line a long-running service prints once it does its work (subscribed, consuming,
serving), so that a supervisor, a test or the demo knows it is ready from a signal the project
owns rather than a library's log line."""

from __future__ import annotations

import sys


def ready_line(service: str) -> str:
    """The exact line `vitals SERVICE` prints when it is ready."""
    return f"vitals {service}: ready"


def announce_ready(service: str) -> None:
    """Print the ready line on standard error, unbuffered (it is read while the process runs)."""
    print(ready_line(service), file=sys.stderr, flush=True)
