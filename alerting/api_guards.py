"""What guards every request of the nurses' HTTP API, whatever the route: who is asking (the
bearer token's person and role), and the middlewares against hostile or careless use, outermost
first: security headers on every response (errors included); a rate limit per person (per
source address without a valid token), 429 with Retry-After; a whole request within
`REQUEST_TIMEOUT_S` (503), and an audit row per request with its source address (`read` for
patient data, `request` otherwise). The size and time limits of bodies are here too
(`Limits`), applied by aiohttp (`client_max_size`) and by `alerting.api` as it reads a body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from alerting import page
from alerting.core import Alerting
from alerting.header_timeout import HEADER_TIMEOUT_S
from alerting.oncall import ROLES
from vitals.ratelimit import Buckets

log = logging.getLogger(__name__)

CORE: web.AppKey[Alerting] = web.AppKey("core", Alerting)
MAX_BODY = 64 * 1024  # bytes: a silence or an ack is a few hundred
BODY_TIMEOUT_S = 10.0  # a body that trickles in slower is answered 408
REQUEST_TIMEOUT_S = 30.0  # a request that takes longer is answered 503
RATE_PER_MIN = 120.0  # requests per minute per token (per address without one) ...
RATE_BURST = 60  # ... after a burst of this many
IDENTITY: web.RequestKey[tuple[str, str] | None] = web.RequestKey("identity", object)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _sha256_source(tag: str) -> str:
    """CSP hash of the page's one inline <script> or <style>."""
    [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", page.SHELL, re.DOTALL)
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


# No 'unsafe-inline': the page's script and style are allowed by their hashes, nothing else.
CSP = ("default-src 'none'; "
       f"script-src {_sha256_source('script')}; style-src {_sha256_source('style')}; "
       "connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def person(request: web.Request) -> str:
    """The person the bearer token names; 401 without a valid one."""
    return identity(request)[0]


def identity(request: web.Request) -> tuple[str, str]:
    """(person, role) of the bearer token, remembered on the request; 401 without one."""
    if IDENTITY not in request:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        request[IDENTITY] = (request.app[CORE].oncall.identify(token.strip())
                               if scheme.lower() == "bearer" and token.strip() else None)
    found = request[IDENTITY]
    if found is None:
        raise web.HTTPUnauthorized(text='{"error": "a valid bearer token is required"}',
                                   content_type="application/json",
                                   headers={"WWW-Authenticate": "Bearer"})
    return found


def require(request: web.Request, role: str, what: str) -> str:
    """The person, if their role is at least `role`; 403 with a JSON error otherwise."""
    who, has = identity(request)
    if ROLES[has] < ROLES[role]:
        raise json_error(web.HTTPForbidden, f"{what} needs the {role} role; {who} is a {has}")
    return who


def json_error(cls: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error whose body is `{"error": message}`."""
    return cls(text=web.json_response({"error": message}).text, content_type="application/json")


@dataclass
class Limits:
    """The API's limits (module defaults; tests make them small)."""

    rate_per_min: float = RATE_PER_MIN
    burst: int = RATE_BURST
    max_body: int = MAX_BODY
    body_timeout_s: float = BODY_TIMEOUT_S
    request_timeout_s: float = REQUEST_TIMEOUT_S
    header_timeout_s: float = HEADER_TIMEOUT_S  # request line and headers (slowloris)


LIMITS: web.AppKey[Limits] = web.AppKey("limits", Limits)


class RateLimiter:
    """Token buckets per key: `burst` requests at once, then `per_min` a minute."""

    def __init__(self, per_min: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.buckets = Buckets(burst, 60.0 / per_min, clock)

    def take(self, key: str) -> float:
        """0 if the request may go on (one token taken), else seconds until it may."""
        wait = self.buckets.wait(key)
        if not wait:
            self.buckets.take(key)
        return wait


LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter", RateLimiter)
# no patient data, polled by supervisors and Prometheus: neither limited nor audited
UNLIMITED = frozenset({"/healthz", "/metrics"})
READS = ("/alerts", "/page/alerts", "/silences", "/audit")  # GET: patient data


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The same headers on every response, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 with Retry-After beyond the rate, per person (a valid token) or per address."""
    if request.path in UNLIMITED:
        return await handler(request)
    try:
        key = "person:" + identity(request)[0]
    except web.HTTPUnauthorized:
        key = f"address:{request.remote}"
    wait = request.app[LIMITER].take(key)
    if wait:
        if wait > 1 and key.startswith("person:"):
            log.warning("rate limit: %s from %s", key, request.remote)
        raise web.HTTPTooManyRequests(
            text=web.json_response({"error": "too many requests", "retry_after_s":
                                    math.ceil(wait)}).text,
            content_type="application/json", headers={"Retry-After": str(math.ceil(wait))})
    return await handler(request)


def _write_audit(core: Alerting, event: str, fields: dict[str, Any]) -> None:
    try:
        with core.store.tx():
            core.store.audit(core.now(), event, **fields)
    except Exception:  # a full disk: the answer was given; say so in the log
        log.exception("could not audit the request %s", fields.get("detail"))


@web.middleware
async def audited(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Within REQUEST_TIMEOUT_S (503 otherwise), and an audit row per request: who (if the
    token was valid), from which address, what, and the HTTP status."""
    if request.path in UNLIMITED:
        return await handler(request)
    status = 500
    try:
        async with asyncio.timeout(request.app[LIMITS].request_timeout_s):
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except TimeoutError:
        status = 503
        raise json_error(web.HTTPServiceUnavailable, "the request took too long; a change "
                         "it asked for may still have been made") from None
    finally:
        asker = request.get(IDENTITY)
        read = (request.method == "GET" and status < 400 and asker is not None
                and request.path.startswith(READS))
        query = f"?{request.query_string}" if request.query_string else ""
        fields = {"actor": asker[0] if asker else None, "channel": "http",
                  "status": str(status), "source": request.remote,
                  "patient_id": request.query.get("patient") or None,
                  "detail": f"{request.method} {request.path}{query}"[:500]}
        core = request.app[CORE]
        # Queued on the store thread, not awaited: a store that is stuck must not hold the
        # answer (nor the timeout's 503); jobs run in order, so a later read sees the row.
        core.thread.submit(_write_audit, core, "read" if read else "request", fields)
