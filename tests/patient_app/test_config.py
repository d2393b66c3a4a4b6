"""`vitals app`'s configuration: the secret, the team phones from the on-call file (checked as
alerting checks them), one line naming what is wrong; and the page escapes every value it
shows, a hostile phone or id included."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest

from alerting.oncall import load_oncall
from harness import servers, services
from harness.command import vitals
from patient_app.config import load_app_config
from patient_app.page import render
from patient_app.phones import load_phones, tel_uri
from patient_app.tokens import make_token
from tests.patient_app.support import ONCALL, SECRET, request, write_oncall
from tests.support import write_patients
from vitals.settings import ConfigError, load_settings

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


@pytest.mark.parametrize(("phone", "ok"), [
    ("+44 20 7946 0000", True), ("(020) 7946-0000", True), ("999", True),
    ("", False), ("+", False), ("() -", False), ("1" * 33, False), ("+44 20 7946 0000 ext", False),
    ("javascript:alert(1)", False), ("<b>0800</b>", False), ("0800\n000", False),
])
def test_alerting_and_the_app_agree_on_a_phone(tmp_path: Path, phone: str, ok: bool) -> None:
    text = ONCALL.replace('"+44 20 7946 0000"', repr(phone).replace("'", '"'))
    path = write_oncall(tmp_path / "oncall.yaml", text)
    for load in (lambda: load_oncall(path, {"haem-a"}), lambda: load_phones(path, {"haem-a"})):
        if ok:
            load()
        else:
            with pytest.raises(ConfigError, match=r"VITALS_ONCALL .*teams\.haem-a\.phone"):
                load()


def test_the_embedded_on_call_file_gives_the_demo_teams_a_phone() -> None:
    settings = load_settings(_env_file=None, app_secret=SECRET)
    config = load_app_config(settings)
    assert config.phone_of("P001") == "+44 20 7946 0000"
    assert config.phone_of("P020") == "+44 20 7946 0001"
    assert tel_uri("+44 20 7946 0000") == "tel:+442079460000"
    assert tel_uri("(020) 7946-0000") == "tel:02079460000"


def test_a_team_without_a_phone_is_a_warning_and_a_page_without_a_number(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    oncall = write_oncall(tmp_path / "oncall.yaml",
                          ONCALL.replace('    phone: "+44 20 7946 0000"\n', ""))
    settings = load_settings(_env_file=None, app_secret=SECRET, oncall=oncall,
                             patients=write_patients(tmp_path / "p.yaml", ["P001"]))
    with caplog.at_level(logging.WARNING):
        config = load_app_config(settings)
    assert config.phone_of("P001") is None
    assert "no phone in VITALS_ONCALL for team haem-a" in caplog.text
    html = render("/p/x", "P001", None)
    assert "the number they gave you" in html and 'href="tel:+' not in html


def test_a_team_missing_from_the_on_call_file_stops_the_app(tmp_path: Path) -> None:
    patients = tmp_path / "p.yaml"
    patients.write_text("patients:\n  - {id: P001, infusion: 2026-11-18, team: haem-z}\n")
    settings = load_settings(_env_file=None, app_secret=SECRET, patients=patients,
                             oncall=write_oncall(tmp_path / "oncall.yaml"))
    with pytest.raises(ConfigError, match=r"VITALS_ONCALL .*no team haem-z"):
        load_app_config(settings)


def test_every_value_on_the_page_is_escaped() -> None:
    html = render(f"/p/{HOSTILE}", HOSTILE, HOSTILE)
    assert HOSTILE not in html and "<img" not in html and "alert(1)</script>" not in html
    assert html.count("<script") == 1  # the one static script tag, src="/static/app.js"
    assert 'src="/static/app.js"' in html
    assert "&lt;script&gt;" in html and "&quot;&gt;" in html
    assert "javascript:" not in html and "the number they gave you" in html  # not a phone
    # a phone that passes the check is shown as text and a tel: link of digits only
    html = render("/p/x", "P001", "(020) 7946-0000")
    assert 'href="tel:02079460000"' in html and ">(020) 7946-0000</a>" in html


@pytest.mark.parametrize(("env", "says"), [
    ({}, "VITALS_APP_SECRET: not set"),
    ({"app_secret": "x" * 15}, "VITALS_APP_SECRET: must be 16"),
    ({"app_secret": SECRET, "app_addr": "nowhere"}, "VITALS_APP_ADDR"),
    ({"app_secret": SECRET, "app_addr": "127.0.0.1:99999"}, "VITALS_APP_ADDR"),
    ({"app_secret": SECRET, "oncall": "/nonexistent.yaml"}, "VITALS_ONCALL"),
])
def test_vitals_app_stops_at_start_with_one_line(tmp_path: Path, env: dict, says: str) -> None:
    proc = subprocess.run(vitals("app"), cwd=tmp_path, env=services.environment(env),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("vitals: ") and says in line, line
    assert "x" * 15 not in line


def test_vitals_app_serves_until_sigterm(mosquitto: servers.Server, tmp_path: Path) -> None:
    port = servers.free_port()
    env = services.environment({
        "mqtt_url": f"mqtt://127.0.0.1:{mosquitto.port}", "app_secret": SECRET,
        "app_addr": f"127.0.0.1:{port}",
        "patients": str(write_patients(tmp_path / "p.yaml", ["P001"])),
        "oncall": str(write_oncall(tmp_path / "oncall.yaml"))})
    proc = services.start("app", env=env, log=tmp_path / "app.log")
    try:
        proc.wait_ready(0, 60)
        answer = request(f"http://127.0.0.1:{port}/p/{make_token(SECRET, 'P001')}")
        assert answer.status == 200 and b"+44 20 7946 0000" in answer.body
    finally:
        code = proc.stop()
    assert code == 0, proc.tail()
    log = proc.output()
    assert make_token(SECRET, "P001") not in log  # no access log: links are credentials
    assert not re.search(r"Traceback", log), log
