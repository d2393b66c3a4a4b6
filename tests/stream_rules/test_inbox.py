"""The inbox between Faust's fetcher and the rules worker: batches in the order fetched, at most
`most` at a time, after at most `within` seconds; bounded, with room again once taken."""

from __future__ import annotations

import asyncio

from stream_rules.inbox import Inbox


def test_a_batch_is_taken_whole_at_once_and_in_the_order_fetched() -> None:
    async def main() -> tuple[list[int], list[int], list[int], float]:
        inbox: Inbox[int] = Inbox(("vitals.readings",), limit=100)
        for offset in range(25):
            inbox.put(offset)
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await inbox.take(10, within=30.0)  # 10 wait: no waiting at all
        second = await inbox.take(10, within=30.0)
        waited = loop.time() - started
        rest = await inbox.take(10, within=0.05)  # 5 wait: returned after `within`
        return first, second, rest, waited

    first, second, rest, waited = asyncio.run(main())
    assert (first, second, rest) == (list(range(10)), list(range(10, 20)), list(range(20, 25)))
    assert waited < 30.0


def test_a_take_waits_for_the_first_record_then_for_a_whole_batch_or_the_time() -> None:
    async def main() -> list[int]:
        inbox: Inbox[int] = Inbox(("vitals.readings",), limit=100)
        taking = asyncio.ensure_future(inbox.take(3, within=60.0))
        await asyncio.sleep(0.01)
        assert not taking.done()  # nothing fetched yet
        inbox.put(1)
        await asyncio.sleep(0.01)
        assert not taking.done()  # one of three, and 60 s to wait for the rest
        inbox.put(2)
        inbox.put(3)  # a whole batch: taken at once
        return await asyncio.wait_for(taking, 30.0)

    assert asyncio.run(main()) == [1, 2, 3]


def test_a_full_inbox_makes_the_fetcher_wait_until_a_batch_is_taken() -> None:
    async def main() -> None:
        inbox: Inbox[int] = Inbox(("vitals.readings",), limit=4)
        for offset in range(4):
            inbox.put(offset)
        assert inbox.full and len(inbox) == 4
        room = asyncio.ensure_future(inbox.room())
        await asyncio.sleep(0.01)
        assert not room.done()
        assert await inbox.take(2, within=1.0) == [0, 1]
        await asyncio.wait_for(room, 30.0)
        assert not inbox.full and len(inbox) == 2
        assert await inbox.take(5, within=0.01) == [2, 3]
        assert len(inbox) == 0
        waiting = asyncio.ensure_future(inbox.take(1, within=0.01))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # empty: waits for a record however long
        waiting.cancel()

    asyncio.run(main())
