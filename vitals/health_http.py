"""One small HTTP server per service for `/metrics` (Prometheus text) and `/healthz`, on one
port: what Prometheus scrapes and what an orchestrator probes must be the same process and the
same address (prometheus_client's `start_http_server` serves metrics only).

`/healthz` answers 200 `{"status": "ok"}` while the service is healthy, and 503 with a
one-line JSON reason (`{"status": "stalled", "reason": "..."}`) when `health()` names one, so
that a liveness probe restarts a service that is up but stuck. It runs on its own thread: a
service whose work loop is blocked still answers, and says so.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Health = Callable[[], str | None]  # None: healthy; otherwise why not, in one line


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    health: Health


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            try:
                reason = self.server.health()
            except Exception as exc:  # a broken check must not look healthy
                log.exception("the health check failed")
                reason = f"the health check failed: {exc!r}"
            body = ({"status": "ok"} if reason is None
                    else {"status": "stalled", "reason": reason})
            self._send(200 if reason is None else 503,
                       json.dumps(body).encode() + b"\n", "application/json")
        else:
            self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes and scrapes every few seconds would drown the service's log."""


class HealthServer:
    """`/metrics` and `/healthz` on `host:port`, served by a daemon thread until `close()`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 health: Health) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.registry = registry
        self._server.health = health
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"http-{host}:{self.port}")
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics, health on /healthz", host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
