"""One way to run a `vitals` service as a process, for the tests, the benchmarks and the demo:
start it in its own session with its log, wait until it prints its ready line
(`vitals.ready`), stop it as an operator would (SIGTERM) or as a crash would (SIGKILL), and
read its log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.command import vitals
from harness.servers import tail
from vitals.ready import ready_line
from vitals.settings import Settings

# The commands that run until stopped and print a ready line; the others run to the end.
SERVICES = frozenset({"ingest", "rules", "store", "alerting", "canary"})


class ServiceError(RuntimeError):
    """A service exited, or was not ready in time; the message ends with its log's tail."""


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def environment(*sources: Settings | Mapping[str, object | None],
                extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a `vitals` process: this process's, without its VITALS_* settings,
    plus the given settings, later sources winning (a `Settings` gives the fields it was given
    explicitly; a mapping is from setting names such as `kafka_url`, None values left out),
    then `extra` as it is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITALS_")}
    for source in sources:
        if isinstance(source, Settings):
            source = {name: getattr(source, name) for name in source.model_fields_set}
        env.update({f"VITALS_{name.upper()}": str(value) for name, value in source.items()
                    if value is not None})
    env.update(extra or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ServiceProcess:
    """A running `vitals` command and its log (appended to across restarts)."""

    name: str
    command: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return read_log(self.log)

    def tail(self, lines: int = 8) -> str:
        return tail(self.log, lines)

    def wait_ready(self, ready_count: int, timeout: float) -> None:
        """Until the log holds more than `ready_count` ready lines; ServiceError if the
        process exits first or `timeout` passes (then it is killed)."""
        line = ready_line(self.command)
        deadline = time.monotonic() + timeout
        while self.output().count(line) <= ready_count:
            if not self.alive():
                raise ServiceError(f"vitals {self.command} exited with {self.proc.returncode}: "
                                   f"{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceError(f"vitals {self.command} was not ready within {timeout:.0f} s:"
                                   f" {self.tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as an operator would, and wait; SIGKILL after `timeout`. The exit status."""
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

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def launch(command: str, *args: str, env: Mapping[str, str], log: Path, name: str | None = None,
           cwd: Path | None = None) -> tuple[ServiceProcess, int]:
    """`vitals COMMAND ARGS...` as a process in its own session, its output appended to `log`,
    not waited for; with the count of ready lines its log held before (for `wait_ready`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    before = read_log(log).count(ready_line(command))
    with log.open("ab") as out:
        proc = subprocess.Popen(vitals(command, *args), env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    return ServiceProcess(name or command, command, proc, log), before


def start(command: str, *args: str, env: Mapping[str, str], log: Path, name: str | None = None,
          cwd: Path | None = None, timeout: float = 60.0) -> ServiceProcess:
    """`launch`, and for a service (`SERVICES`) return once it has printed its ready line."""
    service, before = launch(command, *args, env=env, log=log, name=name, cwd=cwd)
    if command in SERVICES:
        service.wait_ready(before, timeout)
    return service
