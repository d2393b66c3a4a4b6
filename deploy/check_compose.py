"""Check deploy/compose.yaml without Docker: the Compose Specification's JSON schema, and the
cross-references that the schema cannot see.

    python deploy/check_compose.py                       # against deploy/.env.example
    python deploy/check_compose.py --env-file deploy/.env --site   # before a real start

Variables are interpolated as `docker compose` does (`${VAR}`, `${VAR:-default}`,
`${VAR:?error}`, `$$`, ...) from the env file; then the file is validated against the schema
vendored in deploy/schemas/compose-spec.json, and:

- every variable the compose file uses is in .env.example, and every one there is used;
- every bind-mounted path that is part of the repository exists; paths that come from a
  variable are the site's own files (with `--site` they must exist too, and the patients,
  on-call and rules files must pass the project's own validation);
- every vitals service runs a real `vitals` subcommand with options it accepts, sets only
  VITALS_* settings that exist, with values the settings accept, and its file settings lie in
  a mounted directory;
- ingest (each instance), alerting (each instance), the canary and the app run one replica each; the
  ingest instances have client ids of their own and one shared-subscription group;
- alerting runs as several instances only when each has VITALS_ALERTING_DB_URL, the same one
  (they share PostgreSQL); without it (SQLite) it runs as one; each instance has a writable
  named volume of its own for VITALS_STATE_DIR; the PostgreSQL service it names is waited for
  (healthy), matches the URL's account, password and database, runs a pinned image with its
  data on a named volume, a password from a required variable, a pg_isready healthcheck over
  TCP, and is not published on the host;
- ingest, rules, store, alerting and the app listen on 0.0.0.0 and their healthchecks probe /healthz
  on that port, which is published (on a port Docker picks where there are several replicas);
  `depends_on` conditions can be met;
- Mosquitto finds every file its config names; Grafana gets every variable its provisioning
  uses; the one-shot scripts read every variable they are given;
- Kafka is reached over TLS with SASL only: the broker advertises SASL_SSL listeners and no
  plaintext one, its controller listener is on loopback, and every vitals service and the
  kafka-topics step use kafkas:// (an account, a SASL mechanism the broker enables, the CA
  mounted); the broker's healthcheck speaks SASL_SSL too; the ingest instances and the canary
  reach Mosquitto over TLS, each with its own account (the canary trusting a mounted CA);
  Mosquitto's healthcheck logs in with an account of its own, none of ingest's;
- the patients' page (`vitals app`) reaches Mosquitto over TLS as `patient-app`, trusting a
  mounted CA; its links start with https://, it is published on 127.0.0.1 only (behind the TLS
  reverse proxy), its VITALS_APP_SECRET comes from a required variable of deploy/.env, and it
  gets the patients and on-call files (check_app.py).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from check_app import patient_app
from check_brokers import kafka_security, mosquitto_files, mqtt_over_tls
from check_instances import (
    alerting_database,
    alerting_instances,
    ingest_instances,
    postgres,
    rules_workers,
    singletons,
)
from checklib import (  # noqa: F401 (environment, mounts: the tests read them from here)
    InterpolationError,
    environment,
    load,
    mounted_source,
    mounts,
    read_env_file,
    schema_errors,
    script_variables,
    url_path,
    url_port,
)
from compose_model import (
    COMPOSE,
    ENV_EXAMPLE,
    FILE_SETTINGS,
    HERE,
    HTTP_SERVICES,
    ONE_SHOTS,
    REPO,
    REQUIRED_SERVICES,
    TOOL_ENV,
    VITALS_SERVICES,
    Compose,
    vitals_commands,
)

# --- the cross-checks: one function per rule, run in the order of CROSS_CHECKS ---------------

def _required_services(compose: Compose) -> Iterator[str]:
    """Every service the deployment needs is there."""
    for name in REQUIRED_SERVICES:
        if name not in compose.services:
            yield f"no service {name}"


def _variables_documented(compose: Compose) -> Iterator[str]:
    """Every variable compose.yaml uses is in .env.example, and every one there is used."""
    for variable in sorted(compose.used - set(compose.example)):
        yield f"variable {variable} is used by compose.yaml but not in .env.example"
    for variable in sorted(set(compose.example) - compose.used):
        yield f"variable {variable} is in .env.example but compose.yaml does not use it"


def _mounted_paths(compose: Compose) -> Iterator[str]:
    """Named volumes are declared; the repository's bind-mounted files exist and are mounted
    read-only; the site's (from a variable) exist too, with --site."""
    for name in compose.services:
        for mount in compose.mounts(name):
            if not mount.bind:
                if mount.source not in (compose.doc.get("volumes") or {}):
                    yield f"{name}: volume {mount.source} is not declared under volumes:"
                continue
            from_variable = "$" in mount.raw_source
            path = (HERE / mount.source).resolve()
            if not from_variable and not path.exists():
                yield f"{name}: mounts {mount.source}, which is not in the repository"
            if from_variable and not compose.site:
                continue
            if from_variable and not path.exists():
                yield f"{name}: mounts {mount.source} ({mount.raw_source}), which does not exist"
            if not mount.read_only and not from_variable:
                yield f"{name}: repository file {mount.source} is mounted read-write"


def _vitals_services(compose: Compose) -> Iterator[str]:
    """Each vitals service runs the project's image with a real subcommand, real settings and a
    restart policy; its file settings lie in a mounted directory."""
    commands = vitals_commands()
    for name in VITALS_SERVICES:
        service = compose.services.get(name)
        if service is None:
            continue
        if (service.get("image") != compose.env.get("VITALS_IMAGE", "vitals:local")
                or "build" not in service):
            yield f"{name}: not the image built from deploy/Dockerfile"
        command = service.get("command")
        if not isinstance(command, list) or not command:
            yield f"{name}: command must be a list: [subcommand, options...]"
            continue
        yield from _subcommand(name, command, commands)
        yield from _settings(compose, name)
        yield from _file_settings(compose, name)
        if service.get("restart") not in ("unless-stopped", "always"):
            yield f"{name}: a long-running service needs restart: unless-stopped"


def _subcommand(name: str, command: list[str], commands: dict[str, Any]) -> Iterator[str]:
    """The service's command is a `vitals` subcommand with options it accepts."""
    subcommand = commands.get(command[0])
    if subcommand is None:
        yield f"{name}: `vitals {command[0]}` is not a vitals subcommand ({sorted(commands)})"
        return
    try:
        subcommand.make_context(command[0], list(command[1:]))
    except Exception as exc:
        yield f"{name}: `vitals {shlex.join(command)}`: {exc}"


def _settings(compose: Compose, name: str) -> Iterator[str]:
    """The service sets only VITALS_* settings that exist, with values the settings accept."""
    from vitals.settings import ConfigError, Settings, load_settings

    known = {f"VITALS_{setting.upper()}" for setting in Settings.model_fields}
    service_env = compose.environment(name)
    for variable in sorted(k for k in service_env if k.startswith("VITALS_") and k not in known):
        yield f"{name}: {variable} is not a vitals setting"
    values = {k[len("VITALS_"):].lower(): v for k, v in service_env.items()
              if k in known and k not in FILE_SETTINGS and v != ""}
    try:
        load_settings(_env_file=None, **values)
    except ConfigError as exc:
        yield f"{name}: the settings it gets are refused: {exc}"


def _file_settings(compose: Compose, name: str) -> Iterator[str]:
    """The service's file settings lie in a mounted directory (with --site: and pass the
    project's own validation)."""
    service_env = compose.environment(name)
    service_mounts = compose.mounts(name)
    for variable in FILE_SETTINGS:
        if variable in service_env:
            held = mounted_source(service_mounts, service_env[variable])
            if held is None:
                yield f"{name}: {variable}={service_env[variable]} is not in a mounted directory"
            elif compose.site:
                yield from _site_file(name, variable, HERE / held[0].source / held[1])


def _site_file(name: str, variable: str, path: Path) -> Iterator[str]:
    """The site's patients, rules or on-call file exists and passes the project's validation."""
    from vitals.settings import ConfigError

    if not path.is_file():
        yield f"{name}: {variable}: {path} does not exist"
        return
    try:
        if variable == "VITALS_PATIENTS":
            from vitals.patients import load_patients

            load_patients(path)
        elif variable == "VITALS_RULES":
            from stream_rules.config import load_rules

            load_rules(path)
        elif variable == "VITALS_KAFKA_CA_FILE":
            if "-----BEGIN CERTIFICATE-----" not in path.read_text(errors="replace"):
                yield f"{name}: {variable}: {path} is not a PEM certificate"
        elif variable == "VITALS_ONCALL":
            from alerting.oncall import load_oncall
            from vitals.patients import load_patients

            load_oncall(path, {p.team for p in load_patients(path.with_name("patients.yaml"))})
    except ConfigError as exc:
        yield f"{name}: {variable}: {exc}"


def _healthchecks(compose: Compose) -> Iterator[str]:
    """ingest, rules, store and alerting listen on 0.0.0.0, on a port their healthcheck
    probes at /healthz and that is published on the host: at a fixed host port for a single
    instance, at one Docker picks where there may be several (rules)."""
    for name, variable in HTTP_SERVICES.items():
        service = compose.services.get(name)
        if service is None:
            continue
        test = service.get("healthcheck", {}).get("test", [])
        address = compose.environment(name).get(variable, "")
        host, _, port = address.rpartition(":")
        if host != "0.0.0.0":
            yield f"{name}: {variable}={address} must listen on 0.0.0.0 inside the container"
        if (url_port(test) != (int(port) if port.isdigit() else None)
                or url_path(test) != "/healthz"):
            yield f"{name}: the healthcheck does not probe /healthz on port {port}"
        published = dict(map(_published, service.get("ports", [])))  # container: host port
        if port not in published:
            yield f"{name}: port {port} is not published"
        elif published[port] and str(service.get("deploy", {}).get("replicas", 1)) != "1":
            yield (f"{name}: several replicas cannot share host port {published[port]}; "
                   f"publish \"127.0.0.1::{port}\" and let Docker pick one per replica")


def _published(spec: Any) -> tuple[str, str]:
    """(container port, host port or "" when Docker picks it) of one `ports:` entry."""
    if isinstance(spec, dict):
        return str(spec.get("target", "")), str(spec.get("published") or "")
    parts = str(spec).split("/")[0].split(":")
    return parts[-1], (parts[-2] if len(parts) > 1 else "")


def _depends_on(compose: Compose) -> Iterator[str]:
    """Every `depends_on` names a service, and its condition can be met."""
    services = compose.services
    for name, service in services.items():
        dependencies = service.get("depends_on") or {}
        for dependency, spec in (dependencies.items() if isinstance(dependencies, dict) else []):
            if dependency not in services:
                yield f"{name}: depends on {dependency}, which is not a service"
                continue
            condition = spec.get("condition")
            if condition == "service_healthy" and "healthcheck" not in services[dependency]:
                yield (f"{name}: waits for {dependency} to be healthy, but {dependency} has no "
                       "healthcheck")
            if (condition == "service_completed_successfully"
                    and services[dependency].get("restart") != "no"):
                yield f"{name}: waits for {dependency} to complete, but {dependency} restarts"


def _one_shots_finish(compose: Compose) -> Iterator[str]:
    """The one-shot steps are not restarted."""
    for name in ONE_SHOTS:
        if compose.services.get(name, {}).get("restart") != "no":
            yield f"{name}: a one-shot step needs restart: \"no\""


def _scripts(compose: Compose) -> Iterator[str]:
    """Each one-shot's script reads every variable the service gives it."""
    for name in ONE_SHOTS:
        service = compose.services.get(name)
        if service is None:
            continue
        entry = service.get("entrypoint") or []
        held = mounted_source(compose.mounts(name), entry[-1]) if entry else None
        if held is None:
            yield f"{name}: its entrypoint script {entry} is not mounted"
            continue
        script = HERE / held[0].source / held[1]
        if not script.is_file():
            yield f"{name}: {script} does not exist"
            continue
        read = script_variables(script.read_text()) | TOOL_ENV.get(name, set())
        for variable in compose.environment(name):
            if variable not in read:
                yield f"{name}: {variable} is set, but {script.name} does not read it"


def _grafana(compose: Compose) -> Iterator[str]:
    """Grafana gets every variable its provisioning files use."""
    if compose.services.get("grafana") is None:
        return
    grafana_env = compose.environment("grafana")
    for file in sorted((HERE / "grafana" / "provisioning").rglob("*.yaml")):
        for variable in sorted(script_variables(file.read_text())):
            if variable not in grafana_env:
                yield f"grafana: {file.relative_to(HERE)} uses ${{{variable}}}, not set for grafana"


CROSS_CHECKS: tuple[Callable[[Compose], Iterator[str]], ...] = (
    _required_services, _variables_documented, _mounted_paths, _vitals_services, singletons,
    ingest_instances, alerting_instances, alerting_database, postgres, rules_workers,
    _healthchecks, _depends_on, _one_shots_finish, mosquitto_files, mqtt_over_tls,
    kafka_security, patient_app, _scripts, _grafana)


def cross_errors(raw: dict[str, Any], doc: dict[str, Any], used: set[str],
                 example: dict[str, str], env: dict[str, str], site: bool = False) -> list[str]:
    """What the schema cannot see: every problem of every rule in CROSS_CHECKS, in order."""
    compose = Compose(raw, doc, used, example, env, site)
    return [problem for rule in CROSS_CHECKS for problem in rule(compose)]


def check(compose: Path = COMPOSE, env_file: Path = ENV_EXAMPLE, site: bool = False
          ) -> list[str]:
    example = read_env_file(ENV_EXAMPLE)
    env = read_env_file(env_file)
    try:
        raw, doc, used = load(compose, env)
    except InterpolationError as exc:
        return [f"interpolation: {exc}"]
    problems = schema_errors(doc)
    problems += cross_errors(raw, doc, used, example, env, site)
    if site:
        problems += [f"{env_file.name}: {k} is still {v!r}" for k, v in env.items()
                     if "change-me" in v]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env-file", type=Path, default=ENV_EXAMPLE)
    ap.add_argument("--site", action="store_true",
                    help="also check the site's files (config, accounts, certificates)")
    args = ap.parse_args(argv)
    problems = check(COMPOSE, args.env_file, args.site)
    for p in problems:
        print(f"check_compose: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_compose: {COMPOSE.name} is valid against the Compose Specification and "
          f"consistent with {args.env_file.name}" + (" and the site's files" if args.site else ""))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
