"""The lease that lets one of several alerting instances lead (`alerting.leader`), on a real
PostgreSQL: one holder at a time, a lapsed lease changes hands with a new term, and a holder
stops counting itself the leader before anyone else can start."""

from __future__ import annotations

import asyncio
import time

from alerting.leader import Lease, Sole
from harness import servers

LEASE_S = 1.0


def test_one_holder_at_a_time_and_a_lapsed_lease_changes_hands(postgres_url: str) -> None:
    async def scenario() -> None:
        first, second = Lease(postgres_url, LEASE_S, "first"), Lease(postgres_url, LEASE_S,
                                                                        "second")
        assert await first.attempt() and first.leading() and first.term == 1
        assert not await second.attempt() and not second.leading()
        assert await first.attempt() and first.term == 1  # a renewal keeps the term
        # The first stops renewing (killed). The second keeps trying; it may lead only after
        # the first has stopped counting itself the leader.
        first_until = first._valid_until
        while not await second.attempt():
            await asyncio.sleep(0.05)
        took_at = time.monotonic()
        assert took_at >= first_until, "two leaders at once"
        assert not first.leading() and second.leading() and second.term == 2
        # The first comes back: the lease is the second's now.
        assert not await first.attempt() and not first.leading()
        for lease in (first, second):
            await lease.release()

    asyncio.run(scenario())


def test_a_clean_stop_gives_the_lease_up_at_once(postgres_url: str) -> None:
    async def scenario() -> None:
        first, second = Lease(postgres_url, 60.0, "first"), Lease(postgres_url, 60.0, "second")
        stop = asyncio.Event()
        running = asyncio.create_task(first.run(stop))
        while not first.leading():
            await asyncio.sleep(0.02)
        assert not await second.attempt()
        stop.set()
        await running
        assert not first.leading()
        # a 60 s lease, given up: the second leads at its next try, not a minute later
        assert await second.attempt() and second.term == 2
        await second.release()

    asyncio.run(scenario())


def test_a_leader_that_loses_the_database_stops_leading_when_its_lease_runs_out(
        postgres_server: servers.Postgres, postgres_url: str) -> None:
    async def scenario() -> None:
        lease = Lease(postgres_url, LEASE_S, "alone")
        assert await lease.attempt()
        # the database goes out of reach: the connection drops, and reconnecting fails
        lease.url = "postgresql://postgres@127.0.0.1:1/nowhere"
        await lease._drop()
        while lease.leading():  # renewals fail; it leads until its own count runs out
            await lease.attempt()
            await asyncio.sleep(0.05)
        assert not await lease.attempt()
        await asyncio.sleep(LEASE_S)  # its lease has lapsed in the database too by now
        lease.url = postgres_url  # reachable again: it leads again, in a new term
        while not await lease.attempt():
            await asyncio.sleep(0.05)
        assert lease.term == 2
        await lease.release()

    asyncio.run(scenario())


def test_the_sole_instance_always_leads() -> None:
    sole = Sole()
    stop = asyncio.Event()

    async def scenario() -> None:
        assert sole.leading()
        task = asyncio.create_task(sole.run(stop))
        stop.set()
        await task
        assert sole.leading()

    asyncio.run(scenario())
