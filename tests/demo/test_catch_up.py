"""When the demo counts the pipeline as caught up: quiet, and judged to near the end."""

from __future__ import annotations

from demo.run import Demo


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
