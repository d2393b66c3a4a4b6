"""A local stand-in for PagerDuty's Events API v2, for the demo, the end-to-end test and the
end-to-end benchmark: the real service cannot be reached from here. It is an aiohttp server on
its own thread that answers `POST /v2/enqueue` the way PagerDuty does (202 with the dedup key,
400 for an event it would refuse) and hands every accepted event to a callback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.servers import LOOPBACK, free_port

ACTIONS = ("trigger", "acknowledge", "resolve")


@dataclass(frozen=True)
class Event:
    received: float  # wall clock, seconds
    body: dict[str, Any]

    @property
    def action(self) -> str:
        return str(self.body.get("event_action"))

    @property
    def dedup_key(self) -> str:
        return str(self.body.get("dedup_key", ""))

    @property
    def summary(self) -> str:
        return str(self.body.get("payload", {}).get("summary", ""))

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.body.get("payload", {}).get("custom_details") or {})


def refusal(body: object) -> str | None:
    """Why PagerDuty would answer 400, for the mistakes a sender can make; None if accepted."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
        return "routing_key must be a 32-character integration key"
    if body.get("event_action") not in ACTIONS:
        return f"event_action must be one of {', '.join(ACTIONS)}"
    if body["event_action"] != "trigger":
        return None if body.get("dedup_key") else "dedup_key is required to acknowledge or resolve"
    payload = body.get("payload")
    if not isinstance(payload, dict) or not all(payload.get(k) for k in
                                                ("summary", "source", "severity")):
        return "payload.summary, payload.source and payload.severity are required"
    return None


@dataclass
class PagerDutyStandIn:
    """Accepted events are kept in `events` (in arrival order) and passed to `on_event`."""

    on_event: Callable[[Event], None] | None = None
    port: int = field(default_factory=free_port)
    events: list[Event] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v2/enqueue"

    async def _enqueue(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        why = refusal(body)
        if why is not None:
            self.refused.append(why)
            return web.json_response({"status": "invalid event", "message": "Event object is "
                                      "invalid", "errors": [why]}, status=400)
        event = Event(time.time(), body)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        return web.json_response({"status": "success", "message": "Event processed",
                                  "dedup_key": event.dedup_key}, status=202)

    def start(self) -> PagerDutyStandIn:
        ready = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v2/enqueue", self._enqueue)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, LOOPBACK, self.port).start()
            ready.set()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            loop.run_forever()

        self._thread = threading.Thread(target=main, name="pagerduty-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the PagerDuty stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop = self._thread = None

    def __enter__(self) -> PagerDutyStandIn:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
