"""The nurses' HTTP API on a real aiohttp server: tokens, ack and resolve, silences, audit."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import aiohttp
from aiohttp import web

from alerting.api import make_app
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import BOB_TOKEN, Clock, build, event, make_settings

ALICE = {"Authorization": "Bearer token-alice-0123456789"}
BOB = {"Authorization": f"Bearer {BOB_TOKEN}"}  # stored as a sha256 hash in the file


async def serve(core) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(core))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def test_tokens_ack_resolve_and_who_did_it(tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver), clock)
        runner, base = await serve(core)
        core.handle(event(rule="fever"))
        core.handle(event(patient="P002", rule="severe_desaturation", severity="critical"))
        core.handle(event(patient="P003", rule="desaturation", severity="warning"))
        await d.drain()
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong-token-000000"},
                            {"Authorization": "Basic dG9rZW4="}):
                async with http.get(f"{base}/alerts", headers=headers) as r:
                    assert r.status == 401
                async with http.post(f"{base}/alerts/x/ack", headers=headers) as r:
                    assert r.status == 401
            async with http.get(f"{base}/alerts", headers=ALICE) as r:
                alerts = (await r.json())["alerts"]
            # worst first: critical P002, then error P001, then the unpaged warning
            assert [a["patient_id"] for a in alerts] == ["P002", "P001", "P003"]
            assert [a["state"] for a in alerts] == ["paged", "paged", "not_paging"]
            alert_id = alerts[1]["alert_id"]  # P001/fever/..., slashes and all
            async with http.post(f"{base}/alerts/{alert_id}/ack", headers=BOB) as r:
                assert r.status == 200
                body = await r.json()
                assert body["state"] == "acknowledged" and body["acked_by"] == "bob"
            async with http.post(f"{base}/alerts/nope/ack", headers=BOB) as r:
                assert r.status == 404
            async with http.post(f"{base}/alerts/{alerts[2]['alert_id']}/ack",
                                 headers=BOB) as r:
                assert r.status == 409  # a warning was never paged
            iid = alerts[0]["incident_id"]
            async with http.post(f"{base}/alerts/{iid}/resolve", headers=ALICE) as r:
                assert (await r.json())["resolved_by"] == "alice"
            await d.drain()
            assert [b["event_action"] for b in receiver.pd("acknowledge")] == ["acknowledge"]
            assert receiver.pd("resolve")[0]["dedup_key"] == iid
            async with http.get(f"{base}/alerts", headers=ALICE) as r:
                left = (await r.json())["alerts"]
            assert [(a["patient_id"], a["state"]) for a in left] == [
                ("P001", "acknowledged"), ("P003", "not_paging")]
            async with http.get(f"{base}/alerts/{iid}", headers=ALICE) as r:
                assert (await r.json())["state"] == "resolved"
            async with http.get(f"{base}/alerts/{iid}", headers={"Accept": "text/html"}) as r:
                assert r.status == 200 and "<html" in await r.text()  # the ack link
            # who did what
            async with http.get(f"{base}/audit", headers=ALICE,
                                params={"patient": "P001"}) as r:
                rows = (await r.json())["audit"]
            assert ("acknowledged", "bob") in [(x["event"], x["actor"]) for x in rows]
            assert {x["patient_id"] for x in rows} == {"P001"}
            async with http.get(f"{base}/audit", headers=ALICE,
                                params={"since": "2999-01-01T00:00:00Z"}) as r:
                assert (await r.json())["audit"] == []
            async with http.get(f"{base}/audit", headers=ALICE, params={"since": "soon"}) as r:
                assert r.status == 400
            async with http.get(f"{base}/audit.csv", headers=ALICE) as r:
                assert r.headers["Content-Type"].startswith("text/csv")
                table = list(csv.DictReader(io.StringIO(await r.text())))
            assert {"received", "page", "notified", "acknowledged", "resolved"} <= {
                x["event"] for x in table}
            notified = [x for x in table if x["event"] == "notified"]
            assert notified[0]["channel"] == "pagerduty" and notified[0]["status"] == "202"
            assert table[0]["time_utc"].startswith("2026-11-18T")
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def test_silences_over_the_api(tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver), clock)
        runner, base = await serve(core)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/silences", json={"patient_id": "P001"},
                                 headers=ALICE) as r:
                assert r.status == 400 and "reason" in (await r.json())["error"]
            async with http.post(f"{base}/silences", headers=ALICE, json={
                    "patient_id": "P001", "minutes": 120,
                    "reason": "admitted to hospital"}) as r:
                assert r.status == 201
                sid = (await r.json())["id"]
            async with http.get(f"{base}/silences", headers=ALICE) as r:
                [s] = (await r.json())["silences"]
                assert s["created_by"] == "alice" and s["reason"] == "admitted to hospital"
            assert core.handle(event()) == "silenced"
            async with http.delete(f"{base}/silences/{sid}", headers=BOB) as r:
                assert r.status == 403  # bob is a nurse: only a lead ends a silence
                assert "lead" in (await r.json())["error"]
            async with http.delete(f"{base}/silences/{sid}", headers=ALICE) as r:
                assert r.status == 200
            async with http.delete(f"{base}/silences/{sid}", headers=ALICE) as r:
                assert r.status == 404
            assert core.handle(event(start=1_795_000_600_000)) == "paged"
            async with http.get(f"{base}/audit", headers=ALICE) as r:
                rows = (await r.json())["audit"]
            assert [(x["event"], x["actor"]) for x in rows if "silenc" in x["event"]] == [
                ("silenced", "alice"), ("unsilenced", "alice")]
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())
