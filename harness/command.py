"""How the harness runs the `vitals` command: the interpreter that runs the harness, so that a
test, a benchmark or the demo always starts the code of its own checkout and virtual
environment, whether or not the console script is on PATH."""

from __future__ import annotations

import sys

VITALS: tuple[str, ...] = (sys.executable, "-m", "cli")


def vitals(*args: str) -> list[str]:
    """The argument vector of `vitals ARGS...`."""
    return [*VITALS, *args]
