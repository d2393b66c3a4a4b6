"""The pipeline against a local PagerDuty stand-in, with the injected clock driving escalation:
no sleeping for minutes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings


def run(coro):
    return asyncio.run(coro)


def test_escalation_steps_follow_the_clock_and_ack_stops_them(tmp_path: Path,
                                                               receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver), clock)
        assert core.handle(event()) == "paged"
        await d.drain()
        [t] = receiver.pd("trigger")
        assert t["routing_key"] == "key-alice"  # the schedule's nurse on duty this week
        p = t["payload"]
        assert p["source"] == "P001" and p["class"] == "fever" and p["severity"] == "error"
        assert "38.4" in p["summary"] and "since" in p["summary"]
        details = p["custom_details"]
        assert details["escalation_step"] == 0 and details["days_since_infusion"] == 1.4
        assert details["ack_url"].endswith(f"/alerts/{t['dedup_key']}")
        assert details["alerts"][0]["evidence"]["trend"] == "+0.4 C/h"

        clock.advance(9.9)
        assert core.tick() == 0
        clock.advance(0.2)  # 10 min: the registrar (step 2) is paged too
        assert core.tick() == 1
        await d.drain()
        assert [b["routing_key"] for b in receiver.pd("trigger")] == ["key-alice",
                                                                      "key-registrar"]
        assert receiver.wait(1, path="/registrar") is None  # and its webhook

        inc = core.ack("P001/fever/1795000000000", "alice")  # an alert id finds its incident
        assert inc.state == "acknowledged"
        await d.drain()
        acks = receiver.pd("acknowledge")
        assert sorted(b["routing_key"] for b in acks) == ["key-alice", "key-registrar"]
        assert {b["dedup_key"] for b in receiver.pd()} == {inc.id}  # one key for its life

        clock.advance(60)  # acknowledged: no more steps, no repeats
        assert core.tick() == 0
        await d.drain()
        assert len(receiver.pd("trigger")) == 2

        core.handle(event(status="resolved"))  # the rule clears
        await d.drain()
        resolves = receiver.pd("resolve")
        assert sorted(b["routing_key"] for b in resolves) == ["key-alice", "key-registrar"]
        assert core.open_alerts() == []
        events = [r["event"] for r in core.store.audit_rows("P001")]
        assert events[:3] == ["received", "page", "notified"]
        assert "acknowledged" in events and events[-1] == "notified"
        await d.close()

    run(scenario())


def test_last_step_repeats_until_acknowledged(tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver, step2=1, step3=2), clock)
        core.handle(event(severity="critical"))
        for _ in range(4):  # minute 1, 2: steps; 17, 32: repeats of the last step (15 min)
            clock.advance(15 if core.store.open_incidents()[0].step == 2 else 1)
            core.tick()
        await d.drain()
        pages = [r["detail"] for r in core.store.audit_rows() if r["event"] == "page"]
        assert pages == ["step 1 (new)", "step 2 (escalate)", "step 3 (escalate)",
                         "step 3 (repeat)", "step 3 (repeat)"]
        # no SMTP server configured: the e-mail target's pages are audited as not sent
        assert sum(r["event"] == "not_sent" for r in core.store.audit_rows()) == 3
        await d.close()

    run(scenario())


def test_duplicate_events_change_nothing(tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        core.handle(event())
        await d.drain()
        before = (core.store.audit_rows(), core.store.db.execute(
            "SELECT COUNT(*) FROM outbox").fetchone()[0])
        assert core.handle(event()) == "duplicate"  # a rule worker restart sends it again
        await d.drain()
        after = (core.store.audit_rows(), core.store.db.execute(
            "SELECT COUNT(*) FROM outbox").fetchone()[0])
        assert before == after and len(receiver.pd()) == 1
        core.handle(event(status="resolved"))
        assert core.handle(event(status="resolved")) == "duplicate"
        await d.drain()
        assert len(receiver.pd("resolve")) == 1
        await d.close()

    run(scenario())


def test_concurrent_alerts_group_and_a_worse_one_pages_at_once(tmp_path: Path,
                                                               receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver), clock)
        core.handle(event(rule="fever"))
        clock.advance(1)
        assert core.handle(event(rule="tachycardia", start=1_795_000_060_000)) == "grouped"
        await d.drain()
        assert len(receiver.pd("trigger")) == 1  # the second alert joined, no second page
        clock.advance(1)
        assert core.handle(event(rule="crs_suspicion", severity="critical",
                                 start=1_795_000_120_000,
                                 summary="P001: CRS suspicion: fever with heart rate 135/min"
                                 )) == "paged_again"
        await d.drain()
        first, again = receiver.pd("trigger")
        assert again["payload"]["severity"] == "critical"
        assert again["dedup_key"] == first["dedup_key"]
        summary = again["payload"]["summary"]
        assert summary.startswith("P001: CRS suspicion") and "fever" in summary \
            and "tachycardia" in summary  # names them all, worst first
        assert len(again["payload"]["custom_details"]["alerts"]) == 3
        # an ack covers the incident; only when every alert clears does it resolve
        core.ack(first["dedup_key"], "bob")
        core.handle(event(rule="fever", status="resolved"))
        assert core.store.incident(first["dedup_key"]).state == "acknowledged"
        core.handle(event(rule="tachycardia", status="resolved", start=1_795_000_060_000))
        core.handle(event(rule="crs_suspicion", severity="critical", status="resolved",
                          start=1_795_000_120_000))
        assert core.store.incident(first["dedup_key"]).state == "resolved"
        # a different patient is a different incident
        assert core.handle(event(patient="P002")) == "paged"
        await d.drain()
        assert len({b["dedup_key"] for b in receiver.pd("trigger")}) == 2
        await d.close()

    run(scenario())


def test_flapping_rule_reopens_the_held_incident_without_a_new_page(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver, hold=5), clock)
        core.handle(event())
        clock.advance(2)
        core.handle(event(status="resolved"))
        clock.advance(2)  # fires again 2 min after clearing: a new alert id, same rule
        assert core.handle(event(start=1_795_000_240_000)) == "grouped"
        clock.advance(10)
        core.tick()
        await d.drain()
        # one incident all along: the nurse once, then the registrar at step 2
        assert sorted((b["event_action"], b["routing_key"]) for b in receiver.pd()) == [
            ("trigger", "key-alice"), ("trigger", "key-registrar")]
        core.handle(event(status="resolved", start=1_795_000_240_000))
        clock.advance(4.9)
        core.tick()
        await d.drain()
        assert not receiver.pd("resolve")  # held
        clock.advance(0.2)
        core.tick()
        await d.drain()
        assert len(receiver.pd("resolve")) == 2
        await d.close()

    run(scenario())


def test_silences_and_warnings_are_recorded_not_paged(tmp_path: Path,
                                                      receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        from alerting import silences

        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver), clock)
        with core.store.tx():
            silences.add(core.store, silences.SilenceRequest(
                "P002", None, core.now(), core.now() + 3600_000, "admitted to hospital"),
                "alice", core.now())
            silences.add(core.store, silences.SilenceRequest(
                None, "no_data", core.now(), core.now() + 3600_000, "device swap"),
                "alice", core.now())
        assert core.handle(event(patient="P002")) == "silenced"
        assert core.handle(event(rule="no_data", severity="error")) == "silenced"
        assert core.handle(event(rule="desaturation", severity="warning")) == "not_paging"
        await d.drain()
        assert receiver.pd() == []
        shown = {a["rule"]: a["state"] for a in core.open_alerts()}
        assert shown == {"fever": "silenced", "no_data": "silenced",
                         "desaturation": "not_paging"}
        clock.advance(61)  # the silence has ended: a new alert pages again
        assert core.handle(event(patient="P002", start=1_795_003_000_000)) == "paged"
        await d.close()

    run(scenario())
