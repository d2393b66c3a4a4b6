"""When the demo counts the pipeline as caught up: judged to near the end, no records waiting
at the rules workers, and quiet (longer while the workers' counts cannot be read)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from demo.run import QUIET_S, QUIET_UNKNOWN_S, Demo, rules_pending
from harness.servers import LOOPBACK, free_port


class ObserverStandIn:
    """What `_wait_until_caught_up` reads of `demo.observe.Observer`: how long the pipeline
    has been quiet, and how far it has judged (here: a minute more each time it is asked)."""

    def __init__(self, quiet_s: float, judged: list[int]) -> None:
        self.quiet_s, self.judged, self.asked = quiet_s, judged, 0

    def quiet_for(self) -> float:
        return self.quiet_s

    def judged_until(self) -> int:
        self.asked += 1
        return self.judged[min(self.asked, len(self.judged)) - 1]


def test_a_quiet_pipeline_that_has_not_judged_the_end_is_not_caught_up() -> None:
    # the rules workers still joining: nothing said for a while, nothing judged yet
    observer = ObserverStandIn(quiet_s=60.0, judged=[0, 0, 60_000, 120_000])
    Demo._wait_until_caught_up(observer, judged_until=120_000)  # type: ignore[arg-type]
    assert observer.asked == 4  # waited until the end was judged


def test_a_quiet_pipeline_that_has_judged_the_end_is_caught_up_at_once() -> None:
    observer = ObserverStandIn(quiet_s=60.0, judged=[180_000])
    took = Demo._wait_until_caught_up(observer, judged_until=120_000)  # type: ignore[arg-type]
    assert took == 0.0  # quiet for longer than QUIET_S already: no catching up to count
    assert observer.asked == 1


def test_records_waiting_at_a_rules_worker_keep_the_demo_waiting() -> None:
    observer = ObserverStandIn(quiet_s=QUIET_S, judged=[180_000])
    counts = iter([3, 1, 0])
    asked: list[int | None] = []

    def pending() -> int | None:
        asked.append(next(counts))
        return asked[-1]

    Demo._wait_until_caught_up(observer, 120_000, pending)  # type: ignore[arg-type]
    assert asked == [3, 1, 0]


def test_with_no_count_known_the_pipeline_must_be_quiet_for_longer() -> None:
    # quiet for QUIET_S: enough when the workers say nothing waits, not when they cannot say
    assert QUIET_S < QUIET_UNKNOWN_S
    known = ObserverStandIn(quiet_s=QUIET_S, judged=[180_000])
    assert Demo._wait_until_caught_up(known, 120_000, lambda: 0) == 0.0  # type: ignore[arg-type]
    assert known.asked == 1

    class GettingQuieter(ObserverStandIn):
        def quiet_for(self) -> float:
            return QUIET_S + self.asked  # a second more each look

    unknown = GettingQuieter(quiet_s=0.0, judged=[180_000])
    Demo._wait_until_caught_up(unknown, 120_000, lambda: None)  # type: ignore[arg-type]
    assert unknown.quiet_for() >= QUIET_UNKNOWN_S


@pytest.fixture
def workers_metrics() -> Iterator[tuple[list[str], Gauge]]:
    """Two real /metrics endpoints (prometheus_client's server), as the rules workers serve
    them; the gauge is `vitals_rules_pending` of the first, the second has 4 waiting."""
    addrs, gauges, servers = [], [], []
    for waiting in (0, 4):
        registry = CollectorRegistry()
        gauge = Gauge("vitals_rules_pending", "Records waiting", registry=registry)
        gauge.set(waiting)
        port = free_port()
        servers.append(start_http_server(port, LOOPBACK, registry=registry))
        addrs.append(f"{LOOPBACK}:{port}")
        gauges.append(gauge)
    yield addrs, gauges[0]
    for server, thread in servers:
        server.shutdown()
        thread.join()


def test_the_records_waiting_are_summed_over_the_workers(
        workers_metrics: tuple[list[str], Gauge]) -> None:
    addrs, first = workers_metrics
    assert rules_pending(addrs) == 4
    first.set(2)
    assert rules_pending(addrs) == 6


def test_a_worker_that_does_not_answer_makes_the_count_unknown(
        workers_metrics: tuple[list[str], Gauge]) -> None:
    addrs, _ = workers_metrics
    assert rules_pending([*addrs, f"{LOOPBACK}:{free_port()}"]) is None
    assert rules_pending([]) is None
