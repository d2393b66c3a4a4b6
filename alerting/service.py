"""`vitals alerting`: wiring. The Kafka consumer, the escalation ticker (which also watches the
canary's round trips), the outbox dispatcher, the dead-man's switch and the nurses' HTTP API
share one asyncio loop; the store is reached only on its own thread (`StoreThread`), so that a
commit waiting for the disk or the database never holds up the loop.

The store is SQLite under VITALS_STATE_DIR (one instance), or PostgreSQL at
VITALS_ALERTING_DB_URL, shared by two or more instances: every instance serves the API, and the
one holding the lease (`alerting.leader`) consumes, escalates and sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable

import psycopg
from aiohttp import web

from alerting.api import make_app, make_runner
from alerting.consumer import AlertConsumer
from alerting.core import Alerting, Clock
from alerting.deadman import DeadMan
from alerting.dispatch import Dispatcher
from alerting.leader import Leadership, Lease, Sole
from alerting.notify.base import Notifier
from alerting.notify.email import Email
from alerting.notify.pagerduty import PagerDuty
from alerting.notify.webhook import Webhook
from alerting.oncall import OnCall, load_oncall
from alerting.selfalert import page_operators, resolve_operators
from alerting.store import Store
from alerting.store.postgres import PostgresStore
from alerting.store.sqlite import SqliteStore
from alerting.store.state_dir import StateLock, StoreError, problem
from alerting.store.thread import StoreThread
from vitals import topics
from vitals.kafka import declare_topics
from vitals.patients import PatientRegistry, load_patients
from vitals.settings import ConfigError, Settings, parse_hostport, redact

log = logging.getLogger(__name__)


class AlertingDown(Exception):
    """A task died (the store failed, or a bug) after the operators were paged: one line."""


def load_config(settings: Settings) -> tuple[PatientRegistry, OnCall]:
    """Both files, validated before anything connects (one-line ConfigError)."""
    patients = load_patients(settings.patients)
    oncall = load_oncall(settings.oncall, {patient.team for patient in patients})
    return patients, oncall


def webhook_secrets(oncall: OnCall) -> dict[str, str]:
    """Each webhook target's own secret (URL -> secret), from the environment variable its
    `secret_env` names; ConfigError in one line if that variable is unset or empty."""
    out: dict[str, str] = {}
    for name, target in oncall.targets.items():
        env = getattr(target, "secret_env", None)
        if not env or not target.webhook:
            continue
        secret = os.environ.get(env)
        if not secret:
            raise ConfigError(f"VITALS_ONCALL: targets.{name}.secret_env: {env} is not set")
        out[target.webhook] = secret
    return out


def notifiers(settings: Settings, oncall: OnCall) -> dict[str, Notifier]:
    """A notifier per configured channel (e-mail only with VITALS_SMTP_URL)."""
    out: dict[str, Notifier] = {"pagerduty": PagerDuty(settings.pagerduty_url),
                                "webhook": Webhook(settings.webhook_secret,
                                                   webhook_secrets(oncall))}
    if settings.smtp_url:
        out["email"] = Email(settings.smtp_url, oncall.paging.email_from)
    return out


def open_store(settings: Settings) -> Store:
    """PostgreSQL at VITALS_ALERTING_DB_URL if set, else SQLite under VITALS_STATE_DIR."""
    if settings.alerting_db_url:
        return PostgresStore(settings.alerting_db_url)
    return SqliteStore(settings.state_dir)


def leadership(settings: Settings) -> Leadership:
    """A lease shared through PostgreSQL, or the sole instance (SQLite)."""
    if settings.alerting_db_url:
        return Lease(settings.alerting_db_url, settings.alerting_lease_s)
    return Sole()


def build(settings: Settings, clock: Clock = time.time,
          leader: Leadership | None = None) -> tuple[Alerting, Dispatcher]:
    """The core and the dispatcher, sharing one store opened on its own thread; both act only
    while `leader` says this instance leads (always, by default)."""
    patients, oncall = load_config(settings)
    thread = StoreThread()
    try:
        store = thread.call(open_store, settings)  # connected on its own thread
    except StoreError as exc:  # corrupt, locked, unreachable: one line, exit status 2
        thread.close()
        raise ConfigError(str(exc)) from None
    channels = notifiers(settings, oncall)
    public = oncall.paging.public_url or f"http://{settings.alerting_addr}"
    core = Alerting(store, oncall, patients, channels, clock, public, settings.webhook_url,
                    thread=thread, canary_patient=settings.canary_patient,
                    canary_late_s=settings.canary_late_s)
    dispatcher = Dispatcher(store, channels, core.now, thread)
    core.wake = dispatcher.wake
    if leader is not None:
        core.leading = dispatcher.may_send = leader.leading
    if settings.webhook_url and not settings.webhook_secret:
        log.warning("VITALS_WEBHOOK_SECRET is not set: webhook bodies go out unsigned")
    unsigned = sorted(name for name, target in oncall.targets.items() if target.webhook
                      and not settings.webhook_secret and not getattr(target, "secret_env",
                                                                       None))
    if unsigned:
        log.warning("webhook targets without a secret (secret_env or VITALS_WEBHOOK_SECRET) "
                    "get unsigned requests: %s", ", ".join(unsigned))
    if settings.smtp_url and settings.smtp_url.startswith("smtp+insecure://"):
        log.warning("VITALS_SMTP_URL is smtp+insecure://: e-mail (and SMTP credentials) go out "
                    "in clear; for a test server on loopback only")
    if "email" not in channels and any(target.email for target in oncall.targets.values()):
        log.warning("targets have e-mail addresses but VITALS_SMTP_URL is not set")
    return core, dispatcher


async def serve(settings: Settings, stop: asyncio.Event,
                on_ready: Callable[[Alerting], None] | None = None) -> None:
    """The service until `stop`; `on_ready(core)` once the API serves and the tasks run."""
    try:
        lock = StateLock(settings.state_dir)  # one instance per state directory
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"VITALS_STATE_DIR ({settings.state_dir}): {exc.strerror or exc}"
                          ) from None
    try:
        await _serve(settings, stop, on_ready)
    finally:
        lock.release()


def _reason(core: Alerting, exc: BaseException) -> str:
    """One line for a task that died: the database and its problem, or the error."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sqlite3.Error):
            return problem(core.store.location(), cause)  # type: ignore[arg-type]
        if isinstance(cause, StoreError):
            return str(cause)
        if isinstance(cause, psycopg.Error):
            first = str(cause).strip().splitlines()
            return f"alerting state ({core.store.location()}): " \
                   f"{redact(first[0]) if first else type(cause).__name__}"
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {exc}"


async def _serve(settings: Settings, stop: asyncio.Event,
                 on_ready: Callable[[Alerting], None] | None) -> None:
    leader = leadership(settings)
    core, dispatcher = build(settings, leader=leader)
    pending = await core.off_loop(core.store.pending_count)
    if pending:
        log.info("%d notification intents are not sent yet; the leader sends them", pending)
    await asyncio.get_running_loop().run_in_executor(
        None, declare_topics, settings.kafka,
        (topics.ALERTS, topics.TRENDS, topics.REPORTS, topics.CANARY), settings.kafka_partitions)
    deadman = (DeadMan(settings.deadman_url, settings.deadman_every_s,
                       lambda: core.leading() and core.watch.on_time(core.now()))
               if settings.deadman_url else None)
    runner = make_runner(make_app(core, stall_s=settings.stall_s, deadman=deadman))
    await runner.setup()
    host, port = parse_hostport(settings.alerting_addr)
    await web.TCPSite(runner, host, port).start()
    log.info("alerting API on http://%s:%d (state in %s)", host, port, core.store.location())

    async def ticker() -> None:
        while not stop.is_set():
            await core.off_loop(core.tick if core.leading() else core.follow)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    consumed = Consumed()
    jobs = [leader.run(stop), consume_while_leading(settings, core, stop, consumed),
            dispatcher.run(stop), ticker()]
    if deadman is not None:
        jobs.append(deadman.run(stop))
    tasks = [asyncio.create_task(job) for job in jobs]
    if on_ready:
        on_ready(core)
    # Serving again: a self-alert an earlier run left open is resolved once this run has
    # served a while (off the tasks' critical path: PagerDuty being slow must not hold up the
    # service; cancelled with them, it leaves the marker for the next start).
    resolving = asyncio.create_task(resolve_when_up(
        core.oncall.paging.self_alert_resolve_after_min * 60, settings))
    stopping = asyncio.create_task(stop.wait())
    down = ""
    try:
        # A task that dies (a broken database, a bug) stops the service rather than leaving it
        # up and deaf: the operators are paged, the supervisor restarts it, and uncommitted
        # events are read again.
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = next((task for task in done if task is not stopping and task.exception()),
                      None)
        if failed is not None:
            stop.set()
            error = failed.exception()
            assert error is not None
            down = _reason(core, error)
            log.debug("the task that failed", exc_info=error)
            # A resolve still in flight must not reach PagerDuty after the new trigger.
            resolving.cancel()
            await asyncio.gather(resolving, return_exceptions=True)
            paged = await page_operators(core.oncall, settings.pagerduty_url, down,
                                         state_dir=settings.state_dir)
            down += ("; operators paged" if paged else "; paging the operators FAILED")
    finally:
        stop.set()
        stopping.cancel()
        resolving.cancel()  # unfinished: the marker stays, the next start resolves
        # The tasks watch `stop`: the consumer finishes (and commits) the batch it holds.
        finished, late = await asyncio.wait(tasks, timeout=5)
        for task in late:
            task.cancel()
        for task in finished:
            # After one task failed, others may fail the same way: the one line below says
            # why; their exceptions are taken here, not printed by asyncio as tracebacks.
            if not task.cancelled() and task.exception() is not None and down:
                log.debug("another task failed too", exc_info=task.exception())
        # After a store failure these may fail too; the one line below says why. A leader
        # that gave its lease up leaves what is pending to the next one.
        with contextlib.suppress(Exception) if down else contextlib.nullcontext():
            await dispatcher.drain(5)
        await runner.cleanup()
        await dispatcher.close()
        with contextlib.suppress(Exception) if down else contextlib.nullcontext():
            core.close()
        log.info("alerting stopped: %d alert events, %d duplicates, %d notifications sent",
                 consumed.events, core.duplicates, dispatcher.sent)
    if down:
        raise AlertingDown(f"{down}; exiting for the supervisor to restart it")


class Consumed:
    """Alert events read, over every term of leadership, for the log line at the stop."""

    events = 0


async def consume_while_leading(settings: Settings, core: Alerting, stop: asyncio.Event,
                                consumed: Consumed) -> None:
    """The Kafka consumer, in each term this instance leads, until `stop`. A new term joins
    the group afresh: what the last leader read but did not commit is read again (and
    recognised as duplicates)."""
    while not stop.is_set():
        if not core.leading():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
            continue
        await core.off_loop(core.take_over)
        term = asyncio.Event()
        watcher = asyncio.create_task(_end_term(core, stop, term))
        consumer = AlertConsumer(settings.kafka, core)
        try:
            await consumer.run(term)
        finally:
            term.set()
            watcher.cancel()
            consumer.close()
            consumed.events += consumer.events


async def _end_term(core: Alerting, stop: asyncio.Event, term: asyncio.Event) -> None:
    """Set `term` once the service stops or this instance no longer leads."""
    while not stop.is_set() and core.leading():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    term.set()


async def resolve_when_up(after_s: float, settings: Settings) -> None:
    """Resolve an earlier run's self-alert once this run has served `after_s` seconds."""
    await asyncio.sleep(after_s)
    await resolve_operators(settings.state_dir, settings.pagerduty_url)


def run(settings: Settings, stop: threading.Event,
        on_ready: Callable[[Alerting], None] | None = None) -> None:
    """For the CLI: until `stop` (SIGINT/SIGTERM) is set."""

    async def main() -> None:
        astop = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(astop.set)),
                         daemon=True).start()
        await serve(settings, astop, on_ready)

    try:
        asyncio.run(main())
    except AlertingDown as exc:
        print(f"vitals: alerting stopped: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
