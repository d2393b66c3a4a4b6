"""`vitals.progress`: when a stage is stuck and when it is only idle, on an injected clock (no
sleeping), and the gauges it puts on /metrics."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest

from vitals.progress import Progress, ProgressCollector

STALL_S = 60.0


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def tracker() -> tuple[Progress, Clock]:
    clock = Clock()
    return Progress("records waiting", "work loop", clock), clock


def test_an_idle_stage_is_healthy_however_long_it_has_done_nothing() -> None:
    progress, clock = tracker()
    assert progress.stalled(STALL_S) is None
    clock.advance(86_400)
    assert progress.stalled(STALL_S) is None
    progress.progressed()
    progress.waiting(0)
    clock.advance(86_400)
    assert progress.stalled(STALL_S) is None


def test_work_waiting_without_progress_for_stall_s_is_stuck_and_says_why() -> None:
    progress, clock = tracker()
    clock.advance(3600)  # idle for an hour: the wait starts when the work arrives, not then
    progress.waiting(5)
    assert progress.stalled(STALL_S) is None
    clock.advance(59)
    assert progress.stalled(STALL_S) is None
    clock.advance(1)
    reason = progress.stalled(STALL_S)
    assert reason == "5 records waiting, no progress for 60 s (stall limit 60 s)"
    assert "\n" not in reason


def test_progress_while_work_keeps_waiting_is_healthy() -> None:
    progress, clock = tracker()
    progress.waiting(100)
    for _ in range(10):  # a backlog worked off slowly, never empty: not stuck
        clock.advance(30)
        progress.progressed()
        progress.waiting(100)
        assert progress.stalled(STALL_S) is None
    clock.advance(61)
    assert progress.stalled(STALL_S) is not None
    progress.progressed()  # it moves again: healthy at once
    assert progress.stalled(STALL_S) is None


def test_the_wait_starts_when_the_oldest_work_arrived_where_the_stage_knows() -> None:
    progress, clock = tracker()
    arrived = clock.t
    clock.advance(45)
    progress.waiting(1, oldest_event=arrived, since=arrived)  # noticed 45 s late
    clock.advance(15)
    assert progress.stalled(STALL_S) is not None
    assert progress.snapshot().oldest_event == arrived


def test_a_count_that_stays_above_zero_keeps_the_start_of_its_wait() -> None:
    progress, clock = tracker()
    progress.waiting(3)
    clock.advance(40)
    progress.waiting(7)  # more arrived, nothing done: the wait goes on
    clock.advance(20)
    assert progress.stalled(STALL_S) is not None
    progress.waiting(0)  # drained (by progress that the stage reports as such, or not)
    progress.waiting(2)
    assert progress.stalled(STALL_S) is None


def test_a_loop_that_stops_turning_is_stuck_even_with_nothing_known_to_wait() -> None:
    progress, clock = tracker()
    clock.advance(3600)
    assert progress.stalled(STALL_S) is None  # never beat: not judged by beats
    progress.beat()
    clock.advance(59)
    assert progress.stalled(STALL_S) is None
    clock.advance(1)
    assert progress.stalled(STALL_S) == "the work loop has not turned for 60 s (stall limit 60 s)"
    progress.beat()
    assert progress.stalled(STALL_S) is None


def test_progress_never_moves_back() -> None:
    progress, clock = tracker()
    progress.progressed(clock.t)
    progress.progressed(clock.t - 10)
    assert progress.snapshot().last_progress == clock.t


def test_reports_from_many_threads_are_consistent() -> None:
    progress, _ = tracker()

    def report(n: int) -> None:
        for i in range(2000):
            progress.waiting(n + i % 3)
            progress.progressed()
            progress.beat()

    threads = [threading.Thread(target=report, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = progress.snapshot()
    assert s.pending > 0 and s.waiting_since is not None and s.last_progress is not None


def metrics(progress: Progress, oldest_help: str | None = "oldest") -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(ProgressCollector("demo", progress, "waiting", oldest_help))
    lines = generate_latest(registry).decode().splitlines()
    return {name: float(value) for name, _, value in
            (line.partition(" ") for line in lines if not line.startswith("#"))}


def test_gauges_say_last_progress_pending_and_the_oldest_event_only_while_known() -> None:
    progress, clock = tracker()
    assert metrics(progress) == {"vitals_demo_last_progress_seconds": 0.0,  # not yet
                                 "vitals_demo_pending": 0.0}  # no oldest: no made-up time
    progress.progressed()
    progress.waiting(4, oldest_event=clock.t - 30)
    assert metrics(progress) == {"vitals_demo_last_progress_seconds": clock.t,
                                 "vitals_demo_pending": 4.0,
                                 "vitals_demo_oldest_pending_event_seconds": clock.t - 30}
    assert "vitals_demo_oldest_pending_event_seconds" not in metrics(progress, None)
