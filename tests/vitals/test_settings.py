"""Settings from the environment and `.env` (CONTRACT section 5): the defaults work on one
machine, and a bad value stops a command with one line naming the setting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness import services
from harness.command import vitals
from vitals.settings import ConfigError, Endpoint, Settings, load_settings, redact


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No VITALS_* from the machine running the tests, and no `.env` of the checkout."""
    for name in list(os.environ):
        if name.startswith("VITALS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_contract() -> None:
    s = load_settings(_env_file=None)
    assert s.mqtt_url == "mqtt://127.0.0.1:1883"
    assert s.mqtt == Endpoint("mqtt", "127.0.0.1", 1883)
    assert s.mqtt.tls is False and s.mqtt.address == "127.0.0.1:1883"
    assert s.kafka_url == "kafka://127.0.0.1:9092"
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.alerting_addr == "127.0.0.1:8470"
    assert s.pagerduty_url == "https://events.pagerduty.com/v2/enqueue"
    assert s.webhook_url is None and s.influx_url is None
    assert s.patients is None and s.oncall is None and s.rules is None  # embedded defaults
    assert s.state_dir.name == "vitals"


def test_environment_variables_override_the_defaults(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    patients = tmp_path / "patients.yaml"
    patients.write_text("patients: []\n")
    env = {
        "VITALS_MQTT_URL": "mqtts://ingest:s3cret@broker.example.org",
        "VITALS_KAFKA_URL": "kafkas://k1:19092,k2:19093,kafkas://k3",
        "VITALS_ALERTING_ADDR": "0.0.0.0:9000",
        "VITALS_PAGERDUTY_URL": "http://127.0.0.1:8080/v2/enqueue",
        "VITALS_WEBHOOK_URL": "https://pager.example.org/hook",
        "VITALS_INFLUX_URL": "http://127.0.0.1:8086",
        "VITALS_INFLUX_TOKEN": "tok",
        "VITALS_PATIENTS": str(patients),
        "VITALS_STATE_DIR": str(tmp_path / "state"),
        "VITALS_KAFKA_PARTITIONS": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings(_env_file=None)
    assert s.mqtt == Endpoint("mqtts", "broker.example.org", 8883, "ingest", "s3cret")
    assert s.mqtt.tls is True
    assert s.kafka_bootstrap == "k1:19092,k2:19093,k3:9093" and s.kafka.tls
    assert s.alerting_addr == "0.0.0.0:9000"
    assert s.pagerduty_url == env["VITALS_PAGERDUTY_URL"]
    assert s.webhook_url == env["VITALS_WEBHOOK_URL"]
    assert s.influx_url == env["VITALS_INFLUX_URL"] and s.influx_token == "tok"
    assert s.patients == patients
    assert s.state_dir == tmp_path / "state"
    assert s.kafka_partitions == 3


def test_an_empty_webhook_url_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALS_WEBHOOK_URL", "")
    assert load_settings(_env_file=None).webhook_url is None


def test_a_dotenv_file_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# local settings\n"
        "VITALS_MQTT_URL=mqtt://10.0.0.5:1884\n"
        "VITALS_ALERTING_ADDR=127.0.0.1:9999\n"
        "OTHER_TOOL_SETTING=ignored\n"
    )
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.mqtt == Endpoint("mqtt", "10.0.0.5", 1884)
    assert s.alerting_addr == "127.0.0.1:9999"
    monkeypatch.setenv("VITALS_ALERTING_ADDR", "127.0.0.1:7777")
    assert load_settings().alerting_addr == "127.0.0.1:7777"
    assert load_settings(_env_file=None).mqtt_url == "mqtt://127.0.0.1:1883"


BAD = [
    ("VITALS_MQTT_URL", "http://127.0.0.1:1883", "mqtt://"),
    ("VITALS_MQTT_URL", "127.0.0.1:1883", "mqtt://"),
    ("VITALS_MQTT_URL", "mqtt://127.0.0.1:99999", "bad port"),
    ("VITALS_MQTT_URL", "mqtt://127.0.0.1:port", "bad port"),
    ("VITALS_MQTT_URL", "mqtt://127.0.0.1:0", "bad port"),
    ("VITALS_MQTT_URL", "mqtt://", "no host"),
    ("VITALS_KAFKA_URL", "http://127.0.0.1:9092", "kafka://"),
    ("VITALS_KAFKA_URL", "kafka://127.0.0.1:70000", "bad port"),
    ("VITALS_KAFKA_URL", "kafka://k1:9092,http://k2:9092", "kafka://"),
    ("VITALS_PAGERDUTY_URL", "events.pagerduty.com/v2/enqueue", "http://"),
    ("VITALS_WEBHOOK_URL", "ftp://pager.example.org", "http://"),
    ("VITALS_ALERTING_ADDR", "127.0.0.1", "host:port"),
    ("VITALS_ALERTING_ADDR", "127.0.0.1:", "host:port"),
    ("VITALS_ALERTING_ADDR", ":8470", "host:port"),
    ("VITALS_ALERTING_ADDR", "127.0.0.1:0", "host:port"),
    ("VITALS_ALERTING_ADDR", "127.0.0.1:65536", "host:port"),
    ("VITALS_INGEST_METRICS_ADDR", "localhost", "host:port"),
    ("VITALS_KAFKA_PARTITIONS", "0", "1-1024"),
    ("VITALS_KAFKA_PARTITIONS", "1025", "1-1024"),
    ("VITALS_KAFKA_PARTITIONS", "eight", "integer"),
    # MQTT 5 shared-subscription group names: no / + # ("" is one instance, plain filters)
    ("VITALS_INGEST_SHARE_GROUP", "vitals/ingest", "no / + #"),
    ("VITALS_INGEST_SHARE_GROUP", "ingest+", "no / + #"),
    ("VITALS_INGEST_SHARE_GROUP", "#", "no / + #"),
    ("VITALS_ALERTING_DB_URL", "mysql://db:3306/vitals", "postgresql://"),
    ("VITALS_ALERTING_DB_URL", "postgresql://db:port/vitals", "bad port"),
    ("VITALS_ALERTING_LEASE_S", "nan", "(0, 86400]"),
    ("VITALS_ALERTING_LEASE_S", "inf", "(0, 86400]"),
    ("VITALS_ALERTING_LEASE_S", "0", "(0, 86400]"),
]


def one_line(exc: ConfigError) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and msg == msg.strip()
    return msg


@pytest.mark.parametrize(("name", "value", "says"), BAD)
def test_a_bad_value_is_one_line_starting_with_the_setting(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    msg = one_line(info.value)
    assert msg.startswith(f"{name}: ")
    assert says in msg


@pytest.mark.parametrize("name", ["VITALS_PATIENTS", "VITALS_ONCALL", "VITALS_RULES"])
def test_a_file_setting_naming_no_file_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, name: str) -> None:
    missing = tmp_path / "missing.yaml"
    monkeypatch.setenv(name, str(missing))
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    msg = one_line(info.value)
    assert msg.startswith(f"{name}: ") and str(missing) in msg
    monkeypatch.setenv(name, str(tmp_path))  # a directory is no file either
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load_settings(_env_file=None)


def test_several_bad_values_are_still_one_line_naming_each(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALS_MQTT_URL", "http://x")
    monkeypatch.setenv("VITALS_KAFKA_PARTITIONS", "0")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    msg = one_line(info.value)
    assert "VITALS_MQTT_URL" in msg and "VITALS_KAFKA_PARTITIONS" in msg


def test_a_bad_value_in_dotenv_is_named_too(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("VITALS_KAFKA_URL=redpanda:9092:1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert one_line(info.value).startswith("VITALS_KAFKA_URL: ")


def test_overrides_are_validated_like_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"^VITALS_MQTT_URL: "):
        load_settings(_env_file=None, mqtt_url="tcp://127.0.0.1:1883")
    assert isinstance(load_settings(_env_file=None, kafka_partitions=2), Settings)


def test_the_console_command_stops_with_one_line_and_status_2(tmp_path: Path) -> None:
    env = services.environment({"mqtt_url": "http://127.0.0.1:1883"})
    proc = subprocess.run(
        vitals("ingest"),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "VITALS_MQTT_URL" in lines[0] and "mqtt://" in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize(("text", "says"), [
    ("patients:\n  - {id: P001, infusion: 2026-11-18}\n", "team"),
    ("patients:\n  - {id: P001, infusion: 2026-13-01, team: a}\n", "month"),
])
def test_the_console_command_stops_on_a_bad_patients_file(tmp_path: Path, text: str,
                                                          says: str) -> None:
    bad = tmp_path / "patients.yaml"
    bad.write_text(text)
    env = services.environment({"patients": bad})
    proc = subprocess.run(
        vitals("ingest"),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "VITALS_PATIENTS" in lines[0] and says in lines[0], lines


@pytest.mark.parametrize("url", [
    "mqtt://ingest:s3cret-pass@broker:notaport",
    "http://ingest:s3cret-pass@:8086",
    "ftp://ingest:s3cret-pass@broker",
    "mqtts://ingest:s3cret-pass@[::1",
])
def test_a_bad_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None, mqtt_url=url, influx_url=url.replace("mqtt", "http"))
    assert "s3cret-pass" not in str(exc.value) and "VITALS_MQTT_URL" in str(exc.value)


def test_redact_hides_passwords_and_leaves_the_rest() -> None:
    assert redact("kafkas://svc:p%40ss@k1:9093") == "kafkas://svc:***@k1:9093"
    assert redact("http://127.0.0.1:8086") == "http://127.0.0.1:8086"
    assert redact("smtp://user@mail:25") == "smtp://user@mail:25"
    assert "pw" not in repr(Endpoint("mqtt", "h", 1, "u", "pw"))
