"""What Faust's fetcher does with each record it fetches, for the rules worker: a record of an
input topic goes into the worker's `Inbox` (one list append), any other (the state changelog
Faust restores) goes to Faust's conductor as before.

Faust's own loop (`Consumer._drain_messages`, faust-streaming 0.15) races every record's
delivery against a flow suspension (two tasks per record) and drops a record whose offset is
below the last one it delivered for its partition. For the inputs neither is wanted: the
race guards records of partitions being revoked, which the worker drops itself (a record of
an earlier generation, or of a partition not held: `stream_rules.positions`), and the filter
undid the worker's seeks back to its states' positions (a restarted worker's partitions
stalled: issue #17). The changelog keeps both, as Faust has them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import ConsumerT
from mode import ServiceT

from stream_rules.inbox import Inbox

__all__ = ["drain_into"]

log = logging.getLogger(__name__)

YIELD_EVERY = 1000  # records: a large fetch must not keep the event loop to itself


async def drain_into(consumer: ConsumerT, inbox: Inbox[Any], fetcher: ServiceT) -> None:
    """Faust's fetch loop with the input records put into `inbox`. Runs in place of
    `consumer._drain_messages(fetcher)` until the consumer or the fetcher stops."""
    c: Any = consumer  # the private parts of Faust's consumer this loop shares with Faust's
    callback, getmany = c.callback, c.getmany
    consumer_stopped, fetcher_stopped = c._stopped.is_set, fetcher._stopped.is_set  # type: ignore[attr-defined]
    read_offset = c._read_offset  # Faust's filter, for the changelog only
    inputs, put = inbox.topics, inbox.put
    since_yield = 0
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            await asyncio.sleep(0)  # getmany can return at once, again and again
            async for tp, message in getmany(timeout=1.0):
                since_yield += 1
                if since_yield >= YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
                if tp.topic in inputs:
                    put(message)
                    if inbox.full:  # Kafka keeps the rest; a rebalance must not wait
                        await c.wait_first(inbox.room(), c.suspend_flow.wait())
                    continue
                mark = read_offset[tp]
                if mark is None or message.offset >= mark:
                    await c.wait_first(callback(message), c.suspend_flow.wait())
                    read_offset[tp] = message.offset
    except c.consumer_stopped_errors:
        if c.transport.app.should_stop:
            log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if c.transport.app.should_stop:
            return
        raise
