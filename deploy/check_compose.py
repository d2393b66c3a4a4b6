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
- healthchecks probe the port the service listens on; `depends_on` conditions can be met;
- Mosquitto finds every file its config names; Grafana gets every variable its provisioning
  uses; the one-shot scripts read every variable they are given.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COMPOSE = HERE / "compose.yaml"
ENV_EXAMPLE = HERE / ".env.example"
SCHEMA = REPO / "deploy" / "schemas" / "compose-spec.json"

VITALS_SERVICES = ("ingest", "rules", "store", "alerting")
ONE_SHOTS = ("kafka-topics", "influx-init")
REQUIRED_SERVICES = (*VITALS_SERVICES, *ONE_SHOTS, "mosquitto", "kafka", "influxdb", "grafana")
# settings that name files (vitals/settings.py validates that they exist)
FILE_SETTINGS = ("VITALS_PATIENTS", "VITALS_ONCALL", "VITALS_RULES")
# variables a one-shot's script does not name because the tool it runs reads them itself
TOOL_ENV = {"influx-init": {"INFLUX_TOKEN"}}  # the influx CLI


class InterpolationError(ValueError):
    pass


# --- .env files and interpolation ---------------------------------------------------------
def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as `docker compose` reads them: comments, blank lines, optional
    `export `, and single or double quotes around the value."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise InterpolationError(f"{path.name}:{n}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out


@dataclass
class Interpolator:
    env: dict[str, str]
    used: set[str] = field(default_factory=set)

    def string(self, s: str) -> str:
        out, i = [], 0
        while i < len(s):
            c = s[i]
            if c != "$":
                out.append(c)
                i += 1
                continue
            nxt = s[i + 1] if i + 1 < len(s) else ""
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                end = self._closing(s, i + 2)
                out.append(self._braced(s[i + 2:end]))
                i = end + 1
            elif re.match(r"[A-Za-z_]", nxt):
                m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", s[i + 1:])
                assert m is not None
                self.used.add(m.group())
                out.append(self.env.get(m.group(), ""))
                i += 1 + m.end()
            else:
                raise InterpolationError(f"a lone $ in {s!r}: write $$ for a literal $")
        return "".join(out)

    @staticmethod
    def _closing(s: str, start: int) -> int:
        depth = 1
        for j in range(start, len(s)):
            if s[j] == "{" and s[j - 1] == "$":
                depth += 1
            elif s[j] == "}":
                depth -= 1
                if depth == 0:
                    return j
        raise InterpolationError(f"unclosed ${{ in {s!r}")

    def _braced(self, expr: str) -> str:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", expr, re.S)
        if not m:
            raise InterpolationError(f"cannot read ${{{expr}}}")
        name, op, arg = m.group(1), m.group(2), m.group(3)
        self.used.add(name)
        value = self.env.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op is None:
            return value or ""
        if op.endswith("-"):
            return self.string(arg) if unset_or_empty else value or ""
        if op.endswith("?"):
            if unset_or_empty:
                raise InterpolationError(f"{name} is required: {self.string(arg)}")
            return value or ""
        return "" if unset_or_empty else self.string(arg)  # :+ and +

    def walk(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.string(node)
        if isinstance(node, list):
            return [self.walk(v) for v in node]
        if isinstance(node, dict):
            return {k: self.walk(v) for k, v in node.items()}
        return node


def load(compose: Path, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """The compose file as written, interpolated, and the variables it uses."""
    raw = yaml.safe_load(compose.read_text())
    interp = Interpolator(env)
    return raw, interp.walk(raw), interp.used


# --- schema -----------------------------------------------------------------------------
def schema_errors(doc: dict[str, Any], schema_path: Path = SCHEMA) -> list[str]:
    import jsonschema

    schema = json.loads(schema_path.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    return [f"schema: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]


# --- helpers over the interpolated document ------------------------------------------------
@dataclass(frozen=True)
class Mount:
    service: str
    source: str
    target: str
    read_only: bool
    raw_source: str  # before interpolation

    @property
    def bind(self) -> bool:
        return self.source.startswith((".", "/", "~"))


def mounts(raw: dict[str, Any], doc: dict[str, Any], service: str) -> list[Mount]:
    out = []
    raw_vols = raw["services"][service].get("volumes")
    if raw_vols is None:  # came through a YAML merge key from an anchor; same order
        raw_vols = doc["services"][service].get("volumes", [])
    for raw_v, v in zip(raw_vols, doc["services"][service].get("volumes", []), strict=True):
        if isinstance(v, dict):
            out.append(Mount(service, str(v.get("source", "")), v["target"],
                             bool(v.get("read_only")), str(raw_v.get("source", ""))))
            continue
        parts = v.split(":")
        raw_parts = raw_v.split(":") if isinstance(raw_v, str) else parts
        mode = parts[2] if len(parts) > 2 else "rw"
        out.append(Mount(service, parts[0], parts[1], "ro" in mode.split(","), raw_parts[0]))
    return out


def environment(doc: dict[str, Any], service: str) -> dict[str, str]:
    env = doc["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def under(path: str, directory: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(directory))


def mounted_source(ms: list[Mount], container_path: str) -> tuple[Mount, str] | None:
    """The mount that holds `container_path` (the deepest), and the path below it."""
    best = None
    for m in ms:
        if under(container_path, m.target) and (best is None or len(m.target) > len(best.target)):
            best = m
    if best is None:
        return None
    return best, str(PurePosixPath(container_path).relative_to(best.target))


def script_variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text))


def vitals_commands() -> dict[str, Any]:
    import typer.main

    from cli.app import app

    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def url_port(test: list[str]) -> int | None:
    m = re.search(r"https?://127\.0\.0\.1:(\d+)/", " ".join(test))
    return int(m.group(1)) if m else None


# --- the cross-checks ------------------------------------------------------------------------
def cross_errors(raw: dict[str, Any], doc: dict[str, Any], used: set[str],
                 example: dict[str, str], env: dict[str, str], site: bool = False) -> list[str]:
    return list(_cross(raw, doc, used, example, env, site))


def _cross(raw: dict[str, Any], doc: dict[str, Any], used: set[str], example: dict[str, str],
           env: dict[str, str], site: bool) -> Iterator[str]:
    services: dict[str, Any] = doc["services"]
    for name in REQUIRED_SERVICES:
        if name not in services:
            yield f"no service {name}"
    for var in sorted(used - set(example)):
        yield f"variable {var} is used by compose.yaml but not in .env.example"
    for var in sorted(set(example) - used):
        yield f"variable {var} is in .env.example but compose.yaml does not use it"

    # bind mounts: the repository's files exist; the site's come from variables
    for svc in services:
        for m in mounts(raw, doc, svc):
            if not m.bind:
                if m.source not in (doc.get("volumes") or {}):
                    yield f"{svc}: volume {m.source} is not declared under volumes:"
                continue
            from_variable = "$" in m.raw_source
            path = (HERE / m.source).resolve()
            if not from_variable and not path.exists():
                yield f"{svc}: mounts {m.source}, which is not in the repository"
            if from_variable and not site:
                continue
            if from_variable and not path.exists():
                yield f"{svc}: mounts {m.source} ({m.raw_source}), which does not exist"
            if not m.read_only and not from_variable:
                yield f"{svc}: repository file {m.source} is mounted read-write"

    commands = vitals_commands()
    from vitals.settings import ConfigError, Settings, load_settings

    known = {f"VITALS_{f.upper()}" for f in Settings.model_fields}
    for svc in VITALS_SERVICES:
        s = services.get(svc)
        if s is None:
            continue
        if s.get("image") != env.get("VITALS_IMAGE", "vitals:local") or "build" not in s:
            yield f"{svc}: not the image built from deploy/Dockerfile"
        command = s.get("command")
        if not isinstance(command, list) or not command:
            yield f"{svc}: command must be a list: [subcommand, options...]"
            continue
        sub = commands.get(command[0])
        if sub is None:
            yield f"{svc}: `vitals {command[0]}` is not a vitals subcommand ({sorted(commands)})"
        else:
            try:
                sub.make_context(command[0], list(command[1:]))
            except Exception as exc:
                yield f"{svc}: `vitals {shlex.join(command)}`: {exc}"
        senv = environment(doc, svc)
        for var in sorted(k for k in senv if k.startswith("VITALS_") and k not in known):
            yield f"{svc}: {var} is not a vitals setting"
        values = {k[len("VITALS_"):].lower(): v for k, v in senv.items()
                  if k in known and k not in FILE_SETTINGS and v != ""}
        try:
            load_settings(_env_file=None, **values)
        except ConfigError as exc:
            yield f"{svc}: the settings it gets are refused: {exc}"
        ms = mounts(raw, doc, svc)
        for var in FILE_SETTINGS:
            if var in senv:
                held = mounted_source(ms, senv[var])
                if held is None:
                    yield f"{svc}: {var}={senv[var]} is not in a mounted directory"
                elif site:
                    yield from _site_file(svc, var, HERE / held[0].source / held[1])
        if s.get("restart") not in ("unless-stopped", "always"):
            yield f"{svc}: a long-running service needs restart: unless-stopped"

    # singletons and the state directory
    for svc in ("ingest", "alerting"):
        replicas = services.get(svc, {}).get("deploy", {}).get("replicas", 1)
        if str(replicas) != "1":
            yield f"{svc}: must run exactly one replica, not {replicas}"
    alerting = services.get("alerting", {})
    state_dir = environment(doc, "alerting").get("VITALS_STATE_DIR", "")
    held = mounted_source(mounts(raw, doc, "alerting"), state_dir) if alerting else None
    if held is None or held[0].bind or held[0].read_only or held[1] != ".":
        yield "alerting: VITALS_STATE_DIR must be a writable named volume of its own"
    rules_n = services.get("rules", {}).get("deploy", {}).get("replicas", 1)
    partitions = env.get("VITALS_KAFKA_PARTITIONS", "8")
    if not str(rules_n).isdigit() or not 1 <= int(rules_n) <= int(partitions):
        yield f"rules: {rules_n} workers; must be 1..VITALS_KAFKA_PARTITIONS ({partitions})"

    # healthchecks probe the port the service listens on, and depends_on can be satisfied
    for svc, var, path in (("ingest", "VITALS_INGEST_METRICS_ADDR", "/metrics"),
                           ("alerting", "VITALS_ALERTING_ADDR", "/healthz")):
        s = services.get(svc, {})
        test = s.get("healthcheck", {}).get("test", [])
        addr = environment(doc, svc).get(var, "")
        host, _, port = addr.rpartition(":")
        if host != "0.0.0.0":
            yield f"{svc}: {var}={addr} must listen on 0.0.0.0 inside the container"
        if url_port(test) != int(port or 0) or path not in " ".join(test):
            yield f"{svc}: the healthcheck does not probe {path} on port {port}"
        published = [str(p).rsplit(":", 1)[-1] for p in s.get("ports", [])]
        if port not in published:
            yield f"{svc}: port {port} is not published"
    for svc, s in services.items():
        deps = s.get("depends_on") or {}
        for dep, spec in (deps.items() if isinstance(deps, dict) else []):
            if dep not in services:
                yield f"{svc}: depends on {dep}, which is not a service"
                continue
            cond = spec.get("condition")
            if cond == "service_healthy" and "healthcheck" not in services[dep]:
                yield f"{svc}: waits for {dep} to be healthy, but {dep} has no healthcheck"
            if cond == "service_completed_successfully" and services[dep].get("restart") != "no":
                yield f"{svc}: waits for {dep} to complete, but {dep} restarts"
    for svc in ONE_SHOTS:
        if services.get(svc, {}).get("restart") != "no":
            yield f"{svc}: a one-shot step needs restart: \"no\""

    yield from _mosquitto(raw, doc)
    yield from _scripts(raw, doc)
    yield from _grafana(doc)


def _site_file(svc: str, var: str, path: Path) -> Iterator[str]:
    from vitals.settings import ConfigError

    if not path.is_file():
        yield f"{svc}: {var}: {path} does not exist"
        return
    try:
        if var == "VITALS_PATIENTS":
            from vitals.patients import load_patients

            load_patients(path)
        elif var == "VITALS_RULES":
            from stream_rules.config import load_rules

            load_rules(path)
        elif var == "VITALS_ONCALL":
            from alerting.oncall import load_oncall
            from vitals.patients import load_patients

            load_oncall(path, {p.team for p in load_patients(path.with_name("patients.yaml"))})
    except ConfigError as exc:
        yield f"{svc}: {var}: {exc}"


def _mosquitto(raw: dict[str, Any], doc: dict[str, Any]) -> Iterator[str]:
    s = doc["services"].get("mosquitto")
    if s is None:
        return
    ms = mounts(raw, doc, "mosquitto")
    command = s.get("command") or []
    conf_path = command[command.index("-c") + 1] if "-c" in command else ""
    held = mounted_source(ms, conf_path)
    conf = HERE / "mosquitto" / "mosquitto.conf"
    if held is None or (HERE / held[0].source / held[1]).resolve() != conf:
        yield f"mosquitto: runs with -c {conf_path}, which is not deploy/mosquitto/mosquitto.conf"
    keys = ("password_file", "acl_file", "cafile", "certfile", "keyfile", "persistence_location")
    for line in conf.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in keys and mounted_source(ms, parts[1]) is None:
            yield f"mosquitto: {parts[0]} {parts[1]} is not in a mounted directory"
    ingest_url = environment(doc, "ingest").get("VITALS_MQTT_URL", "")
    m = re.fullmatch(r"mqtts://ingest:[^@]+@([^:/]+):8883", ingest_url)
    aliases = (s.get("networks") or {}).get("default", {}).get("aliases", [])
    if not m or m.group(1) not in [*aliases, "mosquitto"]:
        yield f"ingest: VITALS_MQTT_URL must be mqtts://ingest:...@<broker alias>:8883 " \
              f"(got {ingest_url.split('@')[-1]})"
    if not any(str(p).endswith(":8883") for p in s.get("ports", [])):
        yield "mosquitto: the TLS port 8883 is not published"


def _scripts(raw: dict[str, Any], doc: dict[str, Any]) -> Iterator[str]:
    """Each one-shot's script reads every variable the service gives it."""
    for svc in ONE_SHOTS:
        s = doc["services"].get(svc)
        if s is None:
            continue
        entry = s.get("entrypoint") or []
        held = mounted_source(mounts(raw, doc, svc), entry[-1]) if entry else None
        if held is None:
            yield f"{svc}: its entrypoint script {entry} is not mounted"
            continue
        script = HERE / held[0].source / held[1]
        if not script.is_file():
            yield f"{svc}: {script} does not exist"
            continue
        read = script_variables(script.read_text()) | TOOL_ENV.get(svc, set())
        for var in environment(doc, svc):
            if var not in read:
                yield f"{svc}: {var} is set, but {script.name} does not read it"


def _grafana(doc: dict[str, Any]) -> Iterator[str]:
    s = doc["services"].get("grafana")
    if s is None:
        return
    env = environment(doc, "grafana")
    for f in sorted((HERE / "grafana" / "provisioning").rglob("*.yaml")):
        for var in sorted(script_variables(f.read_text())):
            if var not in env:
                yield f"grafana: {f.relative_to(HERE)} uses ${{{var}}}, not set for grafana"


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
