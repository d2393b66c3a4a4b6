"""Bounded waits for conditions on a running stack, which say what the pipeline was doing when
they time out (which services are alive, each log's first error and its end): used by the
end-to-end test and the chaos run. A wait never asserts by sleeping: it polls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness import servers
from harness.stack import Stack


def diagnosis(stack: Stack, lines: int = 6) -> str:
    """Which services are alive, the first error in each log and its end: for a failed wait."""
    parts = []
    for name, svc in stack.services.items():
        state = "alive" if svc.alive() else f"exited {svc.proc.returncode}"
        text = svc.log.read_text(errors="replace") if svc.log.exists() else ""
        error = next((line for line in text.splitlines() if "Error" in line), None)
        parts.append(f"\n  {name} ({state}): {servers.tail(svc.log, lines)}"
                     + (f"\n    first error: {error[:300]}" if error else ""))
    return "".join(parts)


@dataclass
class Waiter:
    """Bounded waits for conditions, with the pipeline's state in the message on a timeout."""

    stack: Stack
    extra: list[Callable[[], str]] = field(default_factory=list)

    def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        """Seconds it took; AssertionError after `timeout`, or at once when a service died."""
        started = time.monotonic()
        while not predicate():
            dead = [name for name, svc in self.stack.services.items() if not svc.alive()]
            late = time.monotonic() - started > timeout
            if dead or late:
                why = f"{', '.join(dead)} died" if dead else f"timed out after {timeout:.0f} s"
                more = "".join(f"\n  {f()}" for f in self.extra)
                raise AssertionError(f"{why} waiting for {what}{more}{diagnosis(self.stack)}")
            time.sleep(0.1)
        return time.monotonic() - started

    def quietly(self, predicate: Callable[[], bool], timeout: float, every: float = 0.1
                ) -> bool:
        """Like `until`, but says whether the condition came true instead of failing: for
        outcomes that the caller asserts on one by one."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(every)
        return True
