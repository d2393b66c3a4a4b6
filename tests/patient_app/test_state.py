"""The personal link: a wrong or another patient's token is a bare 404; a good one shows its
own patient's devices only, in facts the page turns into words, with no vital-sign value."""

from __future__ import annotations

import time

import pytest

from harness import servers
from patient_app.tokens import make_token, verify_token
from tests.patient_app.support import SECRET, RunningApp, request
from tests.support import publish, wait_for
from vitals.patients import Patient, PatientRegistry


def test_a_token_is_the_patient_id_and_a_mac_that_only_the_secret_makes() -> None:
    registry = PatientRegistry([Patient(id="P001", infusion="2026-11-18", team="haem-a"),
                                Patient(id="P002", infusion="2026-11-18", team="haem-a")])
    token = make_token(SECRET, "P001")
    patient, mac = token.split(".")
    assert patient == "P001" and len(mac) == 32
    assert verify_token(SECRET, token, registry) == "P001"
    assert verify_token(SECRET + "x", token, registry) is None  # another secret: revoked
    assert verify_token(SECRET, f"P002.{mac}", registry) is None  # one patient's MAC
    assert verify_token(SECRET, make_token(SECRET, "P009"), registry) is None  # not enrolled
    for bad in ("", ".", "P001", "P001.", f"{token}x", token[:-1], f"P001.{'é' * 32}",
                "x" * 10_000):
        assert verify_token(SECRET, bad, registry) is None, bad


@pytest.mark.parametrize("path", ["/p/{t}", "/p/{t}/state"])
@pytest.mark.parametrize("token", [
    "P001.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # the right shape, a wrong MAC
    "P002.{p1mac}",  # P001's MAC under P002's id
    "P009.{p9mac}",  # signed right, but not enrolled
    "P001", "%3Cscript%3E", "P001.{p1mac}%00"])
def test_a_bad_token_is_a_bare_404(running_app: RunningApp, path: str, token: str) -> None:
    p1mac = make_token(SECRET, "P001").split(".")[1]
    p9mac = make_token(SECRET, "P009").split(".")[1]
    url = running_app.url(path.format(t=token.format(p1mac=p1mac, p9mac=p9mac)))
    answer = request(url)
    assert answer.status == 404
    assert answer.body == b"Not found"
    assert b"P001" not in answer.body


def test_a_bad_token_cannot_submit(running_app: RunningApp) -> None:
    p1mac = make_token(SECRET, "P001").split(".")[1]
    body = {"kind": "symptoms", "by": "patient", "symptoms": [], "seq": 1,
            "ts": int(time.time() * 1000)}
    assert request(running_app.url(f"/p/P002.{p1mac}/submit"), body).status == 404


def test_the_personal_page_is_never_cached_and_has_a_strict_policy(
        running_app: RunningApp) -> None:
    answer = request(running_app.page_url("P001"))
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    html = answer.body.decode()
    assert "<script>" not in html and "style=" not in html and " on" + "click" not in html
    assert 'href="tel:+442079460000"' in html and "+44 20 7946 0000" in html
    js = request(running_app.url("/static/app.js"))
    assert js.status == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert "innerHTML" not in js.body.decode() and "insertAdjacentHTML" not in js.body.decode()
    assert request(running_app.url("/static/../config.py")).status == 404
    assert request(running_app.url("/static/nosuch.js")).status == 404


def states(app: RunningApp, patient: str) -> dict[str, dict]:
    answer = request(app.page_url(patient) + "/state")
    assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
    return {d["device"]: d for d in answer.json()["devices"]}


def test_each_patient_sees_its_own_devices_only(mosquitto: servers.Server,
                                                running_app: RunningApp) -> None:
    now = int(time.time() * 1000)
    wait_for(lambda: request(running_app.url("/healthz")).json()["mqtt"] == "connected", 60,
             "the app connected")
    publish(mosquitto.port, [
        ("vitals/v1/P001/th-1", {"ts": now - 180_000, "kind": "temperature", "temp": 37.9,
                                 "battery": 80}),
        ("vitals/v1/P001/ox-1", {"ts": now - 20 * 60_000, "kind": "oximetry", "spo2": 96,
                                 "hr": 88, "battery": 55}),
        ("vitals/v1/P001/ox-1/status", {"ts": now, "state": "offline"}),
        ("vitals/v1/P002/ox-9", {"ts": now - 60_000, "kind": "oximetry", "spo2": 93,
                                 "hr": 101}),
        ("vitals/v1/P001/intruder", {"ts": now, "kind": "temperature", "temp": 37}),  # not listed
        ("vitals/v1/P002/th-bad", {"ts": now, "kind": "temperature", "temp": 99}),  # refused
    ])
    wait_for(lambda: "ox-9" in states(running_app, "P002"), 60, "P002's oximeter")
    wait_for(lambda: states(running_app, "P001").get("ox-1", {}).get("state") == "offline", 60,
             "P001's oximeter offline")
    mine, theirs = states(running_app, "P001"), states(running_app, "P002")
    assert set(mine) == {"th-1", "ox-1"}  # the app is this page; the intruder is not P001's
    assert set(theirs) == {"ox-9"}  # a refused reading is no sign of life
    assert mine["th-1"] == {"device": "th-1", "type": "thermometer", "last_reading": now - 180_000,
                            "battery": 80, "state": None, "state_at": None}
    assert mine["ox-1"]["type"] == "oximeter" and mine["ox-1"]["state"] == "offline"
    assert mine["ox-1"]["last_reading"] == now - 20 * 60_000 and mine["ox-1"]["battery"] == 55
    # no vital sign reaches the page: only these facts about each device
    for d in (*mine.values(), *theirs.values()):
        assert set(d) == {"device", "type", "last_reading", "battery", "state", "state_at"}
    assert states(running_app, "P003") == {"th-3": {
        "device": "th-3", "type": "device", "last_reading": None, "battery": None,
        "state": None, "state_at": None}}  # listed, not heard of yet
