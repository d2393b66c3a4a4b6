"""The canary watch inside alerting, against a local PagerDuty stand-in, with the injected clock:
late round trips page the operators' team (never a nurse), once, with what is known, and the
page resolves when round trips resume; the nurse page shows the banner meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alerting import page
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, make_settings
from vitals.records import AlertEvent
from vitals.settings import Settings

NURSES = {"key-alice", "key-bob", "key-registrar"}


def with_operators(settings_path: Path) -> None:
    """The test on-call file, plus an `ops` team named as `operators:`."""
    text = settings_path.read_text()
    text = text.replace("targets:\n", "targets:\n  ops-eng: {pagerduty: key-ops}\n", 1)
    text = text.replace("tokens:", "  ops:\n    escalation:\n      - {after_min: 0, notify: "
                                   "[ops-eng]}\noperators: ops\ntokens:", 1)
    settings_path.write_text(text)


def watched_settings(tmp_path: Path, receiver: PagerDutyStandIn) -> Settings:
    """The canary watched (late after 3 minutes), with an `ops` team as the operators."""
    settings = make_settings(tmp_path, receiver, canary_late_s=180)
    assert settings.oncall is not None
    with_operators(settings.oncall)
    return settings


def canary(clock: Clock, seq: int) -> AlertEvent:
    now = int(clock() * 1000)
    return AlertEvent(alert_id=f"canary-canary-{seq}", status="firing", rule="canary",
                      severity="info", patient_id="CANARY", start=now - 2000,
                      detected_at=now - 2000, summary="canary",
                      evidence={"synthetic": True, "published_at": now - 2000,
                                "ingest_at": now - 1500, "judged_at": now - 1000})


def test_late_round_trips_page_the_operators_once_then_resolve(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        settings = watched_settings(tmp_path, receiver)
        core, d = build(settings, clock)

        def arrive(seq: int) -> None:
            with core.store.tx():
                core.canary_event(canary(clock, seq))

        arrive(1)
        for _ in range(5):  # 2.5 minutes of ticks: on time
            clock.advance(0.5)
            core.tick()
        await d.drain()
        assert receiver.pd() == []
        assert core.watch.banner(core.now()) is None

        clock.advance(1)  # 3.5 minutes since the canary left: late
        assert core.tick() == 1
        clock.advance(1)
        assert core.tick() == 0  # paged once, not at every tick
        await d.drain()
        [trigger] = receiver.pd("trigger")
        assert trigger["routing_key"] == "key-ops"
        payload = trigger["payload"]
        assert payload["source"] == "vitals" and payload["class"] == "pipeline"
        assert payload["severity"] == "critical"
        assert "no canary round trip since" in payload["summary"]
        assert "last seen: ingest" in payload["summary"]
        assert "rules" in payload["summary"] and "alerting" in payload["summary"]
        banner = core.watch.banner(core.now())
        assert banner is not None and banner.startswith("Monitoring delayed since")
        html = page.fragment([], {}, banner)
        assert "id='banner'" in html and "check patients by phone" in html
        assert not NURSES & {body["routing_key"] for body in receiver.pd()}

        arrive(2)  # round trips resume
        assert core.tick() == 1
        await d.drain()
        [resolve] = receiver.pd("resolve")
        assert resolve["dedup_key"] == trigger["dedup_key"]
        assert core.watch.banner(core.now()) is None
        events = [row["event"] for row in core.store.audit_rows()]
        assert "pipeline_late" in events and "pipeline_resumed" in events
        await d.close()
        core.close()

    asyncio.run(scenario())


def test_a_restart_keeps_the_open_page_and_resolves_it(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        settings = watched_settings(tmp_path, receiver)
        core, d = build(settings, clock)
        clock.advance(4)  # no canary at all since alerting began watching
        core.tick()
        await d.drain()
        [trigger] = receiver.pd("trigger")
        assert "since alerting began watching" in trigger["payload"]["summary"]
        await d.close()
        core.close()

        again, d2 = build(settings, clock)  # a restart: the open page is remembered
        clock.advance(1)
        assert again.tick() == 0  # not paged a second time
        with again.store.tx():
            again.canary_event(canary(clock, 7))
        assert again.tick() == 1
        await d2.drain()
        [resolve] = receiver.pd("resolve")
        assert resolve["dedup_key"] == trigger["dedup_key"]
        assert len(receiver.pd("trigger")) == 1
        await d2.close()
        again.close()

    asyncio.run(scenario())
