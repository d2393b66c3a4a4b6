"""The store at the edge: every call the service makes reaches SQLite on the one store thread,
the event loop keeps answering while that thread waits, intents are committed before they are
sent, and the SQLite store implements the whole interface."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sqlite3
import threading
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from alerting import store as interface
from alerting.api import make_app
from alerting.notify.base import Facts, Notifier, Outcome
from alerting.store.sqlite import SqliteStore
from alerting.store.thread import THREAD_NAME, StoreThread
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings

ALICE = {"Authorization": "Bearer token-alice-0123456789"}


async def serve(core) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(core))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def test_every_statement_of_the_service_paths_runs_on_the_store_thread(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        clock = Clock()
        core, dispatcher = build(make_settings(tmp_path, receiver), clock)
        threads: set[str] = set()
        statements: list[str] = []

        def traced(sql: str) -> None:
            threads.add(threading.current_thread().name)
            statements.append(sql)

        core.store.db.set_trace_callback(traced)
        runner, base = await serve(core)
        stop = asyncio.Event()
        sending = asyncio.create_task(dispatcher.run(stop))
        # the consumer's path, the ticker's, the dispatcher's and the API's
        verdict = await core.off_loop(core.process, event())
        assert verdict.outcome == "paged"
        await asyncio.to_thread(receiver.wait, 1, 60)  # sent by the running dispatcher
        clock.advance(10)
        assert await core.off_loop(core.tick) == 1
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/alerts", headers=ALICE) as response:
                [alert] = (await response.json())["alerts"]
            async with http.post(f"{base}/alerts/{alert['incident_id']}/ack",
                                 headers=ALICE) as response:
                assert (await response.json())["state"] == "acknowledged"
            async with http.post(f"{base}/silences", headers=ALICE, json={
                    "patient_id": "P002", "minutes": 5, "reason": "device swap"}) as response:
                assert response.status == 201
            async with http.get(f"{base}/page/alerts", headers=ALICE) as response:
                assert "P001" in await response.text()
            async with http.get(f"{base}/audit.csv", headers=ALICE) as response:
                assert "acknowledged" in await response.text()
        await dispatcher.drain()
        stop.set()
        await sending
        await runner.cleanup()
        await dispatcher.close()
        assert any(sql.startswith("COMMIT") for sql in statements)
        assert threads == {f"{THREAD_NAME}_0"}, threads  # never the event loop's thread
        core.close()

    asyncio.run(scenario())


def test_the_loop_answers_while_the_store_thread_waits(tmp_path: Path,
                                                       receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, dispatcher = build(make_settings(tmp_path, receiver), Clock())
        runner, base = await serve(core)
        held, release = threading.Event(), threading.Event()

        def slow_disk() -> bool:  # as a commit that waits for the disk
            held.set()
            return release.wait(60)  # only a broken (blocking) loop would wait this out

        holding = asyncio.ensure_future(core.off_loop(slow_disk))
        await asyncio.to_thread(held.wait)
        queued = asyncio.ensure_future(core.off_loop(core.process, event()))
        async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as response:
            assert response.status == 200  # the API answered while the store was busy
        assert not queued.done()  # the event waits its turn behind the slow job
        release.set()
        assert await holding is True
        assert (await queued).outcome == "paged"
        await dispatcher.drain()
        assert len(receiver.pd("trigger")) == 1
        await runner.cleanup()
        await dispatcher.close()
        core.close()

    asyncio.run(scenario())


class CheckingCommitted(Notifier):
    """Wraps a notifier; before each send, reads the intent through a second connection, which
    sees only what is committed."""

    def __init__(self, inner: Notifier, database: Path) -> None:
        self.inner, self.database = inner, database
        self.channel = inner.channel
        self.seen: list[tuple[int, Any]] = []

    def request(self, action: str, facts: Facts, address: str) -> dict[str, Any]:
        return self.inner.request(action, facts, address)

    async def send(self, request: dict[str, Any], delivery_id: int) -> Outcome:
        with contextlib.closing(sqlite3.connect(self.database)) as other:
            row = other.execute("SELECT action, status FROM outbox WHERE id=?",
                                (delivery_id,)).fetchone()
        self.seen.append((delivery_id, row))
        return await self.inner.send(request, delivery_id)

    async def close(self) -> None:
        await self.inner.close()


def test_intents_are_committed_before_anything_is_sent(tmp_path: Path,
                                                       receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, dispatcher = build(make_settings(tmp_path, receiver), Clock())
        checking = CheckingCommitted(core.notifiers["pagerduty"],
                                     Path(core.store.location()))
        core.notifiers["pagerduty"] = checking  # type: ignore[index]
        stop = asyncio.Event()
        sending = asyncio.create_task(dispatcher.run(stop))
        await core.off_loop(core.process, event())
        await asyncio.to_thread(receiver.wait, 1, 60)
        incident = await core.off_loop(core.ack, "P001/fever/1795000000000", "bob")
        await asyncio.to_thread(receiver.wait, 2, 60)
        await core.off_loop(core.resolve, incident.id, "bob")
        await asyncio.to_thread(receiver.wait, 3, 60)
        stop.set()
        await sending
        await dispatcher.close()
        assert [row for _, row in checking.seen] == [
            ("trigger", "pending"), ("acknowledge", "pending"), ("resolve", "pending")]
        core.close()

    asyncio.run(scenario())


def test_the_sqlite_store_implements_the_whole_interface() -> None:
    def members(cls: type) -> dict[str, inspect.Signature]:
        return {name: inspect.signature(value) for name, value in vars(cls).items()
                if callable(value) and not name.startswith("_")}

    wanted: dict[str, inspect.Signature] = {}
    for part in interface.Store.__mro__:
        if part.__module__ == interface.__name__:
            wanted.update(members(part))
    assert {"alert", "tx", "add_intent", "next_pending", "add_silence", "audit",
            "trends", "close"} <= set(wanted)
    for name, signature in wanted.items():
        implemented = getattr(SqliteStore, name, None)
        assert implemented is not None, f"SqliteStore lacks {name}"
        assert list(inspect.signature(implemented).parameters) == list(
            signature.parameters), name


def test_the_store_thread_runs_jobs_in_order_and_calls_from_itself_in_place() -> None:
    thread = StoreThread()
    order: list[int] = []
    assert thread.call(lambda: thread.call(lambda: order.append(1) or thread.on_it())) is True
    assert not thread.on_it()

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(thread.run(order.append, n) for n in range(2, 6)))

    asyncio.run(scenario())
    assert order == [1, 2, 3, 4, 5]
    thread.close()


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    with contextlib.suppress(RuntimeError), store.tx():
        store.audit(1, "received", patient_id="P001")
        with store.tx():  # nested: part of the outer transaction
            store.audit(2, "page", patient_id="P001")
        raise RuntimeError("a stage failed")
    assert store.audit_rows() == []
    with store.tx():
        store.audit(3, "received", patient_id="P001")
    assert [row["event"] for row in store.audit_rows()] == ["received"]
    store.close()


def test_an_audit_table_without_the_source_column_gets_it_at_open(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = sqlite3.connect(state / "alerting.sqlite3")  # the audit table of the last version
    old.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT "
                "NULL, event TEXT NOT NULL, patient_id TEXT, incident_id TEXT, alert_id TEXT, "
                "actor TEXT, channel TEXT, target TEXT, status TEXT, detail TEXT)")
    old.execute("INSERT INTO audit (at, event, channel, target, detail) VALUES "
                "(1, 'request', 'http', '10.0.0.7', 'GET /alerts from 10.0.0.7')")
    old.commit()
    old.close()
    for _ in range(2):  # the second open finds the column there and adds nothing
        store = SqliteStore(state)
        with store.tx():
            store.audit(2, "read", channel="http", source="10.0.0.8", detail="GET /alerts")
        rows = store.audit_rows()
        store.close()
    assert [(r["target"], r["source"]) for r in rows] == [
        ("10.0.0.7", None), (None, "10.0.0.8"), (None, "10.0.0.8")]  # old rows kept as they were
    assert set(rows[0]) == set(interface.AUDIT_FIELDS)
