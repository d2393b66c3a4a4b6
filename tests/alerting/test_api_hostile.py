"""The API against hostile or careless use, on a real aiohttp server: roles, bounded silences,
security headers, body size and time limits, the rate limit, and an audit of every request
with its source address (reads of patient data included)."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import re
import threading
from pathlib import Path

import aiohttp
from aiohttp import web

from alerting import page
from alerting.api import Limits, make_app, make_runner
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import BOB_TOKEN, Clock, build, event, make_settings

ALICE = {"Authorization": "Bearer token-alice-0123456789"}  # a lead
BOB = {"Authorization": f"Bearer {BOB_TOKEN}"}  # a nurse (a bare string in the file)
DAY_MS = 86_400_000


async def serve(core, limits: Limits | None = None, clock=None) -> tuple[web.AppRunner, str]:
    kw = {"clock": clock} if clock else {}
    runner = make_runner(make_app(core, limits, **kw))  # as the service runs it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def test_a_nurse_may_read_ack_and_resolve_but_not_silence(tmp_path: Path,
                                                          receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core)
        core.handle(event())
        body = {"rule": "fever", "minutes": 60, "reason": "mute everyone"}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/silences", headers=BOB, json=body) as r:
                assert r.status == 403
                assert r.headers["Content-Type"].startswith("application/json")
                error = (await r.json())["error"]
                assert "lead" in error and "bob" in error
            async with http.get(f"{base}/alerts", headers=BOB) as r:
                [alert] = (await r.json())["alerts"]
            async with http.post(f"{base}/alerts/{alert['incident_id']}/ack",
                                 headers=BOB) as r:
                assert r.status == 200 and (await r.json())["acked_by"] == "bob"
            async with http.get(f"{base}/silences", headers=BOB) as r:
                assert r.status == 200 and (await r.json())["silences"] == []
            async with http.post(f"{base}/silences", headers=ALICE, json=body) as r:
                assert r.status == 201  # a lead may silence a rule for every patient
            async with http.get(f"{base}/audit", headers=ALICE) as r:
                rows = (await r.json())["audit"]
        [silenced] = [row for row in rows if row["event"] == "silenced"]
        assert silenced["actor"] == "alice" and "patients=ALL" in silenced["detail"]
        assert silenced["patient_id"] is None
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def test_a_silence_needs_an_end_in_the_future_within_the_bound(tmp_path: Path,
                                                              receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, d = build(make_settings(tmp_path, receiver, silence_days=2), clock)
        runner, base = await serve(core)
        now = core.now()
        base_body = {"patient_id": "P001", "reason": "admitted"}
        refused = [
            ({}, "an end"),
            ({"ends_at": None}, "an end"),
            ({"ends_at": now - 1}, "future"),
            ({"ends_at": now}, "future"),
            ({"ends_at": now + 2 * DAY_MS + 1}, "2 days"),
            ({"ends_at": 10**30}, "epoch"),
            ({"ends_at": True}, "epoch"),
            ({"ends_at": "tomorrow"}, "epoch"),
            ({"ends_at": now + 60_000, "starts_at": now + 120_000}, "after starts_at"),
            ({"minutes": 2 * 24 * 60 + 1}, "2 days"),
            ({"minutes": 0}, "minutes"),
            ({"minutes": -5}, "minutes"),
            ({"minutes": True}, "minutes"),
            ({"minutes": 1e308}, "minutes"),
        ]
        async with aiohttp.ClientSession() as http:
            for extra, why in refused:
                async with http.post(f"{base}/silences", headers=ALICE,
                                     json={**base_body, **extra}) as r:
                    assert r.status == 400, extra
                    assert why in (await r.json())["error"], (extra, await r.json())
            async with http.post(f"{base}/silences", headers=ALICE,
                                 data="[1e999]") as r:  # JSON infinity
                assert r.status == 400
            async with http.post(f"{base}/silences", headers=ALICE,
                                 json={**base_body, "ends_at": now + 2 * DAY_MS}) as r:
                assert r.status == 201  # exactly at the bound
            async with http.get(f"{base}/silences", headers=ALICE) as r:
                [silence] = (await r.json())["silences"]
            assert silence["ends_at"] == now + 2 * DAY_MS
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def _csp_hash(tag: str) -> str:
    [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", page.SHELL, re.DOTALL)
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def test_security_headers_on_every_response(tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core, Limits(burst=8, rate_per_min=1))
        core.handle(event())
        async with aiohttp.ClientSession() as http:
            seen = []
            for method, path, headers in (
                    ("GET", "/", {}), ("GET", "/healthz", {}), ("GET", "/alerts", ALICE),
                    ("GET", "/alerts", {}), ("GET", "/page/alerts", BOB),
                    ("GET", "/nowhere", BOB), ("POST", "/silences", BOB),
                    ("GET", "/audit.csv", ALICE), ("GET", "/alerts/x", {"Accept": "text/html"}),
                    *[("GET", "/alerts", BOB)] * 8):  # the last ones: 429
                async with http.request(method, f"{base}{path}", headers=headers) as r:
                    seen.append(r.status)
                    assert r.headers["X-Content-Type-Options"] == "nosniff"
                    assert r.headers["X-Frame-Options"] == "DENY"
                    assert r.headers["Referrer-Policy"] == "no-referrer"
                    assert r.headers["Cache-Control"] == "no-store"
                    csp = r.headers["Content-Security-Policy"]
                    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
                    assert "default-src 'none'" in csp
                    if path == "/":
                        shell = await r.text()
            assert {200, 401, 403, 404, 429} <= set(seen), seen
            # the page's own script and style are allowed by their hashes, and only they
            assert f"script-src {_csp_hash('script')};" in csp
            assert f"style-src {_csp_hash('style')};" in csp
            assert shell.count("<script>") == 1 and shell.count("<style>") == 1
            assert " style=" not in shell and " onclick=" not in shell
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def test_rate_limit_per_token_and_per_address(tmp_path: Path,
                                              receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        now = [1000.0]
        core, d = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core, Limits(rate_per_min=30, burst=3),
                                   clock=lambda: now[0])
        async with aiohttp.ClientSession() as http:

            async def status(headers: dict[str, str], path: str = "/alerts") -> int:
                async with http.get(f"{base}{path}", headers=headers) as r:
                    if r.status == 429:
                        assert r.headers["Retry-After"] == "2"  # 30/min: one per 2 s
                        assert "too many" in (await r.json())["error"]
                    return r.status

            assert [await status(ALICE) for _ in range(4)] == [200, 200, 200, 429]
            assert await status(BOB) == 200  # per token: bob has his own budget
            # without a valid token: per source address, whatever the (wrong) token
            wrong = [{"Authorization": f"Bearer wrong-{i:020d}"} for i in range(4)]
            assert [await status(h) for h in wrong] == [401, 401, 401, 429]
            assert await status({}, "/") == 429  # the shell too, from that address
            assert await status({}, "/healthz") == 200  # never limited: no data
            assert await status(ALICE) == 429
            now[0] += 2.0  # one token back
            assert [await status(ALICE) for _ in range(2)] == [200, 429]
            async with http.get(f"{base}/audit", headers=BOB) as r:
                rows = (await r.json())["audit"]
            # refused by the limit: not audited, so a flood cannot fill the audit log
            assert [row["status"] for row in rows if row["event"] in ("read", "request")
                    ].count("429") == 0
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def test_bodies_are_bounded_in_size_and_time(tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core, Limits(max_body=4096, body_timeout_s=0.2))
        async with aiohttp.ClientSession() as http, http.post(
                f"{base}/silences", headers=ALICE,
                json={"patient_id": "P001", "reason": "x" * 10_000, "minutes": 5}) as r:
            assert r.status == 413
        # a body that trickles: headers promise 100 bytes, 10 come, then nothing
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /silences HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: " + ALICE["Authorization"].encode() +
                     b"\r\nContent-Length: 100\r\n\r\n{\"patient_")
        await writer.drain()
        # a hang guard only: the server answers after its 0.2 s
        status_line = await asyncio.wait_for(reader.readline(), 60)
        assert status_line.startswith(b"HTTP/1.1 408"), status_line
        writer.close()
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


async def _http_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The status line and body of one response on a raw connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)  # a hang guard only
    [length] = re.findall(rb"(?im)^content-length: *(\d+)", head)
    body = await asyncio.wait_for(reader.readexactly(int(length)), 60)
    return head.split(b"\r\n", 1)[0], body


async def _closed_within(reader: asyncio.StreamReader, limit_s: float) -> float:
    """Seconds until the server closed the connection; nothing may have been answered."""
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), limit_s) == b""  # EOF
    return asyncio.get_running_loop().time() - started


def test_request_headers_that_never_finish_are_closed_keep_alive_is_not(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core, Limits(header_timeout_s=1.0))
        host, port = base.removeprefix("http://").split(":")
        # "GET /" and then nothing: aiohttp alone would wait for its 75 s keep-alive
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /")
        await writer.drain()
        assert await _closed_within(reader, 30) >= 0.9  # closed, and not before the limit
        writer.close()
        # headers that trickle in, a line every 0.2 s: activity does not extend the limit
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

        async def trickle() -> None:
            for i in range(150):  # 30 s, far beyond the limit
                writer.write(f"X-Slow-{i}: a\r\n".encode())
                await asyncio.sleep(0.2)

        trickling = asyncio.create_task(trickle())
        try:
            await _closed_within(reader, 30)
        finally:
            trickling.cancel()
            await asyncio.gather(trickling, return_exceptions=True)
            writer.close()
        # keep-alive: a connection idle between whole requests for longer than the limit
        # stays open (the keep-alive timeout is what bounds idleness)
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            status, body = await _http_response(reader)
            assert status == b"HTTP/1.1 200 OK" and b'"ok"' in body
            await asyncio.sleep(2.5)
        assert not reader.at_eof()
        writer.close()
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def test_a_request_that_takes_too_long_is_answered_503(tmp_path: Path,
                                                       receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core, Limits(request_timeout_s=0.2))
        held, release = threading.Event(), threading.Event()

        def stuck_disk() -> bool:
            held.set()
            return release.wait(60)

        holding = asyncio.ensure_future(core.off_loop(stuck_disk))
        await asyncio.to_thread(held.wait)
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    f"{base}/alerts", headers=ALICE) as r:
                assert r.status == 503  # answered while the store is still stuck
                assert "too long" in (await r.json())["error"]
                assert r.headers["Cache-Control"] == "no-store"
            assert not holding.done()
        finally:
            release.set()
        assert await holding
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def test_every_request_is_audited_with_its_source_address(tmp_path: Path,
                                                          receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core)
        core.handle(event())
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/alerts", headers=BOB) as r:
                [alert] = (await r.json())["alerts"]
            async with http.get(f"{base}/page/alerts", headers=BOB) as r:
                assert "P001" in await r.text()
            async with http.get(f"{base}/alerts", headers={}) as r:
                assert r.status == 401
            async with http.post(f"{base}/alerts/{alert['incident_id']}/ack",
                                 headers=BOB) as r:
                assert r.status == 200
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/audit", headers=ALICE, params={"patient": "P001"}
                                ) as r:
                patient_rows = (await r.json())["audit"]
            async with http.get(f"{base}/audit", headers=ALICE) as r:
                rows = (await r.json())["audit"]
            async with http.get(f"{base}/audit.csv", headers=ALICE) as r:
                table = list(csv.DictReader(io.StringIO(await r.text())))
        http_rows = [(row["event"], row["actor"], row["status"], row["source"], row["detail"])
                     for row in rows if row["channel"] == "http"]
        assert http_rows == [
            ("read", "bob", "200", "127.0.0.1", "GET /alerts"),
            ("read", "bob", "200", "127.0.0.1", "GET /page/alerts"),
            ("request", None, "401", "127.0.0.1", "GET /alerts"),
            ("request", "bob", "200", "127.0.0.1", f"POST /alerts/{alert['incident_id']}/ack"),
            ("read", "alice", "200", "127.0.0.1", "GET /audit?patient=P001"),
        ]  # /healthz is not audited; this last GET /audit is written after it answered
        # the source has its own column; `target` keeps meaning whom a page went to
        assert all(row["target"] is None for row in rows if row["channel"] == "http")
        assert all(row["source"] is None for row in rows if row["channel"] != "http")
        csv_http = [row for row in table if row["channel"] == "http"]
        assert len(csv_http) == 6 and {row["source"] for row in csv_http} == {"127.0.0.1"}
        assert ("acknowledged", "bob") in [(row["event"], row["actor"]) for row in rows]
        assert {row["patient_id"] for row in patient_rows} == {"P001"}
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())


def test_the_embedded_demo_file_accepts_no_public_demo_token(tmp_path: Path,
                                                             receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        settings = make_settings(tmp_path, receiver).model_copy(update={"oncall": None})
        core, d = build(settings, Clock())
        assert core.oncall.tokens == {}
        runner, base = await serve(core)
        async with aiohttp.ClientSession() as http:
            for name in ("alice", "bob", "carol"):
                async with http.get(f"{base}/alerts", headers={
                        "Authorization": f"Bearer demo-token-nurse-{name}"}) as r:
                    assert r.status == 401
        await runner.cleanup()
        await d.close()

    asyncio.run(scenario())
