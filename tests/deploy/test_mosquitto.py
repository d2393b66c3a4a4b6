"""The production broker setup of deploy/, run for real on loopback: accounts from
`vitals credentials`, certificates from deploy/mosquitto/make-certs.sh, Mosquitto with
deploy/mosquitto/mosquitto.conf (only its paths and ports moved), the compose healthcheck
command, and ingest's own MQTT client over TLS trusting the CA through SSL_CERT_FILE, as the
compose file sets it up."""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from harness import servers, services
from harness.command import vitals
from tests.support import write_patients

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
HOSTNAME = "localhost"


@dataclass
class Broker:
    server: servers.Server
    tls_port: int
    local_port: int
    certs: Path
    passwords: dict[str, str]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    patients = write_patients(tmp_path / "patients.yaml", ["P001", "P002"],
                              {"P001": ["ox-1", "th-1"], "P002": ["ox-1"]})
    accounts = tmp_path / "accounts"
    env = services.environment({"patients": patients})
    subprocess.run(vitals("credentials", "--out", str(accounts)),
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    certs = tmp_path / "certs"
    subprocess.run([str(DEPLOY / "mosquitto" / "make-certs.sh"), str(certs), HOSTNAME],
                   check=True, capture_output=True)
    with (accounts / "credentials.csv").open() as f:
        passwords = {r["username"]: r["password"] for r in csv.DictReader(f)}

    tls_port, local_port = servers.free_port(), servers.free_port()
    conf = CONF.read_text()
    # the container paths become this test's directories; the ports become free ones, and the
    # TLS listener stays on loopback
    conf = conf.replace("/mosquitto/config/", f"{accounts}/")
    conf = conf.replace("/mosquitto/certs/", f"{certs}/")
    conf = conf.replace("/mosquitto/data/", f"{tmp_path / 'data'}/")
    conf = re.sub(r"^listener 8883$", f"listener {tls_port} 127.0.0.1", conf, flags=re.M)
    conf = re.sub(r"^listener 1883 127.0.0.1$", f"listener {local_port} 127.0.0.1", conf,
                  flags=re.M)
    assert "/mosquitto/" not in conf and str(tls_port) in conf and str(local_port) in conf
    (tmp_path / "data").mkdir()
    # Started as root, Mosquitto drops to its own user before it opens the 0600 files (the
    # compose runbook chowns them to that user); here it keeps the uid it was started with.
    conf += "\nuser root\n"
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    (workdir / "mosquitto.conf").write_text(conf)
    server = servers.Server("mosquitto", tls_port, workdir,
                            [servers.which("mosquitto", "mosquitto"), "-c",
                             str(workdir / "mosquitto.conf")])
    with server.start():
        yield Broker(server, tls_port, local_port, certs, passwords)


def healthcheck_command() -> str:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    return command.replace("$$", "$")  # compose's escape for a literal $


def run_healthcheck(broker: Broker, password: str, account: str = "healthcheck"
                    ) -> subprocess.CompletedProcess[str]:
    command = healthcheck_command().replace("-p 1883", f"-p {broker.local_port}")
    assert "-u healthcheck " in command
    command = command.replace("-u healthcheck ", f"-u {account} ")
    assert f"-p {broker.local_port}" in command
    env = {**os.environ, "MQTT_INGEST_PASSWORD": password}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True,
                          timeout=20)


def test_the_healthcheck_passes_on_the_production_config(broker: Broker) -> None:
    result = run_healthcheck(broker, broker.passwords["ingest"])
    assert result.returncode == 0, result.stderr


def test_the_healthcheck_fails_with_a_wrong_password(broker: Broker) -> None:
    result = run_healthcheck(broker, "not-the-password")
    assert result.returncode != 0
    assert "not authorised" in (result.stdout + result.stderr).lower()


@pytest.mark.parametrize("account", ["healthcheck", "ingest"],
                         ids=["production", "on-ingests-account"])
def test_the_healthcheck_leaves_ingests_session_alone(broker: Broker, account: str) -> None:
    """The broker takes the account name as the client id, so the healthcheck has an account of
    its own: on ingest's (the control), every check takes over ingest's session and, with its
    clean session, wipes what the broker held for it."""
    wait_until(lambda: listening(broker.local_port), "the local listener")
    ingest, ingest_lost, _got = connect(broker.local_port, "ingest",
                                        broker.passwords["ingest"], "vitals-ingest",
                                        clean_session=False)
    try:
        subscribed = threading.Event()
        ingest.on_subscribe = lambda *_a: subscribed.set()
        ingest.subscribe("$share/vitals-ingest/vitals/v1/+/+", 1)
        assert subscribed.wait(20)
        result = run_healthcheck(broker, broker.passwords["ingest"], account)
        assert result.returncode == 0, result.stderr
        if account == "healthcheck":
            time.sleep(1)  # a takeover would have knocked ingest off by now
            assert ingest_lost == []
        else:
            wait_until(lambda: ingest_lost != [], "ingest to be knocked off")
    finally:
        ingest.disconnect()
        ingest.loop_stop()


INGEST_CLIENT = textwrap.dedent("""
    import sys, time
    from ingest.mqtt_source import MqttSource
    from vitals.settings import MQTT_SCHEMES, parse_endpoint

    got = []
    source = MqttSource(parse_endpoint(sys.argv[1], MQTT_SCHEMES), "vitals-ingest-test",
                        lambda topic, payload, mid, qos, retained: got.append(topic))
    source.start()
    ok = source.subscribed.wait(float(sys.argv[2]))
    source.stop()
    print("subscribed" if ok else "not subscribed")
    sys.exit(0 if ok else 1)
""")


def ingest_connect(broker: Broker, ca: Path | None, wait_s: float
                   ) -> subprocess.CompletedProcess[str]:
    url = f"mqtts://ingest:{broker.passwords['ingest']}@{HOSTNAME}:{broker.tls_port}"
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)
    return subprocess.run([sys.executable, "-c", INGEST_CLIENT, url, str(wait_s)], env=env,
                          capture_output=True, text=True, timeout=30)


def test_ingest_connects_over_tls_trusting_the_ca_through_ssl_cert_file(broker: Broker) -> None:
    result = ingest_connect(broker, broker.certs / "ca.crt", wait_s=15)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "subscribed" in result.stdout


def test_without_the_ca_ingest_refuses_the_broker_certificate(broker: Broker) -> None:
    # the handshake fails at once; a few seconds let paho retry and fail again
    result = ingest_connect(broker, None, wait_s=3)
    assert result.returncode == 1
    assert "not subscribed" in result.stdout


def test_a_device_publishes_over_tls_with_its_account_and_needs_the_ca(broker: Broker) -> None:
    pub = servers.which("mosquitto_pub", "mosquitto-clients")
    common = [pub, "-h", HOSTNAME, "-p", str(broker.tls_port), "--cafile",
              str(broker.certs / "ca.crt"), "-q", "1", "-m", "{}", "-u", "P001.ox-1", "-P",
              broker.passwords["P001.ox-1"], "-i", "dev-test"]
    own = subprocess.run([*common, "-t", "vitals/v1/P001/ox-1"], capture_output=True, text=True,
                         timeout=20)
    assert own.returncode == 0, own.stderr
    wrong_ca = subprocess.run([*common[:5], "--cafile", "/etc/ssl/certs/ca-certificates.crt",
                               *common[7:], "-t", "vitals/v1/P001/ox-1"],
                              capture_output=True, text=True, timeout=20)
    assert wrong_ca.returncode != 0


def connect(port: int, username: str, password: str, client_id: str,
            clean_session: bool = True) -> tuple[mqtt.Client, list[object], list[str]]:
    """A client on the local listener; its disconnects and received topics, as they happen."""
    disconnects: list[object] = []
    received: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean_session, protocol=mqtt.MQTTv311)
    client.username_pw_set(username, password)
    client.on_disconnect = lambda _c, _u, _f, reason, _p: disconnects.append(reason)
    client.on_message = lambda _c, _u, message: received.append(message.topic)
    assert client.connect("127.0.0.1", port) == 0
    client.loop_start()
    return client, disconnects, received


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("bound", [True, False], ids=["production", "without-binding"])
def test_a_device_account_cannot_take_over_ingests_session(broker: Broker, tmp_path: Path,
                                                           bound: bool) -> None:
    if not bound:  # the control: the same broker without the binding is taken over
        conf = broker.server.workdir / "mosquitto.conf"
        conf.write_text(conf.read_text().replace("use_username_as_clientid true", ""))
        broker.server.stop()
        broker.server.start()
    wait_until(lambda: listening(broker.local_port), "the local listener")
    ingest, ingest_lost, ingest_got = connect(broker.local_port, "ingest",
                                              broker.passwords["ingest"], "vitals-ingest",
                                              clean_session=False)
    try:
        subscribed = threading.Event()
        ingest.on_subscribe = lambda *_a: subscribed.set()
        ingest.subscribe("vitals/v1/+/+", 1)
        assert subscribed.wait(20)
        # a device account asks for ingest's client id, then publishes a reading
        device, _lost, _got = connect(broker.local_port, "P001.ox-1",
                                      broker.passwords["P001.ox-1"], "vitals-ingest")
        device.publish("vitals/v1/P001/ox-1", "{}", qos=1).wait_for_publish(20)
        device.disconnect()
        device.loop_stop()
        if bound:  # the reading reaches ingest, and ingest was never knocked off
            wait_until(lambda: "vitals/v1/P001/ox-1" in ingest_got, "the device's reading")
            assert ingest_lost == []
        else:  # the takeover knocks ingest off (and wipes its session with it)
            wait_until(lambda: ingest_lost != [], "ingest to be knocked off")
    finally:
        ingest.disconnect()
        ingest.loop_stop()


def test_the_broker_refuses_a_message_over_its_size_limit_and_ingest_never_sees_it(
        broker: Broker) -> None:
    """`message_size_limit` in the production config: a message over it never reaches ingest
    (so no device can make ingest hold megabytes); one over ingest's 64 KiB but under the
    broker's limit does, and ingest dead-letters it as too_large (tests/ingest/test_hostile)."""
    limit = int(re.search(r"^message_size_limit (\d+)$", CONF.read_text(), re.M)[1])
    assert 64 * 1024 < limit <= 1024 * 1024
    wait_until(lambda: listening(broker.local_port), "the local listener")
    sizes: list[int] = []
    ingest, _lost, _got = connect(broker.local_port, "ingest", broker.passwords["ingest"],
                                  "vitals-ingest")
    ingest.on_message = lambda _c, _u, message: sizes.append(len(message.payload))
    try:
        subscribed = threading.Event()
        ingest.on_subscribe = lambda *_a: subscribed.set()
        ingest.subscribe("vitals/v1/+/+", 1)
        assert subscribed.wait(20)
        for size in (64 * 1024 + 1, limit + 1, 2):
            device, _dl, _dg = connect(broker.local_port, "P001.ox-1",
                                       broker.passwords["P001.ox-1"], "P001.ox-1")
            device.publish("vitals/v1/P001/ox-1", b"x" * size, qos=1).wait_for_publish(20)
            device.disconnect()
            device.loop_stop()
        wait_until(lambda: 2 in sizes, "the small message after the huge one")
        assert sizes == [64 * 1024 + 1, 2]
    finally:
        ingest.disconnect()
        ingest.loop_stop()
