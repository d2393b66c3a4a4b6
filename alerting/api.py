"""The nurses' HTTP interface (CONTRACT section 4, extended), aiohttp.web.

Every route but the page shell (`GET /`, `GET /alerts/{id}` asked for as HTML), `/healthz` and
`/metrics` (`alerting.health`) needs `Authorization: Bearer <token>`; the token names the
person and their role (on-call file `tokens:`), and that name goes into the audit. 401 without
a token or with an unknown one; 403 for a nurse doing what only a lead may (silences).

Against hostile or careless use: the middlewares of `alerting.api_guards` (security headers,
rate limit, request timeout, audit, with the source address in `source`); bodies at most
`MAX_BODY` bytes, read within `BODY_TIMEOUT_S` (`_json_body` here; the numbers are in
`api_guards.Limits`); request line and headers within
`HEADER_TIMEOUT_S` (`alerting.header_timeout`, through `make_runner`).

Handlers reach the store only through `core.off_loop(...)`: one job on the store thread per
request, so the loop keeps serving while a commit waits for the disk, and what a handler reads
after it acts (ack, then the incident as it now stands) is one consistent view.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from alerting import audit, health, page, reports, silences, views
from alerting.api_guards import (
    CORE,
    LIMITER,
    LIMITS,
    Limits,
    RateLimiter,
    audited,
    json_error,
    person,
    rate_limit,
    require,
    security_headers,
)
from alerting.core import Alerting, Conflict, NotFound
from alerting.deadman import DeadMan
from alerting.header_timeout import ApiRunner
from alerting.lifecycle import Incident

__all__ = ["Limits", "make_app", "make_runner"]


def incident_json(core: Alerting, incident_id: str) -> dict[str, Any]:
    """One incident as the API shows it (reads the store: call it on the store thread)."""
    return views.incident_json(core.store, incident_id)


async def index(request: web.Request) -> web.Response:
    """The page shell: public, no patient data."""
    return web.Response(text=page.SHELL, content_type="text/html")


def _page_data(core: Alerting) -> tuple[list[dict[str, Any]], dict[str, Any],
                                         dict[str, Any], list[dict[str, Any]]]:
    """The open alerts, and of each patient in them the trend points and the reports; the
    newest reports of every patient."""
    alerts = views.open_alerts(core.store, core.public_url)
    newest: dict[str, int] = {}
    for alert in alerts:
        newest[alert["patient_id"]] = max(newest.get(alert["patient_id"], 0),
                                          alert["detected_at"])
    trends = {patient: core.store.trends(patient) for patient in newest}
    said = {patient: core.store.reports(patient, at - reports.SHOWN_MS, at + reports.SHOWN_MS)
            for patient, at in newest.items()}
    return alerts, trends, said, core.store.latest_reports(reports.LATEST_SHOWN)


async def page_fragment(request: web.Request) -> web.Response:
    """The open alerts with their charts, as the page's HTML fragment."""
    person(request)
    core = request.app[CORE]
    alerts, trends, said, latest = await core.off_loop(_page_data, core)
    banner = core.watch.banner(core.now())
    return web.Response(text=page.fragment(alerts, trends, banner, said, latest),
                        content_type="text/html")


async def list_alerts(request: web.Request) -> web.Response:
    """GET /alerts: the open alerts, worst first, then newest."""
    person(request)
    core = request.app[CORE]
    alerts = await core.off_loop(core.open_alerts)
    return web.json_response({"alerts": alerts, "pipeline": core.watch.status(core.now())})


async def pipeline(request: web.Request) -> web.Response:
    """GET /pipeline: the canary watch (round trips, last seen per stage, late or not)."""
    person(request)
    core = request.app[CORE]
    return web.json_response(core.watch.status(core.now()))


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
        raise json_error(web.HTTPNotFound, f"no alert or incident {ref}")
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
        raise json_error(web.HTTPNotFound, f"no alert or incident {ref}") from None
    except Conflict as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
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
        raise json_error(web.HTTPBadRequest, str(exc)) from None
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
        raise json_error(web.HTTPNotFound, "no such silence") from None
    if not await core.off_loop(_remove_silence, core, silence_id, who):
        raise json_error(web.HTTPNotFound, "no such silence")
    return web.json_response({"id": silence_id, "deleted_by": who})


async def _audit_query(request: web.Request) -> list[dict[str, Any]]:
    person(request)
    since = request.query.get("since")
    try:
        since_ms = audit.parse_since(since) if since else None
    except ValueError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
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


async def _json_body(request: web.Request) -> Any:
    """The request's JSON body, read within BODY_TIMEOUT_S (408 otherwise); aiohttp answers
    413 beyond `client_max_size`."""
    try:
        async with asyncio.timeout(request.app[LIMITS].body_timeout_s):
            raw = await request.read()
    except TimeoutError:
        raise json_error(web.HTTPRequestTimeout, "the request body came too slowly") from None
    if not raw:
        raise ValueError("expected a JSON object")
    return json.loads(raw)


def make_app(core: Alerting, limits: Limits | None = None,
             clock: Callable[[], float] = time.monotonic, stall_s: float = 60.0,
             deadman: DeadMan | None = None) -> web.Application:
    """The aiohttp application of every route."""
    limits = limits or Limits()
    app = web.Application(
        middlewares=[security_headers, rate_limit, audited], client_max_size=limits.max_body,
        handler_args={"keepalive_timeout": 75, "max_headers": 64, "max_field_size": 8190})
    app[CORE] = core
    app[LIMITS] = limits
    app[LIMITER] = RateLimiter(limits.rate_per_min, limits.burst, clock)
    app.router.add_get("/", index)
    app.router.add_routes(health.routes(core, stall_s, deadman))  # /healthz, /metrics
    app.router.add_get("/pipeline", pipeline)
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
