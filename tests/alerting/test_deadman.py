"""The dead-man's switch against a local stand-in (a real HTTP server on loopback): pinged
only while round trips are on time; an outside service that fails is logged, never fatal."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from alerting.deadman import DeadMan


async def stand_in(status: int) -> tuple[web.AppRunner, str, list[str]]:
    """A dead-man's-switch stand-in that records each ping's path and answers `status`."""
    pings: list[str] = []

    async def ping(request: web.Request) -> web.Response:
        pings.append(request.path)
        return web.Response(status=status, text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/ping/vitals", pings


def test_pings_only_while_on_time() -> None:
    async def scenario() -> None:
        runner, url, pings = await stand_in(200)
        on_time = {"now": True}
        deadman = DeadMan(url, 60, lambda: on_time["now"])
        async with aiohttp.ClientSession() as session:
            await deadman.round(session)
            on_time["now"] = False
            await deadman.round(session)
            await deadman.round(session)
            on_time["now"] = True
            await deadman.round(session)
        await runner.cleanup()
        assert pings == ["/ping/vitals", "/ping/vitals"]
        assert deadman.pings == 2 and deadman.skipped == 2 and deadman.last_ping > 0

    asyncio.run(scenario())


def test_a_failing_or_absent_switch_is_counted_not_raised() -> None:
    async def scenario() -> None:
        runner, url, pings = await stand_in(500)
        deadman = DeadMan(url, 60, lambda: True)
        async with aiohttp.ClientSession() as session:
            await deadman.round(session)
            await runner.cleanup()  # now nothing listens there
            await deadman.round(session)
        assert len(pings) == 1 and deadman.pings == 0 and deadman.failures == 2

    asyncio.run(scenario())


def test_run_pings_at_its_period_until_stopped() -> None:
    async def scenario() -> None:
        runner, url, pings = await stand_in(200)
        deadman = DeadMan(url, 0.05, lambda: True)
        stop = asyncio.Event()
        task = asyncio.create_task(deadman.run(stop))
        for _ in range(6000):  # up to 2 minutes: a busy machine is slow, not wrong
            if len(pings) >= 3:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await task
        await runner.cleanup()
        assert deadman.pings >= 3

    asyncio.run(scenario())
