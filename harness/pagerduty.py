"""A local stand-in for PagerDuty's Events API v2 (the real service cannot be reached from
here), and for any HTTP receiver the alerting service posts to (webhook targets, a dead-man's
switch), for the demo, the tests and the benchmarks. It is an aiohttp server on its own thread
that records every request, answers queued responses first, or every request during an outage
window (to play an outage: 500, or 429 with Retry-After), and otherwise answers
`POST /v2/enqueue` as PagerDuty does (202 with the dedup key, 400 for an event it would
refuse), handing each accepted event to a callback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.servers import LOOPBACK, free_port

ACTIONS = ("trigger", "acknowledge", "resolve")
ENQUEUE = "/v2/enqueue"


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


def refusal(body: object, strict: bool = True) -> str | None:
    """Why PagerDuty would answer 400, for the mistakes a sender can make; None if accepted.
    `strict`: routing keys must have PagerDuty's 32 characters."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    key = body.get("routing_key")
    if not isinstance(key, str) or not key or (strict and len(key) != 32):
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


@dataclass(frozen=True)
class Captured:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class PagerDutyStandIn:
    """Every request is kept in `requests`; accepted PagerDuty events also in `events` (in
    arrival order) and passed to `on_event`. `strict=False` accepts any routing key (tests
    that use short readable keys); the official schema is checked by the tests themselves."""

    on_event: Callable[[Event], None] | None = None
    port: int = field(default_factory=free_port)
    strict: bool = True
    events: list[Event] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    requests: list[Captured] = field(default_factory=list)
    responses: deque[tuple[int, str, dict[str, str]]] = field(default_factory=deque)
    # (status, when it ends on the monotonic clock, headers) while an outage window is set
    outage_window: tuple[int, float, dict[str, str]] | None = None
    outage_answers: list[tuple[float, int]] = field(default_factory=list)  # (wall time, status)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The Events API endpoint, for VITALS_PAGERDUTY_URL."""
        return self.base_url + ENQUEUE

    def respond(self, status: int, body: str = "", headers: dict[str, str] | None = None
                ) -> None:
        """Answer the next request with this instead (queued, one request each)."""
        self.responses.append((status, body, headers or {}))

    def outage(self, status: int, seconds: float, retry_after_s: int | None = None) -> None:
        """Answer every request with `status` for the next `seconds` (a PagerDuty outage:
        500, or 429 with `Retry-After: retry_after_s`); recorded in `outage_answers`."""
        headers = {} if retry_after_s is None else {"Retry-After": str(retry_after_s)}
        self.outage_window = (status, time.monotonic() + seconds, headers)

    def pd(self, action: str | None = None, key: str | None = None) -> list[dict[str, Any]]:
        """The bodies posted to the Events API, optionally of one action and routing key."""
        out = [r.json for r in self.requests if r.path == ENQUEUE]
        return [b for b in out if (action is None or b["event_action"] == action)
                and (key is None or b["routing_key"] == key)]

    def wait(self, n: int, timeout: float = 10.0, path: str = ENQUEUE) -> None:
        """Until `n` requests to `path` have arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while sum(r.path == path for r in self.requests) < n:
            assert time.monotonic() < deadline, (
                f"{n} requests to {path} expected: {[r.raw for r in self.requests]}")
            time.sleep(0.02)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(Captured(request.path, dict(request.headers), raw))
        if self.responses:
            status, text, headers = self.responses.popleft()
            return web.Response(status=status, text=text, headers=headers)
        window = self.outage_window
        if window is not None and time.monotonic() < window[1]:
            self.outage_answers.append((time.time(), window[0]))
            return web.json_response({"status": "unavailable", "message": "outage staged by "
                                      "the test"}, status=window[0], headers=window[2])
        if request.path != ENQUEUE:
            return web.Response(status=202)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        why = refusal(body, self.strict)
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
            app.router.add_route("*", "/{tail:.*}", self._handle)
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
