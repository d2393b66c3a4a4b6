"""What the rules worker's fetch loop does with each record: an input record goes into the
inbox whatever its offset (the worker's positions decide; Faust's filter undid seeks back),
a changelog record goes to Faust's conductor behind Faust's own filter. The consumer is a
stand-in for the few parts of Faust's consumer the loop uses; `test_worker*.py` run the loop
on a real broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from stream_rules.faust_app import FETCH_MAX_WAIT_MS, INPUTS, new_app
from stream_rules.fetcher import drain_into
from stream_rules.inbox import Inbox
from vitals.settings import Settings

READINGS, CHANGELOG = TP(INPUTS[0], 2), TP("vitals-rules-patient-state-changelog", 2)


@dataclass
class Message:
    tp: TP
    offset: int

    @property
    def topic(self) -> str:
        return self.tp.topic


@dataclass
class StandInConsumer:
    """Hands out `fetches` one per `getmany`, then stops."""

    fetches: list[list[Message]]
    delivered: list[Message] = field(default_factory=list)
    _read_offset: defaultdict[TP, int | None] = field(
        default_factory=lambda: defaultdict(lambda: None))
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    suspend_flow: asyncio.Event = field(default_factory=asyncio.Event)
    consumer_stopped_errors: tuple[type[BaseException], ...] = (ConnectionError,)
    transport: Any = field(default_factory=lambda: SimpleNamespace(
        app=SimpleNamespace(should_stop=False)))

    async def callback(self, message: Message) -> None:
        self.delivered.append(message)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for message in self.fetches.pop(0):
            yield message.tp, message
        if not self.fetches:
            self._stopped.set()

    async def wait_first(self, *coros: Coroutine[Any, Any, Any]) -> None:
        tasks = [asyncio.ensure_future(coro) for coro in coros]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()


def drain(fetches: list[list[Message]], limit: int = 10_000
          ) -> tuple[list[Message], StandInConsumer]:
    async def main() -> tuple[list[Message], StandInConsumer]:
        consumer = StandInConsumer(fetches)
        inbox: Inbox[Message] = Inbox(INPUTS, limit)
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        await asyncio.wait_for(drain_into(consumer, inbox, fetcher), 60)  # type: ignore[arg-type]
        return inbox.records, consumer

    return asyncio.run(main())


def test_after_a_seek_back_the_input_records_come_again_and_the_changelog_is_filtered() -> None:
    # records fetched before the seek went through (5901..5950), then the seek back to 5107:
    # Faust's own filter dropped 5107..5950
    before = [Message(READINGS, offset) for offset in range(5901, 5951)]
    again = [Message(READINGS, offset) for offset in range(5107, 5200)]
    changelog = [Message(CHANGELOG, offset) for offset in (40, 39, 41)]
    inbox, consumer = drain([before, changelog[:1], again, changelog[1:]])
    assert inbox == before + again
    assert consumer.delivered == [changelog[0], changelog[2]]  # 39 < 40: Faust's filter
    assert consumer._read_offset[CHANGELOG] == 41 and consumer._read_offset[READINGS] is None


def test_a_full_inbox_waits_and_a_flow_suspension_ends_the_wait() -> None:
    """Kafka keeps what the inbox has no room for; a rebalance (flow suspended) must not wait
    for the worker to take a batch."""
    async def main() -> tuple[list[Message], bool]:
        fetched = [Message(READINGS, offset) for offset in range(5)]
        consumer = StandInConsumer([fetched])
        inbox: Inbox[Message] = Inbox(INPUTS, 3)
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        loop = asyncio.ensure_future(drain_into(consumer, inbox, fetcher))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        waited = not loop.done() and len(inbox) == 3
        consumer.suspend_flow.set()
        await asyncio.wait_for(loop, 30)
        return inbox.records, waited

    records, waited = asyncio.run(main())
    assert waited and [m.offset for m in records] == [0, 1, 2, 3, 4]


def test_the_consumer_puts_inputs_in_the_inbox_from_its_creation(tmp_path: Path) -> None:
    """Not from the first rebalance: a worker with states to restore starts Faust's fetcher to
    read the changelog before then (issue #17: a change made there was too late)."""
    settings = Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    app = new_app(settings)
    consumer = app.consumer
    drain_messages = consumer._drain_messages  # type: ignore[attr-defined]  # what Faust's fetcher calls
    assert isinstance(drain_messages, partial)
    assert drain_messages.func is drain_into
    assert drain_messages.args == (consumer, app.inbox)
    assert app.inbox.topics == frozenset(INPUTS)


def test_the_consumer_waits_at_most_fetch_max_wait_ms_for_records(tmp_path: Path) -> None:
    """Faust asks the broker to hold an empty fetch for 1,500 ms, and tansu does not answer it
    when records arrive: the worker's aiokafka consumer is made with FETCH_MAX_WAIT_MS, which
    its fetcher reads when it starts."""
    settings = Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    app = new_app(settings)

    async def made() -> Any:  # aiokafka makes its consumer only inside an event loop
        return app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]

    consumer = asyncio.run(made())
    assert FETCH_MAX_WAIT_MS < 1500
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
    assert consumer._group_id == app.conf.id  # Faust's own consumer otherwise
