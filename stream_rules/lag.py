"""How many records of `vitals.readings` and `vitals.status` on this worker's partitions are
not judged yet: its work waiting, for `vitals_rules_pending` and `/healthz` (`vitals.progress`).

Per partition: Kafka's high watermark (the consumer learns it with every fetch, no request of
its own) minus the next offset to judge. That offset is the one after the last record judged
since the partition was assigned, or before any, the consumer's position (where it resumed from
the last commit). Committed offsets would not do: the worker commits only at checkpoints, up
to 30 s after judging. The count errs low, never high, so that a restart is never asked for
work that is done: a partition whose watermark is not known yet counts nothing, and neither
do records fetched but not judged on a partition nothing was judged on yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from faust.types import TP, ConsumerT, Message

log = logging.getLogger(__name__)

POSITION_TIMEOUT_S = 5.0  # a consumer that does not answer in this time: the count is unknown


class JudgedOffsets:
    """The next offset to judge per input partition, as the worker judges batches."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self._next: dict[TP, int] = {}
        self._last_ts: dict[TP, float] = {}  # the Kafka timestamp (s) of the last judged
        # the oldest time of what waits, as of the last `lag()`: the last judged record's on
        # the partitions where records wait (those after it are no older, give or take a
        # device's clock), so it errs old by at most the gap to the next record
        self.oldest_waiting: float | None = None

    def judged(self, messages: Iterable[Message]) -> None:
        """A batch was judged (records of one partition come in offset order)."""
        nxt = self._next
        last_ts = self._last_ts
        for message in messages:
            nxt[message.tp] = message.offset + 1
            last_ts[message.tp] = message.timestamp

    def forget(self) -> None:
        """Partitions were revoked: a partition assigned again resumes from its last commit,
        before what was judged here."""
        self._next.clear()
        self._last_ts.clear()

    async def lag(self, consumer: ConsumerT) -> int | None:
        """Records not judged yet on the assigned input partitions; None if the consumer
        cannot tell now (partitions moving)."""
        try:
            parts = [tp for tp in consumer.assignment() if tp.topic in self.topics]
            highs = {tp: consumer.highwater(tp) for tp in parts}
            unknown = [tp for tp in parts if tp not in self._next and highs[tp] is not None]
            positions = dict(zip(unknown, await asyncio.wait_for(
                asyncio.gather(*(consumer.position(tp) for tp in unknown)),
                POSITION_TIMEOUT_S), strict=True))
        except Exception as exc:
            # partitions moving (aiokafka asserts they are assigned), a consumer not started or
            # too slow: unknown now, asked again at the next look
            log.debug("consumer lag unknown now: %r", exc)
            return None
        total, oldest = 0, None
        for tp, high in highs.items():
            nxt = self._next.get(tp, positions.get(tp))
            if high is not None and nxt is not None and high > nxt:
                total += high - nxt
                at = self._last_ts.get(tp)
                if at is not None and (oldest is None or at < oldest):
                    oldest = at
        self.oldest_waiting = oldest
        return total
