"""The dead-man's switch (CONTRACT section 7): while the canary's round trips are on time,
alerting GETs `VITALS_DEADMAN_URL` every `VITALS_DEADMAN_EVERY_S` seconds (default: every
minute). An outside service that pages when the pings stop (Alertmanager's Watchdog, a
healthchecks-style endpoint) then pages when alerting itself, or anything before it, goes
quiet: the one failure alerting cannot page about by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from vitals.settings import redact

log = logging.getLogger(__name__)


@dataclass
class DeadMan:
    """Pings `url` every `every_s` while `on_time()` says the round trips are on time."""

    url: str
    every_s: float
    on_time: Callable[[], bool]
    pings: int = 0  # answered with 2xx
    failures: int = 0
    last_ping: float = 0.0  # wall clock (s) of the last 2xx
    skipped: int = 0  # rounds without a ping: round trips late

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: one round at once, then every `every_s`."""
        timeout = aiohttp.ClientTimeout(total=min(10.0, self.every_s))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                await self.round(session)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every_s)

    async def round(self, session: aiohttp.ClientSession) -> None:
        """Ping once if the round trips are on time; a failure is logged, never raised."""
        if not self.on_time():
            self.skipped += 1
            return
        try:
            async with session.get(self.url) as response:
                ok = 200 <= response.status < 300
                why = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if ok:
            if self.failures:
                log.info("dead-man's switch at %s answers again", redact(self.url))
            self.pings, self.failures, self.last_ping = self.pings + 1, 0, time.time()
            return
        if not self.failures:  # once per outage, not per round
            log.warning("dead-man's switch at %s did not take the ping: %s", redact(self.url),
                        why)
        self.failures += 1
