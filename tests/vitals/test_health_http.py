"""`vitals.health_http`: /metrics and /healthz from one port, over real HTTP on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from harness import servers
from vitals.health_http import HealthServer


class Health:
    def __init__(self) -> None:
        self.reason: str | None = None
        self.fail = False

    def __call__(self) -> str | None:
        if self.fail:
            raise RuntimeError("boom")
        return self.reason


@pytest.fixture
def served() -> Iterator[tuple[str, Health]]:
    registry = CollectorRegistry()
    Counter("vitals_demo_things", "Things", registry=registry).inc(3)
    health = Health()
    server = HealthServer("127.0.0.1", servers.free_port(), registry, health)
    yield f"http://127.0.0.1:{server.port}", health
    server.close()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_metrics_and_a_healthy_service(served: tuple[str, Health]) -> None:
    base, _ = served
    status, kind, body = get(f"{base}/metrics")
    assert status == 200 and kind.startswith("text/plain")
    assert "vitals_demo_things_total 3.0" in body
    assert get(f"{base}/healthz") == (200, "application/json", '{"status": "ok"}\n')


def test_a_stuck_service_answers_503_with_its_reason_on_one_line(
        served: tuple[str, Health]) -> None:
    base, health = served
    health.reason = "5 records not yet written, no progress for 61 s (stall limit 60 s)"
    status, kind, body = get(f"{base}/healthz")
    assert (status, kind) == (503, "application/json")
    assert body.endswith("\n") and body.count("\n") == 1
    assert json.loads(body) == {"status": "stalled", "reason": health.reason}
    assert get(f"{base}/metrics")[0] == 200  # still scraped while stuck


def test_a_failing_check_is_unhealthy_not_healthy(served: tuple[str, Health]) -> None:
    base, health = served
    health.fail = True
    status, _, body = get(f"{base}/healthz")
    assert status == 503 and "the health check failed" in json.loads(body)["reason"]


def test_other_paths_are_not_found(served: tuple[str, Health]) -> None:
    base, _ = served
    assert get(f"{base}/")[0] == 404
    assert get(f"{base}/healthz/x")[0] == 404
