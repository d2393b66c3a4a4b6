"""The patient app against a real Mosquitto: two enrolled patients (P001 lists its devices, the
app among them; P002 lists none, so any device of its is accepted) and P003, whose device list
lacks the app, so that ingest refuses what its app sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import servers
from tests.patient_app.support import (
    SECRET,
    Recorder,
    RunningApp,
    request,
    start_app,
    write_oncall,
)
from tests.support import wait_for, write_patients
from vitals.settings import Settings, load_settings

DEVICES = {"P001": ["th-1", "ox-1", "app"], "P003": ["th-3"]}


@pytest.fixture
def app_settings(mosquitto: servers.Server, tmp_path: Path) -> Settings:
    patients = write_patients(tmp_path / "patients.yaml", ["P001", "P002", "P003"], DEVICES)
    return load_settings(
        _env_file=None,
        mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
        patients=patients,
        oncall=write_oncall(tmp_path / "oncall.yaml"),
        state_dir=tmp_path / "state",
        app_addr=f"127.0.0.1:{servers.free_port()}",
        app_secret=SECRET,
        app_base_url="https://app.example.org",
    )


@pytest.fixture
def running_app(app_settings: Settings) -> Iterator[RunningApp]:
    """The app, once connected to the broker (/healthz 200): before that a submission is
    rightly 503, which is not what most tests are about."""
    app = start_app(app_settings)
    wait_for(lambda: request(app.url("/healthz")).status == 200, 60, "the app connected")
    yield app
    app.stop()


@pytest.fixture
def recorder(mosquitto: servers.Server) -> Iterator[Recorder]:
    r = Recorder(mosquitto.port)
    yield r
    r.close()
