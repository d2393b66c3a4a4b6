"""The alerting state against faults and other users of the machine: owner-only files, one
instance per state directory, a corrupt, locked or full database said in one line, and a store
that fails at run time pages the operators and exits instead of staying up deaf."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from alerting.selfalert import DEDUP_KEY, MARKER_NAME, page_operators, remember, resolve_operators
from alerting.service import _reason, resolve_when_up
from alerting.store.sqlite import SqliteStore
from alerting.store.state_dir import FILE_NAME, LOCK_NAME, StateLock, StoreError
from harness import servers, services
from harness.command import vitals
from harness.pagerduty import PagerDutyStandIn
from tests.alerting.support import Clock, build, event, make_settings
from tests.alerting.test_service import env_of, produce, start
from tests.support import wait_for
from vitals.settings import ConfigError, Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_are_the_owners_only_even_under_a_lax_umask(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    old = os.umask(0o002)  # a umask that would make them group-writable and world-readable
    try:
        settings = make_settings(tmp_path, receiver)
        lock = StateLock(settings.state_dir)

        async def scenario() -> None:
            core, d = build(settings, Clock())
            core.handle(event())  # the outbox now holds a routing key
            await d.drain()
            state = settings.state_dir
            files = [state / FILE_NAME, state / (FILE_NAME + "-wal"),
                     state / (FILE_NAME + "-shm"), state / LOCK_NAME]
            for path in files:
                assert mode(path) == 0o600, (path, oct(mode(path)))
            assert mode(state) == 0o700
            assert sorted(p.name for p in state.iterdir()) == sorted(p.name for p in files)
            await d.close()
            core.close()

        asyncio.run(scenario())
        lock.release()
    finally:
        os.umask(old)


def test_an_existing_lax_state_directory_is_narrowed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / FILE_NAME).touch(mode=0o644)
    SqliteStore(state).close()
    assert (mode(state), mode(state / FILE_NAME)) == (0o700, 0o600)


def test_the_state_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = StateLock(tmp_path / "state")
    with pytest.raises(StoreError, match="another vitals alerting"):
        StateLock(tmp_path / "state")
    first.release()
    StateLock(tmp_path / "state").release()


@pytest.mark.slow
def test_a_second_alerting_on_the_same_state_directory_exits_at_start(
        tmp_path: Path, receiver: PagerDutyStandIn, kafka: servers.Server) -> None:
    settings = make_settings(tmp_path, receiver)
    env, log = env_of(settings, kafka), tmp_path / "alerting.log"
    first = start(env, log)
    try:
        other = {**env, "VITALS_ALERTING_ADDR": f"127.0.0.1:{servers.free_port()}"}
        r = subprocess.run(vitals("alerting"), env=other, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert str(settings.state_dir) in lines[0] and "another vitals alerting" in lines[0]
        assert first.alive()
        assert first.stop() == 0, first.tail(20)
    finally:
        first.kill()


def run_alerting(tmp_path: Path, receiver: PagerDutyStandIn, **kw: object
                 ) -> subprocess.CompletedProcess[str]:
    settings = make_settings(tmp_path, receiver)
    return subprocess.run(vitals("alerting"), env=services.environment(settings),
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          **kw)  # type: ignore[call-overload]


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_a_corrupt_database_stops_the_start_in_one_line(tmp_path: Path,
                                                        receiver: PagerDutyStandIn) -> None:
    db = tmp_path / "state" / FILE_NAME
    db.parent.mkdir()
    db.write_bytes(os.urandom(8192))
    line = one_line(run_alerting(tmp_path, receiver))
    assert str(db) in line and "corrupt" in line


def test_a_locked_database_stops_the_start_in_one_line(tmp_path: Path,
                                                       receiver: PagerDutyStandIn) -> None:
    db = tmp_path / "state" / FILE_NAME
    db.parent.mkdir()
    holder = sqlite3.connect(db, isolation_level=None)  # a rollback-journal database ...
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # ... that another process holds
    try:
        line = one_line(run_alerting(tmp_path, receiver))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(db) in line and "locked" in line


def test_a_disk_that_cannot_take_the_database_stops_the_start_in_one_line(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    # A file size limit (RLIMIT_FSIZE, no root needed) stands in for a full file system: the
    # new database cannot grow past 8 KiB. Python ignores SIGXFSZ, so the write fails.
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    line = one_line(run_alerting(tmp_path, receiver, preexec_fn=small_files))
    assert str(tmp_path / "state" / FILE_NAME) in line
    assert "disk full" in line and "I/O error" in line  # EFBIG: SQLite says "disk I/O error"


def test_a_full_database_at_run_time_pages_the_operators(tmp_path: Path,
                                                         receiver: PagerDutyStandIn) -> None:
    async def scenario() -> None:
        core, d = build(make_settings(tmp_path, receiver), Clock())
        pages = core.store.db.execute("PRAGMA page_count").fetchone()[0]
        core.store.db.execute(f"PRAGMA max_page_count={pages}")  # the disk is full now
        with pytest.raises(sqlite3.OperationalError, match="full") as caught:
            for i in range(1000):  # until a write needs a page more
                core.handle(event(start=1_795_000_000_000 + i, summary="x" * 500))
        reason = _reason(core, caught.value)
        assert str(core.store.location()) in reason and "full" in reason
        assert await page_operators(core.oncall, core_url(receiver), reason) == 1
        [page] = [b for b in receiver.pd("trigger") if b["dedup_key"] == "vitals-alerting-down"]
        payload = page["payload"]
        assert (payload["source"], payload["class"], payload["severity"]) == (
            "vitals", "pipeline", "critical")
        assert "cannot page patients' alerts" in payload["summary"]
        # no operators: team in this on-call file: every team's first step (the ward nurse)
        assert page["routing_key"] in ("key-alice", "key-bob")
        await d.close()

    asyncio.run(scenario())


def core_url(receiver: PagerDutyStandIn) -> str:
    return f"{receiver.base_url}/v2/enqueue"


def fail_the_store(settings: Settings, kafka: servers.Server, env: dict[str, str],
                   log: Path) -> services.ServiceProcess:
    """Alerting started, its database then held by another writer, an event sent: the
    process, once it has exited with status 1."""
    proc = start(env, log)
    holder = sqlite3.connect(settings.state_dir / FILE_NAME, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the store fails: another writer holds it
        produce(kafka.port, event())
        wait_for(lambda: not proc.alive(), 60, "alerting to exit")
        assert proc.proc.returncode == 1, proc.tail(20)
    finally:
        holder.close()
        proc.kill()
    return proc


@pytest.mark.slow
def test_a_store_failure_at_run_time_exits_and_pages_the_operators(
        tmp_path: Path, receiver: PagerDutyStandIn, kafka: servers.Server) -> None:
    settings = make_settings(tmp_path, receiver)
    env, log = env_of(settings, kafka), tmp_path / "alerting.log"
    text = fail_the_store(settings, kafka, env, log).output()
    assert "Traceback" not in text, text
    [line] = [x for x in text.splitlines() if x.startswith("vitals: alerting stopped")]
    assert str(settings.state_dir / FILE_NAME) in line and "locked" in line
    assert "operators paged" in line
    [page] = receiver.pd("trigger")
    assert page["payload"]["source"] == "vitals" and page["payload"]["class"] == "pipeline"


def test_the_self_alert_is_remembered_and_resolved_at_the_keys_it_paged(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    settings = make_settings(tmp_path, receiver)
    lock = StateLock(settings.state_dir)  # creates the state directory (0700)
    marker = settings.state_dir / MARKER_NAME

    async def scenario() -> None:
        core, d = build(settings, Clock())
        assert await resolve_operators(settings.state_dir, core_url(receiver)) == 0  # none
        assert await page_operators(core.oncall, core_url(receiver), "store failed",
                                    state_dir=settings.state_dir) == 1
        [trigger] = receiver.pd("trigger")
        assert mode(marker) == 0o600
        assert json.loads(marker.read_text())["routing_keys"] == [trigger["routing_key"]]
        # the next start: the same dedup_key resolved at the same key, the marker gone
        assert await resolve_operators(settings.state_dir, core_url(receiver)) == 1
        [resolved] = receiver.pd("resolve")
        assert (resolved["dedup_key"], resolved["routing_key"]) == (
            DEDUP_KEY, trigger["routing_key"])
        assert not marker.exists()
        assert await resolve_operators(settings.state_dir, core_url(receiver)) == 0  # once
        assert len(receiver.pd("resolve")) == 1
        await d.close()
        core.close()

    asyncio.run(scenario())
    lock.release()


def test_a_resolve_that_pagerduty_could_not_take_is_tried_again_at_the_next_start(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    assert remember(state, ["key-sre"], "2026-11-30T12:00:00+00:00")
    for _ in range(3):  # every attempt answered 503
        receiver.respond(503, "busy")
    assert asyncio.run(resolve_operators(state, core_url(receiver))) == 0
    assert len(receiver.pd("resolve")) == 3
    assert json.loads((state / MARKER_NAME).read_text())["routing_keys"] == ["key-sre"]
    assert asyncio.run(resolve_operators(state, core_url(receiver))) == 1
    assert not (state / MARKER_NAME).exists()


def test_a_run_that_stops_before_it_has_served_a_while_leaves_the_self_alert_open(
        tmp_path: Path, receiver: PagerDutyStandIn) -> None:
    """A crash loop: each run dies before `self_alert_resolve_after_min`, so the operators'
    incident stays open; a run that lasts resolves it."""
    settings = make_settings(tmp_path, receiver)
    state = settings.state_dir
    state.mkdir(mode=0o700)
    assert remember(state, ["key-sre"], "2026-11-30T12:00:00+00:00")

    async def crash_then_last() -> None:
        early = asyncio.create_task(resolve_when_up(60, settings))
        await asyncio.sleep(0.2)
        early.cancel()  # the run died within its first minute
        await asyncio.gather(early, return_exceptions=True)
        assert receiver.pd("resolve") == [] and (state / MARKER_NAME).exists()
        await resolve_when_up(0.1, settings)  # this run lasted

    asyncio.run(crash_then_last())
    [resolved] = receiver.pd("resolve")
    assert resolved["routing_key"] == "key-sre" and not (state / MARKER_NAME).exists()


def test_a_marker_that_cannot_be_written_says_the_incident_must_be_resolved_by_hand(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_full)
    with caplog.at_level(logging.ERROR, logger="alerting.selfalert"):
        assert not remember(tmp_path, ["key-sre"], "2026-11-30T12:00:00+00:00")
    monkeypatch.undo()
    [line] = [r.getMessage() for r in caplog.records if r.name == "alerting.selfalert"]
    assert "resolved by hand" in line and DEDUP_KEY in line and "No space left" in line
    assert list(tmp_path.iterdir()) == []  # neither the marker nor its temporary file


@pytest.mark.slow
def test_the_self_alert_is_resolved_when_alerting_is_back(
        tmp_path: Path, receiver: PagerDutyStandIn, kafka: servers.Server) -> None:
    settings = make_settings(tmp_path, receiver)
    env, log = env_of(settings, kafka), tmp_path / "alerting.log"
    fail_the_store(settings, kafka, env, log)  # then the store is healthy again
    [trigger] = receiver.pd("trigger")
    assert trigger["dedup_key"] == DEDUP_KEY
    assert (settings.state_dir / MARKER_NAME).exists()
    again = start(env, tmp_path / "alerting-again.log")
    try:
        wait_for(lambda: bool(receiver.pd("resolve")), 60, "the self-alert's resolve")
        [resolved] = receiver.pd("resolve")
        assert (resolved["dedup_key"], resolved["routing_key"]) == (
            DEDUP_KEY, trigger["routing_key"])
        wait_for(lambda: not (settings.state_dir / MARKER_NAME).exists(), 30, "the marker gone")
        assert again.alive()
        assert again.stop() == 0, again.tail(20)
    finally:
        again.kill()


def test_the_self_alert_goes_to_the_operators_team_when_there_is_one(tmp_path: Path) -> None:
    import datetime as dt

    from alerting.oncall import load_oncall
    from alerting.selfalert import routing_keys

    body = ("targets:\n  nurse: {pagerduty: key-nurse}\n  sre: {pagerduty: key-sre}\n"
            "  sre2: {pagerduty: key-sre2}\nteams:\n"
            "  haem-a:\n    escalation:\n      - {after_min: 0, notify: [nurse]}\n"
            "  ops:\n    escalation:\n      - {after_min: 0, notify: [sre]}\n"
            "      - {after_min: 5, notify: [sre2]}\n")
    path = tmp_path / "oncall.yaml"
    path.write_text(body)
    now = dt.datetime.now(dt.UTC)
    assert routing_keys(load_oncall(path), now) == ["key-nurse", "key-sre"]  # every team
    path.write_text(body + "operators: ops\n")  # CONTRACT section 7
    assert routing_keys(load_oncall(path), now) == ["key-sre"]
    path.write_text(body + "operators: sre-team\n")
    with pytest.raises(ConfigError, match="operators: no team sre-team"):
        load_oncall(path)
