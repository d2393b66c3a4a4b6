"""What the page submits reaches the broker as the patient's app device, exactly as ingest
accepts it; what ingest would refuse is answered 400 and never published; a broker that is
down or silent is 503, so that the browser keeps the submission and sends it again."""

from __future__ import annotations

import http.client
import json
import time

import msgspec
import pytest

from harness import servers
from ingest.parse import RawReading, normalise
from tests.patient_app.support import Recorder, RunningApp, request, start_app
from tests.support import wait_for
from vitals.settings import Settings

ICE = {"orientation": 3, "naming": 3, "commands": 1, "writing": 0, "attention": 1}
SUBMISSIONS = [
    {"kind": "symptoms", "by": "patient", "symptoms": ["chills", "severe_headache"],
     "note": "says the light hurts"},
    {"kind": "symptoms", "by": "caregiver", "symptoms": []},
    {"kind": "symptoms", "by": "patient", "symptoms": ["other"], "note": "itchy feet"},
    {"kind": "neuro_check", "by": "caregiver", "ice": ICE},
    {"kind": "temperature", "temp": 38.1, "site": "oral", "flags": ["manual"]},
]


def submit(app: RunningApp, patient_id: str, body: dict | bytes, seq: int = 0) -> object:
    if isinstance(body, dict):
        body = {**body, "seq": seq or int(time.time() * 1000), "ts": int(time.time() * 1000)}
    return request(app.page_url(patient_id) + "/submit", body)


@pytest.mark.parametrize("body", SUBMISSIONS, ids=["symptoms", "nothing-new", "other",
                                                   "neuro-check", "temperature"])
def test_each_kind_is_published_as_the_app_device_and_ingest_accepts_it(
        running_app: RunningApp, recorder: Recorder, body: dict) -> None:
    answer = submit(running_app, "P001", body, seq=41)
    assert answer.status == 200, answer.body
    assert answer.json() == {"sent": True, "seq": 41}
    wait_for(lambda: len(recorder.received()) == 1, 60, "the submission on the broker")
    [(topic, payload)] = recorder.received()
    assert topic == "vitals/v1/P001/app"
    raw = msgspec.json.decode(payload, type=RawReading)
    reading = normalise(raw, "P001", "app", int(time.time() * 1000))
    assert reading.kind == body["kind"] and reading.seq == 41
    if body["kind"] == "symptoms":
        assert reading.by == body["by"] and list(reading.symptoms) == body["symptoms"]
        assert reading.note == body.get("note")
    elif body["kind"] == "neuro_check":
        assert reading.ice_total == 8 and reading.by == "caregiver"
    else:
        assert reading.temp == 38.1 and reading.site == "oral" and reading.flags == ("manual",)
        assert reading.by is None and reading.symptoms is None


@pytest.mark.parametrize(("patient", "body", "reason"), [
    ("P001", {"kind": "symptoms", "by": "patient", "symptoms": ["hiccups"]}, "schema"),
    ("P001", {"kind": "symptoms", "by": "patient", "symptoms": ["other"]}, "schema"),
    ("P001", {"kind": "symptoms", "symptoms": ["cough"]}, "schema"),  # no `by`
    ("P001", {"kind": "neuro_check", "by": "caregiver", "ice": {**ICE, "orientation": 5}},
     "schema"),
    ("P001", {"kind": "temperature", "temp": 58.1, "site": "oral"}, "out_of_range"),
    ("P001", {"kind": "temperature", "temp": 37.0, "site": "oral", "flags": ["motion"]},
     "schema"),
    ("P001", {"kind": "oximetry", "spo2": 97}, "schema"),  # not something the app sends
    ("P003", {"kind": "symptoms", "by": "patient", "symptoms": []}, "unknown_device"),
])
def test_what_ingest_would_refuse_is_400_with_the_reason_and_not_published(
        running_app: RunningApp, recorder: Recorder, patient: str, body: dict,
        reason: str) -> None:
    answer = submit(running_app, patient, body)
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == reason and answer.json()["detail"]
    # a good one after it arrives alone: the refused one was never published
    ok = submit(running_app, "P001", SUBMISSIONS[1])
    assert ok.status == 200
    wait_for(lambda: len(recorder.received()) >= 1, 60, "the good submission")
    time.sleep(0.5)
    assert [json.loads(p)["kind"] for _, p in recorder.received()] == ["symptoms"]
    assert json.loads(recorder.received()[0][1])["symptoms"] == []


def test_a_clock_far_ahead_is_refused_as_ingest_would(running_app: RunningApp,
                                                      recorder: Recorder) -> None:
    body = {**SUBMISSIONS[1], "seq": 7, "ts": int(time.time() * 1000) + 3_600_000}
    answer = request(running_app.page_url("P001") + "/submit", body)
    assert answer.status == 400 and answer.json()["error"] == "clock_skew"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"kind": "symptoms"}',
                                  {**SUBMISSIONS[1], "extra": 1}],
                         ids=["not-json", "a-list", "no-fields", "an-unknown-field"])
def test_a_malformed_body_is_400(running_app: RunningApp, body: bytes | dict) -> None:
    answer = submit(running_app, "P001", body)
    assert answer.status == 400 and answer.json()["error"] in ("schema", "bad_json")


def test_a_hostile_note_in_a_400_answer_is_json_text_never_markup(
        running_app: RunningApp) -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>&amp;"
    body = {"kind": "symptoms", "by": "patient", "symptoms": [hostile], "note": hostile}
    answer = submit(running_app, "P001", body)
    assert answer.status == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert b"<" not in answer.body and b">" not in answer.body and b"&" not in answer.body
    assert "<script>" in answer.json()["detail"]  # the reason still says what was wrong


def test_a_body_over_8_kib_is_413_and_not_published(running_app: RunningApp,
                                                    recorder: Recorder) -> None:
    body = {"kind": "symptoms", "by": "patient", "symptoms": [], "note": "x" * 9000}
    answer = submit(running_app, "P001", body)
    assert answer.status == 413
    time.sleep(0.5)
    assert recorder.received() == []


def test_the_broker_unreachable_is_503(app_settings: Settings) -> None:
    dead = app_settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{servers.free_port()}"})
    app = start_app(dead)
    try:
        answer = submit(app, "P001", SUBMISSIONS[0])
        assert answer.status == 503, answer.body
        assert answer.json()["error"] == "unavailable"
        # the page and the phone number are still served
        assert request(app.page_url("P001")).status == 200
    finally:
        app.stop()


def test_the_broker_gone_after_start_is_503(mosquitto: servers.Server,
                                            running_app: RunningApp) -> None:
    wait_for(lambda: request(running_app.url("/healthz")).json()["mqtt"] == "connected", 60,
             "the app connected")
    mosquitto.stop()
    wait_for(lambda: request(running_app.url("/healthz")).json()["mqtt"] == "down", 60,
             "the app noticing the broker is gone")
    answer = submit(running_app, "P001", SUBMISSIONS[0])
    assert answer.status == 503


NOW_MS = int(time.time() * 1000)
SEQ_TS = f'"seq": 5, "ts": {NOW_MS}'.encode()


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "bad_json"),
    (b'{"kind": "symptoms", "by": "patient", "symptoms": [], "note": "\xff\xfe", ' + SEQ_TS
     + b"}", "bad_json"),  # not UTF-8 (was a 500 before)
    (b"\xff\xfe{}", "bad_json"),
    (b'{"kind": "symptoms", "by": "patient", "symptoms": ["cough"], "note": "\\ud800", '
     + SEQ_TS + b"}", "bad_json"),  # a lone surrogate
    (b'{"kind": "temperature", "temp": NaN, "site": "oral", ' + SEQ_TS + b"}", "bad_json"),
    (b'{"kind": "temperature", "temp": 1e400, "site": "oral", ' + SEQ_TS + b"}", "schema"),
    (b"[" * 4000 + b"]" * 4000, "schema"),  # deep nesting within the size limit
    ({"kind": "symptoms", "by": "patient", "symptoms": ["cough"], "note": "x" * 501},
     "schema"),  # the contract's 500 characters
    ({"kind": "symptoms", "by": "patient", "symptoms": "cough"}, "schema"),
    ({"kind": "symptoms", "by": 1, "symptoms": []}, "schema"),
    ({"kind": "symptoms", "by": "doctor", "symptoms": []}, "schema"),
    ({"kind": "temperature", "temp": "38", "site": "oral"}, "schema"),
    ({"kind": "temperature", "temp": True, "site": "oral"}, "schema"),
    ({"kind": "neuro_check", "by": "caregiver", "ice": {**ICE, "naming": 2.5}}, "schema"),
    ({"kind": "neuro_check", "by": "caregiver", "ice": "8"}, "schema"),
    ({"kind": None, "by": "patient", "symptoms": []}, "schema"),
], ids=["empty", "not-utf8-string", "not-utf8", "lone-surrogate", "nan", "huge-number",
        "deep-nesting", "note-501-chars", "symptoms-a-string", "by-a-number", "by-unknown",
        "temp-a-string", "temp-a-bool", "ice-a-float", "ice-a-string", "kind-null"])
def test_a_bad_body_is_a_clear_400_and_not_published(
        running_app: RunningApp, recorder: Recorder, body: bytes | dict, reason: str) -> None:
    if isinstance(body, dict):
        body = json.dumps({**body, "seq": 5, "ts": NOW_MS}).encode()
    answer = request(running_app.page_url("P001") + "/submit", body, method="POST")
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == reason and answer.json()["detail"]
    time.sleep(0.3)
    assert recorder.received() == []


@pytest.mark.parametrize(("seq", "status"), [(2**53 - 1, 200), (2**53, 400), (-1, 400)])
def test_seq_is_a_safe_integer(running_app: RunningApp, seq: int, status: int) -> None:
    """The page's seq is Date.now() or one more: never beyond JavaScript's safe integers, nor
    what a 64-bit integer downstream holds."""
    wait_for(lambda: request(running_app.url("/healthz")).status == 200, 60, "connected")
    assert submit(running_app, "P001", SUBMISSIONS[1], seq=seq).status == status


def test_a_chunked_body_over_8_kib_is_413_without_a_content_length(
        running_app: RunningApp, recorder: Recorder) -> None:
    """A body sent in chunks, so that no Content-Length announces its size: cut off at the
    limit all the same."""
    host, port = running_app.address.rsplit(":", 1)
    body = json.dumps({"kind": "symptoms", "by": "patient", "symptoms": [], "seq": 5,
                       "ts": NOW_MS, "note": "x" * 20_000}).encode()
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        path = running_app.page_url("P001").split(running_app.address, 1)[1] + "/submit"
        conn.request("POST", path, body=iter([body[i:i + 1000]
                                              for i in range(0, len(body), 1000)]),
                     headers={"Content-Type": "application/json"}, encode_chunked=True)
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    time.sleep(0.3)
    assert recorder.received() == []
