"""The rules worker's batch path past Faust's per-record path (issue #15).

Faust hands each fetched record to its conductor, a channel queue, a stream and an iterator:
about 11 event-loop callbacks per record, four times the engine's own cost (bench/README.md,
"Where the worker's time goes"). The worker judges records in batches anyway, so the records
of its input topics go from the fetcher straight into an `Inbox`, a plain list, and the worker
takes them from there a batch at a time (`stream_rules.fetcher` puts them in). Which of them
to judge is not decided here: `stream_rules.positions` does (generation, partition held,
offset), as it did for Faust's events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from typing import Generic, TypeVar

__all__ = ["Inbox"]

Record = TypeVar("Record")  # a Faust `Message` in the worker


class Inbox(Generic[Record]):
    """Records fetched and not yet taken, in the order fetched; bounded: when `limit` wait,
    the fetcher waits for room (Kafka keeps the rest)."""

    def __init__(self, topics: Collection[str], limit: int) -> None:
        self.topics = frozenset(topics)  # the topics whose records come here
        self.limit = limit
        self.records: list[Record] = []
        self._arrived = asyncio.Event()  # set while any record waits
        self._room = asyncio.Event()  # set while fewer than `limit` wait
        self._room.set()
        self._enough = asyncio.Event()  # set while a whole batch waits
        self._batch = limit

    def __len__(self) -> int:
        return len(self.records)

    def put(self, record: Record) -> None:
        """One record fetched (synchronous: the fetcher's only cost per record)."""
        records = self.records
        records.append(record)
        if len(records) == 1:
            self._arrived.set()
        if len(records) >= self._batch:
            self._enough.set()
        if len(records) >= self.limit:
            self._room.clear()

    @property
    def full(self) -> bool:
        return len(self.records) >= self.limit

    async def room(self) -> None:
        """Until fewer than `limit` records wait."""
        await self._room.wait()

    async def take(self, most: int, within: float) -> list[Record]:
        """The next batch: waits for a first record, then up to `within` seconds for `most`;
        returns at most `most` records, oldest first."""
        await self._arrived.wait()
        if len(self.records) < most:
            self._batch = most
            self._enough.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), within)
        batch, self.records = self.records[:most], self.records[most:]
        self._settle()
        return batch

    def _settle(self) -> None:
        waiting = len(self.records)
        if not waiting:
            self._arrived.clear()
        if waiting < self._batch:
            self._enough.clear()
        if waiting < self.limit:
            self._room.set()
