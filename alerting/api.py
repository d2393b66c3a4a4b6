"""The nurses' HTTP interface (CONTRACT section 4, extended), aiohttp.web.

Every route but the page shell (`GET /`, `GET /alerts/{id}` asked for as HTML) and `/healthz`
needs `Authorization: Bearer <token>`; the token names the person and their role (on-call file
`tokens:`), and that name goes into the audit. 401 without a token or with an unknown one; 403
for a nurse doing what only a lead may (silences).

Against hostile or careless use (middlewares, outermost first): security headers on every
response; a rate limit per token (per source address without a valid one), 429 with
Retry-After; bodies at most `MAX_BODY` bytes, read within `BODY_TIMEOUT_S`, a whole request
within `REQUEST_TIMEOUT_S`, request line and headers within `HEADER_TIMEOUT_S` (the runner,
`make_runner`); and an audit row per request with its source address in `source` (`read` for
patient data, `request` otherwise).

Handlers reach the store only through `core.off_loop(...)`: one job on the store thread per
request, so the loop keeps serving while a commit waits for the disk, and what a handler reads
after it acts (ack, then the incident as it now stands) is one consistent view.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from alerting import audit, page, silences, views
from alerting.core import Alerting, Conflict, NotFound
from alerting.header_timeout import HEADER_TIMEOUT_S, ApiRunner
from alerting.lifecycle import Incident
from alerting.oncall import ROLES

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
    return _identity(request)[0]


def _identity(request: web.Request) -> tuple[str, str]:
    """(person, role) of the bearer token, remembered on the request; 401 without one."""
    if IDENTITY not in request:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        request[IDENTITY] = (request.app[CORE].oncall.identify(token.strip())
                               if scheme.lower() == "bearer" and token.strip() else None)
    identity = request[IDENTITY]
    if identity is None:
        raise web.HTTPUnauthorized(text='{"error": "a valid bearer token is required"}',
                                   content_type="application/json",
                                   headers={"WWW-Authenticate": "Bearer"})
    return identity


def require(request: web.Request, role: str, what: str) -> str:
    """The person, if their role is at least `role`; 403 with a JSON error otherwise."""
    who, has = _identity(request)
    if ROLES[has] < ROLES[role]:
        raise _json_error(web.HTTPForbidden, f"{what} needs the {role} role; {who} is a {has}")
    return who


def _json_error(cls: type[web.HTTPException], message: str) -> web.HTTPException:
    return cls(text=web.json_response({"error": message}).text, content_type="application/json")


def incident_json(core: Alerting, incident_id: str) -> dict[str, Any]:
    """One incident as the API shows it (reads the store: call it on the store thread)."""
    return views.incident_json(core.store, incident_id)


async def index(request: web.Request) -> web.Response:
    """The page shell: public, no patient data."""
    return web.Response(text=page.SHELL, content_type="text/html")


def _alerts_and_trends(core: Alerting) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    alerts = views.open_alerts(core.store, core.public_url)
    return alerts, {alert["patient_id"]: core.store.trends(alert["patient_id"])
                    for alert in alerts}


async def page_fragment(request: web.Request) -> web.Response:
    """The open alerts with their charts, as the page's HTML fragment."""
    person(request)
    core = request.app[CORE]
    alerts, trends = await core.off_loop(_alerts_and_trends, core)
    return web.Response(text=page.fragment(alerts, trends), content_type="text/html")


async def list_alerts(request: web.Request) -> web.Response:
    """GET /alerts: the open alerts, worst first, then newest."""
    person(request)
    core = request.app[CORE]
    return web.json_response({"alerts": await core.off_loop(core.open_alerts)})


def _alert_or_incident(core: Alerting, ref: str) -> dict[str, Any] | None:
    if core.store.incident(ref) is not None:
        return incident_json(core, ref)
    row = core.store.alert(ref)
    if row is None:
        return None
    return {key: row[key] for key in row.keys() if key != "event"}  # noqa: SIM118


async def get_alert(request: web.Request) -> web.Response:
    """GET /alerts/{id}: an incident or an alert as JSON; as HTML, the nurse page."""
    if "text/html" in request.headers.get("Accept", ""):
        return await index(request)  # the ack link in a page opens the nurse page
    person(request)
    core, ref = request.app[CORE], request.match_info["id"]
    found = await core.off_loop(_alert_or_incident, core, ref)
    if found is None:
        raise _json_error(web.HTTPNotFound, f"no alert or incident {ref}")
    return web.json_response(found)


def _act_and_show(core: Alerting, what: str, ref: str, who: str) -> dict[str, Any]:
    incident: Incident | None = core.ack(ref, who) if what == "ack" else core.resolve(ref, who)
    if incident is None:
        return {"alert_id": ref, "state": "resolved", "by": who}
    return incident_json(core, incident.id)


async def _act(request: web.Request, what: str) -> web.Response:
    who = person(request)
    core, ref = request.app[CORE], request.match_info["id"]
    try:
        shown = await core.off_loop(_act_and_show, core, what, ref, who)
    except NotFound:
        raise _json_error(web.HTTPNotFound, f"no alert or incident {ref}") from None
    except Conflict as exc:
        raise _json_error(web.HTTPConflict, str(exc)) from None
    return web.json_response(shown)


async def ack(request: web.Request) -> web.Response:
    """POST /alerts/{id}/ack."""
    return await _act(request, "ack")


async def resolve(request: web.Request) -> web.Response:
    """POST /alerts/{id}/resolve."""
    return await _act(request, "resolve")


async def list_silences(request: web.Request) -> web.Response:
    """GET /silences: those in force now."""
    person(request)
    core = request.app[CORE]
    return web.json_response({"silences": await core.off_loop(silences.active, core.store,
                                                              core.now())})


def _add_silence(core: Alerting, request: silences.SilenceRequest, who: str) -> int:
    with core.store.tx():
        return silences.add(core.store, request, who, core.now())


async def add_silence(request: web.Request) -> web.Response:
    """POST /silences: a reason is required."""
    who = require(request, "lead", "creating a silence")
    core = request.app[CORE]
    max_ms = int(core.oncall.paging.silence_max_days * silences.DAY_MS)
    try:
        asked = silences.SilenceRequest.parse(await _json_body(request), core.now(), max_ms)
    except ValueError as exc:  # JSONDecodeError is a ValueError too
        raise _json_error(web.HTTPBadRequest, str(exc)) from None
    silence_id = await core.off_loop(_add_silence, core, asked, who)
    return web.json_response({"id": silence_id, "created_by": who}, status=201)


def _remove_silence(core: Alerting, silence_id: int, who: str) -> bool:
    with core.store.tx():
        return silences.remove(core.store, silence_id, who, core.now())


async def delete_silence(request: web.Request) -> web.Response:
    """DELETE /silences/{n}."""
    who = require(request, "lead", "ending a silence")
    core = request.app[CORE]
    try:
        silence_id = int(request.match_info["sid"])
    except ValueError:
        raise _json_error(web.HTTPNotFound, "no such silence") from None
    if not await core.off_loop(_remove_silence, core, silence_id, who):
        raise _json_error(web.HTTPNotFound, "no such silence")
    return web.json_response({"id": silence_id, "deleted_by": who})


async def _audit_query(request: web.Request) -> list[dict[str, Any]]:
    person(request)
    since = request.query.get("since")
    try:
        since_ms = audit.parse_since(since) if since else None
    except ValueError as exc:
        raise _json_error(web.HTTPBadRequest, str(exc)) from None
    core = request.app[CORE]
    return await core.off_loop(core.store.audit_rows, request.query.get("patient") or None,
                               since_ms)


async def get_audit(request: web.Request) -> web.Response:
    """GET /audit?patient=&since=: the audit log as JSON."""
    return web.json_response({"audit": await _audit_query(request)})


async def get_audit_csv(request: web.Request) -> web.Response:
    """GET /audit.csv?patient=&since=: the same as CSV."""
    rows = await _audit_query(request)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return web.Response(text=audit.to_csv(rows), content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="vitals-audit-{stamp}.csv"'})


async def health(request: web.Request) -> web.Response:
    """GET /healthz: the service answers."""
    return web.json_response({"ok": True})


async def _json_body(request: web.Request) -> Any:
    """The request's JSON body, read within BODY_TIMEOUT_S (408 otherwise); aiohttp answers
    413 beyond `client_max_size`."""
    try:
        async with asyncio.timeout(request.app[LIMITS].body_timeout_s):
            raw = await request.read()
    except TimeoutError:
        raise _json_error(web.HTTPRequestTimeout, "the request body came too slowly") from None
    if not raw:
        raise ValueError("expected a JSON object")
    return json.loads(raw)


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
        self.rate, self.burst, self.clock = per_min / 60.0, float(burst), clock
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """0 if the request may go on (one token taken), else seconds until it may."""
        now = self.clock()
        tokens, at = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            if len(self.buckets) > 10_000:  # forget the full buckets (idle keys)
                self._prune(now)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        for key, (tokens, at) in list(self.buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self.buckets[key]


LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter", RateLimiter)
UNLIMITED = frozenset({"/healthz"})  # no data, polled by supervisors: neither limited nor audited
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
        key = "person:" + _identity(request)[0]
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
        raise _json_error(web.HTTPServiceUnavailable, "the request took too long; a change "
                          "it asked for may still have been made") from None
    finally:
        identity = request.get(IDENTITY)
        read = (request.method == "GET" and status < 400 and identity is not None
                and request.path.startswith(READS))
        query = f"?{request.query_string}" if request.query_string else ""
        fields = {"actor": identity[0] if identity else None, "channel": "http",
                  "status": str(status), "source": request.remote,
                  "patient_id": request.query.get("patient") or None,
                  "detail": f"{request.method} {request.path}{query}"[:500]}
        core = request.app[CORE]
        # Queued on the store thread, not awaited: a store that is stuck must not hold the
        # answer (nor the timeout's 503); jobs run in order, so a later read sees the row.
        core.thread.submit(_write_audit, core, "read" if read else "request", fields)


def make_app(core: Alerting, limits: Limits | None = None,
             clock: Callable[[], float] = time.monotonic) -> web.Application:
    """The aiohttp application of every route."""
    limits = limits or Limits()
    app = web.Application(
        middlewares=[security_headers, rate_limit, audited], client_max_size=limits.max_body,
        handler_args={"keepalive_timeout": 75, "max_headers": 64, "max_field_size": 8190})
    app[CORE] = core
    app[LIMITS] = limits
    app[LIMITER] = RateLimiter(limits.rate_per_min, limits.burst, clock)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", health)
    app.router.add_get("/page/alerts", page_fragment)
    app.router.add_get("/alerts", list_alerts)
    # alert ids contain slashes ({patient}/{rule}/{start}), hence the greedy patterns
    app.router.add_post(r"/alerts/{id:.+}/ack", ack)
    app.router.add_post(r"/alerts/{id:.+}/resolve", resolve)
    app.router.add_get(r"/alerts/{id:.+}", get_alert)
    app.router.add_get("/silences", list_silences)
    app.router.add_post("/silences", add_silence)
    app.router.add_delete("/silences/{sid}", delete_silence)
    app.router.add_get("/audit", get_audit)
    app.router.add_get("/audit.csv", get_audit_csv)
    return app


def make_runner(app: web.Application) -> ApiRunner:
    """The app's runner: its connections are closed when request headers come too slowly."""
    return ApiRunner(app, app[LIMITS].header_timeout_s, access_log=None)
