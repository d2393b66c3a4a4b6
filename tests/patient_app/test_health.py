"""`/healthz` (200 only while connected to the broker: what operators watch) and `/livez` (200
while the server answers and the broker connection's thread runs: what Kubernetes restarts
on), against a real Mosquitto."""

from __future__ import annotations

import asyncio
import threading

from aiohttp.test_utils import TestClient, TestServer

from harness import servers
from patient_app.config import load_app_config
from patient_app.devices import DeviceBoard
from patient_app.mqtt_link import MqttLink
from patient_app.web import PatientApp
from tests.patient_app.support import RunningApp, request, start_app
from tests.support import publish, wait_for
from vitals.settings import Settings


def test_connected_both_answer_200(running_app: RunningApp) -> None:
    healthz = request(running_app.url("/healthz"))
    assert (healthz.status, healthz.json()) == (200, {"status": "ok", "mqtt": "connected"})
    assert request(running_app.url("/livez")).status == 200
    assert healthz.headers["Cache-Control"] == "no-store"


def test_without_the_broker_healthz_is_503_with_the_reason_and_livez_200(
        app_settings: Settings) -> None:
    dead = app_settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{servers.free_port()}"})
    app = start_app(dead)
    try:
        wait_for(lambda: "cannot reach it" in request(app.url("/healthz")).json().get(
            "reason", ""), 60, "the first failed attempt")
        healthz = request(app.url("/healthz"))
        assert healthz.status == 503
        assert healthz.json()["mqtt"] == "down" and "submissions wait in the browsers" in \
            healthz.json()["reason"]
        # no reason to restart it: the page (and the team's phone) is still served
        assert request(app.url("/livez")).status == 200
        assert request(app.page_url("P001")).status == 200
    finally:
        app.stop()


def test_the_broker_lost_after_start_turns_healthz_503_not_livez(
        mosquitto: servers.Server, running_app: RunningApp) -> None:
    mosquitto.stop()
    wait_for(lambda: request(running_app.url("/healthz")).status == 503, 60, "noticed")
    assert "lost the connection" in request(running_app.url("/healthz")).json()["reason"]
    assert request(running_app.url("/livez")).status == 200


def test_livez_is_503_once_the_network_thread_died(mosquitto: servers.Server,
                                                   app_settings: Settings) -> None:
    """A bug in a callback leaves the network thread running (vitals/mqtt_client.py suppresses
    it): still live. Once the thread has ended, nothing would reconnect, so only a restart
    helps, and /livez says so."""
    died = threading.Event()

    def on_message(_topic: str, _payload: bytes, _at: int) -> None:
        died.set()
        raise RuntimeError("a bug in a callback")

    link = MqttLink(app_settings.mqtt, on_message)
    app = PatientApp(load_app_config(app_settings), DeviceBoard(load_app_config(
        app_settings).registry), link)

    async def livez() -> int:
        async with TestClient(TestServer(app.make_app())) as client:
            return (await client.get("/livez")).status

    try:
        assert link.alive and asyncio.run(livez()) == 200  # not started yet
        link.start()
        wait_for(lambda: link.connected, 60, "connected")
        publish(mosquitto.port, [("vitals/v1/P001/th-1", {"ts": 1, "kind": "temperature",
                                                          "temp": 37})])
        assert died.wait(60)
        assert link.alive and link.connected and asyncio.run(livez()) == 200
        link._client.loop_stop()  # the thread ends, as on a failure inside paho
        assert not link.alive and asyncio.run(livez()) == 503
    finally:
        link.stop()
