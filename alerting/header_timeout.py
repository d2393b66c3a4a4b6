"""A bound on how long a client may take to send a request's line and headers (slowloris).

aiohttp times out neither a request line nor headers that trickle in: its keep-alive timer is
the only bound (armed when a connection opens and after each response), and a short keep-alive
would also drop the nurse page's idle connection between its refreshes. So each connection gets
a second timer: armed when the connection opens and at the first bytes of each following
request, cancelled once the parser has a whole request; when it fires the connection is closed.
Bodies and handlers have their own limits (alerting.api_guards and alerting.api).

The mechanism is the least of aiohttp that could carry it: a `RequestHandler` subclass (the
protocol of one connection), made by a `web.Server` subclass, made by an `AppRunner` subclass.
It reads two of aiohttp's private attributes, as aiohttp's own keep-alive check does: `_waiter`
(set while the connection waits for a request) and `_messages` (requests parsed, not yet
handled). Checked against aiohttp 3.14; `tests/alerting/test_api_hostile.py` fails if that
changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)
HEADER_TIMEOUT_S = 10.0  # request line and headers within this, from the first byte


class HeaderTimeoutHandler(RequestHandler):
    """One connection: closed if a request's headers do not all arrive in time."""

    __slots__ = ("_header_timeout_s", "_header_timer")

    def __init__(self, manager: web.Server, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def _waiting_for_request(self) -> bool:
        return self._waiter is not None and not self._waiter.done() and not self._messages

    def _arm(self) -> None:
        self._header_timer = self._loop.call_later(self._header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self._messages:
            log.info("closed a connection whose request headers did not arrive within %g s",
                     self._header_timeout_s)
            self.force_close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # a connection that never sends a whole request is closed too

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._waiting_for_request():
            self._arm()  # the first bytes of the next request on a keep-alive connection
        super().data_received(data)
        if self._messages:  # the headers are complete: the body and handler limits apply
            self._disarm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class HeaderTimeoutServer(web.Server):
    """`web.Server` whose connections are `HeaderTimeoutHandler`s."""

    header_timeout_s: float = HEADER_TIMEOUT_S

    def __call__(self) -> RequestHandler:
        return HeaderTimeoutHandler(self, header_timeout_s=self.header_timeout_s,
                                    loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """`web.AppRunner` whose server bounds the time to send request headers."""

    def __init__(self, app: web.Application, header_timeout_s: float = HEADER_TIMEOUT_S,
                 **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout_s = header_timeout_s

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the application started, as AppRunner does
        server = HeaderTimeoutServer(plain.request_handler,
                                     request_factory=plain.request_factory,
                                     handler_cancellation=plain.handler_cancellation,
                                     loop=plain._loop, **plain._kwargs)
        server.header_timeout_s = self.header_timeout_s
        return server
