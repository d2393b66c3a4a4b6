"""`vitals alerting`: wiring. The Kafka consumer, the escalation ticker, the outbox dispatcher
and the nurses' HTTP API share one asyncio loop and one SQLite connection."""

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
from alerting.store import Store
from vitals import topics
from vitals.kafka import declare_topics
from vitals.patients import PatientRegistry, load_patients
from vitals.settings import Settings, parse_hostport

log = logging.getLogger(__name__)


def load_config(settings: Settings) -> tuple[PatientRegistry, OnCall]:
    """Both files, validated before anything connects (one-line ConfigError)."""
    patients = load_patients(settings.patients)
    oncall = load_oncall(settings.oncall, {p.team for p in patients})
    return patients, oncall


def notifiers(settings: Settings, oncall: OnCall) -> dict[str, Notifier]:
    out: dict[str, Notifier] = {"pagerduty": PagerDuty(settings.pagerduty_url),
                                "webhook": Webhook(settings.webhook_secret)}
    if settings.smtp_url:
        out["email"] = Email(settings.smtp_url, oncall.paging.email_from)
    return out


def build(settings: Settings, clock: Clock = time.time) -> tuple[Alerting, Dispatcher]:
    patients, oncall = load_config(settings)
    store = Store(settings.state_dir)
    chans = notifiers(settings, oncall)
    public = oncall.paging.public_url or f"http://{settings.alerting_addr}"
    core = Alerting(store, oncall, patients, chans, clock, public, settings.webhook_url)
    dispatcher = Dispatcher(store, chans, core.now)
    core.wake = dispatcher.wake
    if settings.webhook_url and not settings.webhook_secret:
        log.warning("VITALS_WEBHOOK_SECRET is not set: webhook bodies go out unsigned")
    if "email" not in chans and any(t.email for t in oncall.targets.values()):
        log.warning("targets have e-mail addresses but VITALS_SMTP_URL is not set")
    return core, dispatcher


async def serve(settings: Settings, stop: asyncio.Event,
                on_ready: Callable[[Alerting], None] | None = None) -> None:
    core, dispatcher = build(settings)
    pending = len(core.store.pending())
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
    log.info("alerting API on http://%s:%d (state in %s)", host, port, core.store.path)

    async def ticker() -> None:
        while not stop.is_set():
            core.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    tasks = [asyncio.create_task(t) for t in (consumer.run(stop), dispatcher.run(stop),
                                                 ticker())]
    if on_ready:
        on_ready(core)
    stopping = asyncio.create_task(stop.wait())
    try:
        # A stage that dies (a bug, a broken database) stops the service rather than leaving it
        # up and deaf: the supervisor restarts it, and uncommitted events are read again.
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = next((t for t in done if t is not stopping and t.exception()), None)
        if failed is not None:
            stop.set()
            raise RuntimeError("an alerting stage failed") from failed.exception()
    finally:
        stop.set()
        stopping.cancel()
        # The tasks watch `stop`: the consumer finishes (and commits) the batch it holds.
        _, late = await asyncio.wait(tasks, timeout=5)
        for t in late:
            t.cancel()
        await dispatcher.drain(5)
        await runner.cleanup()
        await dispatcher.close()
        consumer.close()
        core.store.close()
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
