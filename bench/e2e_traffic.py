"""The end-to-end benchmark's background load: a cohort of enrolled patients whose devices
publish healthy readings over MQTT (QoS 1, one reading per message, as the contract's devices
do), paced to an offered rate.

Each patient wears an oximeter that reads once a second of event time and a thermometer that
reads every 5 minutes. To offer R readings/s with P patients, event time runs at
speed = R / (P * (1 + 1/300)) times the wall clock: a replay of a cohort at that speed. Event
time starts far enough in the past that no reading is ever in the future (ingest rejects more
than 5 minutes ahead as clock_skew), and continues from one load level to the next, so each
device's readings stay in order with increasing `seq`.

Publishing runs in child processes (one paho client each; one client alone cannot offer 10k
messages/s here), each for a share of the patients, all starting at the same wall time.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.queues import Queue

from harness.servers import LOOPBACK
from simulators.publish import Publisher
from vitals.settings import Endpoint

TEMP_EVERY_S = 300  # event seconds between thermometer readings
READINGS_PER_TICK = 1 + 1 / TEMP_EVERY_S  # per patient per event second


def speed_for(rate: float, patients: int) -> float:
    """Event seconds per wall second so that `patients` offer `rate` readings/s."""
    return rate / (patients * READINGS_PER_TICK)


@dataclass(frozen=True)
class Level:
    """One load level: `seconds` of wall time from `start` (time.time()), event time from
    `event_start_ms` running `speed` times faster."""

    rate: float
    seconds: float
    start: float
    event_start_ms: int
    speed: float

    @property
    def event_span_ms(self) -> int:
        return int(self.seconds * self.speed * 1000)


@dataclass(frozen=True)
class Published:
    messages: int
    first: float
    last: float
    behind_s: float  # how far behind its schedule the publisher fell at worst
    cpu_s: float  # CPU seconds while publishing (start-up and imports not included)


def _messages(patients: list[tuple[int, str]], total: int, level: Level
              ) -> Iterator[tuple[float, str, bytes]]:
    """(wall due, topic, payload) of this share of the cohort, in due order: tick by tick,
    and within a tick by the patients' phases (their order in the cohort)."""
    rngs = {index: random.Random(index) for index, _ in patients}
    for tick in range(int(level.seconds * level.speed)):
        for index, pid in patients:
            rng = rngs[index]
            event_s = tick + index / total  # phases spread the cohort over each event second
            due = level.start + event_s / level.speed
            ts = level.event_start_ms + int(event_s * 1000)
            seq = ts // 1000  # one a second, increasing across levels
            yield due, f"vitals/v1/{pid}/ox-1", (
                f'{{"ts":{ts},"kind":"oximetry","seq":{seq},"spo2":{rng.randint(95, 99)},'
                f'"hr":{rng.randint(62, 88)},"pi":2.{rng.randint(0, 9)}}}').encode()
            if (seq + index) % TEMP_EVERY_S == 0:
                temp = round(36.3 + rng.random() * 0.6, 2)
                yield due, f"vitals/v1/{pid}/th-1", (
                    f'{{"ts":{ts},"kind":"temperature","seq":{seq},"temp":{temp},'
                    '"site":"axillary"}').encode()


def _publish(port: int, client_id: str, patients: list[tuple[int, str]], total: int,
             level: Level, results: Queue) -> None:
    with Publisher(Endpoint("mqtt", LOOPBACK, port), client_id) as pub:
        n, behind, first = 0, 0.0, 0.0
        while time.time() < level.start:
            time.sleep(0.001)
        cpu0 = time.process_time()
        for due, topic, payload in _messages(patients, total, level):
            now = time.time()
            if due - now > 0.002:  # messages due within 2 ms go out together
                time.sleep(due - now)
            else:
                behind = max(behind, now - due)
            pub.publish(topic, payload)
            n += 1
            if n == 1:
                first = time.time()
        pub.flush()
        results.put(Published(n, first, time.time(), behind, time.process_time() - cpu0))


class LoadPublishers:
    """The publishing processes of one level, each with a share of the cohort."""

    def __init__(self, port: int, cohort: list[str], level: Level, processes: int) -> None:
        # spawn, not fork: the parent runs threads (stand-in, probes, monitor, librdkafka)
        ctx = multiprocessing.get_context("spawn")
        self._results: Queue = ctx.Queue()
        indexed = list(enumerate(cohort))
        self._procs = [
            ctx.Process(target=_publish, daemon=True,
                        args=(port, f"bench-load-{i}-{time.time_ns()}", indexed[i::processes],
                              len(cohort), level, self._results))
            for i in range(processes)]
        for p in self._procs:
            p.start()

    def join(self, timeout: float) -> list[Published]:
        out: list[Published] = []
        deadline = time.monotonic() + timeout
        while len(out) < len(self._procs):
            try:
                out.append(self._results.get(timeout=0.5))
            except queue.Empty:
                dead = [p.exitcode for p in self._procs if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"load publishers failed (exit codes {dead}) or did "
                                       f"not finish in {timeout:.0f} s") from None
        for p in self._procs:
            p.join(10)
        return out

    def kill(self) -> None:
        for p in self._procs:
            if p.is_alive():
                p.kill()
