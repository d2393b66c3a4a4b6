"""The canary watch, pure (`alerting.watch`): round trips, lateness, last seen, the banner."""

from __future__ import annotations

from alerting.watch import OpenPage, Watch, WatchState
from vitals.records import AlertEvent

T0 = 1_795_000_000_000  # 2026-11-18 ... UTC, epoch ms
MIN = 60_000
LATE = 3 * MIN


def canary(published: int, ingest_at: int | None = None, judged_at: int | None = None,
           seq: int = 1) -> AlertEvent:
    return AlertEvent(alert_id=f"canary-canary-{seq}", status="firing", rule="canary",
                      severity="info", patient_id="CANARY", start=published,
                      detected_at=published, summary="canary",
                      evidence={"synthetic": True, "published_at": published,
                                "ingest_at": ingest_at or published + 10,
                                "judged_at": judged_at or published + 20})


def test_late_clock_starts_when_watching_begins_then_at_each_round_trip() -> None:
    watch = Watch(LATE, WatchState(started_at=T0))
    assert not watch.late(T0 + LATE) and watch.late(T0 + LATE + 1)
    assert not watch.on_time(T0 + MIN)  # no round trip yet: nothing proves the path works
    watch.round_trip(canary(T0 + 2 * MIN), received_at=T0 + 2 * MIN + 500)
    assert watch.on_time(T0 + 4 * MIN) and not watch.late(T0 + 5 * MIN)
    assert watch.late(T0 + 5 * MIN + 1)
    assert watch.state.last_latency_ms == 500 and watch.state.round_trips == 1


def test_a_backlog_is_late_too_though_round_trips_complete() -> None:
    """Canaries that come back ten minutes after they left mean patients' pages are late."""
    watch = Watch(LATE, WatchState(started_at=T0))
    now = T0 + 20 * MIN
    watch.round_trip(canary(now - 10 * MIN), received_at=now)
    assert watch.late(now) and watch.due(now) == "page"


def test_an_older_round_trip_arriving_late_does_not_move_the_clock_back() -> None:
    watch = Watch(LATE, WatchState(started_at=T0))
    watch.round_trip(canary(T0 + 2 * MIN, seq=2), received_at=T0 + 2 * MIN)
    watch.round_trip(canary(T0 + MIN, seq=1), received_at=T0 + 3 * MIN)
    assert watch.since == T0 + 2 * MIN and watch.state.round_trips == 2


def test_due_pages_once_and_resolves_once() -> None:
    watch = Watch(LATE, WatchState(started_at=T0))
    assert watch.due(T0 + MIN) is None
    assert watch.due(T0 + 4 * MIN) == "page"
    watch.opened(OpenPage(id="pipeline-x", since=T0, paged_at=T0 + 4 * MIN))
    assert watch.due(T0 + 5 * MIN) is None  # already paged
    watch.round_trip(canary(T0 + 6 * MIN), received_at=T0 + 6 * MIN)
    assert watch.due(T0 + 6 * MIN) == "resolve"
    assert watch.closed() is not None and watch.due(T0 + 6 * MIN) is None


def test_summary_says_where_the_canaries_stopped() -> None:
    """"no round trip since 14:02; last seen: ingest 14:05, rules 14:02, alerting 14:06"."""
    t1402 = 1_795_010_520_000  # 14:02 UTC
    watch = Watch(LATE, WatchState(started_at=t1402 - 60 * MIN))
    watch.round_trip(canary(t1402, ingest_at=t1402 + 100, judged_at=t1402 + 200),
                     received_at=t1402 + 300)
    watch.ingest_passed(t1402 + 3 * MIN)
    watch.alerting_read(t1402 + 4 * MIN)
    summary = watch.summary()
    assert "no canary round trip since 14:02 UTC" in summary
    assert "last seen: ingest 14:05 UTC, rules 14:02 UTC, alerting 14:06 UTC" in summary
    assert "check patients by phone" in summary
    assert watch.banner(t1402 + 2 * MIN) is None
    assert watch.banner(t1402 + 4 * MIN) == (
        "Monitoring delayed since 14:02 UTC: pages may be late; check patients by phone.")


def test_state_survives_a_restart_and_garbage_starts_afresh() -> None:
    watch = Watch(LATE, WatchState(started_at=T0))
    watch.round_trip(canary(T0 + MIN), received_at=T0 + MIN)
    watch.opened(OpenPage(id="pipeline-1", since=T0, paged_at=T0,
                          deliveries=[("pagerduty", "ops", "key-ops")]))
    again = Watch.restore(LATE, watch.dump(), now=T0 + 9 * MIN)
    assert again.state == watch.state
    fresh = Watch.restore(LATE, "{not json", now=T0 + 9 * MIN)
    assert fresh.state == WatchState(started_at=T0 + 9 * MIN)


def test_after_a_restart_the_late_clock_starts_again_and_an_open_page_waits() -> None:
    """Alerting back after an hour does not page about the hour it could not watch; a page
    an earlier run opened stays open (and the banner with it) until a canary is back."""
    watch = Watch(LATE, WatchState(started_at=T0))
    watch.round_trip(canary(T0 + MIN), received_at=T0 + MIN)
    back = T0 + 60 * MIN
    again = Watch.restore(LATE, watch.dump(), now=back)
    assert not again.late(back + LATE) and again.due(back + LATE) is None
    assert again.late(back + LATE + 1) and again.due(back + LATE + 1) == "page"

    watch.opened(OpenPage(id="pipeline-1", since=T0 + MIN, paged_at=T0 + 5 * MIN))
    paged = Watch.restore(LATE, watch.dump(), now=back)
    assert paged.due(back + MIN) is None and paged.banner(back + MIN) is not None
    paged.round_trip(canary(back + 2 * MIN), received_at=back + 2 * MIN)
    assert paged.due(back + 2 * MIN) == "resolve"


def test_hostile_evidence_is_ignored_not_trusted() -> None:
    watch = Watch(LATE, WatchState(started_at=T0))
    event = AlertEvent(alert_id="canary-x", status="firing", rule="canary", severity="info",
                       patient_id="CANARY", start=T0, detected_at=T0, summary="x",
                       evidence={"ingest_at": "yesterday", "judged_at": True})
    watch.round_trip(event, received_at=T0 + 5)
    assert watch.state.seen == {"alerting": T0 + 5}
