"""How far a stage has got, and whether it is stuck: the kernel of `/metrics` progress gauges
and `/healthz`.

A service can look alive (its process runs, its port answers) while it makes no progress: a
callback thread that died, a consumer that stopped fetching, a broker or database that is down.
An orchestrator can only restart what it is told is unhealthy, so each stage records here the
work it has waiting and each time it gets some done, and `/healthz` asks `stalled()`. A stage
with nothing waiting is idle, and healthy however long ago it last did anything.

The wall clock is injected (`clock`), so that the rules are tested without sleeping; times
are Unix seconds, as Prometheus expects of a timestamp gauge.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent reading of a `Progress`."""

    started: float  # when the tracker was made (the process started)
    last_progress: float | None  # when work was last done; None: not yet
    pending: int  # work waiting, in the stage's own unit
    waiting_since: float | None  # since when work has been waiting without a pause
    oldest_event: float | None  # time of the oldest work waiting, where the stage knows it
    last_beat: float | None  # when the stage's loop last turned; None: it does not beat


class Progress:
    """Thread-safe: stages report from their own threads (or event loop), the HTTP server
    reads from another. Nothing here calls back into a stage, so holding a stage's lock while
    reporting cannot deadlock."""

    def __init__(self, work: str = "items waiting", loop: str = "work loop",
                 clock: Clock = time.time) -> None:
        self.work = work  # what `pending` counts ("records waiting"), for `stalled()`
        self.loop = loop  # what `beat()` stands for, likewise
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_progress: float | None = None
        self._pending = 0
        self._waiting_since: float | None = None
        self._oldest_event: float | None = None
        self._last_beat: float | None = None

    def waiting(self, pending: int, oldest_event: float | None = None,
                since: float | None = None) -> None:
        """The work waiting now (an absolute count, not a change). `since` is when the oldest
        of it arrived, where the stage knows; otherwise the wait is taken to start when the
        count first rose above zero."""
        now = self._clock()
        with self._lock:
            if pending <= 0:
                self._pending, self._waiting_since, self._oldest_event = 0, None, None
                return
            if since is not None:
                self._waiting_since = since
            elif self._pending <= 0 or self._waiting_since is None:
                self._waiting_since = now
            self._pending = pending
            self._oldest_event = oldest_event

    def progressed(self, at: float | None = None) -> None:
        """Work was done (now, or at `at`): a later time never moves back."""
        when = self._clock() if at is None else at
        with self._lock:
            if self._last_progress is None or when > self._last_progress:
                self._last_progress = when

    def beat(self) -> None:
        """The stage's loop turned. Once a stage beats, a loop that stops turning for
        `stall_s` is stuck even with nothing known to be waiting (a blocked event loop cannot
        report the work that arrives meanwhile)."""
        now = self._clock()
        with self._lock:
            self._last_beat = now

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self._started, self._last_progress, self._pending,
                            self._waiting_since, self._oldest_event, self._last_beat)

    def stalled(self, stall_s: float, now: float | None = None) -> str | None:
        """Why the stage is stuck, in one line; None while it is healthy. Stuck: work has
        waited `stall_s` seconds with no progress in that time, or the loop has not turned
        for `stall_s` seconds."""
        now = self._clock() if now is None else now
        s = self.snapshot()
        if s.pending > 0:
            # quiet since the later of the last progress and the start of the wait: an idle
            # stage that gets work is not stuck the moment it does
            quiet_since = s.waiting_since if s.waiting_since is not None else s.started
            if s.last_progress is not None:
                quiet_since = max(quiet_since, s.last_progress)
            if now - quiet_since >= stall_s:
                return (f"{s.pending} {self.work}, no progress for {now - quiet_since:.0f} s "
                        f"(stall limit {stall_s:g} s)")
        if s.last_beat is not None and now - s.last_beat >= stall_s:
            return (f"the {self.loop} has not turned for {now - s.last_beat:.0f} s "
                    f"(stall limit {stall_s:g} s)")
        return None


class ProgressCollector(Collector):
    """`vitals_<service>_last_progress_seconds`, `_pending` and, while known,
    `_oldest_pending_event_seconds`, read from a `Progress` at each scrape."""

    def __init__(self, service: str, progress: Progress, pending_help: str,
                 oldest_help: str | None = None) -> None:
        self.prefix = f"vitals_{service}"
        self.progress = progress
        self.pending_help = pending_help
        self.oldest_help = oldest_help

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.progress.snapshot()
        yield GaugeMetricFamily(f"{self.prefix}_last_progress_seconds",
                                "When work was last done (Unix seconds; 0: not yet)",
                                value=s.last_progress or 0.0)
        yield GaugeMetricFamily(f"{self.prefix}_pending", self.pending_help, value=s.pending)
        # absent while nothing waits or the stage cannot tell: a made-up time would read as
        # a lag
        if self.oldest_help is not None and s.pending > 0 and s.oldest_event is not None:
            yield GaugeMetricFamily(f"{self.prefix}_oldest_pending_event_seconds",
                                    self.oldest_help, value=s.oldest_event)
