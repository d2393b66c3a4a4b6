"""The submissions' rate limit: token buckets per patient and per source address. The buckets
on a clock the test moves; then the real app over HTTP against a real Mosquitto: over the limit
a submission is 429 with Retry-After and is not published, other patients go on, and a flood
leaves one log line per patient per minute."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from patient_app.ratelimit import SubmitGuard, SubmitLimits
from tests.patient_app.support import Recorder, RunningApp, request, start_app
from tests.support import wait_for
from vitals.ratelimit import Buckets
from vitals.settings import Settings

NOTHING_NEW = {"kind": "symptoms", "by": "caregiver", "symptoms": []}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_one_every_period() -> None:
    clock = Clock()
    b = Buckets(burst=3, every_s=10, clock=clock)
    for _ in range(3):
        assert b.wait("k") == 0
        b.take("k")
    assert b.wait("k") == pytest.approx(10)
    clock.now += 4
    assert b.wait("k") == pytest.approx(6)
    clock.now += 6
    assert b.wait("k") == 0  # one more after a period, not the burst again
    b.take("k")
    assert b.wait("k") == pytest.approx(10)
    assert b.wait("other") == 0  # keys are apart
    clock.now += 1000
    for _ in range(3):  # refilled to the burst, never beyond it
        b.take("k")
    assert b.wait("k") > 0


def test_the_default_limit_is_a_burst_of_20_then_one_per_10_s_per_patient() -> None:
    clock = Clock()
    guard = SubmitGuard(clock=clock)
    assert [guard.admit("P001", "198.51.100.7") for _ in range(20)] == [0] * 20
    assert guard.admit("P001", "198.51.100.7") == 10  # Retry-After, whole seconds
    assert guard.admit("P002", "198.51.100.7") == 0  # another patient, same address
    clock.now += 9.5
    assert guard.admit("P001", "198.51.100.7") == 1  # rounded up: never too early
    clock.now += 0.5
    assert guard.admit("P001", "198.51.100.7") == 0


def test_the_address_limit_holds_across_patients_and_a_refusal_takes_no_token() -> None:
    clock = Clock()
    guard = SubmitGuard(SubmitLimits(patient_burst=5, patient_every_s=60, address_burst=3,
                                     address_every_s=2), clock=clock)
    assert [guard.admit(p, "203.0.113.9") for p in ("P001", "P002", "P003")] == [0, 0, 0]
    assert guard.admit("P004", "203.0.113.9") == 2  # a fourth patient from that address
    assert guard.admit("P004", "192.0.2.1") == 0  # from elsewhere: fine
    clock.now += 2
    assert guard.admit("P005", "203.0.113.9") == 0


def test_a_refused_submission_takes_no_token_from_the_other_bucket() -> None:
    """A patient's flood does not use up its address (others behind it go on), nor does an
    address's flood use up the patients' own allowance."""
    clock = Clock()
    guard = SubmitGuard(SubmitLimits(patient_burst=2, patient_every_s=60, address_burst=10,
                                     address_every_s=60), clock=clock)
    assert [guard.admit("P001", "192.0.2.1") for _ in range(52)].count(0) == 2
    assert [guard.admit(f"P1{i:02}", "192.0.2.1") for i in range(9)].count(0) == 8
    guard = SubmitGuard(SubmitLimits(patient_burst=10, patient_every_s=60, address_burst=2,
                                     address_every_s=60), clock=clock)
    assert [guard.admit("P001", "192.0.2.2") for _ in range(52)].count(0) == 2
    assert [guard.admit("P001", f"192.0.2.{i}") for i in range(10, 19)].count(0) == 8


def test_a_flood_logs_one_line_per_patient_per_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    guard = SubmitGuard(SubmitLimits(patient_burst=1, patient_every_s=10), clock=clock)
    caplog.set_level(logging.WARNING, logger="patient_app.ratelimit")
    for _ in range(500):
        guard.admit("P001", "198.51.100.7")
        guard.admit("P002", "198.51.100.8")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "patient P001: submissions over the rate limit (1 at once, then 1 per 10 s)" in lines[0]
    assert "answered 429, nothing published" in lines[0]
    caplog.clear()
    clock.now += 61
    guard.admit("P001", "198.51.100.7")  # refilled: taken, no line
    guard.admit("P001", "198.51.100.7")
    [line] = [r.getMessage() for r in caplog.records]
    assert "498 more refused in the minute before" in line  # 499 refused, the first logged


def test_memory_is_bounded_when_every_request_has_a_new_key(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    import vitals.ratelimit as rl

    monkeypatch.setattr(rl, "MAX_KEYS", 100)
    clock = Clock()
    b = Buckets(burst=2, every_s=1, clock=clock)
    for i in range(1000):
        b.take(f"k{i}")
        clock.now += 0.5  # older keys refill to the burst and are forgotten
    assert len(b._buckets) <= 101


# --- over HTTP, the real app and a real broker -------------------------------------------------
@pytest.fixture
def limited_app(app_settings: Settings) -> Iterator[RunningApp]:
    app = start_app(app_settings, SubmitLimits(patient_burst=3, patient_every_s=30,
                                               address_burst=5, address_every_s=30))
    yield app
    app.stop()


def submit(app: RunningApp, patient_id: str, seq: int) -> object:
    body = {**NOTHING_NEW, "seq": seq, "ts": int(time.time() * 1000)}
    return request(app.page_url(patient_id) + "/submit", body)


def test_over_the_limit_is_429_with_retry_after_and_nothing_is_published(
        limited_app: RunningApp, recorder: Recorder) -> None:
    wait_for(lambda: request(limited_app.url("/healthz")).status == 200, 60, "connected")
    assert [submit(limited_app, "P001", seq).status for seq in (1, 2, 3)] == [200] * 3
    over = submit(limited_app, "P001", 4)
    assert over.status == 429, over.body
    assert 1 <= int(over.headers["Retry-After"]) <= 30
    assert over.json()["error"] == "rate_limited"
    assert over.json()["retry_after_s"] == int(over.headers["Retry-After"])
    assert over.headers["Cache-Control"] == "no-store"  # and the other security headers
    assert over.headers["X-Content-Type-Options"] == "nosniff"
    # another patient from the same address still gets through (the address allows 5)
    assert submit(limited_app, "P002", 1).status == 200
    wait_for(lambda: len(recorder.received()) == 4, 60, "the four accepted submissions")
    time.sleep(0.5)
    published = recorder.received()
    assert [t for t, _ in published].count("vitals/v1/P001/app") == 3
    assert b'"seq":4' not in b"".join(p for _, p in published)


def test_the_address_limit_answers_429_for_any_patient_from_it(limited_app: RunningApp) -> None:
    wait_for(lambda: request(limited_app.url("/healthz")).status == 200, 60, "connected")
    statuses = [submit(limited_app, patient, 10 + i).status
                for i, patient in enumerate(("P001", "P002", "P001", "P002", "P001"))]
    assert statuses == [200] * 5  # each patient within its own 3
    over = submit(limited_app, "P002", 20)  # a sixth from 127.0.0.1: the address's limit
    assert over.status == 429 and int(over.headers["Retry-After"]) >= 1


def test_a_bad_link_is_404_and_takes_nothing_from_the_buckets(limited_app: RunningApp) -> None:
    bad = limited_app.page_url("P001")[:-2] + "xx"
    for _ in range(20):
        assert request(bad + "/submit", {**NOTHING_NEW, "seq": 1, "ts": 1}).status == 404
    # the patient's own three are still there (the answer is whatever the broker allows, but
    # never the rate limit)
    assert [submit(limited_app, "P001", seq).status != 429 for seq in (1, 2, 3)] == [True] * 3
