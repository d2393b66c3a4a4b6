"""deploy/compose.yaml against the Compose Specification's JSON schema and its cross-references
(deploy/check_compose.py), and deploy/kafka/create-topics.sh against a stand-in for Kafka's
command-line tools. No Docker engine runs here, so whether the images start is not tested;
everything the compose file says about this repository is."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from harness import servers, services
from harness.command import vitals
from stream_rules.faust_app import CHANGELOG
from tests.deploy.support import DEPLOY, load_module
from vitals import topics
from vitals.health_http import HealthServer

SCHEMAS = DEPLOY / "schemas"
# sha256 of compose-spec.json as vendored (see deploy/schemas/README.md)
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"




cc = load_module("check_compose")
checklib = load_module("checklib")  # the file formats the check reads


@pytest.fixture(scope="module")
def loaded() -> tuple[dict[str, Any], dict[str, Any], set[str], dict[str, str]]:
    env = cc.read_env_file(cc.ENV_EXAMPLE)
    raw, doc, used = cc.load(cc.COMPOSE, env)
    return raw, doc, used, env


def cross(loaded: tuple[dict[str, Any], dict[str, Any], set[str], dict[str, str]],
          doc: dict[str, Any] | None = None, **kw: Any) -> list[str]:
    raw, d, used, env = loaded
    return cc.cross_errors(raw, doc if doc is not None else d, used, env, env, **kw)


# --- the schema ------------------------------------------------------------------------------
def test_the_vendored_schema_is_the_one_noted_in_data_readme() -> None:
    assert hashlib.sha256((SCHEMAS / "compose-spec.json").read_bytes()).hexdigest() == SCHEMA_SHA256
    assert SCHEMA_SHA256 in (SCHEMAS / "README.md").read_text()


def test_compose_yaml_is_valid_against_the_compose_specification(loaded: Any) -> None:
    _raw, doc, _used, _env = loaded
    assert cc.schema_errors(doc) == []


def test_the_schema_catches_what_compose_would_refuse(loaded: Any) -> None:
    _raw, doc, _used, _env = loaded
    typo = copy.deepcopy(doc)
    typo["services"]["rules"]["restrat"] = "always"
    assert any("restrat" in e for e in cc.schema_errors(typo))
    bad_condition = copy.deepcopy(doc)
    bad_condition["services"]["ingest"]["depends_on"]["kafka-topics"]["condition"] = "done"
    assert any("depends_on" in e for e in cc.schema_errors(bad_condition))
    bad_interval = copy.deepcopy(doc)
    bad_interval["services"]["alerting"]["healthcheck"]["interval"] = 15
    assert any("interval" in e for e in cc.schema_errors(bad_interval))


# --- interpolation, as docker compose does it -------------------------------------------------
@pytest.mark.parametrize(("text", "env", "expected"), [
    ("${A}", {"A": "x"}, "x"),
    ("${A}", {}, ""),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:-${B:-nested}}", {}, "nested"),
    ("${A:+alt}", {"A": "x"}, "alt"),
    ("${A:+alt}", {}, ""),
    ("$$A and $A", {"A": "x"}, "$A and x"),
    ("pre-${A:--Xmx1g}-post", {}, "pre--Xmx1g-post"),
])
def test_interpolation(text: str, env: dict[str, str], expected: str) -> None:
    assert checklib.Interpolator(env).string(text) == expected


def test_a_required_variable_that_is_empty_stops_interpolation() -> None:
    with pytest.raises(checklib.InterpolationError, match="MQTT_HOSTNAME is required: set it"):
        checklib.Interpolator({"MQTT_HOSTNAME": ""}).string("${MQTT_HOSTNAME:?set it}")
    with pytest.raises(checklib.InterpolationError, match="lone"):
        checklib.Interpolator({}).string("cost $5")


def test_the_env_file_reader(tmp_path: Path) -> None:
    f = tmp_path / ".env"
    f.write_text("# comment\n\nA=1\nexport B='two words'\nC=\"x y\"\nD=val # note\nE=\n")
    assert cc.read_env_file(f) == {"A": "1", "B": "two words", "C": "x y", "D": "val", "E": ""}


# --- cross-references --------------------------------------------------------------------------
def test_every_cross_reference_holds(loaded: Any) -> None:
    assert cross(loaded) == []


def test_every_variable_of_env_example_is_commented() -> None:
    lines = cc.ENV_EXAMPLE.read_text().splitlines()
    for n, line in enumerate(lines):
        if re.match(r"[A-Z][A-Z0-9_]*=", line):
            above = n - 1
            while above >= 0 and re.match(r"[A-Z][A-Z0-9_]*=", lines[above]):
                above -= 1  # a group of related variables shares its comment
            assert above >= 0 and lines[above].startswith("#"), line


def one_device_over_tls(service: str, login: str, account: str) -> list[tuple[Any, str]]:
    """The mistakes a service that connects like a device can have (the canary, the patients'
    page): missing, more than one, another account, plain MQTT, no CA for the broker."""
    env = lambda d: d["services"][service]["environment"]  # noqa: E731
    wrong = f"{service}: VITALS_MQTT_URL must be mqtts://{account}:...@<broker alias>:8883"
    return [
        (lambda d: d["services"].pop(service), f"no service {service}"),
        (lambda d: d["services"][service]["deploy"].update(replicas=2),
         f"{service}: must run exactly one replica"),
        (lambda d: env(d).update(VITALS_MQTT_URL="mqtts://ingest:pw@mqtt.example.org:8883"),
         wrong),
        (lambda d: env(d).update(VITALS_MQTT_URL=f"mqtt://{login}:pw@mqtt.example.org:1883"),
         wrong),
        (lambda d: env(d).pop("SSL_CERT_FILE"),
         f"{service}: SSL_CERT_FILE (the broker's CA) is not set to a mounted file"),
    ]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["services"]["rules"].update(command=["rule"]), "not a vitals subcommand"),
    (lambda d: d["services"]["store"].update(command=["store", "--fast"]), "No such option"),
    # /healthz on the port each service listens on, published (deploy/README.md, "Health
    # checks and restarts")
    (lambda d: d["services"]["ingest"]["environment"].update(
        VITALS_INGEST_METRICS_ADDR="0.0.0.0:9999"),
     "ingest: the healthcheck does not probe /healthz on port 9999"),
    (lambda d: d["services"]["ingest"]["healthcheck"].update(test=[
        "CMD", "python", "-c", "import urllib.request; "
        "urllib.request.urlopen('http://127.0.0.1:9470/metrics?next=/healthz', timeout=5)"]),
     "ingest: the healthcheck does not probe /healthz on port 9470"),
    (lambda d: d["services"]["alerting"]["environment"].update(
        VITALS_ALERTING_ADDR="127.0.0.1:8470"), "must listen on 0.0.0.0"),
    (lambda d: d["services"]["rules"]["environment"].pop("VITALS_RULES_METRICS_ADDR"),
     "rules: VITALS_RULES_METRICS_ADDR= must listen on 0.0.0.0"),
    (lambda d: d["services"]["rules"].pop("healthcheck"),
     "rules: the healthcheck does not probe /healthz on port 9471"),
    (lambda d: d["services"]["rules"].update(ports=["127.0.0.1:9471:9471"]),
     "rules: several replicas cannot share host port 9471"),
    (lambda d: d["services"]["store"]["environment"].update(
        VITALS_STORE_METRICS_ADDR="127.0.0.1:9472"),
     "store: VITALS_STORE_METRICS_ADDR=127.0.0.1:9472 must listen on 0.0.0.0"),
    (lambda d: d["services"]["store"]["healthcheck"]["test"].__setitem__(
        -1, "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9470/healthz')"),
     "store: the healthcheck does not probe /healthz on port 9472"),
    (lambda d: d["services"]["store"].pop("ports"), "store: port 9472 is not published"),
    (lambda d: d["services"]["alerting"]["environment"].update(VITALS_ONCAL="x"),
     "VITALS_ONCAL is not a vitals setting"),
    (lambda d: d["services"]["ingest"]["environment"].update(VITALS_MQTT_URL="tcp://x:1"),
     "VITALS_MQTT_URL"),
    (lambda d: d["services"]["rules"]["environment"].update(VITALS_RULES="/etc/other/r.yaml"),
     "not in a mounted directory"),
    (lambda d: d["services"]["alerting"]["deploy"].update(replicas=2),
     "alerting: must run exactly one replica, not 2: each instance needs a state volume of its "
     "own: add an instance as a service of its own (as alerting-2)"),
    (lambda d: d["services"]["ingest"]["deploy"].update(replicas=2), "exactly one replica"),
    # ingest: two instances, each its own client id and account, one share group
    # (deploy/README.md, "Ingest: several instances")
    (lambda d: d["services"]["ingest-2"]["deploy"].update(replicas=2),
     "ingest-2: must run exactly one replica"),
    (lambda d: d["services"].pop("ingest-2"), "no service ingest-2"),
    (lambda d: d["services"]["ingest-2"]["environment"].update(
        VITALS_INGEST_CLIENT_ID="vitals-ingest"),
     "ingest-2: VITALS_INGEST_CLIENT_ID=vitals-ingest is ingest's too"),
    (lambda d: d["services"]["ingest-2"]["environment"].update(VITALS_INGEST_SHARE_GROUP="other"),
     "the instances need one VITALS_INGEST_SHARE_GROUP"),
    (lambda d: [d["services"][s]["environment"].update(VITALS_INGEST_SHARE_GROUP="")
                for s in ("ingest", "ingest-2")],
     "several instances need a VITALS_INGEST_SHARE_GROUP"),
    (lambda d: d["services"]["ingest-2"]["environment"].update(VITALS_INGEST_SHARE_GROUP="a/b"),
     "ingest-2: the settings it gets are refused: VITALS_INGEST_SHARE_GROUP"),
    (lambda d: d["services"]["ingest-2"]["environment"].update(
        VITALS_MQTT_URL="mqtts://ingest:pw@mqtt.example.org:8883"),
     "ingest-2: VITALS_MQTT_URL must be mqtts://ingest-2:"),
    (lambda d: d["services"]["ingest-2"].update(restart="no"),
     "ingest-2: a long-running service needs restart: unless-stopped"),
    (lambda d: d["services"]["mosquitto"]["healthcheck"]["test"].__setitem__(
        1, d["services"]["mosquitto"]["healthcheck"]["test"][1].replace(
            "-u healthcheck", "-u ingest")),
     "mosquitto: the healthcheck must log in as `healthcheck`"),
    (lambda d: d["services"]["rules"]["deploy"].update(replicas=9), "VITALS_KAFKA_PARTITIONS"),
    (lambda d: d["services"]["alerting"].update(volumes=["./config:/etc/vitals:ro"]),
     "VITALS_STATE_DIR must be a writable named volume"),
    # alerting: several instances only on one PostgreSQL; on SQLite, one (deploy/README.md,
    # "Alerting: two instances")
    (lambda d: d["services"]["alerting-2"]["environment"].pop("VITALS_ALERTING_DB_URL"),
     "alerting-2: without VITALS_ALERTING_DB_URL alerting keeps its state in SQLite and must "
     "run as one instance, not 2 (alerting, alerting-2): set VITALS_ALERTING_DB_URL on every "
     "instance to share PostgreSQL"),
    (lambda d: [d["services"][name]["environment"].update(VITALS_ALERTING_DB_URL="")
                for name in ("alerting", "alerting-2")],
     "alerting, alerting-2: without VITALS_ALERTING_DB_URL alerting keeps its state in SQLite"),
    (lambda d: d["services"]["alerting-2"]["deploy"].update(replicas=3),
     "alerting-2: must run exactly one replica, not 3: each instance needs a state volume"),
    (lambda d: d["services"]["alerting-2"].update(volumes=[
        "./config:/etc/vitals:ro", "./secrets/kafka/ca.crt:/etc/ssl/vitals/kafka-ca.crt:ro",
        "alerting-state:/var/lib/vitals"]),
     "alerting-2: VITALS_STATE_DIR must be a writable named volume of its own, not alerting's "
     "(alerting-state): one instance per state directory"),
    (lambda d: d["services"]["alerting-2"].update(volumes=[
        "./config:/etc/vitals:ro", "./secrets/kafka/ca.crt:/etc/ssl/vitals/kafka-ca.crt:ro",
        "alerting-2-state:/var/lib/vitals:ro"]),
     "alerting-2: VITALS_STATE_DIR must be a writable named volume of its own"),
    (lambda d: d["services"]["alerting-2"]["environment"].update(
        VITALS_ALERTING_DB_URL="postgresql://vitals:change-me@postgres:5432/other"),
     "alerting-2: VITALS_ALERTING_DB_URL is not alerting's: instances on different databases "
     "would each lead, and page twice"),
    (lambda d: d["services"]["alerting"]["depends_on"]["postgres"].update(
        condition="service_started"),
     "alerting: VITALS_ALERTING_DB_URL names the service postgres: depends_on postgres needs "
     "condition: service_healthy"),
    (lambda d: d["services"]["alerting"]["environment"].update(
        VITALS_ALERTING_DB_URL="postgresql://vitals:other@postgres:5432/vitals"),
     "alerting: the account, password or database in VITALS_ALERTING_DB_URL is not postgres's "
     "(POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB)"),
    (lambda d: d["services"]["alerting"]["environment"].update(
        VITALS_ALERTING_DB_URL="postgresql://vitals:change-me@postgres:5433/vitals"),
     "alerting: VITALS_ALERTING_DB_URL names port 5433, postgres listens on 5432"),
    (lambda d: d["services"]["alerting"]["environment"].update(
        VITALS_ALERTING_DB_URL="postgresql://vitals:a%40b@postgres:5432/vitals"),
     "alerting: the password in VITALS_ALERTING_DB_URL may hold only A-Z a-z 0-9 . _ ~ -"),
    (lambda d: d["services"]["alerting"]["environment"].update(
        VITALS_ALERTING_DB_URL="mysql://vitals:pw@postgres:3306/vitals"),
     "alerting: the settings it gets are refused: VITALS_ALERTING_DB_URL"),
    (lambda d: d["services"]["alerting-2"]["environment"].update(VITALS_ALERTING_LEASE_S="0"),
     "alerting-2: the settings it gets are refused: VITALS_ALERTING_LEASE_S"),
    (lambda d: d["services"]["alerting-2"].update(ports=["127.0.0.1:8474:8471"]),
     "alerting-2: port 8470 is not published"),
    # the PostgreSQL they share
    (lambda d: d["services"]["postgres"].update(image="postgres:latest"),
     "postgres: image postgres:latest is not the official postgres image pinned to a version"),
    (lambda d: d["services"]["postgres"].update(ports=["127.0.0.1:5432:5432"]),
     "postgres: must not be published on the host (ports:)"),
    (lambda d: d["services"]["postgres"].update(restart="no"),
     "postgres: a long-running service needs restart: unless-stopped"),
    (lambda d: d["services"]["postgres"].update(volumes=["./pgdata:/var/lib/postgresql/data"]),
     "postgres: its data directory /var/lib/postgresql/data must be on a writable named volume"),
    (lambda d: d["services"]["postgres"]["environment"].update(PGDATA="/srv/pg"),
     "postgres: its data directory /srv/pg must be on a writable named volume"),
    (lambda d: d["services"]["postgres"]["healthcheck"].update(
        test=["CMD", "pg_isready", "-U", "vitals"]),
     "postgres: the healthcheck must run pg_isready over TCP (-h 127.0.0.1)"),
    (lambda d: d["services"]["postgres"].pop("healthcheck"),
     "alerting: waits for postgres to be healthy, but postgres has no healthcheck"),
    (lambda d: d["services"]["grafana"].update(volumes=["./grafana/provisionin:/x:ro"]),
     "not in the repository"),
    (lambda d: d["services"]["kafka"].pop("healthcheck"), "kafka has no healthcheck"),
    (lambda d: d["services"]["kafka-topics"].update(restart="on-failure"), "restarts"),
    (lambda d: d["services"]["mosquitto"].update(
        volumes=[v for v in d["services"]["mosquitto"]["volumes"] if "certs" not in v]),
     "certfile /mosquitto/certs/server.crt is not in a mounted directory"),
    (lambda d: d["services"]["grafana"]["environment"].pop("GRAFANA_INFLUX_TOKEN"),
     "uses ${GRAFANA_INFLUX_TOKEN}"),
    (lambda d: d["services"]["influx-init"]["environment"].update(VITALS_LONG_BUCKET="x"),
     "init.sh does not read it"),
    (lambda d: d["services"].pop("store"), "no service store"),
    # the canary: one, as a device over TLS with its own account (deploy/README.md)
    *one_device_over_tls("canary", "CANARY.canary", "PATIENT.canary"),
    (lambda d: d["services"]["canary"].update(command=["canary", "--every", "5"]),
     "No such option"),
    (lambda d: d["services"]["canary"]["environment"].update(VITALS_CANARY_EVERY_S="nan"),
     "canary: the settings it gets are refused: VITALS_CANARY_EVERY_S"),
    # the patients' page: one, as `patient-app` over TLS, behind the TLS proxy, its links
    # https:// (deploy/README.md, "The patients' page")
    *one_device_over_tls("app", "patient-app", "patient-app"),
    (lambda d: d["services"]["app"].update(command=["app", "--port", "1"]), "No such option"),
    (lambda d: d["services"]["app"]["environment"].update(
        VITALS_APP_BASE_URL="http://app.example.org"),
     "app: VITALS_APP_BASE_URL must be https://... (got http://app.example.org): a personal "
     "link is a credential"),
    (lambda d: d["services"]["app"]["environment"].update(VITALS_APP_SECRET="short"),
     "app: the settings it gets are refused: VITALS_APP_SECRET"),
    (lambda d: d["services"]["app"].update(ports=["0.0.0.0:8480:8480"]),
     "app: published on 0.0.0.0; publish it on 127.0.0.1 only"),
    (lambda d: d["services"]["app"].update(ports=["8480:8480"]),
     "app: published on every address"),
    (lambda d: d["services"]["app"].update(ports=[]), "app: port 8480 is not published"),
    (lambda d: d["services"]["app"]["environment"].update(VITALS_APP_ADDR="127.0.0.1:8480"),
     "app: VITALS_APP_ADDR=127.0.0.1:8480 must listen on 0.0.0.0"),
    (lambda d: d["services"]["app"]["healthcheck"]["test"].__setitem__(
        -1, "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8480/livez')"),
     "app: the healthcheck does not probe /healthz on port 8480"),
    (lambda d: d["services"]["app"]["environment"].pop("VITALS_ONCALL"),
     "app: VITALS_ONCALL is not set: the page needs the teams' phone numbers"),
    (lambda d: d["services"]["app"]["environment"].update(VITALS_PATIENTS="/srv/patients.yaml"),
     "app: VITALS_PATIENTS=/srv/patients.yaml is not in a mounted directory"),
    (lambda d: d["services"]["app"].update(restart="no"),
     "app: a long-running service needs restart: unless-stopped"),
    # Kafka: TLS and SASL only (deploy/README.md, "Kafka: TLS and SCRAM")
    (lambda d: d["services"]["ingest"]["environment"].update(VITALS_KAFKA_URL="kafka://kafka:9093"),
     "ingest: VITALS_KAFKA_URL must be kafkas://"),
    (lambda d: d["services"]["rules"]["environment"].update(VITALS_KAFKA_URL="kafkas://kafka:9093"),
     "rules: VITALS_KAFKA_URL must be kafkas://ACCOUNT:PASSWORD@"),
    (lambda d: d["services"]["store"]["environment"].update(
        VITALS_KAFKA_URL="kafkas://vitals:pw@kafka:9092"), "names no SASL_SSL listener"),
    (lambda d: d["services"]["store"]["environment"].update(
        VITALS_KAFKA_SASL_MECHANISM="SCRAM-SHA-256"), "SCRAM-SHA-256 is not enabled"),
    (lambda d: d["services"]["alerting"]["environment"].pop("VITALS_KAFKA_CA_FILE"),
     "alerting: VITALS_KAFKA_CA_FILE is not set"),
    (lambda d: d["services"]["rules"].update(volumes=["./config:/etc/vitals:ro"]),
     "rules: VITALS_KAFKA_CA_FILE=/etc/ssl/vitals/kafka-ca.crt is not in a mounted directory"),
    (lambda d: d["services"]["kafka"]["environment"].update(
        KAFKA_ADVERTISED_LISTENERS="SASL_SSL://kafka:9093,PLAINTEXT://kafka:9092",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,"
                                             "PLAINTEXT:PLAINTEXT"),
     "kafka: advertises PLAINTEXT (PLAINTEXT), not SASL_SSL"),
    (lambda d: d["services"]["kafka"]["environment"].update(
        KAFKA_LISTENERS="SASL_SSL://:9093,CLIENT://:9095"), "listener CLIENT is CLIENT"),
    (lambda d: d["services"]["kafka"]["environment"].update(
        KAFKA_LISTENERS="SASL_SSL://:9093,CONTROLLER://:9094"),
     "controller listener CONTROLLER listens on every address"),
    (lambda d: d["services"]["kafka"]["healthcheck"].update(
        test=["CMD-SHELL", "/opt/kafka/bin/kafka-broker-api-versions.sh "
                           "--bootstrap-server kafka:9093"]), "healthcheck does not use the SASL"),
    (lambda d: d["services"]["kafka-topics"]["environment"].update(KAFKA_BOOTSTRAP="kafka:9092"),
     "kafka-topics: KAFKA_BOOTSTRAP names no SASL_SSL listener"),
    (lambda d: d["services"]["kafka-topics"]["environment"].pop("KAFKA_SASL_PASSWORD"),
     "kafka-topics: needs KAFKA_SASL_PASSWORD and KAFKA_CA_FILE"),
    (lambda d: d["services"]["kafka-topics"].update(
        volumes=["./kafka/create-topics.sh:/opt/vitals/create-topics.sh:ro"]),
     "kafka-topics: KAFKA_CA_FILE=/opt/vitals/kafka-ca.crt is not mounted"),
])
def test_each_cross_check_catches_its_mistake(loaded: Any, change: Any, expected: str) -> None:
    raw, doc, used, env = loaded
    raw, doc = copy.deepcopy(raw), copy.deepcopy(doc)
    change(doc)
    for svc in doc["services"]:  # the mutated volumes stand as written
        if svc in raw["services"] and "volumes" in doc["services"][svc]:
            raw["services"][svc]["volumes"] = doc["services"][svc]["volumes"]
    problems = cc.cross_errors(raw, doc, used, env, env)
    assert any(expected in p for p in problems), problems


# --- alerting: a pair on one PostgreSQL, or one on SQLite ------------------------------------
def mutated(loaded: Any, change: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copies of the raw and interpolated documents, `change(raw, doc)` applied."""
    raw, doc, _used, _env = loaded
    raw, doc = copy.deepcopy(raw), copy.deepcopy(doc)
    change(raw, doc)
    return raw, doc


def on_sqlite(raw: dict[str, Any], doc: dict[str, Any]) -> None:
    """The deployment as a site on SQLite would make it: one alerting, no PostgreSQL."""
    for d in (raw, doc):
        d["services"].pop("alerting-2")
        d["services"].pop("postgres")
    environment = doc["services"]["alerting"]["environment"]
    environment.pop("VITALS_ALERTING_DB_URL")
    environment.pop("VITALS_ALERTING_LEASE_S")
    doc["services"]["alerting"]["depends_on"].pop("postgres")


def test_the_shipped_compose_runs_alerting_as_a_pair_on_one_postgresql(loaded: Any) -> None:
    """deploy/README.md, "Alerting: two instances": two instances on one PostgreSQL, each with
    a state volume and a host port of its own, restarted, after PostgreSQL is healthy; the
    PostgreSQL pinned, on a volume, not published, its password from a required variable."""
    raw, doc, _used, env = loaded
    services = doc["services"]
    pair = ("alerting", "alerting-2")
    urls = {services[name]["environment"]["VITALS_ALERTING_DB_URL"] for name in pair}
    assert urls == {f"postgresql://vitals:{env['ALERTING_DB_PASSWORD']}@postgres:5432/vitals"}
    assert [services[name]["ports"] for name in pair] == [["127.0.0.1:8470:8470"],
                                                          ["127.0.0.1:8474:8470"]]
    states = [m.source for name in pair for m in cc.mounts(raw, doc, name)
              if m.target == "/var/lib/vitals"]
    assert states == ["alerting-state", "alerting-2-state"]
    for name in pair:
        service = services[name]
        assert service["restart"] == "unless-stopped" and service["deploy"]["replicas"] == 1
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert service["environment"]["VITALS_ALERTING_LEASE_S"] == "10"
        # the health check is alerting's own, unchanged: /healthz on 8470
        test = service["healthcheck"]["test"]
        assert (cc.url_port(test), checklib.url_path(test)) == (8470, "/healthz")
    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:15\.\d+", postgres["image"])  # the major the tests run on
    assert "ports" not in postgres and postgres["restart"] == "unless-stopped"
    assert postgres["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == (
        "${ALERTING_DB_PASSWORD:?set ALERTING_DB_PASSWORD in deploy/.env}")
    assert postgres["healthcheck"]["test"][:4] == ["CMD", "pg_isready", "-h", "127.0.0.1"]


def test_one_alerting_on_sqlite_is_valid_and_stays_one(loaded: Any) -> None:
    """Without VITALS_ALERTING_DB_URL the state is SQLite in the state directory: one instance
    of one replica, which check_compose says in one line when it is not so."""
    raw, doc = mutated(loaded, lambda r, d: on_sqlite(r, d))
    _raw, _doc, used, env = loaded
    assert cc.cross_errors(raw, doc, used, env, env) == []

    def second_instance(r: dict[str, Any], d: dict[str, Any]) -> None:
        on_sqlite(r, d)
        d["services"]["alerting-b"] = copy.deepcopy(d["services"]["alerting"])
        d["services"]["alerting-b"].update(
            ports=["127.0.0.1:8475:8470"],
            volumes=["./config:/etc/vitals:ro",
                     "./secrets/kafka/ca.crt:/etc/ssl/vitals/kafka-ca.crt:ro",
                     "alerting-2-state:/var/lib/vitals"])
        r["services"]["alerting-b"] = {"volumes": d["services"]["alerting-b"]["volumes"]}

    raw, doc = mutated(loaded, second_instance)
    problems = cc.cross_errors(raw, doc, used, env, env)
    assert [p for p in problems if "SQLite" in p] == [
        "alerting, alerting-b: without VITALS_ALERTING_DB_URL alerting keeps its state in "
        "SQLite and must run as one instance, not 2 (alerting, alerting-b): set "
        "VITALS_ALERTING_DB_URL on every instance to share PostgreSQL"], problems

    def two_replicas(r: dict[str, Any], d: dict[str, Any]) -> None:
        on_sqlite(r, d)
        d["services"]["alerting"]["deploy"]["replicas"] = 2

    raw, doc = mutated(loaded, two_replicas)
    problems = cc.cross_errors(raw, doc, used, env, env)
    assert ("alerting: must run exactly one replica, not 2: its SQLite state belongs to one "
            "process") in problems, problems


def test_the_database_password_comes_from_a_required_variable(loaded: Any) -> None:
    """A literal (or optional) password would start PostgreSQL with whatever it says, or none."""
    def literal(r: dict[str, Any], d: dict[str, Any]) -> None:
        r["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "${ALERTING_DB_PASSWORD}"

    raw, doc = mutated(loaded, literal)
    _raw, _doc, used, env = loaded
    problems = cc.cross_errors(raw, doc, used, env, env)
    assert problems == ["postgres: POSTGRES_PASSWORD must come from a required variable of "
                        "deploy/.env (${ALERTING_DB_PASSWORD:?...})"]


def test_the_postgres_healthcheck_asks_the_server_over_tcp(
        loaded: Any, postgres_server: servers.Postgres) -> None:
    """The healthcheck's pg_isready, run against a real PostgreSQL on loopback (its port in
    place of 5432): ready while the server listens on TCP, not where nothing does (as during
    the image's first start, when the server it runs listens on its Unix socket only)."""
    _raw, doc, _used, _env = loaded
    kind, program, *args = doc["services"]["postgres"]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "pg_isready")
    pg_isready = str(servers.postgres_bin() / "pg_isready")

    def probe(port: int) -> int:
        argv = [str(port) if previous == "-p" else a
                for previous, a in zip(["", *args[:-1]], args, strict=True)]
        return subprocess.run([pg_isready, *argv], capture_output=True, timeout=30).returncode

    assert probe(postgres_server.port) == 0
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert probe(free) != 0


def test_the_app_secret_comes_from_a_required_variable(loaded: Any) -> None:
    """Written in compose.yaml it would be committed; optional, the app would start unsigned."""
    _raw, _doc, used, env = loaded
    for written in ("a-literal-secret-0123456789", "${VITALS_APP_SECRET}",
                    "${VITALS_APP_SECRET:-a-default-secret-0123456789}"):
        def literal(r: dict[str, Any], d: dict[str, Any], value: str = written) -> None:
            r["services"]["app"]["environment"]["VITALS_APP_SECRET"] = value

        raw, doc = mutated(loaded, literal)
        assert cc.cross_errors(raw, doc, used, env, env) == [
            "app: VITALS_APP_SECRET must come from a required variable of deploy/.env "
            "(${VITALS_APP_SECRET:?...}), never written in compose.yaml"], written


def test_the_shipped_app_is_one_behind_the_tls_proxy_with_its_own_account(loaded: Any) -> None:
    """deploy/README.md, "The patients' page": the page on 127.0.0.1:8480 for the proxy, as
    `patient-app` over TLS, the patients and on-call files mounted, its secret and base URL
    from deploy/.env, after the broker is healthy."""
    raw, doc, _used, env = loaded
    app = doc["services"]["app"]
    assert app["command"] == ["app"] and app["deploy"]["replicas"] == 1
    assert app["ports"] == ["127.0.0.1:8480:8480"]
    assert app["environment"]["VITALS_MQTT_URL"] == (
        f"mqtts://patient-app:{env['MQTT_APP_PASSWORD']}@{env['MQTT_HOSTNAME']}:8883")
    assert app["environment"]["VITALS_APP_BASE_URL"].startswith("https://")
    assert raw["services"]["app"]["environment"]["VITALS_APP_SECRET"] == (
        "${VITALS_APP_SECRET:?set VITALS_APP_SECRET in deploy/.env}")
    assert app["depends_on"] == {"mosquitto": {"condition": "service_healthy"}}
    assert "VITALS_KAFKA_URL" not in app["environment"]  # the page uses no Kafka
    assert app["deploy"]["resources"]["limits"]["memory"] == "128M"  # RSS ~58 MiB measured
    targets = {m.target for m in cc.mounts(raw, doc, "app")}
    assert targets == {"/etc/vitals", "/etc/ssl/vitals/mqtt-ca.crt"}


def test_variables_must_match_env_example(loaded: Any) -> None:
    raw, doc, used, env = loaded
    assert any("NEW_VAR is used by compose.yaml but not in .env.example" in p
               for p in cc.cross_errors(raw, doc, used | {"NEW_VAR"}, env, env))
    smaller = {k: v for k, v in env.items() if k != "RULES_WORKERS"}
    assert any("RULES_WORKERS is used" in p for p in cc.cross_errors(raw, doc, used, smaller, env))
    assert any("STALE is in .env.example but compose.yaml does not use it" in p
               for p in cc.cross_errors(raw, doc, used, {**env, "STALE": ""}, env))


def test_the_command_line_check_passes() -> None:
    result = subprocess.run([sys.executable, str(DEPLOY / "check_compose.py")],
                            capture_output=True, text=True, cwd=DEPLOY.parent)
    assert result.returncode == 0, result.stderr
    assert "valid against the Compose Specification" in result.stdout


# --- a site, as the runbook's first start makes it ----------------------------------------------
@pytest.fixture(scope="module")
def made_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/.env and the files it names, made as deploy/README.md says: once per module
    (accounts and two CAs take seconds of CPU)."""
    tmp_path = tmp_path_factory.mktemp("site")
    config = tmp_path / "config"
    config.mkdir()
    defaults = DEPLOY.parent / "vitals" / "defaults"
    for name in ("oncall.yaml", "rules.yaml"):
        shutil.copy(defaults / name, config / name)
    (config / "patients.yaml").write_text(
        "patients:\n"
        "  - {id: P001, infusion: 2026-11-18, team: haem-a, devices: [ox-1, th-1]}\n"
        "  - {id: P011, infusion: 2026-11-19, team: haem-b, devices: [ox-1]}\n")
    accounts = tmp_path / "vitals-accounts"
    env = services.environment({"patients": config / "patients.yaml"})
    subprocess.run(vitals("credentials", "--out", str(accounts)),
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    mqtt = tmp_path / "mqtt"
    mqtt.mkdir()
    for name in ("passwords", "acl"):
        shutil.copy(accounts / name, mqtt / name)
    ca = tmp_path / "ca"
    subprocess.run([str(DEPLOY / "mosquitto" / "make-certs.sh"), str(ca), "mqtt.example.org"],
                   check=True, capture_output=True)
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(ca / name, certs / name)
    kafka_ca = tmp_path / "kafka-ca"
    subprocess.run([str(DEPLOY / "kafka" / "make-certs.sh"), str(kafka_ca)], check=True,
                   capture_output=True)
    kafka_certs = tmp_path / "kafka"
    kafka_certs.mkdir()
    for name in ("ca.crt", "kafka.p12", "kafka.p12.password"):
        shutil.copy(kafka_ca / name, kafka_certs / name)
    rows = (accounts / "credentials.csv").read_text().splitlines()
    ingest_password = next(line.split(",")[3] for line in rows if line.startswith(",,ingest,"))
    # the canary's account (CANARY.canary), once `vitals credentials` makes it
    canary_password = next((line.split(",")[3] for line in rows
                            if line.startswith("CANARY,canary,")), "a-canary-password")
    # the patients' page's account (patient-app), as the runbook's grep finds it
    app_password = next(line.split(",")[3] for line in rows
                        if line.startswith(",,patient-app,"))
    text = cc.ENV_EXAMPLE.read_text()
    values = {"VITALS_CONFIG_DIR": config, "MQTT_CONFIG_DIR": mqtt, "MQTT_CERTS_DIR": certs,
              "MQTT_INGEST_PASSWORD": ingest_password, "MQTT_CANARY_PASSWORD": canary_password,
              "KAFKA_CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
              "KAFKA_CERTS_DIR": kafka_certs, "KAFKA_ADMIN_PASSWORD": "0a1b2c3d4e5f6a7b8c9d",
              "KAFKA_VITALS_PASSWORD": "f9e8d7c6b5a4f3e2d1c0",
              "INFLUX_ADMIN_PASSWORD": "a-long-admin-password",
              "INFLUX_ADMIN_TOKEN": "0123456789abcdef", "GRAFANA_ADMIN_PASSWORD": "grafana-pw",
              "ALERTING_DB_PASSWORD": "5e4d3c2b1a0f9e8d7c6b",
              "MQTT_APP_PASSWORD": app_password,
              "VITALS_APP_SECRET": "x9Jp2mQ7vL4tR8wZ1cN6bH3k"}
    for key, value in values.items():
        text, n = re.subn(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
        assert n == 1, key
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    return env_file


@pytest.fixture
def site(made_site: Path, tmp_path: Path) -> Path:
    """A copy of the made site for this test alone, to change as it likes; its .env names the
    copy's files."""
    root = tmp_path / "site"
    shutil.copytree(made_site.parent, root, symlinks=True)
    env_file = root / ".env"
    env_file.write_text(env_file.read_text().replace(str(made_site.parent), str(root)))
    return env_file


def test_a_site_made_as_the_runbook_says_passes_the_site_check(site: Path) -> None:
    assert cc.check(cc.COMPOSE, site, site=True) == []


def test_the_site_check_names_a_missing_rules_file_and_placeholders(site: Path) -> None:
    (site.parent / "config" / "rules.yaml").unlink()
    text = site.read_text().replace("GRAFANA_ADMIN_PASSWORD=grafana-pw",
                                    "GRAFANA_ADMIN_PASSWORD=change-me")
    site.write_text(text)
    problems = cc.check(cc.COMPOSE, site, site=True)
    assert any("VITALS_RULES" in p and "does not exist" in p for p in problems), problems
    assert any("GRAFANA_ADMIN_PASSWORD is still 'change-me'" in p for p in problems), problems


def test_the_site_check_refuses_a_database_password_that_would_break_its_url(site: Path) -> None:
    site.write_text(site.read_text().replace("ALERTING_DB_PASSWORD=5e4d3c2b1a0f9e8d7c6b",
                                             "ALERTING_DB_PASSWORD=a@b"))
    problems = cc.check(cc.COMPOSE, site, site=True)
    assert "alerting: the password in VITALS_ALERTING_DB_URL may hold only A-Z a-z 0-9 . _ ~ - " \
           "(it goes into the URL as it is)" in problems, problems


def test_the_site_check_runs_the_projects_own_validation_of_the_files(site: Path) -> None:
    oncall = site.parent / "config" / "oncall.yaml"
    oncall.write_text(oncall.read_text().replace("haem-b:", "haem-x:"))
    problems = cc.check(cc.COMPOSE, site, site=True)
    assert any("VITALS_ONCALL" in p and "haem-b" in p for p in problems), problems


def test_without_the_site_check_a_site_without_files_is_not_judged(site: Path) -> None:
    shutil.rmtree(site.parent / "certs")
    assert cc.check(cc.COMPOSE, site, site=False) == []
    assert any("certs" in p for p in cc.check(cc.COMPOSE, site, site=True))


# --- create-topics.sh ------------------------------------------------------------------------
FAKE_TOPICS = r"""#!/bin/sh
echo "kafka-topics $*" >> "$FAKE_DIR/calls"
topic="" parts="" describe=0
while [ $# -gt 0 ]; do
    case $1 in
        --command-config) cp "$2" "$FAKE_DIR/client.properties"; shift ;;
        --topic) topic=$2; shift ;;
        --partitions) parts=$2; shift ;;
        --describe) describe=1 ;;
    esac
    shift
done
if [ "$describe" = 1 ]; then
    printf 'Topic: %s\tTopicId: x\tPartitionCount: %s\tReplicationFactor: 1\tConfigs: \n' \
        "$topic" "$(cat "$FAKE_DIR/topic.$topic")"
elif [ ! -f "$FAKE_DIR/topic.$topic" ]; then
    echo "$parts" > "$FAKE_DIR/topic.$topic"
fi
"""
FAKE_CONFIGS = """#!/bin/sh
echo "kafka-configs $*" >> "$FAKE_DIR/calls"
"""


def run_create_topics(tmp_path: Path, existing: dict[str, int] | None = None,
                      partitions: int = 8, extra_env: dict[str, str] | None = None
                      ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("kafka-topics.sh", FAKE_TOPICS), ("kafka-configs.sh", FAKE_CONFIGS)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for topic, n in (existing or {}).items():
        (bin_dir / f"topic.{topic}").write_text(f"{n}\n")
    env = {"PATH": os.environ["PATH"], "KAFKA_BIN": str(bin_dir), "FAKE_DIR": str(bin_dir),
           "KAFKA_BOOTSTRAP": "kafka:9092", "VITALS_KAFKA_PARTITIONS": str(partitions),
           **(extra_env or {})}
    result = subprocess.run(["sh", str(DEPLOY / "kafka" / "create-topics.sh")], env=env,
                            capture_output=True, text=True, timeout=30)
    calls = (bin_dir / "calls").read_text().splitlines() if (bin_dir / "calls").exists() else []
    return result, calls


def created(calls: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    out = {}
    for call in calls:
        if "--create" not in call:
            continue
        args = call.split()
        topic = args[args.index("--topic") + 1]
        configs = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--config")
        out[topic] = (int(args[args.index("--partitions") + 1]), configs)
    return out


def test_create_topics_declares_every_topic_of_vitals_and_the_rules_changelog(
        tmp_path: Path) -> None:
    result, calls = run_create_topics(tmp_path, partitions=12)
    assert result.returncode == 0, result.stderr
    topics_made = created(calls)
    declared = (topics.READINGS, topics.STATUS, topics.REJECTED, topics.TRENDS, topics.ALERTS,
                topics.CANARY, topics.REPORTS)
    assert set(topics_made) == {t.name for t in declared} | {CHANGELOG}
    for t in declared:
        assert topics_made[t.name][0] == (1 if t.single_partition else 12), t.name
    n, changelog = topics_made[CHANGELOG]
    assert n == 12  # Faust refuses a changelog whose partitions differ from its source topic
    assert changelog["cleanup.policy"] == "compact"
    assert int(changelog["segment.bytes"]) <= 64 * 2**20
    readings = topics_made[topics.READINGS.name][1]
    assert readings["cleanup.policy"] == "delete"
    assert int(readings["retention.ms"]) == 168 * 3600 * 1000
    # existing topics get their settings again
    altered = [c for c in calls if c.startswith("kafka-configs") and "--alter" in c]
    assert len(altered) == 8 and any(CHANGELOG in c and "compact" in c for c in altered)


def test_create_topics_without_security_settings_passes_no_client_config(tmp_path: Path) -> None:
    result, calls = run_create_topics(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls and not any("--command-config" in c for c in calls)


def test_create_topics_speaks_sasl_ssl_with_the_account_and_the_ca(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result, calls = run_create_topics(tmp_path, extra_env={
        "KAFKA_BOOTSTRAP": "kafka:9093", "KAFKA_CA_FILE": "/opt/vitals/kafka-ca.crt",
        "KAFKA_SASL_USERNAME": "admin", "KAFKA_SASL_PASSWORD": "0a1b2c3d",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr
    assert len(calls) == 24  # create, alter, describe for 8 topics
    for call in calls:
        assert "--bootstrap-server kafka:9093 --command-config " in call, call
    config = dict(line.split("=", 1) for line in
                  (tmp_path / "bin" / "client.properties").read_text().splitlines())
    assert config == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            'username="admin" password="0a1b2c3d";',
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/opt/vitals/kafka-ca.crt"}
    assert list(tmp.iterdir()) == []  # the file with the password is gone


def test_create_topics_uses_a_client_config_it_is_given(tmp_path: Path) -> None:
    given = tmp_path / "mine.properties"
    given.write_text("security.protocol=SSL\n")
    result, calls = run_create_topics(tmp_path, extra_env={
        "KAFKA_COMMAND_CONFIG": str(given), "KAFKA_SASL_PASSWORD": "ignored"})
    assert result.returncode == 0, result.stderr
    assert all(f"--command-config {given}" in c for c in calls)


def test_create_topics_refuses_a_topic_with_another_partition_count(tmp_path: Path) -> None:
    result, calls = run_create_topics(tmp_path, existing={"vitals.readings": 4}, partitions=8)
    assert result.returncode == 1
    assert "vitals.readings has 4 partitions, not 8" in result.stderr
    # an existing topic is left alone (--if-not-exists), and every topic is still checked, so
    # that one run names every mismatch
    assert all("--if-not-exists" in c for c in calls if "--create" in c)
    assert len([c for c in calls if "--describe" in c]) == 8


def test_create_topics_is_the_script_the_compose_step_runs(loaded: Any) -> None:
    _raw, doc, _used, _env = loaded
    step = doc["services"]["kafka-topics"]
    assert step["entrypoint"] == ["/bin/sh", "/opt/vitals/create-topics.sh"]
    assert "./kafka/create-topics.sh:/opt/vitals/create-topics.sh:ro" in step["volumes"]
    assert step["environment"]["VITALS_KAFKA_PARTITIONS"] == "8"
    assert step["environment"]["KAFKA_BOOTSTRAP"] == "kafka:9093"
    kafka_env = doc["services"]["kafka"]["environment"]
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


# --- the HTTP healthchecks, run against a real server ----------------------------------------
def test_the_services_that_serve_http_listen_where_their_healthcheck_probes(loaded: Any) -> None:
    _raw, doc, _used, _env = loaded
    for name, variable, port in (("ingest", "VITALS_INGEST_METRICS_ADDR", 9470),
                                 ("ingest-2", "VITALS_INGEST_METRICS_ADDR", 9470),
                                 ("rules", "VITALS_RULES_METRICS_ADDR", 9471),
                                 ("store", "VITALS_STORE_METRICS_ADDR", 9472),
                                 ("alerting", "VITALS_ALERTING_ADDR", 8470),
                                 ("alerting-2", "VITALS_ALERTING_ADDR", 8470),
                                 ("app", "VITALS_APP_ADDR", 8480)):
        service = doc["services"][name]
        assert service["environment"][variable] == f"0.0.0.0:{port}", name
        test = service["healthcheck"]["test"]
        assert (cc.url_port(test), checklib.url_path(test)) == (port, "/healthz"), name
        if name != "app":  # the page holds no work: connected to the broker or not
            assert service["environment"]["VITALS_STALL_S"] == "60", name
    # every rules worker publishes its port on 127.0.0.1 at a host port Docker picks
    assert doc["services"]["rules"]["ports"] == ["127.0.0.1::9471"]
    assert doc["services"]["store"]["ports"] == ["127.0.0.1:9472:9472"]
    # the two ingest instances listen on the same port in their containers, on two of the host
    assert doc["services"]["ingest"]["ports"] == ["127.0.0.1:9470:9470"]
    assert doc["services"]["ingest-2"]["ports"] == ["127.0.0.1:9473:9470"]
    # and so do the two alerting instances (8470 and 8474)
    assert doc["services"]["alerting"]["ports"] == ["127.0.0.1:8470:8470"]
    assert doc["services"]["alerting-2"]["ports"] == ["127.0.0.1:8474:8470"]


@pytest.mark.parametrize("service", ["ingest", "ingest-2", "rules", "store", "alerting",
                                     "alerting-2"])
def test_the_http_healthcheck_passes_only_while_healthz_says_ok(loaded: Any,
                                                                service: str) -> None:
    """The healthcheck's command, run against the services' own `/healthz` server
    (vitals/health_http.py: /metrics always answers 200, /healthz 503 with a reason)."""
    _raw, doc, _used, _env = loaded
    kind, program, *args = doc["services"][service]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")  # the image's venv Python
    port = cc.url_port(args)
    assert port is not None

    def probe() -> int:
        return subprocess.run([sys.executable, *args], capture_output=True,
                              timeout=20).returncode

    assert probe() != 0 or _port_in_use(port)  # nothing listens: unhealthy
    reason: list[str | None] = [None]
    try:
        server = HealthServer("127.0.0.1", port, CollectorRegistry(), lambda: reason[0])
    except OSError:
        pytest.skip(f"port {port} is in use on this machine")
    try:
        assert probe() == 0  # 200 {"status": "ok"}
        reason[0] = "12 records waiting, no progress for 61 s (stall limit 60 s)"
        assert probe() != 0  # 503 {"status": "stalled", ...}, while /metrics still answers
        reason[0] = None
        assert probe() == 0
    finally:
        server.close()


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_app_healthcheck_passes_only_while_the_app_is_connected_to_the_broker(
        loaded: Any, mosquitto: servers.Server, tmp_path: Path) -> None:
    """The app's healthcheck command against the real `vitals app` (on the port it probes):
    healthy while connected to the broker, unhealthy once the broker is gone."""
    from tests.patient_app.support import SECRET, start_app, write_oncall
    from tests.support import wait_for, write_patients
    from vitals.settings import load_settings

    _raw, doc, _used, _env = loaded
    kind, program, *args = doc["services"]["app"]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")
    port = cc.url_port(args)
    if _port_in_use(port):
        pytest.skip(f"port {port} is in use on this machine")

    def probe() -> int:
        return subprocess.run([sys.executable, *args], capture_output=True,
                              timeout=20).returncode

    assert probe() != 0  # nothing listens
    settings = load_settings(
        _env_file=None, mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
        patients=write_patients(tmp_path / "patients.yaml", ["P001"], {"P001": ["app"]}),
        oncall=write_oncall(tmp_path / "oncall.yaml"), state_dir=tmp_path / "state",
        app_addr=f"127.0.0.1:{port}", app_secret=SECRET)
    app = start_app(settings)
    try:
        wait_for(lambda: probe() == 0, 60, "healthy once connected")
        mosquitto.stop()
        wait_for(lambda: probe() != 0, 60, "unhealthy without the broker")
    finally:
        app.stop()
