"""Kafka over TLS with SASL/SCRAM in deploy/ (issue #13): read from the files, every vitals
service reaches Kafka with kafkas:// as a SCRAM account, trusting the Kafka CA mounted read-only;
the broker advertises no plaintext listener; deploy/kafka/start.sh makes the SCRAM accounts
before the broker first starts (run here against a stand-in for the image); and
deploy/kafka/make-certs.sh makes the CA and the PKCS12 keystore the broker is configured with
(checked with openssl and, when there is a JDK, keytool). No Docker engine runs here, so the
broker itself does not start in these tests."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, load_module
from vitals.kafka import KafkaConnection
from vitals.settings import kafka_endpoints, load_settings

cc = load_module("check_compose")
model = load_module("compose_model")
START = DEPLOY / "kafka" / "start.sh"
MAKE_CERTS = DEPLOY / "kafka" / "make-certs.sh"
KAFKA_CA = "/etc/ssl/vitals/kafka-ca.crt"


@pytest.fixture(scope="module")
def loaded() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    env = cc.read_env_file(cc.ENV_EXAMPLE)
    raw, doc, _used = cc.load(cc.COMPOSE, env)
    return raw, doc, env


def listeners(value: str) -> dict[str, str]:
    """KAFKA_LISTENERS-style `NAME://host:port,...` as {NAME: host:port}."""
    return dict(part.split("://", 1) for part in value.split(","))


# --- compose ---------------------------------------------------------------------------------
def test_the_canary_and_the_app_alone_get_no_kafka_account(loaded: Any) -> None:
    """They publish over MQTT as a device does: the Kafka password stays with the services
    that use Kafka."""
    _raw, doc, _env = loaded
    assert set(cc.VITALS_SERVICES) - set(model.KAFKA_SERVICES) == {"canary", "app"}
    for name in ("canary", "app"):
        assert not [k for k in cc.environment(doc, name) if "KAFKA" in k], name


@pytest.mark.parametrize("service", model.KAFKA_SERVICES)
def test_every_vitals_service_reaches_kafka_with_kafkas_scram_and_the_mounted_ca(
        loaded: Any, service: str) -> None:
    raw, doc, env = loaded
    service_env = cc.environment(doc, service)
    url = service_env["VITALS_KAFKA_URL"]
    assert url.startswith("kafkas://")
    [endpoint] = kafka_endpoints(url)
    assert (endpoint.tls, endpoint.username, endpoint.password, endpoint.address) == (
        True, "vitals", env["KAFKA_VITALS_PASSWORD"], "kafka:9093")
    assert service_env["VITALS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert service_env["VITALS_KAFKA_CA_FILE"] == KAFKA_CA
    # the compose file says where the password comes from: deploy/.env, required
    assert "${KAFKA_VITALS_PASSWORD:?" in raw["x-vitals-env"]["VITALS_KAFKA_URL"]
    held = cc.mounted_source(cc.mounts(raw, doc, service), KAFKA_CA)
    assert held is not None
    mount, below = held
    assert mount.bind and mount.read_only and below == "."
    assert mount.raw_source.startswith("${KAFKA_CERTS_DIR") and mount.source.endswith("/ca.crt")
    # what the service's settings make of it: SASL_SSL with SCRAM, trusting that CA
    settings = load_settings(_env_file=None, kafka_url=url,
                             kafka_sasl_mechanism=service_env["VITALS_KAFKA_SASL_MECHANISM"])
    config = KafkaConnection(settings.kafka.bootstrap, tls=True, username="vitals",
                             password="x", ca_file=Path(KAFKA_CA)).client_config()
    assert settings.kafka.tls and settings.kafka.username == "vitals"
    assert (config["security.protocol"], config["sasl.mechanism"], config["ssl.ca.location"]) \
        == ("SASL_SSL", "SCRAM-SHA-512", KAFKA_CA)


def test_the_broker_advertises_only_sasl_ssl_and_keeps_the_controller_on_loopback(
        loaded: Any) -> None:
    _raw, doc, _env = loaded
    env = cc.environment(doc, "kafka")
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    assert advertised == {"SASL_SSL": "kafka:9093"}
    assert {protocols[name] for name in advertised} == {"SASL_SSL"}
    bound = listeners(env["KAFKA_LISTENERS"])
    assert set(bound) == {"SASL_SSL", "CONTROLLER"}
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert bound["CONTROLLER"].startswith("127.0.0.1:")  # plaintext, but only on loopback
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"1@{bound['CONTROLLER']}"
    plaintext = {name for name, proto in protocols.items() if proto in ("PLAINTEXT", "SSL")}
    assert plaintext == {"CONTROLLER"}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "SASL_SSL"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert not doc["services"]["kafka"].get("ports")  # compose network only


def test_the_broker_gets_the_files_make_certs_makes_and_its_entrypoint(loaded: Any,
                                                                       tmp_path: Path) -> None:
    raw, doc, _env = loaded
    service = doc["services"]["kafka"]
    env = cc.environment(doc, "kafka")
    ms = cc.mounts(raw, doc, "kafka")
    [secrets] = [m for m in ms if m.target == "/etc/kafka/secrets"]
    assert secrets.read_only and secrets.raw_source.startswith("${KAFKA_CERTS_DIR")
    # the image's entrypoint reads these names from /etc/kafka/secrets
    wanted = {env["KAFKA_SSL_KEYSTORE_FILENAME"], env["KAFKA_SSL_KEYSTORE_CREDENTIALS"],
              env["KAFKA_SSL_KEY_CREDENTIALS"],
              Path(env["KAFKA_SSL_TRUSTSTORE_LOCATION"]).relative_to("/etc/kafka/secrets").name}
    assert env["KAFKA_SSL_KEYSTORE_TYPE"] == "PKCS12"
    assert env["KAFKA_SSL_TRUSTSTORE_TYPE"] == "PEM"
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run(["sh", str(MAKE_CERTS), str(tmp_path / "ca")], check=True,
                   capture_output=True)
    assert wanted <= {p.name for p in (tmp_path / "ca").iterdir()}
    # the entrypoint is deploy/kafka/start.sh, and hands over to the image's own
    assert service["entrypoint"] == ["/bin/bash", "/opt/vitals/kafka-start.sh"]
    held = cc.mounted_source(ms, "/opt/vitals/kafka-start.sh")
    assert held is not None and (DEPLOY / held[0].source).resolve() == START
    assert held[0].read_only


def test_the_scram_passwords_are_required_and_never_rendered_into_server_properties(
        loaded: Any) -> None:
    raw, doc, env = loaded
    kafka_raw = raw["services"]["kafka"]["environment"]
    assert kafka_raw["SCRAM_ADMIN_PASSWORD"].startswith("${KAFKA_ADMIN_PASSWORD:?")
    assert kafka_raw["SCRAM_VITALS_PASSWORD"].startswith("${KAFKA_VITALS_PASSWORD:?")
    # the image renders every KAFKA_* variable into server.properties: none holds a password
    kafka_env = cc.environment(doc, "kafka")
    passwords = {env["KAFKA_ADMIN_PASSWORD"], env["KAFKA_VITALS_PASSWORD"]}
    assert not [k for k, v in kafka_env.items() if k.startswith("KAFKA_") and v in passwords]
    with pytest.raises(cc.InterpolationError, match="KAFKA_VITALS_PASSWORD"):
        cc.load(cc.COMPOSE, {**env, "KAFKA_VITALS_PASSWORD": ""})


def test_the_healthcheck_and_kafka_topics_speak_sasl_ssl(loaded: Any) -> None:
    raw, doc, _env = loaded
    test = " ".join(doc["services"]["kafka"]["healthcheck"]["test"])
    assert "--bootstrap-server kafka:9093" in test
    config = test.split("--command-config ", 1)[1].split()[0]
    assert config == "/opt/kafka/config/vitals-client.properties"
    assert 'cat >"$CONFIG_DIR/vitals-client.properties"' in START.read_text()
    topics = cc.environment(doc, "kafka-topics")
    assert topics["KAFKA_BOOTSTRAP"] == "kafka:9093"
    assert topics["KAFKA_SASL_USERNAME"] == "admin"
    assert raw["services"]["kafka-topics"]["environment"]["KAFKA_SASL_PASSWORD"].startswith(
        "${KAFKA_ADMIN_PASSWORD:?")
    held = cc.mounted_source(cc.mounts(raw, doc, "kafka-topics"), topics["KAFKA_CA_FILE"])
    assert held is not None and held[0].read_only and held[0].source.endswith("/ca.crt")


# --- deploy/kafka/start.sh against a stand-in for the apache/kafka image ----------------------
FAKE_CONFIGURE = """#!/bin/sh
echo "configure KAFKA_OPTS=$KAFKA_OPTS" >> "$FAKE_LOG"
echo "process.roles=broker,controller" > "$START_ROOT/opt/kafka/config/server.properties"
"""
FAKE_STORAGE = """#!/bin/sh
echo "kafka-storage $*" >> "$FAKE_LOG"
echo "cluster.id=x" > "$KAFKA_LOG_DIRS/meta.properties"
"""
FAKE_RUN = """#!/bin/sh
echo "run KAFKA_OPTS=$KAFKA_OPTS" >> "$FAKE_LOG"
"""


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A tree with the image's paths: its entrypoint scripts and kafka-storage.sh stand-ins,
    the config directory, and the secrets directory with make-certs.sh's file names."""
    root = tmp_path / "root"
    for rel, text in (("etc/kafka/docker/configure", FAKE_CONFIGURE),
                      ("opt/kafka/bin/kafka-storage.sh", FAKE_STORAGE),
                      ("etc/kafka/docker/run", FAKE_RUN)):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    (root / "opt/kafka/config").mkdir(parents=True)
    secrets = root / "etc/kafka/secrets"
    secrets.mkdir(parents=True)
    for name in ("ca.crt", "kafka.p12", "kafka.p12.password"):
        (secrets / name).write_text("x\n")
    (tmp_path / "data").mkdir()
    return root


def start(root: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = root.parent / "log"
    full = {"PATH": os.environ["PATH"], "START_ROOT": str(root), "FAKE_LOG": str(log),
            "KAFKA_LOG_DIRS": str(root.parent / "data"), "CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
            "SCRAM_ADMIN_PASSWORD": "a1b2c3", "SCRAM_VITALS_PASSWORD": "d4e5f6", **env}
    result = subprocess.run(["bash", str(START)], env=full, capture_output=True, text=True,
                            timeout=30)
    return result, log.read_text().splitlines() if log.exists() else []


def test_start_formats_an_empty_volume_with_both_scram_accounts(image: Path) -> None:
    result, log = start(image)
    assert result.returncode == 0, result.stderr
    assert log[0].startswith("configure ")
    storage = log[1]
    assert storage.startswith("kafka-storage format --cluster-id MkU3OEVBNTcwNTJENDM2Qk -c ")
    assert storage.endswith("/opt/kafka/config/server.properties"
                            " --add-scram SCRAM-SHA-512=[name=admin,password=a1b2c3]"
                            " --add-scram SCRAM-SHA-512=[name=vitals,password=d4e5f6]")
    jaas = image / "opt/kafka/config/vitals-jaas.conf"
    assert log[2] == f"run KAFKA_OPTS=-Djava.security.auth.login.config={jaas}"
    assert 'username="admin" password="a1b2c3";' in jaas.read_text()
    client = (image / "opt/kafka/config/vitals-client.properties").read_text()
    assert "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n" in client
    assert "ssl.truststore.location=/etc/kafka/secrets/ca.crt" in client
    for f in (jaas, image / "opt/kafka/config/vitals-client.properties"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_start_leaves_a_formatted_volume_alone(image: Path) -> None:
    (image.parent / "data" / "meta.properties").write_text("cluster.id=x\n")
    result, log = start(image, KAFKA_OPTS="-Xfoo")
    assert result.returncode == 0, result.stderr
    jaas = image / "opt/kafka/config/vitals-jaas.conf"
    assert log == [f"run KAFKA_OPTS=-Xfoo -Djava.security.auth.login.config={jaas}"]


@pytest.mark.parametrize("password", ["", "has,comma", 'quo"te', "at@sign", "sp ace"])
def test_start_refuses_a_password_that_would_break_the_url_or_jaas(image: Path,
                                                                   password: str) -> None:
    result, log = start(image, SCRAM_VITALS_PASSWORD=password)
    assert result.returncode == 2 and log == []
    assert "SCRAM_VITALS_PASSWORD must be set and use only" in result.stderr


def test_start_says_which_certificate_files_are_missing(image: Path) -> None:
    (image / "etc/kafka/secrets/kafka.p12").unlink()
    result, log = start(image)
    assert result.returncode == 2 and log == []
    assert "needs ca.crt, kafka.p12 and kafka.p12.password" in result.stderr


# --- deploy/kafka/make-certs.sh, for real --------------------------------------------------------
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_make_certs_makes_a_keystore_for_kafka_that_a_client_trusting_ca_crt_verifies(
        tmp_path: Path) -> None:
    out = tmp_path / "kafka-ca"
    subprocess.run(["sh", str(MAKE_CERTS), str(out)], check=True, capture_output=True)
    assert stat.S_IMODE((out / "kafka.p12").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "kafka.p12.password").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "ca.crt").stat().st_mode) == 0o644
    password = (out / "kafka.p12.password").read_text().strip()
    assert len(password) >= 32
    cert = tmp_path / "kafka.crt"
    subprocess.run(["openssl", "pkcs12", "-in", str(out / "kafka.p12"), "-nokeys", "-clcerts",
                    "-passin", f"file:{out / 'kafka.p12.password'}", "-out", str(cert)],
                   check=True, capture_output=True)
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(out / "ca.crt"),
                             "-purpose", "sslserver", str(cert)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout
    # the name the services connect to (kafka:9093) and the broker's loopback
    assert "DNS:kafka" in text and "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    key = subprocess.run(["openssl", "pkcs12", "-in", str(out / "kafka.p12"), "-nocerts",
                          "-nodes", "-passin", f"file:{out / 'kafka.p12.password'}"],
                         capture_output=True, text=True)
    assert key.returncode == 0 and "PRIVATE KEY" in key.stdout
    # run again: a new broker certificate, the same CA (the clients keep trusting it)
    ca = (out / "ca.crt").read_bytes()
    subprocess.run(["sh", str(MAKE_CERTS), str(out), "kafka.example.org"], check=True,
                   capture_output=True)
    assert (out / "ca.crt").read_bytes() == ca


@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("keytool") is None,
                    reason="openssl or keytool (a JDK) is not installed")
def test_make_certs_keystore_is_read_by_java_as_kafka_reads_it(tmp_path: Path) -> None:
    out = tmp_path / "kafka-ca"
    subprocess.run(["sh", str(MAKE_CERTS), str(out)], check=True, capture_output=True)
    password = (out / "kafka.p12.password").read_text().strip()
    listing = subprocess.run(["keytool", "-list", "-v", "-storetype", "PKCS12", "-keystore",
                              str(out / "kafka.p12"), "-storepass", password],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "Entry type: PrivateKeyEntry" in listing.stdout
    assert "Certificate chain length: 2" in listing.stdout  # the broker's, then the CA's
    assert "Owner: CN=kafka" in listing.stdout
