"""Settings from the environment and `.env` (CONTRACT section 5), validated once at start.

Every command calls `load_settings()` first; a bad value raises `ConfigError` whose message is
one line naming the setting, and the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vitals.kafka import KafkaConnection


class ConfigError(Exception):
    """A setting or a configuration file is unusable; the message is one line naming it."""


@dataclass(frozen=True)
class Endpoint:
    """A parsed `scheme://[user[:password]@]host:port` setting."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        """True for the TLS schemes (mqtts, kafkas, https, smtps)."""
        return self.scheme.endswith("s")

    @property
    def address(self) -> str:
        """`host:port`, for messages and sockets."""
        return f"{self.host}:{self.port}"


def redact(url: str) -> str:
    """`url` with any password replaced by ***, for messages and logs: secrets are never
    printed."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
    if password is None:
        # urlsplit found none; still hide anything between `user:` and `@`
        return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def parse_endpoint(url: str, schemes: dict[str, int]) -> Endpoint:
    """Parse a URL whose scheme is one of `schemes` (scheme -> default port)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc}): {redact(url)!r}") from None
    if parts.scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"expected {allowed}host:port, got {redact(url)!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {redact(url)!r}")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0:  # `or` would have taken 0 for "no port" and connected to the default
        raise ValueError(f"bad port in {redact(url)!r}")
    # userinfo is percent-encoded (RFC 3986): a password may hold '@', ':' or '/' as %40 ...
    return Endpoint(parts.scheme, parts.hostname, port or schemes[parts.scheme],
                    None if parts.username is None else unquote(parts.username),
                    None if parts.password is None else unquote(parts.password))


def parse_hostport(value: str) -> tuple[str, int]:
    """`HOST:PORT` as (host, port); `ConfigError` otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return host, int(port)


MQTT_SCHEMES = {"mqtt": 1883, "mqtts": 8883}
KAFKA_SCHEMES = {"kafka": 9092, "kafkas": 9093}
# smtp:// upgrades with STARTTLS (required), smtps:// is TLS from the start; smtp+insecure://
# sends in clear, for a loopback test server only
SMTP_SCHEMES = {"smtp": 25, "smtps": 465, "smtp+insecure": 25}


MIN_APP_SECRET = 16  # characters of VITALS_APP_SECRET


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "vitals"


class Settings(BaseSettings):
    """CONTRACT section 5. Files (patients, on-call, rules) are checked to exist here and parsed
    by the commands that use them; unset file settings fall back to the embedded defaults."""

    model_config = SettingsConfigDict(
        env_prefix="VITALS_", env_file=".env", extra="ignore", frozen=True
    )

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    kafka_url: str = "kafka://127.0.0.1:9092"
    influx_url: str | None = None
    influx_token: str = ""
    influx_org: str = "vitals"
    influx_bucket: str = "vitals"
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    webhook_url: str | None = None
    patients: Path | None = None
    oncall: Path | None = None
    rules: Path | None = None
    alerting_addr: str = "127.0.0.1:8470"
    state_dir: Path = _default_state_dir()
    # extensions of the contract
    ingest_metrics_addr: str = "127.0.0.1:9470"
    rules_metrics_addr: str = "127.0.0.1:9471"  # each rules worker its own
    # the MQTT client id whose persistent session holds messages while ingest is down: one
    # of its own per ingest instance
    ingest_client_id: str = "vitals-ingest"
    # the MQTT 5 shared-subscription group ($share/<group>/...) several ingest instances split
    # the device traffic in, the same for all; "" (one instance): plain subscriptions, which
    # Mosquitto 2.0.11 restores from persistence after its restart and shared ones it does not
    # (ingest/mqtt_source.py)
    ingest_share_group: str = ""
    kafka_partitions: int = 8
    # Kafka security: kafkas:// is TLS; user:password@ in the URL is SASL (over TLS only)
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_ca_file: Path | None = None  # CA bundle for kafkas:// (default: the system's)
    # alerting: HMAC-SHA256 secret for webhook bodies, and the SMTP server for e-mail pages
    webhook_secret: str | None = None
    smtp_url: str | None = None
    # CONTRACT section 7: the canary (a synthetic patient proving the whole path), and the
    # dead-man's switch pinged while its round trips are on time
    canary_patient: str = "CANARY"
    canary_every_s: float = 30.0
    canary_late_s: float = 180.0
    deadman_url: str | None = None
    deadman_every_s: float = 60.0  # extension: the contract's "every minute"
    # extensions: where `vitals store` serves /metrics and /healthz, and how long a service
    # may hold work without progress before /healthz says it is stuck
    store_metrics_addr: str = "127.0.0.1:9472"
    stall_s: float = 60.0
    # extension: the alerting state in PostgreSQL (postgresql://user:password@host:port/db),
    # shared by two or more `vitals alerting` instances, one of which leads at a time; unset,
    # it is SQLite under VITALS_STATE_DIR (one instance)
    alerting_db_url: str | None = None
    alerting_lease_s: float = 10.0  # how long a leader's lease lasts without renewal
    # extension: the patient's page (`vitals app`, patient_app/): where it listens, the secret
    # its personal links are signed with (required by `vitals app` and `vitals app-links`;
    # changing it revokes every link), and the public address the links start with
    app_addr: str = "127.0.0.1:8480"
    app_secret: str | None = Field(default=None, repr=False)
    app_base_url: str | None = None

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt(cls, v: str) -> str:
        parse_endpoint(v, MQTT_SCHEMES)
        return v

    @field_validator("kafka_url")
    @classmethod
    def _kafka(cls, v: str) -> str:
        endpoints = kafka_endpoints(v)
        if len({e.scheme for e in endpoints}) > 1:
            raise ValueError("mixes kafka:// and kafkas://: all brokers are reached the same way")
        if len({(e.username, e.password) for e in endpoints}) > 1:
            raise ValueError("names different accounts for different brokers")
        first = endpoints[0]
        if first.username is not None and not first.tls:
            raise ValueError("has an account but is kafka://: SASL passwords go over TLS only, "
                             "use kafkas://")
        return v

    @field_validator("kafka_ca_file")
    @classmethod
    def _ca_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v

    @field_validator("canary_patient")
    @classmethod
    def _patient_id(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError(f"expected 1-64 characters of A-Z a-z 0-9 _ -, got {v!r}")
        return v

    @field_validator("ingest_share_group")
    @classmethod
    def _share_group(cls, v: str) -> str:
        # MQTT 5 section 4.8.2: a ShareName is at least one character, without / + #
        if re.search(r"[/+#\x00]", v):
            raise ValueError(f"a shared-subscription group has no / + #, got {v!r}")
        return v

    @field_validator("alerting_db_url")
    @classmethod
    def _postgres(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parse_endpoint(v, {"postgresql": 5432, "postgres": 5432})
        return v

    @field_validator("canary_every_s", "canary_late_s", "stall_s", "deadman_every_s",
                     "alerting_lease_s")
    @classmethod
    def _seconds(cls, v: float) -> float:
        if not math.isfinite(v) or not 0 < v <= 86400:
            raise ValueError(f"must be a number of seconds in (0, 86400], got {v}")
        return v

    @field_validator("influx_url", "pagerduty_url", "webhook_url", "deadman_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parse_endpoint(v, {"http": 80, "https": 443})
        return v

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parse_endpoint(v, SMTP_SCHEMES)
        return v

    @field_validator("patients", "oncall", "rules")
    @classmethod
    def _file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v

    @field_validator("alerting_addr", "ingest_metrics_addr", "rules_metrics_addr",
                     "store_metrics_addr", "app_addr")
    @classmethod
    def _addr(cls, v: str) -> str:
        parse_hostport(v)
        return v

    @field_validator("app_secret")
    @classmethod
    def _app_secret(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not MIN_APP_SECRET <= len(v) <= 200 or not v.isprintable():
            # never echoed: it is a secret
            raise ValueError(f"must be {MIN_APP_SECRET}-200 printable characters (e.g. "
                             "`openssl rand -base64 32`)")
        return v

    @field_validator("app_base_url")
    @classmethod
    def _app_base_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parse_endpoint(v, {"http": 80, "https": 443})
        parts = urlsplit(v)
        if parts.query or parts.fragment or parts.username is not None:
            raise ValueError(f"expected http(s)://host[:port][/path] without query, fragment "
                             f"or account, got {redact(v)!r}")
        return v.rstrip("/")

    @field_validator("kafka_partitions")
    @classmethod
    def _partitions(cls, v: int) -> int:
        if not 1 <= v <= 1024:
            raise ValueError(f"must be 1-1024, got {v}")
        return v

    @property
    def mqtt(self) -> Endpoint:
        """The MQTT broker from VITALS_MQTT_URL."""
        return parse_endpoint(self.mqtt_url, MQTT_SCHEMES)

    @property
    def kafka_bootstrap(self) -> str:
        """librdkafka's `bootstrap.servers` form: host:port[,host:port]."""
        return ",".join(e.address for e in kafka_endpoints(self.kafka_url))

    @property
    def kafka(self) -> KafkaConnection:
        """Kafka's address and security, for every Kafka client of the project."""
        first = kafka_endpoints(self.kafka_url)[0]
        return KafkaConnection(self.kafka_bootstrap, tls=first.tls, username=first.username,
                               password=first.password, mechanism=self.kafka_sasl_mechanism,
                               ca_file=self.kafka_ca_file)


def kafka_endpoints(url: str) -> list[Endpoint]:
    """VITALS_KAFKA_URL's brokers: a comma-separated list; a part without a scheme takes the
    first part's scheme and account (kafkas://user:pw@host1:9093,host2:9093)."""
    first, *rest = url.split(",")
    head = parse_endpoint(first if "://" in first else f"kafka://{first}", KAFKA_SCHEMES)
    endpoints = [head]
    for part in rest:
        if "://" in part:
            endpoints.append(parse_endpoint(part, KAFKA_SCHEMES))
        else:
            bare = parse_endpoint(f"{head.scheme}://{part}", KAFKA_SCHEMES)
            endpoints.append(Endpoint(head.scheme, bare.host, bare.port, head.username,
                                      head.password))
    return endpoints


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; raise `ConfigError` with one line naming the problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "VITALS_" + "_".join(str(p) for p in err["loc"]).upper()
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {msg}")
        raise ConfigError("; ".join(problems)) from None
