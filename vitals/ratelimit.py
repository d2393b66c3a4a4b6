"""Token buckets per key (a token, an address, a patient): `burst` at once, then one every
`every_s` seconds. Memory stays bounded: past MAX_KEYS keys, the full (idle) buckets are
forgotten. Used by alerting's API guard and the patients' page."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_KEYS = 10_000  # buckets kept before the full (idle) ones are forgotten


class Buckets:
    """Token buckets per key: `burst` at once, then one every `every_s` seconds."""

    def __init__(self, burst: int, every_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.rate, self.clock = float(burst), 1.0 / every_s, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` may go on (0: now), taking nothing."""
        tokens = self._tokens(key, self.clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str) -> None:
        """Take one token (after `wait` said 0)."""
        now = self.clock()
        self._buckets[key] = (self._tokens(key, now) - 1, now)
        if len(self._buckets) > MAX_KEYS:
            for k, (tokens, at) in list(self._buckets.items()):
                if tokens + (now - at) * self.rate >= self.burst:
                    del self._buckets[k]
