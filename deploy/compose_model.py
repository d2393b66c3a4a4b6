"""What deploy/check_compose.py and deploy/check_brokers.py read: where the files are, which
services the project runs, and `Compose`, the compose file as the cross-checks see it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checklib import Mount, environment, mounts

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COMPOSE = HERE / "compose.yaml"
ENV_EXAMPLE = HERE / ".env.example"

# the ingest instances, which share the device traffic (MQTT 5 shared subscription); each
# service's broker account is its name
INGEST_SERVICES = ("ingest", "ingest-2")
# the alerting instances as shipped, which share their state in PostgreSQL (the `postgres`
# service); a site on SQLite runs `alerting` alone (check_compose.py's alerting rules judge
# every service that runs `vitals alerting`, whatever its name)
ALERTING_SERVICES = ("alerting", "alerting-2")
# the patients' page (`vitals app`): one, like the canary, on a broker account of its own
APP_SERVICE = "app"
VITALS_SERVICES = (*INGEST_SERVICES, "rules", "store", *ALERTING_SERVICES, "canary", APP_SERVICE)
# the vitals services that use Kafka (the canary only publishes over MQTT, as a device does)
KAFKA_SERVICES = (*INGEST_SERVICES, "rules", "store", *ALERTING_SERVICES)
# exactly one replica each: an ingest instance's MQTT session, the canary's and the page's
# accounts (an alerting instance's one replica is judged with the other alerting rules)
SINGLETONS = (*INGEST_SERVICES, "canary", APP_SERVICE)
ONE_SHOTS = ("kafka-topics", "influx-init")
# the vitals services that serve /metrics and /healthz on one port, and the setting naming it
# (vitals/health_http.py; alerting's API serves both too)
HTTP_SERVICES = {**{name: "VITALS_INGEST_METRICS_ADDR" for name in INGEST_SERVICES},
                 "rules": "VITALS_RULES_METRICS_ADDR", "store": "VITALS_STORE_METRICS_ADDR",
                 **{name: "VITALS_ALERTING_ADDR" for name in ALERTING_SERVICES},
                 APP_SERVICE: "VITALS_APP_ADDR"}
# alerting-2 and postgres are not required: one alerting on SQLite is a valid deployment
REQUIRED_SERVICES = (*INGEST_SERVICES, "rules", "store", "alerting", "canary", APP_SERVICE,
                     *ONE_SHOTS, "mosquitto", "kafka", "influxdb", "grafana")
# where the official postgres image keeps its data unless PGDATA says otherwise
PGDATA = "/var/lib/postgresql/data"
# settings that name files (vitals/settings.py validates that they exist)
FILE_SETTINGS = ("VITALS_PATIENTS", "VITALS_ONCALL", "VITALS_RULES", "VITALS_KAFKA_CA_FILE")
# variables a one-shot's script does not name because the tool it runs reads them itself
TOOL_ENV = {"influx-init": {"INFLUX_TOKEN"}}  # the influx CLI


def vitals_commands() -> dict[str, Any]:
    """The `vitals` subcommands, by name, as click commands."""
    import typer.main

    from cli.app import app

    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@dataclass
class Compose:
    """What the cross-checks read: compose.yaml as written and interpolated, the variables it
    uses, .env.example, the env file, and whether the site's own files are checked too."""

    raw: dict[str, Any]
    doc: dict[str, Any]
    used: set[str]
    example: dict[str, str]
    env: dict[str, str]
    site: bool

    @property
    def services(self) -> dict[str, Any]:
        """The interpolated services, by name."""
        return self.doc["services"]

    def mounts(self, service: str) -> list[Mount]:
        """The service's mounts."""
        return mounts(self.raw, self.doc, service)

    def environment(self, service: str) -> dict[str, str]:
        """The service's environment, interpolated."""
        return environment(self.doc, service)

    @property
    def alerting_instances(self) -> list[str]:
        """The services that run `vitals alerting`, in the file's order."""
        def subcommand(service: dict[str, Any]) -> str | None:
            command = service.get("command") or []
            words = command.split() if isinstance(command, str) else command
            return str(words[0]) if words else None

        return [name for name, service in self.services.items()
                if subcommand(service) == "alerting"]
