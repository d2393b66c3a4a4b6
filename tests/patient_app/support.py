"""Helpers for the patient app's tests: the app on a thread of the test process, a subscriber
that records what reaches the broker, and plain HTTP requests."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from patient_app import service
from patient_app.config import AppConfig, load_app_config
from patient_app.ratelimit import SubmitLimits
from patient_app.tokens import make_token
from vitals.settings import Settings

SECRET = "test-secret-0123456789-abcdef"
ONCALL = """\
targets:
  nurse: {pagerduty: 0123456789abcdef0123456789abcdef}
teams:
  haem-a:
    phone: "+44 20 7946 0000"
    escalation:
      - {after_min: 0, notify: [nurse]}
"""


def write_oncall(path: Path, text: str = ONCALL) -> Path:
    path.write_text(text)
    return path


@dataclass
class RunningApp:
    settings: Settings
    config: AppConfig
    address: str
    stop_event: threading.Event
    thread: threading.Thread

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    def page_url(self, patient_id: str) -> str:
        return self.url(f"/p/{make_token(SECRET, patient_id)}")

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the app did not stop"


def start_app(settings: Settings, limits: SubmitLimits | None = None) -> RunningApp:
    config = load_app_config(settings)
    stop, ready, address = threading.Event(), threading.Event(), []

    def on_ready(addr: str) -> None:
        address.append(addr)
        ready.set()

    t = threading.Thread(target=service.run, args=(settings, config, stop, on_ready, limits),
                         daemon=True)
    t.start()
    assert ready.wait(60), "the app did not start"
    return RunningApp(settings, config, address[0], stop, t)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def request(url: str, body: bytes | dict | None = None, method: str | None = None) -> Response:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    post = data is not None
    req = urllib.request.Request(url, data=data, method=method or ("POST" if post else "GET"),
                                 headers={"Content-Type": "application/json"} if post else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers), exc.read())


@dataclass
class Recorder:
    """A subscriber on the broker: every message on `topic`, as (topic, payload)."""

    port: int
    topic: str = "vitals/v1/+/app"
    messages: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        subscribed = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-recorder")
        c.on_message = self._on_message
        c.on_subscribe = lambda *_a: subscribed.set()
        c.on_connect = lambda client, *_a: client.subscribe(self.topic, qos=1)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        self._client = c
        assert subscribed.wait(60), "the recorder did not subscribe"

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
