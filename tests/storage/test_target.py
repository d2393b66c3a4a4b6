"""How influxdb-client's answers are sorted into `Refused` (the data) and `Unavailable` (the
server): real HTTP through influxdb-client, to a small local HTTP server that is a test double
answering as InfluxDB 2 does (status and JSON error body), since VictoriaMetrics accepts
almost anything and no InfluxDB 2 can run here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import servers
from storage.target import InfluxTarget, Refused, Unavailable


class InfluxDouble(ThreadingHTTPServer):
    """Answers every write with `status` and an InfluxDB-style error body, after `delay_s`."""

    status = 204
    delay_s = 0.0
    retry_after: str | None = None
    requests: list[tuple[str, bytes]]


class Handler(BaseHTTPRequestHandler):
    server: InfluxDouble

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, body))
        time.sleep(self.server.delay_s)
        self.send_response(self.server.status)
        if self.server.retry_after:
            self.send_header("Retry-After", self.server.retry_after)
        if self.server.status == 204:
            self.end_headers()
            return
        reply = json.dumps({"code": "invalid", "message": f"test double says {self.server.status}"})
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def double() -> Iterator[InfluxDouble]:
    server = InfluxDouble(("127.0.0.1", 0), Handler)
    server.requests = []
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def target(server: InfluxDouble, timeout_s: float = 5.0) -> InfluxTarget:
    return InfluxTarget(f"http://127.0.0.1:{server.server_port}", "tok", "vitals", "vitals",
                        timeout_s=timeout_s)


def test_a_write_sends_line_protocol_in_milliseconds_to_the_bucket(double: InfluxDouble) -> None:
    target(double).write(b"readings,patient=P001 hr=80 1795240000000")
    path, body = double.requests[0]
    assert path.startswith("/api/v2/write?")
    assert "org=vitals" in path and "bucket=vitals" in path and "precision=ms" in path
    assert body == b"readings,patient=P001 hr=80 1795240000000"


@pytest.mark.parametrize("status", [400, 413, 422])
def test_bad_data_is_refused_with_the_servers_message(double: InfluxDouble, status: int) -> None:
    double.status = status
    with pytest.raises(Refused) as exc:
        target(double).write(b"x")
    assert exc.value.status == status and exc.value.message == f"test double says {status}"


@pytest.mark.parametrize("status", [429, 500, 503, 401, 403, 404])
def test_busy_failing_or_misconfigured_servers_are_waited_for(double: InfluxDouble,
                                                              status: int) -> None:
    """401/403/404 (token, org, bucket) are not the data's fault: the store waits for an
    operator rather than dead-lettering the whole stream."""
    double.status = status
    double.retry_after = "7" if status == 429 else None
    with pytest.raises(Unavailable) as exc:
        target(double).write(b"x")
    assert f"HTTP {status}" in str(exc.value)
    assert exc.value.retry_after_s == (7.0 if status == 429 else None)


def test_a_slow_server_is_unavailable_after_the_timeout(double: InfluxDouble) -> None:
    double.delay_s = 1.0
    t = time.monotonic()
    with pytest.raises(Unavailable, match=r"(?i)timeout|timed out"):
        target(double, timeout_s=0.2).write(b"x")
    assert time.monotonic() - t < 0.9


def test_nobody_listening_is_unavailable() -> None:
    t = InfluxTarget(f"http://127.0.0.1:{servers.free_port()}", "", "vitals", "vitals")
    with pytest.raises(Unavailable, match="connection refused"):
        t.write(b"x")
