"""The nurses' HTTP interface (CONTRACT section 4, extended), aiohttp.web.

Every route but the page shell (`GET /`, `GET /alerts/{id}` asked for as HTML) needs
`Authorization: Bearer <token>`; the token names the person (on-call file `tokens:`), and that
name goes into the audit. 401 without a token or with an unknown one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from alerting import audit, page, silences
from alerting.core import Alerting, Conflict, NotFound

CORE: web.AppKey[Alerting] = web.AppKey("core", Alerting)


def person(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    who = request.app[CORE].oncall.who(token.strip()) if scheme.lower() == "bearer" else None
    if not who:
        raise web.HTTPUnauthorized(text='{"error": "a valid bearer token is required"}',
                                   content_type="application/json",
                                   headers={"WWW-Authenticate": "Bearer"})
    return who


def _json_error(cls: type[web.HTTPException], msg: str) -> web.HTTPException:
    return cls(text=web.json_response({"error": msg}).text, content_type="application/json")


def incident_json(core: Alerting, iid: str) -> dict[str, Any]:
    inc = core.store.incident(iid)
    assert inc is not None
    return {"incident_id": inc.id, "patient_id": inc.patient_id, "state": inc.state,
            "severity": inc.severity, "escalation_step": inc.step + 1,
            "acked_by": inc.acked_by, "resolved_by": inc.resolved_by,
            "alerts": [r["alert_id"] for r in core.store.alerts_of(inc.id)],
            "delivery_errors": core.store.delivery_errors(inc.id)}


async def index(request: web.Request) -> web.Response:
    return web.Response(text=page.SHELL, content_type="text/html")


async def page_fragment(request: web.Request) -> web.Response:
    person(request)
    core = request.app[CORE]
    alerts = core.open_alerts()
    trends = {a["patient_id"]: core.store.trends(a["patient_id"]) for a in alerts}
    return web.Response(text=page.fragment(alerts, trends), content_type="text/html")


async def list_alerts(request: web.Request) -> web.Response:
    person(request)
    return web.json_response({"alerts": request.app[CORE].open_alerts()})


async def get_alert(request: web.Request) -> web.Response:
    if "text/html" in request.headers.get("Accept", ""):
        return await index(request)  # the ack link in a page opens the nurse page
    person(request)
    core, ref = request.app[CORE], request.match_info["id"]
    if core.store.incident(ref) is not None:
        return web.json_response(incident_json(core, ref))
    row = core.store.alert(ref)
    if row is None:
        raise _json_error(web.HTTPNotFound, f"no alert or incident {ref}")
    return web.json_response({k: row[k] for k in row.keys() if k != "event"})  # noqa: SIM118


async def _act(request: web.Request, what: str) -> web.Response:
    who = person(request)
    core, ref = request.app[CORE], request.match_info["id"]
    try:
        inc = core.ack(ref, who) if what == "ack" else core.resolve(ref, who)
    except NotFound:
        raise _json_error(web.HTTPNotFound, f"no alert or incident {ref}") from None
    except Conflict as exc:
        raise _json_error(web.HTTPConflict, str(exc)) from None
    if inc is None:
        return web.json_response({"alert_id": ref, "state": "resolved", "by": who})
    return web.json_response(incident_json(core, inc.id))


async def ack(request: web.Request) -> web.Response:
    return await _act(request, "ack")


async def resolve(request: web.Request) -> web.Response:
    return await _act(request, "resolve")


async def list_silences(request: web.Request) -> web.Response:
    person(request)
    core = request.app[CORE]
    return web.json_response({"silences": silences.active(core.store, core.now())})


async def add_silence(request: web.Request) -> web.Response:
    who = person(request)
    core = request.app[CORE]
    try:
        req = silences.SilenceRequest.parse(await request.json(), core.now())
    except ValueError as exc:  # JSONDecodeError is a ValueError too
        raise _json_error(web.HTTPBadRequest, str(exc)) from None
    with core.store.tx():
        sid = silences.add(core.store, req, who, core.now())
    return web.json_response({"id": sid, "created_by": who}, status=201)


async def delete_silence(request: web.Request) -> web.Response:
    who = person(request)
    core = request.app[CORE]
    try:
        sid = int(request.match_info["sid"])
    except ValueError:
        raise _json_error(web.HTTPNotFound, "no such silence") from None
    with core.store.tx():
        found = silences.remove(core.store, sid, who, core.now())
    if not found:
        raise _json_error(web.HTTPNotFound, "no such silence")
    return web.json_response({"id": sid, "deleted_by": who})


def _audit_query(request: web.Request) -> list[dict[str, Any]]:
    person(request)
    since = request.query.get("since")
    try:
        since_ms = audit.parse_since(since) if since else None
    except ValueError as exc:
        raise _json_error(web.HTTPBadRequest, str(exc)) from None
    return request.app[CORE].store.audit_rows(request.query.get("patient") or None, since_ms)


async def get_audit(request: web.Request) -> web.Response:
    return web.json_response({"audit": _audit_query(request)})


async def get_audit_csv(request: web.Request) -> web.Response:
    rows = _audit_query(request)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return web.Response(text=audit.to_csv(rows), content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="vitals-audit-{stamp}.csv"'})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def make_app(core: Alerting) -> web.Application:
    app = web.Application()
    app[CORE] = core
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
