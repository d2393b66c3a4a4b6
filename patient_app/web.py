"""The HTTP side of `vitals app`: the personal page, its device states, its submissions, the
static script and style. A link whose token does not check out is a bare 404, whatever is
wrong with it, so that a guess learns nothing; a valid token only ever reaches its own
patient's data."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from patient_app.config import AppConfig
from patient_app.devices import DeviceBoard
from patient_app.mqtt_link import MqttLink, Unavailable
from patient_app.page import render
from patient_app.ratelimit import SubmitGuard, SubmitLimits
from patient_app.submissions import MAX_BODY_BYTES, Gatekeeper, Refused
from patient_app.tokens import verify_token

log = logging.getLogger(__name__)

# No inline script or style anywhere: a value that slipped through escaping still could not
# run. connect-src 'self': the page talks to this server only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the link is a credential: never sent elsewhere
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def now_ms() -> int:
    return int(time.time() * 1000)


def json_response(doc: object, status: int = 200) -> web.Response:
    """JSON in which < > & are escaped too: a hostile text echoed in a reason can never be
    read as markup, even by something that ignores the content type."""
    text = (json.dumps(doc, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))
    return web.Response(text=text, status=status, content_type="application/json")


def not_found() -> web.Response:
    return web.Response(text="Not found", status=404)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own 404, 405, 413: a plain line, no detail
        response = web.Response(text=exc.reason, status=exc.status)
    response.headers.update(HEADERS)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"  # personal: never kept by a cache
    return response


class PatientApp:
    """The routes, over the app's configuration, device states and broker connection."""

    def __init__(self, config: AppConfig, board: DeviceBoard, link: MqttLink,
                 limits: SubmitLimits | None = None) -> None:
        self.config = config
        self.board = board
        self.link = link
        self.gate = Gatekeeper(config.registry)
        self.guard = SubmitGuard(limits or SubmitLimits())
        self._static = {name: (resources.files("patient_app") / "static" / name).read_bytes()
                        for name in STATIC}

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[security_headers], client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/p/{token}", self.page)
        app.router.add_get("/p/{token}/state", self.state)
        app.router.add_post("/p/{token}/submit", self.submit)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/livez", self.livez)
        return app

    def _patient(self, request: web.Request) -> str | None:
        return verify_token(self.config.secret, request.match_info["token"],
                            self.config.registry)

    async def page(self, request: web.Request) -> web.Response:
        patient_id = self._patient(request)
        if patient_id is None:
            return not_found()
        html = render(f"/p/{request.match_info['token']}", patient_id,
                      self.config.phone_of(patient_id))
        return web.Response(text=html, content_type="text/html")

    async def state(self, request: web.Request) -> web.Response:
        patient_id = self._patient(request)
        if patient_id is None:
            return not_found()
        return json_response({"now": now_ms(), "devices": self.board.views(patient_id)})

    async def submit(self, request: web.Request) -> web.Response:
        patient_id = self._patient(request)
        if patient_id is None:
            return not_found()
        # before the body is read: a refused flood costs a bucket lookup, nothing more
        wait_s = self.guard.admit(patient_id, request.remote or "unknown")
        if wait_s:
            response = json_response({"error": "rate_limited", "retry_after_s": wait_s,
                                      "detail": "too many sent from this link just now; it is "
                                      "kept on the phone and sent again later"}, status=429)
            response.headers["Retry-After"] = str(wait_s)
            return response
        body = await request.read()  # over MAX_BODY_BYTES: aiohttp answers 413
        try:
            accepted = self.gate.check(patient_id, body, now_ms())
        except Refused as exc:
            log.info("%s: submission refused (%s), not published", patient_id, exc.reason)
            return json_response({"error": exc.reason, "detail": str(exc)}, status=400)
        try:
            await self.link.publish(accepted.topic, accepted.payload)
        except Unavailable as exc:
            log.info("%s: submission seq %d not published: %s", patient_id, accepted.seq, exc)
            return json_response({"error": "unavailable", "detail": "not sent yet: the "
                                  "monitoring service is busy; it is kept and sent again"},
                                 status=503)
        log.info("%s: submission seq %d published", patient_id, accepted.seq)
        return json_response({"sent": True, "seq": accepted.seq})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            return not_found()
        return web.Response(body=self._static[name], headers={
            "Content-Type": STATIC[name], "Cache-Control": "no-cache"})

    async def healthz(self, _request: web.Request) -> web.Response:
        """200 only while connected to the broker (submissions can be published); 503 with
        the reason otherwise. The page itself is still served then (the phone numbers, the
        queue in the browser): so this is for watching, not for taking the app out of
        service or restarting it; that is `/livez`."""
        problem = self.link.problem()
        if problem is None:
            return json_response({"status": "ok", "mqtt": "connected"})
        return json_response({"status": "down", "mqtt": "down", "reason": problem},
                             status=503)

    async def livez(self, _request: web.Request) -> web.Response:
        """200 while the server answers and the broker connection's network thread runs (it
        reconnects by itself, so a broker outage is no reason to restart); 503 when that
        thread has died, which only a restart cures."""
        if self.link.alive:
            return json_response({"status": "ok"})
        return json_response({"status": "dead", "reason": "the MQTT network thread stopped"},
                             status=503)
