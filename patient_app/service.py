"""`vitals app`: serve the patients' pages at VITALS_APP_ADDR until stopped, with one broker
connection for their submissions and their devices' states."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from aiohttp import web

from patient_app.config import AppConfig
from patient_app.devices import DeviceBoard
from patient_app.mqtt_link import MqttLink
from patient_app.ratelimit import SubmitLimits
from patient_app.web import PatientApp
from vitals.settings import ConfigError, Settings, parse_hostport

log = logging.getLogger(__name__)


def run(settings: Settings, config: AppConfig, stop: threading.Event,
        on_ready: Callable[[str], None] | None = None,
        limits: SubmitLimits | None = None) -> None:
    """Serve until `stop` is set. `on_ready` gets the address once the server listens (the
    broker may still be unreachable: the page works, submissions wait in the browsers).
    `limits`: the submissions' rate limits (SubmitLimits' defaults unless given)."""
    asyncio.run(_serve(settings, config, stop, on_ready, limits))


async def _serve(settings: Settings, config: AppConfig, stop: threading.Event,
                 on_ready: Callable[[str], None] | None,
                 limits: SubmitLimits | None) -> None:
    host, port = parse_hostport(settings.app_addr)
    board = DeviceBoard(config.registry)
    link = MqttLink(settings.mqtt, board.feed)
    # no access log: every request's path holds a personal link
    runner = web.AppRunner(PatientApp(config, board, link, limits).make_app(), access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise ConfigError(f"VITALS_APP_ADDR: cannot listen on {host}:{port}: "
                              f"{exc.strerror or exc}") from None
        link.start()
        address = f"{host}:{runner.addresses[0][1]}"
        log.info("the patients' pages are served at http://%s/p/{token} (%d patients)",
                 address, len(config.registry))
        if on_ready is not None:
            on_ready(address)
        while not stop.is_set():
            await asyncio.sleep(0.2)
    finally:
        link.stop()
        await runner.cleanup()
