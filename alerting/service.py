"""`vitals alerting`: wiring. The Kafka consumer, the escalation ticker, the outbox dispatcher
and the nurses' HTTP API share one asyncio loop; the store (one SQLite connection) is reached
only on its own thread (`StoreThread`), so that a commit waiting for the disk never holds up
the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from aiohttp import web

from alerting.api import make_app
from alerting.consumer import AlertConsumer
from alerting.core import Alerting, Clock
from alerting.dispatch import Dispatcher
from alerting.notify.base import Notifier
from alerting.notify.email import Email
from alerting.notify.pagerduty import PagerDuty
from alerting.notify.webhook import Webhook
from alerting.oncall import OnCall, load_oncall
from alerting.store.sqlite import SqliteStore
from alerting.store.thread import StoreThread
from vitals import topics
from vitals.kafka import declare_topics
from vitals.patients import PatientRegistry, load_patients
from vitals.settings import Settings, parse_hostport

log = logging.getLogger(__name__)


def load_config(settings: Settings) -> tuple[PatientRegistry, OnCall]:
    """Both files, validated before anything connects (one-line ConfigError)."""
    patients = load_patients(settings.patients)
    oncall = load_oncall(settings.oncall, {patient.team for patient in patients})
    return patients, oncall


def notifiers(settings: Settings, oncall: OnCall) -> dict[str, Notifier]:
    """A notifier per configured channel (e-mail only with VITALS_SMTP_URL)."""
    out: dict[str, Notifier] = {"pagerduty": PagerDuty(settings.pagerduty_url),
                                "webhook": Webhook(settings.webhook_secret)}
    if settings.smtp_url:
        out["email"] = Email(settings.smtp_url, oncall.paging.email_from)
    return out


def build(settings: Settings, clock: Clock = time.time) -> tuple[Alerting, Dispatcher]:
    """The core and the dispatcher, sharing one store opened on its own thread."""
    patients, oncall = load_config(settings)
    thread = StoreThread()
    store = thread.call(SqliteStore, settings.state_dir)  # the connection is made on its thread
    channels = notifiers(settings, oncall)
    public = oncall.paging.public_url or f"http://{settings.alerting_addr}"
    core = Alerting(store, oncall, patients, channels, clock, public, settings.webhook_url,
                    thread=thread)
    dispatcher = Dispatcher(store, channels, core.now, thread)
    core.wake = dispatcher.wake
    if settings.webhook_url and not settings.webhook_secret:
        log.warning("VITALS_WEBHOOK_SECRET is not set: webhook bodies go out unsigned")
    if "email" not in channels and any(target.email for target in oncall.targets.values()):
        log.warning("targets have e-mail addresses but VITALS_SMTP_URL is not set")
    return core, dispatcher


async def serve(settings: Settings, stop: asyncio.Event,
                on_ready: Callable[[Alerting], None] | None = None) -> None:
    """The service until `stop`; `on_ready(core)` once the API serves and the tasks run."""
    core, dispatcher = build(settings)
    pending = await core.off_loop(core.store.pending_count)
    if pending:
        log.info("%d notification intents were not sent before the last stop; sending now",
                 pending)
    await asyncio.get_running_loop().run_in_executor(
        None, declare_topics, settings.kafka_bootstrap, (topics.ALERTS, topics.TRENDS),
        settings.kafka_partitions)
    consumer = AlertConsumer(settings.kafka_bootstrap, core)
    runner = web.AppRunner(make_app(core), access_log=None)
    await runner.setup()
    host, port = parse_hostport(settings.alerting_addr)
    await web.TCPSite(runner, host, port).start()
    log.info("alerting API on http://%s:%d (state in %s)", host, port, core.store.location())

    async def ticker() -> None:
        while not stop.is_set():
            await core.off_loop(core.tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    tasks = [asyncio.create_task(job) for job in (consumer.run(stop), dispatcher.run(stop),
                                                   ticker())]
    if on_ready:
        on_ready(core)
    stopping = asyncio.create_task(stop.wait())
    try:
        # A task that dies (a bug, a broken database) stops the service rather than leaving it
        # up and deaf: the supervisor restarts it, and uncommitted events are read again.
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = next((task for task in done if task is not stopping and task.exception()),
                      None)
        if failed is not None:
            stop.set()
            raise RuntimeError("an alerting stage failed") from failed.exception()
    finally:
        stop.set()
        stopping.cancel()
        # The tasks watch `stop`: the consumer finishes (and commits) the batch it holds.
        _, late = await asyncio.wait(tasks, timeout=5)
        for task in late:
            task.cancel()
        await dispatcher.drain(5)
        await runner.cleanup()
        await dispatcher.close()
        consumer.close()
        core.close()
        log.info("alerting stopped: %d alert events, %d duplicates, %d notifications sent",
                 consumer.events, core.duplicates, dispatcher.sent)


def run(settings: Settings, stop: threading.Event,
        on_ready: Callable[[Alerting], None] | None = None) -> None:
    """For the CLI: until `stop` (SIGINT/SIGTERM) is set."""

    async def main() -> None:
        astop = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(astop.set)),
                         daemon=True).start()
        await serve(settings, astop, on_ready)

    asyncio.run(main())
