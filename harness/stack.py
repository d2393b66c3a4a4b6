"""The whole pipeline as separate processes on loopback, for `vitals demo`, the end-to-end test
and the end-to-end benchmark: Mosquitto and tansu on free ports, then `vitals ingest`,
`vitals rules` (one or more workers), `vitals alerting`, `vitals store` and `vitals canary`
(the synthetic patient whose round trips alerting watches), each started by
`harness.services` with its log and state directory under the work directory.

A service is returned only once it is ready (its ready line; `start_together` launches several
at once, then waits for each), and `close()` stops the services in the order that loses nothing
(ingest first, so it drains what it holds; the brokers last) and leaves no process behind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness import servers, services
from harness.relay import TcpRelay
from harness.services import ServiceError, ServiceProcess
from vitals import topics
from vitals.kafka import declare_topics

# the canary first, so that no canary round is published into a pipeline that is stopping
STOP_ORDER = ("canary", "ingest", "rules", "alerting", "store")


@dataclass
class Stack:
    """Brokers and services under `workdir`. Files are paths the services read; None means
    the embedded defaults."""

    workdir: Path
    patients: Path | None = None
    oncall: Path | None = None
    rules: Path | None = None
    pagerduty_url: str | None = None
    influx_url: str | None = None
    partitions: int = 4
    # Mosquitto saves its sessions and queues (as deployed), so that it can be restarted
    mqtt_persistence: bool = False
    # the services reach tansu through a relay that can cut the connection (`relay.block()`)
    kafka_relay: bool = False
    relay: TcpRelay | None = None
    # more settings for every service, by setting name (`canary_every_s`, not VITALS_...)
    extra_env: dict[str, str] = field(default_factory=dict)
    mosquitto: servers.Server | None = None
    kafka: servers.Server | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    alerting_addr: str = field(default_factory=lambda: f"{servers.LOOPBACK}:{servers.free_port()}")
    metrics_addr: str = field(default_factory=lambda: f"{servers.LOOPBACK}:{servers.free_port()}")
    # the store's /metrics and /healthz (two stacks on one machine must not share a port)
    store_metrics_addr: str = field(
        default_factory=lambda: f"{servers.LOOPBACK}:{servers.free_port()}")
    # each rules worker's metrics address, by service name (two workers must not share one)
    rules_metrics: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        assert self.kafka is not None, "start_brokers() first"
        return f"{servers.LOOPBACK}:{self.kafka.port}"

    @property
    def kafka_url(self) -> str:
        """What the services are given: the relay's address when there is one."""
        port = self.relay.port if self.relay is not None else None
        return f"kafka://{servers.LOOPBACK}:{port}" if port else f"kafka://{self.bootstrap}"

    @property
    def mqtt_port(self) -> int:
        assert self.mosquitto is not None, "start_brokers() first"
        return self.mosquitto.port

    @property
    def alerting_url(self) -> str:
        return f"http://{self.alerting_addr}"

    def start_brokers(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mosquitto = servers.mosquitto(self.workdir / "mosquitto",
                                           persistence=self.mqtt_persistence)
        if self.kafka_relay:
            # tansu tells clients to come back through the relay after the first metadata
            # request, so that cutting the relay cuts every connection, not only new ones. The
            # relay listens first: a port only chosen could be taken by then.
            port = servers.free_port()
            self.relay = TcpRelay(port)
            self.kafka = servers.tansu(self.workdir / "tansu", port,
                                       advertised_port=self.relay.port)
        else:
            self.kafka = servers.tansu(self.workdir / "tansu")
        declare_topics(self.bootstrap, (topics.READINGS, topics.STATUS, topics.REJECTED,
                                        topics.CANARY, topics.ALERTS, topics.TRENDS,
                                        topics.REPORTS),
                       self.partitions, wait_s=30)

    def env(self, name: str) -> dict[str, str]:
        """The environment of service `name`: this stack's settings, and a state directory of
        its own."""
        return services.environment({
            "mqtt_url": f"mqtt://{servers.LOOPBACK}:{self.mqtt_port}",
            "kafka_url": self.kafka_url,
            "kafka_partitions": self.partitions,
            "state_dir": self.workdir / "state" / name,
            "alerting_addr": self.alerting_addr,
            "ingest_metrics_addr": self.metrics_addr,
            "store_metrics_addr": self.store_metrics_addr,
            "rules_metrics_addr": self.rules_metrics.get(
                name, f"{servers.LOOPBACK}:{servers.free_port()}"),
            "patients": self.patients, "oncall": self.oncall, "rules": self.rules,
            "pagerduty_url": self.pagerduty_url, "influx_url": self.influx_url,
        }, self.extra_env)

    def start(self, command: str, name: str | None = None, timeout: float = 60.0
              ) -> ServiceProcess:
        """`vitals <command>` as process `name` (default: the command), once it is ready."""
        service, before = self._launch(command, name or command)
        if command in services.SERVICES:
            service.wait_ready(before, timeout)
        return service

    def start_together(self, commands: Iterable[tuple[str, str]], timeout: float = 120.0
                       ) -> None:
        """Services (command, name) launched at once, then each waited for: their start-ups
        (imports, connecting, a Faust worker's group join) overlap, and two rules workers join
        their group in one rebalance rather than one each."""
        launched = [self._launch(command, name) for command, name in commands]
        for service, before in launched:
            if service.command in services.SERVICES:
                service.wait_ready(before, timeout)

    def _launch(self, command: str, name: str) -> tuple[ServiceProcess, int]:
        if name in self.services and self.services[name].alive():
            raise ServiceError(f"{name} is already running")
        if command == "rules":
            self.rules_metrics.setdefault(name, f"{servers.LOOPBACK}:{servers.free_port()}")
        service, before = services.launch(command, env=self.env(name), name=name,
                                          log=self.workdir / f"{name}.log")
        self.services[name] = service  # close() stops it, even if it never gets ready
        return service, before

    def stop(self, name: str) -> int:
        return self.services[name].stop()

    def close(self) -> None:
        """Stop the services (the canary, then ingest, so it hands on what it holds), then the
        brokers."""
        rank = {c: i for i, c in enumerate(STOP_ORDER)}
        for svc in sorted(self.services.values(), key=lambda s: rank.get(s.command, 99)):
            svc.stop()
        for server in (self.mosquitto, self.kafka):
            if server is not None:
                server.stop()
        if self.relay is not None:
            self.relay.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
