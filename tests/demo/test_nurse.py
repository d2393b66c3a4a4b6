"""The demo's simulated nurse: each page acknowledged over HTTP after `after_s`, and `settle`,
which the demo waits on before its report, returns only once every page received has been
answered. A real HTTP server on loopback plays the alerting API's ack endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from demo.nurse import Nurse
from demo.run import oncall_file
from harness.pagerduty import Event
from harness.servers import LOOPBACK


@pytest.fixture
def ack_api() -> Iterator[tuple[str, list[str]]]:
    """(base URL, paths acknowledged), answering each ack "acknowledged"."""
    acked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            acked.append(self.path)
            body = json.dumps({"state": "acknowledged"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_port}", acked
    server.shutdown()
    server.server_close()


def trigger(key: str) -> Event:
    return Event(0.0, {"event_action": "trigger", "dedup_key": key, "routing_key": "x",
                       "payload": {"summary": "S0001: fever", "class": "fever"}})


def test_settle_returns_once_every_page_is_acknowledged(
        ack_api: tuple[str, list[str]], tmp_path: Path) -> None:
    url, acked = ack_api
    nurse = Nurse(url, oncall_file(tmp_path / "oncall.yaml"), after_s=0.3).start()
    try:
        nurse.paged(trigger("S0001-1"))
        nurse.paged(trigger("S0001-1"))  # the same incident again: one acknowledgement
        nurse.paged(trigger("S0002-1"))
        nurse.settle(notified_s=0.1, limit_s=120)
        assert sorted(acked) == ["/alerts/S0001-1/ack", "/alerts/S0002-1/ack"]
        assert sorted(incident for incident, _ in nurse.acked) == ["S0001-1", "S0002-1"]
        assert nurse.failures == []
    finally:
        nurse.stop()


def test_settle_with_nothing_paged_returns_without_acknowledging(
        ack_api: tuple[str, list[str]], tmp_path: Path) -> None:
    url, acked = ack_api
    nurse = Nurse(url, oncall_file(tmp_path / "oncall.yaml"), after_s=0.3).start()
    try:
        nurse.settle(notified_s=0.1, limit_s=120)
        assert acked == [] and nurse.acked == []
    finally:
        nurse.stop()
