"""deploy/k8s: every document parses and is valid against the Kubernetes 1.32 strict schemas
(tests/deploy/data/k8s-strict-schemas.json), selectors match their pods, probes (/healthz) and
singletons are where the services need them, ingest's pods are each their own MQTT client,
alerting runs as a pair on the site's PostgreSQL (no single point of failure in base), every
ConfigMap and Secret that is referenced exists or is one the site makes (documented in the
base kustomization and deploy/README.md), the demo overlay's files pass the project's own
validation, and the sizing is the measured one.
No cluster runs here; `kubectl kustomize` renders the overlay when kubectl is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from alerting.oncall import load_oncall
from stream_rules.config import load_rules
from vitals.patients import load_patients
from vitals.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "data" / "k8s-strict-schemas.json"
DEFAULTS = DEPLOY.parent / "vitals" / "defaults"
# made by the site, never committed: named in base/kustomization.yaml and deploy/README.md
SITE_MADE = {("Secret", "vitals-secrets"), ("ConfigMap", "vitals-mqtt-ca"),
             ("ConfigMap", "vitals-kafka-ca"), ("ConfigMap", "vitals-files"),
             ("ConfigMap", "vitals-postgres-ca")}
# the workloads (Deployments, and ingest's StatefulSet) and the vitals subcommand each runs
SERVICES = {"vitals-ingest": "ingest", "vitals-rules": "rules", "vitals-store": "store",
            "vitals-alerting": "alerting", "vitals-canary": "canary", "vitals-app": "app"}
INGEST = "vitals-ingest"
ALERTING = "vitals-alerting"
# the canary publishes over MQTT as a device does: no Kafka, no site files
CANARY = "vitals-canary"
# the patients' page: MQTT as `patient-app`, the patients and on-call files; no Kafka
APP = "vitals-app"


def base_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / "base" / name).read_text()) if d]
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Deployments and StatefulSets, by name: what runs pods."""
    return {**by_kind(docs, "Deployment"), **by_kind(docs, "StatefulSet")}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return deployment["spec"]["template"]["spec"]["containers"]


def references(deployment: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(kind, name, optional) of every ConfigMap and Secret a Deployment uses."""
    pod = deployment["spec"]["template"]["spec"]
    for v in pod.get("volumes", []):
        if "configMap" in v:
            yield "ConfigMap", v["configMap"]["name"], v["configMap"].get("optional", False)
        if "secret" in v:
            yield "Secret", v["secret"]["secretName"], v["secret"].get("optional", False)
    for c in pod["containers"]:
        for src in c.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in src:
                    yield kind, src[key]["name"], src[key].get("optional", False)
        for e in c.get("env", []):
            ref = e.get("valueFrom", {})
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in ref:
                    yield kind, ref[key]["name"], ref[key].get("optional", False)


def test_every_document_parses_and_has_apiversion_kind_and_name() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 8
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            assert isinstance(doc, dict), f
            if f.name == "kustomization.yaml":
                assert doc["kind"] == "Kustomization", f
                continue
            if f.parent.name == "demo":
                continue  # the demo's patients, on-call and rules files
            assert doc.get("apiVersion") and doc.get("kind"), f
            assert doc["metadata"]["name"], f


def test_every_document_is_valid_against_the_kubernetes_strict_schemas() -> None:
    bundle = json.loads(SCHEMAS.read_text())
    docs = base_documents()
    assert {f"{d['apiVersion']}/{d['kind']}" for d in docs} <= set(bundle["x-kinds"])
    for doc in docs:
        schema = {**bundle, "$ref": bundle["x-kinds"][f"{doc['apiVersion']}/{doc['kind']}"]}
        errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
        assert errors == [], (doc["kind"], doc["metadata"]["name"], errors)


def test_the_schemas_catch_a_misspelt_field() -> None:
    bundle = json.loads(SCHEMAS.read_text())
    deployment = by_kind(base_documents(), "Deployment")["vitals-rules"]
    containers(deployment)[0]["livenessProbes"] = containers(deployment)[0].pop("livenessProbe")
    deployment["spec"]["replicas"] = "1"
    schema = {**bundle, "$ref": bundle["x-kinds"]["apps/v1/Deployment"]}
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(deployment)]
    assert any("livenessProbes" in e for e in errors) and any("'1'" in e for e in errors)


def test_selectors_match_the_pod_labels_and_services_find_their_pods() -> None:
    docs = base_documents()
    deployments = workloads(docs)
    assert set(deployments) == set(SERVICES)
    for name, d in deployments.items():
        selector = d["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert selector and selector.items() <= labels.items(), name
    for name, svc in by_kind(docs, "Service").items():
        matched = [d for d in deployments.values() if svc["spec"]["selector"].items()
                   <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matched) == 1, name
        ports = {p["name"] for c in containers(matched[0]) for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports, (name, p)
    for name, budget in by_kind(docs, "PodDisruptionBudget").items():
        selector = budget["spec"]["selector"]["matchLabels"]
        matched = [d for d in deployments.values()
                   if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matched) == 1, name


def test_each_deployment_runs_its_vitals_subcommand_as_the_images_user() -> None:
    import typer.main

    from cli.app import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name, d in workloads(base_documents()).items():
        [c] = containers(d)
        assert c["args"] == [SERVICES[name]] and "command" not in c, name
        assert c["args"][0] in commands
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 10001  # deploy/Dockerfile's useradd
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/var/lib/vitals", "/tmp"} <= mounts, name
        assert ("/etc/vitals" in mounts) == (name != CANARY), name


def probe_port(container: dict[str, Any], probe: str) -> tuple[str, int]:
    http = container[probe]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    return http["path"], ports[http["port"]]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# the Deployments that serve /metrics and /healthz on one port: the setting naming it, and the
# path of the readiness probe (the workers stay ready, so scrapeable, while stuck; liveness
# restarts them; alerting's API is taken out of its Service while it is stuck)
HTTP_SERVICES = {"vitals-ingest": ("VITALS_INGEST_METRICS_ADDR", "/metrics"),
                 "vitals-rules": ("VITALS_RULES_METRICS_ADDR", "/metrics"),
                 "vitals-store": ("VITALS_STORE_METRICS_ADDR", "/metrics"),
                 "vitals-alerting": ("VITALS_ALERTING_ADDR", "/healthz")}


def test_the_services_have_healthz_probes_on_the_port_they_listen_on() -> None:
    docs = base_documents()
    deployments = workloads(docs)
    stall_s = float(by_kind(docs, "ConfigMap")["vitals-settings"]["data"]["VITALS_STALL_S"])
    for name, (var, ready_path) in HTTP_SERVICES.items():
        [c] = containers(deployments[name])
        host, _, port = env_of(c)[var].rpartition(":")
        assert host == "0.0.0.0", name
        # startup and liveness ask /healthz (503 when stalled); readiness asks ready_path
        assert probe_port(c, "startupProbe") == ("/healthz", int(port)), name
        assert probe_port(c, "livenessProbe") == ("/healthz", int(port)), name
        assert probe_port(c, "readinessProbe") == (ready_path, int(port)), name
        # the service waits up to 5 minutes for Kafka before it listens
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, name
        # restarted within a minute of /healthz saying stalled, but not for one slow answer
        live = c["livenessProbe"]
        assert live["failureThreshold"] >= 2 and live["timeoutSeconds"] >= 1, name
        assert live["periodSeconds"] * live["failureThreshold"] <= stall_s, name
    # the rules worker starts Faust (group join, changelog restore) after it listens
    [rules] = containers(deployments["vitals-rules"])
    assert rules["livenessProbe"]["initialDelaySeconds"] >= 30
    # the others listen nowhere (the app's probes are its own test's): a probe would fail for
    # ever, and restart them for ever
    for name in set(deployments) - set(HTTP_SERVICES) - {APP}:
        [c] = containers(deployments[name])
        assert not {"ports", "startupProbe", "livenessProbe", "readinessProbe"} & set(c), name


def test_prometheus_finds_ingest_rules_and_store_on_the_port_they_serve_metrics_on() -> None:
    docs = base_documents()
    deployments = workloads(docs)
    services = by_kind(docs, "Service")
    for name in ("vitals-ingest", "vitals-rules", "vitals-store"):
        svc = services[f"{name}-metrics"]
        assert svc["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        [c] = containers(deployments[name])
        [port] = svc["spec"]["ports"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        annotations = svc["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        listens = int(env_of(c)[HTTP_SERVICES[name][0]].rpartition(":")[2])
        assert int(annotations["prometheus.io/port"]) == port["port"] == listens, name
        assert ports[port["targetPort"]] == listens, name


def test_the_canary_is_a_single_replica_replaced_with_recreate() -> None:
    """One client of the canary's broker account: two would knock each other off."""
    d = by_kind(base_documents(), "Deployment")[CANARY]
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"]["type"] == "Recreate"


def test_alerting_runs_as_a_pair_that_no_single_disruption_takes_down() -> None:
    """deploy/README.md, "Alerting: two instances": two or more pods, replaced one at a time
    with the new one ready first, spread across nodes where there are several, and a
    PodDisruptionBudget that lets a drain take only one at a time."""
    docs = base_documents()
    d = by_kind(docs, "Deployment")[ALERTING]
    spec = d["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"][
        "podAntiAffinity"]  # a one-node cluster still runs both
    [budget] = [b for b in by_kind(docs, "PodDisruptionBudget").values()
                if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
    assert budget["spec"]["minAvailable"] == 1 < spec["replicas"]
    # a clean stop gives the lease up (within the grace period); the probes keep both ready
    [c] = containers(d)
    assert probe_port(c, "readinessProbe") == ("/healthz", 8470)


def test_alerting_shares_its_state_in_the_sites_postgresql_from_the_secret() -> None:
    """VITALS_ALERTING_DB_URL comes from the Secret and is required (without it each pod would
    keep SQLite of its own, and both would lead); no PostgreSQL, and no volume shared between
    the replicas, in base; each pod's state directory (its lock and self-alert marker) is one it
    creates in an emptyDir of its own, so that it owns it and can make it 0700."""
    docs = base_documents()
    d = by_kind(docs, "Deployment")[ALERTING]
    pod = d["spec"]["template"]["spec"]
    [c] = pod["containers"]
    [url] = [e for e in c["env"] if e["name"] == "VITALS_ALERTING_DB_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "vitals-secrets",
                                                "key": "alerting-db-url"}
    assert "value" not in url
    # the PostgreSQL is the site's: no PostgreSQL pod, no claim, in base
    assert not by_kind(docs, "PersistentVolumeClaim")
    images = {c["image"] for w in workloads(docs).values() for c in containers(w)}
    assert not [i for i in images if "postgres" in i]
    for volume in pod["volumes"]:
        assert set(volume) & {"configMap", "emptyDir"}, volume["name"]
    settings = by_kind(docs, "ConfigMap")["vitals-settings"]["data"]
    state_dir = env_of(c).get("VITALS_STATE_DIR", settings["VITALS_STATE_DIR"])
    [mount] = [m for m in c["volumeMounts"] if state_dir.startswith(m["mountPath"] + "/")]
    assert not mount.get("readOnly")
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume
    # the README's example of the Secret's alerting-db-url is one the settings take
    readme = (DEPLOY / "README.md").read_text()
    example = re.search(r"--from-literal=alerting-db-url='([^']+)'", readme)
    assert example is not None
    Settings(_env_file=None, alerting_db_url=example.group(1))  # type: ignore[call-arg]
    assert "sslrootcert=/etc/ssl/postgres/ca.crt" in example.group(1)
    [ca] = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/ssl/postgres"]
    [ca_volume] = [v for v in pod["volumes"] if v["name"] == ca["name"]]
    assert ca_volume["configMap"] == {"name": "vitals-postgres-ca", "optional": True}
    # which PostgreSQL, and why not one here, is said where the site reads it
    for text in ((K8S / "base" / "alerting.yaml").read_text(), readme):
        assert "CloudNativePG" in text, text[:80]
    # the lease, one value for every pod
    assert float(settings["VITALS_ALERTING_LEASE_S"]) > 0


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of an env value, from the variables defined above it."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], value)


def test_ingest_pods_share_the_traffic_each_as_its_own_mqtt_client_and_account() -> None:
    """deploy/README.md, "Ingest: several instances": a StatefulSet whose pods split the
    traffic in one share group; each pod's name is its client id and its broker account (the
    broker binds a client id to its account), so a restarted pod resumes its own session."""
    docs = base_documents()
    ingest = by_kind(docs, "StatefulSet")[INGEST]
    spec = ingest["spec"]
    assert spec["replicas"] >= 2
    assert spec["podManagementPolicy"] == "Parallel"  # one stuck pod holds no other back
    governing = by_kind(docs, "Service")[spec["serviceName"]]
    assert governing["spec"]["clusterIP"] == "None"
    assert governing["spec"]["selector"] == spec["selector"]["matchLabels"]
    [c] = containers(ingest)
    settings = by_kind(docs, "ConfigMap")["vitals-settings"]["data"]
    # the share group: one value for every pod, from the ConfigMap
    assert "VITALS_INGEST_SHARE_GROUP" not in {e["name"] for e in c["env"]}
    group = settings["VITALS_INGEST_SHARE_GROUP"]
    assert group, "several pods need a share group: without one each receives everything"
    readme = (DEPLOY / "README.md").read_text()
    for ordinal in range(spec["replicas"]):
        pod = f"{INGEST}-{ordinal}"
        env: dict[str, str] = {}
        for e in c["env"]:  # in order: $(VAR) sees only the variables above it
            source = e.get("valueFrom", {})
            if "fieldRef" in source:
                assert source["fieldRef"]["fieldPath"] == "metadata.name"
                env[e["name"]] = pod
            elif "secretKeyRef" in source:
                env[e["name"]] = {"mqtt-ingest-password": "Zx_9-a", "mqtt-broker":
                                  "mqtt.example.org:8883"}.get(source["secretKeyRef"]["key"], "")
            else:
                env[e["name"]] = expand(e["value"], env)
        mqtt = Settings(_env_file=None, mqtt_url=env["VITALS_MQTT_URL"],  # type: ignore[call-arg]
                        ingest_client_id=env["VITALS_INGEST_CLIENT_ID"],
                        ingest_share_group=group)
        assert mqtt.ingest_client_id == pod
        assert mqtt.mqtt.tls and mqtt.mqtt.username == pod and mqtt.mqtt.password == "Zx_9-a"
        # the runbook makes the pod's broker account
        assert f"--ingest-account {pod}" in readme, pod


def test_rules_workers_are_no_more_than_the_partitions_and_never_surge() -> None:
    docs = base_documents()
    rules = by_kind(docs, "Deployment")["vitals-rules"]
    partitions = int(by_kind(docs, "ConfigMap")["vitals-settings"]["data"][
        "VITALS_KAFKA_PARTITIONS"])
    assert 1 <= rules["spec"]["replicas"] <= partitions
    assert rules["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    assert "replicas <= VITALS_KAFKA_PARTITIONS" in (K8S / "base" / "rules.yaml").read_text()


def test_the_settings_are_vitals_settings_and_valid() -> None:
    docs = base_documents()
    data = by_kind(docs, "ConfigMap")["vitals-settings"]["data"]
    known = {f"VITALS_{f.upper()}" for f in Settings.model_fields}
    env_names = {e["name"] for d in workloads(docs).values()
                 for c in containers(d) for e in c.get("env", [])}
    assert set(data) <= known
    assert {n for n in env_names if n.startswith("VITALS_")} <= known
    files = {"VITALS_PATIENTS", "VITALS_ONCALL", "VITALS_RULES", "VITALS_STATE_DIR",
             "VITALS_KAFKA_CA_FILE"}
    values = {k[len("VITALS_"):].lower(): v for k, v in data.items() if k not in files}
    Settings(_env_file=None, **values)  # type: ignore[arg-type]
    for var in ("VITALS_PATIENTS", "VITALS_ONCALL", "VITALS_RULES"):
        assert data[var].startswith("/etc/vitals/")


def test_every_configmap_and_secret_referenced_exists_or_is_made_by_the_site() -> None:
    docs = base_documents()
    defined = {(d["kind"], d["metadata"]["name"]) for d in docs}
    referenced = {(kind, name) for d in workloads(docs).values()
                  for kind, name, _optional in references(d)}
    assert referenced - defined == SITE_MADE
    notes = (K8S / "base" / "kustomization.yaml").read_text() + (DEPLOY / "README.md").read_text()
    for _kind, name in SITE_MADE:
        assert f"`{name}`" in notes, name


def test_the_secret_keys_the_deployments_read_are_documented() -> None:
    keys = {(e["valueFrom"]["secretKeyRef"]["key"])
            for d in workloads(base_documents()).values() for c in containers(d)
            for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    readme = (DEPLOY / "README.md").read_text()
    assert keys == {"kafka-url", "mqtt-ingest-password", "mqtt-broker", "influx-token",
                    "webhook-url", "webhook-secret", "smtp-url", "canary-mqtt-url",
                    "deadman-url", "alerting-db-url", "app-mqtt-url", "app-secret"}
    for key in keys:
        assert f"{key}=" in readme, key


def test_every_pod_reaches_kafka_over_tls_with_scram_from_a_secret_and_the_mounted_ca() -> None:
    docs = base_documents()
    settings = by_kind(docs, "ConfigMap")["vitals-settings"]["data"]
    # the URL carries the password: never in the ConfigMap, and no plaintext Kafka anywhere
    assert "VITALS_KAFKA_URL" not in settings
    assert not [v for v in settings.values() if "kafka://" in str(v)]
    assert settings["VITALS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    ca_file = settings["VITALS_KAFKA_CA_FILE"]
    for name, d in workloads(docs).items():
        [c] = containers(d)
        if name in (CANARY, APP):  # no Kafka: neither its password nor its settings
            assert not [e for e in c["env"] if "KAFKA" in e["name"]] and "envFrom" not in c
            continue
        [url] = [e for e in c["env"] if e["name"] == "VITALS_KAFKA_URL"]
        assert url["valueFrom"]["secretKeyRef"] == {"name": "vitals-secrets", "key": "kafka-url"}
        assert "value" not in url, name
        env_names = {e["name"] for e in c["env"]}
        assert not {"VITALS_KAFKA_CA_FILE", "VITALS_KAFKA_SASL_MECHANISM"} & env_names, name
        assert {"configMapRef": {"name": "vitals-settings"}} in c["envFrom"], name
        [mount] = [m for m in c["volumeMounts"] if ca_file.startswith(m["mountPath"] + "/")]
        assert mount.get("readOnly") is True, name
        [volume] = [v for v in d["spec"]["template"]["spec"]["volumes"]
                    if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == "vitals-kafka-ca", name
        assert ca_file[len(mount["mountPath"]) + 1:] == "ca.crt"
    # the README's example of the Secret's kafka-url is one the settings take as SASL over TLS
    readme = (DEPLOY / "README.md").read_text()
    example = re.search(r"--from-literal=kafka-url='([^']+)'", readme)
    assert example is not None
    kafka = Settings(_env_file=None, kafka_url=example.group(1)).kafka  # type: ignore[call-arg]
    assert kafka.tls and kafka.username == "vitals"
    assert "--from-file=ca.crt=" in readme.split("create configmap vitals-kafka-ca", 1)[1]


def test_resources_follow_the_measured_numbers() -> None:
    deployments = workloads(base_documents())

    def mib(q: str) -> int:
        m = re.fullmatch(r"(\d+)(Mi|Gi)", q)
        assert m, q
        return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1)

    for name, d in deployments.items():
        [c] = containers(d)
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        assert mib(req["memory"]) <= mib(lim["memory"]), name
    ingest = containers(deployments["vitals-ingest"])[0]["resources"]
    assert mib(ingest["requests"]["memory"]) >= 66  # measured peak RSS 60-66 MiB
    store = containers(deployments["vitals-store"])[0]["resources"]
    assert mib(store["limits"]["memory"]) >= 240  # measured peak RSS ~240 MiB


def test_the_demo_overlay_files_are_the_embedded_defaults_and_valid() -> None:
    demo = K8S / "demo"
    for name in ("patients.yaml", "oncall.yaml", "rules.yaml"):
        assert (demo / name).read_bytes() == (DEFAULTS / name).read_bytes(), (
            f"deploy/k8s/demo/{name} differs from vitals/defaults/{name}: copy it again")
    patients = load_patients(demo / "patients.yaml")
    load_oncall(demo / "oncall.yaml", {p.team for p in patients})
    load_rules(demo / "rules.yaml")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_demo_with_the_generated_configmap_wired_in() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S / "demo")], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    [files] = [d for d in docs if d["kind"] == "ConfigMap"
               and d["metadata"]["name"].startswith("vitals-files-")]
    assert set(files["data"]) == {"patients.yaml", "oncall.yaml", "rules.yaml"}
    assert files["data"]["rules.yaml"] == (DEFAULTS / "rules.yaml").read_text()
    for d in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        assert d["metadata"]["namespace"] == "vitals"
        names = {name for kind, name, _ in references(d) if kind == "ConfigMap"}
        assert "vitals-files" not in names
        if d["metadata"]["name"] == CANARY:  # no site files, no Kafka; the broker's CA
            assert "vitals-mqtt-ca" in names
        elif d["metadata"]["name"] == APP:  # the site files and the broker's CA; no Kafka
            assert {files["metadata"]["name"], "vitals-mqtt-ca"} <= names
            assert "vitals-kafka-ca" not in names
        else:
            assert files["metadata"]["name"] in names
            assert "vitals-kafka-ca" in names  # made by the site: its name is not rewritten
        assert containers(d)[0]["image"] == "registry.example.org/vitals:0.1.0"


def test_the_canary_comes_in_as_a_device_with_its_own_account_and_the_shared_settings() -> None:
    docs = base_documents()
    settings = by_kind(docs, "ConfigMap")["vitals-settings"]["data"]
    d = by_kind(docs, "Deployment")[CANARY]
    [c] = containers(d)
    env = {e["name"]: e for e in c["env"]}
    assert env["VITALS_MQTT_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "vitals-secrets", "key": "canary-mqtt-url"}
    for var in ("VITALS_CANARY_PATIENT", "VITALS_CANARY_EVERY_S"):  # one value for all pods
        assert env[var]["valueFrom"]["configMapKeyRef"] == {"name": "vitals-settings",
                                                            "key": var}
        assert var in settings
    Settings(_env_file=None, canary_patient=settings["VITALS_CANARY_PATIENT"],  # type: ignore[call-arg]
             canary_every_s=settings["VITALS_CANARY_EVERY_S"],
             canary_late_s=settings["VITALS_CANARY_LATE_S"])
    [mount] = [m for m in c["volumeMounts"]
               if env["SSL_CERT_FILE"]["value"].startswith(m["mountPath"] + "/")]
    [volume] = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "vitals-mqtt-ca" and mount["readOnly"] is True
    # the README's example of the Secret's canary-mqtt-url is a TLS URL with the canary account
    readme = (DEPLOY / "README.md").read_text()
    example = re.search(r"--from-literal=canary-mqtt-url='([^']+)'", readme)
    assert example is not None
    mqtt = Settings(_env_file=None, mqtt_url=example.group(1)).mqtt  # type: ignore[call-arg]
    assert mqtt.tls and mqtt.username == f"{settings['VITALS_CANARY_PATIENT']}.canary"


def test_the_app_is_one_pod_as_patient_app_over_tls_probed_on_livez() -> None:
    """deploy/README.md, "The patients' page": one pod (one client of its broker account),
    `patient-app` over TLS from the Secret, the link secret from the Secret, the links' base
    URL https:// from the ConfigMap; probes on /livez (served through a broker outage, and
    restarted only when its MQTT thread died), on the port it listens on; a Service for the
    site's Ingress."""
    from patient_app.config import load_app_config
    from patient_app.devices import DeviceBoard
    from patient_app.mqtt_link import MqttLink
    from patient_app.web import PatientApp

    docs = base_documents()
    settings = by_kind(docs, "ConfigMap")["vitals-settings"]["data"]
    d = by_kind(docs, "Deployment")[APP]
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"]["type"] == "Recreate"
    [c] = containers(d)
    env = {e["name"]: e for e in c["env"]}
    assert env["VITALS_MQTT_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "vitals-secrets", "key": "app-mqtt-url"}
    assert env["VITALS_APP_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "vitals-secrets", "key": "app-secret"}
    for var in ("VITALS_APP_BASE_URL", "VITALS_PATIENTS", "VITALS_ONCALL"):
        assert env[var]["valueFrom"]["configMapKeyRef"] == {"name": "vitals-settings",
                                                            "key": var}
    assert settings["VITALS_APP_BASE_URL"].startswith("https://")
    assert "envFrom" not in c  # the Kafka settings name a CA file it does not mount
    host, _, port = env["VITALS_APP_ADDR"]["value"].rpartition(":")
    assert host == "0.0.0.0"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probe_port(c, probe) == ("/livez", int(port)), probe
    live = c["livenessProbe"]
    assert live["failureThreshold"] >= 2 and live["timeoutSeconds"] >= 1
    [mount] = [m for m in c["volumeMounts"]
               if env["SSL_CERT_FILE"]["value"].startswith(m["mountPath"] + "/")]
    [volume] = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "vitals-mqtt-ca" and mount["readOnly"] is True
    svc = by_kind(docs, "Service")[APP]
    assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
    assert [p["port"] for p in svc["spec"]["ports"]] == [int(port)]
    # the app serves the probed path, and the one the compose healthcheck asks
    app_settings = Settings(_env_file=None, app_secret="x" * 24)  # type: ignore[call-arg]
    config = load_app_config(app_settings)
    web_app = PatientApp(config, DeviceBoard(config.registry),
                         MqttLink(app_settings.mqtt, lambda *_: None)).make_app()
    paths = {r.resource.canonical for r in web_app.router.routes() if r.resource}
    assert {"/livez", "/healthz"} <= paths
    # the README's example of the Secret's app-mqtt-url is a TLS URL with the page's account
    readme = (DEPLOY / "README.md").read_text()
    example = re.search(r"--from-literal=app-mqtt-url='([^']+)'", readme)
    assert example is not None
    mqtt = Settings(_env_file=None, mqtt_url=example.group(1)).mqtt  # type: ignore[call-arg]
    assert mqtt.tls and mqtt.username == "patient-app"
    resources = c["resources"]
    assert resources["limits"]["memory"] == "128Mi"  # RSS ~58 MiB measured
