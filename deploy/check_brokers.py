"""The brokers' cross-checks of deploy/compose.yaml (run by deploy/check_compose.py): Mosquitto
finds its files, its healthcheck keeps off the ingest accounts, and the ingest instances and the
canary reach it over TLS, each with its own account; Kafka is reached over TLS with SASL only."""

from __future__ import annotations

import re
from collections.abc import Iterator

from checklib import mounted_source
from compose_model import APP_SERVICE, HERE, INGEST_SERVICES, KAFKA_SERVICES, Compose


def mosquitto_files(compose: Compose) -> Iterator[str]:
    """Mosquitto runs with deploy/mosquitto/mosquitto.conf and finds every file it names."""
    service = compose.services.get("mosquitto")
    if service is None:
        return
    mosquitto_mounts = compose.mounts("mosquitto")
    command = service.get("command") or []
    conf_path = command[command.index("-c") + 1] if "-c" in command else ""
    held = mounted_source(mosquitto_mounts, conf_path)
    conf = HERE / "mosquitto" / "mosquitto.conf"
    if held is None or (HERE / held[0].source / held[1]).resolve() != conf:
        yield f"mosquitto: runs with -c {conf_path}, which is not deploy/mosquitto/mosquitto.conf"
    keys = ("password_file", "acl_file", "cafile", "certfile", "keyfile", "persistence_location")
    for line in conf.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in keys and not mounted_source(mosquitto_mounts, parts[1]):
            yield f"mosquitto: {parts[0]} {parts[1]} is not in a mounted directory"
    # The broker takes the account name as the client id: a check logged in as an ingest
    # account would take over (and, with its clean session, wipe) that instance's session.
    test = " ".join(str(t) for t in (service.get("healthcheck") or {}).get("test", []))
    account = re.search(r"(?:^|\s)-u\s+(\S+)", test)
    if account is None or account.group(1) != "healthcheck":
        yield ("mosquitto: the healthcheck must log in as `healthcheck` (-u healthcheck), not "
               f"{account.group(1) if account else 'nobody'}: on an ingest account it takes "
               "over that instance's session")


def mqtt_over_tls(compose: Compose) -> Iterator[str]:
    """The ingest instances, each with the account named as its service, the canary as a
    device with its own account, and the patients' page with `patient-app`, reach Mosquitto by
    one of its names over TLS, on the published port 8883, trusting a CA that is mounted."""
    from ingest.credentials import APP_USER as APP_ACCOUNT  # what `vitals credentials` makes

    service = compose.services.get("mosquitto")
    if service is None:
        return
    aliases = (service.get("networks") or {}).get("default", {}).get("aliases", [])
    for name, shown in (*((n, n) for n in INGEST_SERVICES), ("canary", "PATIENT.canary"),
                        (APP_SERVICE, APP_ACCOUNT)):
        if name not in compose.services:
            continue
        env = compose.environment(name)
        url = env.get("VITALS_MQTT_URL", "")
        account = (re.escape(name) if name in INGEST_SERVICES else re.escape(APP_ACCOUNT)
                   if name == APP_SERVICE else re.escape(
                       env.get("VITALS_CANARY_PATIENT", "CANARY")) + r"\.canary")
        match = re.fullmatch(rf"mqtts://{account}:[^@]+@([^:/]+):8883", url)
        if not match or match.group(1) not in [*aliases, "mosquitto"]:
            yield f"{name}: VITALS_MQTT_URL must be mqtts://{shown}:...@<broker alias>:8883 " \
                  f"(got {url.split('@')[-1]})"
        ca = env.get("SSL_CERT_FILE", "")
        if name in ("canary", APP_SERVICE) and not (ca and mounted_source(compose.mounts(name),
                                                                          ca)):
            yield f"{name}: SSL_CERT_FILE (the broker's CA) is not set to a mounted file"
    if not any(str(p).endswith(":8883") for p in service.get("ports", [])):
        yield "mosquitto: the TLS port 8883 is not published"


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """KAFKA_LISTENERS / KAFKA_ADVERTISED_LISTENERS as {name: (host, port)}."""
    out = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        m = re.fullmatch(r"([A-Za-z0-9_]+)://(\[[^\]]*\]|[^:]*):(\d+)", part)
        if m:
            out[m.group(1).upper()] = (m.group(2), int(m.group(3)))
    return out


def kafka_security(compose: Compose) -> Iterator[str]:
    """Kafka only over TLS with SASL: the broker's client listeners are SASL_SSL (none
    plaintext), its controller listener stays on loopback; the vitals services and the
    kafka-topics step use kafkas:// with an account, a mechanism the broker enables and the CA
    mounted; the healthcheck speaks SASL_SSL."""
    if compose.services.get("kafka") is None:
        return
    env = compose.environment("kafka")
    protocols = dict(p.split(":", 1) for p in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                                                      "").split(",") if ":" in p)
    protocols = {k.strip().upper(): v.strip().upper() for k, v in protocols.items()}
    controllers = {n.strip().upper()
                   for n in env.get("KAFKA_CONTROLLER_LISTENER_NAMES", "").split(",")}
    listeners = _listeners(env.get("KAFKA_LISTENERS", ""))
    advertised = _listeners(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    mechanisms = {m.strip() for m in env.get("KAFKA_SASL_ENABLED_MECHANISMS", "").split(",")
                  if m.strip()}
    for name, (host, _port) in listeners.items():
        protocol = protocols.get(name, name)
        if name in controllers:
            if host not in ("127.0.0.1", "localhost", "[::1]"):
                where = host or "every address"
                yield f"kafka: the controller listener {name} listens on {where}, not loopback"
        elif protocol != "SASL_SSL":
            yield f"kafka: listener {name} is {protocol}, not SASL_SSL"
    for name in advertised:
        if protocols.get(name, name) != "SASL_SSL":
            yield f"kafka: advertises {name} ({protocols.get(name, name)}), not SASL_SSL"
    if not mechanisms:
        yield "kafka: KAFKA_SASL_ENABLED_MECHANISMS is not set"
    ports = set(advertised.values())
    from vitals.settings import kafka_endpoints

    for name in KAFKA_SERVICES:
        if name not in compose.services:
            continue
        service_env = compose.environment(name)
        url = service_env.get("VITALS_KAFKA_URL", "")
        try:
            endpoints = kafka_endpoints(url)
        except ValueError as exc:
            yield f"{name}: VITALS_KAFKA_URL: {exc}"
            continue
        if not all(e.tls for e in endpoints) or endpoints[0].username is None:
            yield f"{name}: VITALS_KAFKA_URL must be kafkas://ACCOUNT:PASSWORD@... (TLS and SASL)"
        if any((e.host, e.port) not in ports for e in endpoints):
            yield f"{name}: VITALS_KAFKA_URL names no SASL_SSL listener the broker advertises"
        mechanism = service_env.get("VITALS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        if mechanism not in mechanisms:
            yield f"{name}: VITALS_KAFKA_SASL_MECHANISM {mechanism} is not enabled on the broker"
        if not service_env.get("VITALS_KAFKA_CA_FILE"):  # _file_settings: and mounted
            yield f"{name}: VITALS_KAFKA_CA_FILE is not set"
    topics = compose.services.get("kafka-topics")
    if topics is not None:
        topics_env = compose.environment("kafka-topics")
        host, _, port = topics_env.get("KAFKA_BOOTSTRAP", "").rpartition(":")
        if (host, int(port) if port.isdigit() else 0) not in ports:
            yield "kafka-topics: KAFKA_BOOTSTRAP names no SASL_SSL listener the broker advertises"
        if not topics_env.get("KAFKA_SASL_PASSWORD") or not topics_env.get("KAFKA_CA_FILE"):
            yield "kafka-topics: needs KAFKA_SASL_PASSWORD and KAFKA_CA_FILE (SASL_SSL)"
        elif not mounted_source(compose.mounts("kafka-topics"), topics_env["KAFKA_CA_FILE"]):
            yield f"kafka-topics: KAFKA_CA_FILE={topics_env['KAFKA_CA_FILE']} is not mounted"
        if topics_env.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512") not in mechanisms:
            yield "kafka-topics: KAFKA_SASL_MECHANISM is not enabled on the broker"
    test = " ".join(compose.services["kafka"].get("healthcheck", {}).get("test", []))
    if test and "--command-config" not in test:
        yield "kafka: the healthcheck does not use the SASL_SSL client properties"
