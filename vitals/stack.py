"""The whole pipeline as separate processes on loopback, for `vitals demo`, the end-to-end test
and the end-to-end benchmark: Mosquitto and tansu on free ports, then `vitals ingest`,
`vitals rules` (one or more workers), `vitals alerting` and `vitals store`, each a `vitals`
subprocess in its own session with its log and state directory under the work directory.

A service is started only once it is ready (ingest subscribed, the Faust worker ready, the
alerting API answering), and `close()` stops the services in the order that loses nothing
(ingest first, so it drains what it holds; the brokers last) and leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vitals import servers, topics
from vitals.kafka import declare_topics

# What each service prints (or answers) once it is ready.
READY_LINE = {"ingest": "subscribed to", "rules": "Worker]: Ready", "store": "storing "}
STOP_ORDER = ("ingest", "rules", "alerting", "store")


class StackError(RuntimeError):
    pass


@dataclass
class Service:
    name: str
    command: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as an operator would, and wait; SIGKILL after `timeout`."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the process and anything it started, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


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
    extra_env: dict[str, str] = field(default_factory=dict)
    mosquitto: servers.Server | None = None
    kafka: servers.Server | None = None
    services: dict[str, Service] = field(default_factory=dict)
    alerting_addr: str = field(default_factory=lambda: f"{servers.LOOPBACK}:{servers.free_port()}")
    metrics_addr: str = field(default_factory=lambda: f"{servers.LOOPBACK}:{servers.free_port()}")

    @property
    def bootstrap(self) -> str:
        assert self.kafka is not None, "start_brokers() first"
        return f"{servers.LOOPBACK}:{self.kafka.port}"

    @property
    def mqtt_port(self) -> int:
        assert self.mosquitto is not None, "start_brokers() first"
        return self.mosquitto.port

    @property
    def alerting_url(self) -> str:
        return f"http://{self.alerting_addr}"

    def start_brokers(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mosquitto = servers.mosquitto(self.workdir / "mosquitto")
        self.kafka = servers.tansu(self.workdir / "tansu")
        declare_topics(self.bootstrap, (topics.READINGS, topics.STATUS, topics.REJECTED,
                                        topics.ALERTS, topics.TRENDS), self.partitions, wait_s=30)

    def env(self, name: str) -> dict[str, str]:
        """The environment of service `name`: the parent's without its VITALS_* settings, plus
        this stack's. Each service has its own state directory."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("VITALS_")}
        settings = {
            "MQTT_URL": f"mqtt://{servers.LOOPBACK}:{self.mqtt_port}",
            "KAFKA_URL": f"kafka://{self.bootstrap}",
            "KAFKA_PARTITIONS": str(self.partitions),
            "STATE_DIR": str(self.workdir / "state" / name),
            "ALERTING_ADDR": self.alerting_addr,
            "INGEST_METRICS_ADDR": self.metrics_addr,
            "PATIENTS": self.patients, "ONCALL": self.oncall, "RULES": self.rules,
            "PAGERDUTY_URL": self.pagerduty_url, "INFLUX_URL": self.influx_url,
        }
        env.update({f"VITALS_{k}": str(v) for k, v in settings.items() if v is not None})
        env.update(self.extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, command: str, name: str | None = None, timeout: float = 60.0) -> Service:
        """`vitals <command>` as process `name` (default: the command), once it is ready."""
        name = name or command
        if name in self.services and self.services[name].alive():
            raise StackError(f"{name} is already running")
        log = self.workdir / f"{name}.log"
        before = self._read(log).count(READY_LINE.get(command, "\0"))
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "vitals", command],
                                    env=self.env(name), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        svc = self.services[name] = Service(name, command, proc, log)
        if command == "alerting":
            ready: Callable[[], bool] = self._alerting_answers
        elif command in READY_LINE:
            ready = lambda: self._read(log).count(READY_LINE[command]) > before  # noqa: E731
        else:
            ready = lambda: True  # noqa: E731
        deadline = time.monotonic() + timeout
        while not ready():
            if not svc.alive():
                raise StackError(f"vitals {command} exited with {proc.returncode}: "
                                 f"{servers.tail(log, 8)}")
            if time.monotonic() > deadline:
                svc.kill()
                raise StackError(f"vitals {command} was not ready within {timeout:.0f} s: "
                                 f"{servers.tail(log, 8)}")
            time.sleep(0.05)
        return svc

    def _alerting_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.alerting_url}/healthz", timeout=1):
                return True
        except OSError:
            return False

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, name: str) -> int:
        return self.services[name].stop()

    def close(self) -> None:
        """Stop the services (ingest first, so it hands on what it holds), then the brokers."""
        rank = {c: i for i, c in enumerate(STOP_ORDER)}
        for svc in sorted(self.services.values(), key=lambda s: rank.get(s.command, 99)):
            svc.stop()
        for server in (self.mosquitto, self.kafka):
            if server is not None:
                server.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
