"""`vitals credentials` against a real Mosquitto: the generated hashes are accepted, and the ACL
keeps each device to its own topics and ingest to reading."""

from __future__ import annotations

import base64
import contextlib
import csv
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from typer.testing import CliRunner

from cli.app import app
from harness import servers
from ingest.credentials import generate, hash_password, read_credentials
from ingest.mqtt_source import DEPLOYED_SHARE_GROUP, shared_filters
from tests.support import publish, read_topic, start_ingest, write_patients
from vitals.patients import PatientRegistry, load_patients
from vitals.settings import ConfigError, load_settings

DEVICES = {"P001": ["ox-1", "th-1"], "P002": ["ox-1"]}
PATIENTS = ["P001", "P002", "P003"]  # P003 lists no devices


class Session:
    """One MQTT client: connect, and collect what it receives."""

    def __init__(self, port: int, username: str | None, password: str | None = None,
                 client_id: str = "", v5: bool = False) -> None:
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        # no reconnecting: each test wants to see what happened to one connection
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto,
                             reconnect_on_failure=False)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *_a: self.disconnected.set()
        self.c.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.c.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subacks.put(codes)
        self.c.on_publish = lambda _c, _u, mid, code, _p: self.pubacks.__setitem__(mid, code)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.connected.wait(30), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _f: object, code: ReasonCode, _p: object
                    ) -> None:
        self.connack = code
        self.connected.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topics: list[tuple[str, int]]) -> list[ReasonCode]:
        self.c.subscribe(topics)
        return self.subacks.get(timeout=30)

    def publish(self, topic: str, payload: str) -> ReasonCode:
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        return self.pubacks[info.mid]

    def received(self, until: str | None = None, settle: float = 0.3) -> list[tuple[str, bytes]]:
        """Messages until one on topic `until` arrives (or 5 s), then `settle` s more: anything
        published before `until` by the same client would have been delivered by then."""
        out: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + 5
        while until and time.monotonic() < deadline and all(t != until for t, _ in out):
            with contextlib.suppress(queue.Empty):
                out.append(self.messages.get(timeout=0.05))
        time.sleep(settle)
        while not self.messages.empty():
            out.append(self.messages.get())
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for s in opened:
        s.close()


def passwords(out: Path) -> dict[str, str]:
    with (out / "credentials.csv").open() as f:
        return {r["username"]: r["password"] for r in csv.DictReader(f)}


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    out = tmp_path / "creds"
    generate(out, _patients(tmp_path, DEVICES), canary_patient="CANARY")
    return out


def _patients(tmp_path: Path, devices: dict[str, list[str]]) -> PatientRegistry:
    return load_patients(write_patients(tmp_path / "patients.yaml", PATIENTS, devices))


@pytest.fixture
def broker(tmp_path: Path, creds: Path) -> Iterator[servers.Server]:
    # Started as root, Mosquitto drops to the `mosquitto` user *before* it opens password_file
    # and acl_file (2.0.11 then fails with "Unable to open pwfile"), and pytest's tmp dirs sit
    # under /tmp/pytest-of-<user>, mode 0700, which that user cannot enter. `user root` keeps the
    # uid it was started with; started as anyone else, Mosquitto ignores `user`. So this works
    # whoever runs the tests, without loosening the 0600 modes the files are written with.
    conf = (f"allow_anonymous false\npassword_file {creds / 'passwords'}\n"
            f"acl_file {creds / 'acl'}\nuser root")
    with servers.mosquitto(tmp_path / "mosquitto", conf=conf) as s:
        yield s


def open_session(sessions: list[Session], broker: servers.Server, username: str | None,
                 password: str | None = None, **kw: object) -> Session:
    s = Session(broker.port, username, password, **kw)  # type: ignore[arg-type]
    sessions.append(s)
    return s


def ingest_reading_all(sessions: list[Session], broker: servers.Server, pw: dict[str, str],
                       **kw: object) -> Session:
    """A session of the `ingest` account subscribed to every device topic: what the broker lets
    through to ingest."""
    ingest = open_session(sessions, broker, "ingest", pw["ingest"], **kw)
    ingest.subscribe([("vitals/v1/#", 1)])
    return ingest


def delivered(reader: Session, sender: Session, messages: list[tuple[str, str]]
              ) -> list[tuple[str, bytes]]:
    """What of `messages` (topic, payload), published by `sender` in order, reaches `reader`
    (each once, sorted): the broker's ACL decides. The last message must be one that passes."""
    for topic, payload in messages:
        sender.publish(topic, payload)
    return sorted(set(reader.received(until=messages[-1][0])))


def test_hash_is_the_format_mosquitto_passwd_writes(tmp_path: Path) -> None:
    pwfile = tmp_path / "pw"
    subprocess.run([servers.which("mosquitto_passwd", "mosquitto"), "-b", "-c", str(pwfile),
                    "dev", "s3cret"], check=True, capture_output=True)
    _user, theirs = pwfile.read_text().strip().split(":", 1)
    salt = base64.b64decode(theirs.split("$")[3])
    assert len(salt) == 12
    assert hash_password("s3cret", salt) == theirs


def test_broker_accepts_generated_password_and_refuses_wrong_one(
        broker: servers.Server, creds: Path, sessions: list[Session]) -> None:
    pw = passwords(creds)
    assert open_session(sessions, broker, "P001.ox-1", pw["P001.ox-1"]).accepted
    assert open_session(sessions, broker, "ingest", pw["ingest"]).accepted
    assert not open_session(sessions, broker, "P001.ox-1", pw["P001.th-1"]).accepted
    assert not open_session(sessions, broker, "P003.ox-1", "anything").accepted


def test_anonymous_is_refused(broker: servers.Server, sessions: list[Session]) -> None:
    s = open_session(sessions, broker, None)
    assert s.connack is not None and s.connack.is_failure


def test_device_cannot_publish_into_another_patients_topic(
        broker: servers.Server, creds: Path, sessions: list[Session]) -> None:
    pw = passwords(creds)
    ingest = open_session(sessions, broker, "ingest", pw["ingest"], client_id="vitals-ingest")
    # the shared subscriptions the real ingest service makes are granted (QoS 1): Mosquitto
    # checks `$share/GROUP/FILTER` against FILTER, which `read vitals/v1/#` covers
    shared = [(f, 1) for f in shared_filters(DEPLOYED_SHARE_GROUP)]
    assert [c.value for c in ingest.subscribe(shared)] == [1, 1]
    assert [c.value for c in ingest.subscribe([("vitals/v1/#", 1)])] == [1]

    # one copy per matching subscription: the shared vitals/v1/+/+ (or +/+/status), whose only
    # member this session is, and vitals/v1/#
    assert delivered(ingest, open_session(sessions, broker, "P001.ox-1", pw["P001.ox-1"]), [
        ("vitals/v1/P002/ox-1", "foreign patient"),
        ("vitals/v1/P001/th-1", "same patient, other device"),
        ("vitals/v1/P001/ox-1/status", "own status"),
        ("vitals/v1/P001/ox-1", "own")]) == [("vitals/v1/P001/ox-1", b"own"),
                                              ("vitals/v1/P001/ox-1/status", b"own status")]

    # MQTT 3.1.1 gives the device no sign (the broker acks and drops); MQTT 5 says why
    dev5 = open_session(sessions, broker, "P001.ox-1", pw["P001.ox-1"], client_id="d5", v5=True)
    assert dev5.publish("vitals/v1/P002/ox-1", "foreign").getName() == "Not authorized"
    assert dev5.publish("vitals/v1/P001/ox-1", "own").value == 0


def test_the_canary_publishes_its_own_topics_only(
        broker: servers.Server, creds: Path, sessions: list[Session]) -> None:
    """CONTRACT section 7: the canary is one more device, with an account of its own."""
    pw = passwords(creds)
    ingest = ingest_reading_all(sessions, broker, pw, client_id="vitals-ingest")
    canary = open_session(sessions, broker, "CANARY.canary", pw["CANARY.canary"])
    assert canary.accepted
    assert delivered(ingest, canary, [
        ("vitals/v1/P001/ox-1", "into a patient's record"),
        ("vitals/v1/CANARY/canary/status", "status"),
        ("vitals/v1/CANARY/canary", "round")]) == [("vitals/v1/CANARY/canary", b"round"),
                                                   ("vitals/v1/CANARY/canary/status", b"status")]


def test_the_patients_page_publishes_as_each_patients_app_device_only(
        broker: servers.Server, creds: Path, sessions: list[Session]) -> None:
    """`vitals app` publishes what patients submit as their `app` device (CONTRACT section 6),
    and reads the devices' traffic for their states; it cannot speak for a wearable."""
    pw = passwords(creds)
    ingest = ingest_reading_all(sessions, broker, pw, client_id="vitals-ingest")
    app = open_session(sessions, broker, "patient-app", pw["patient-app"])
    assert app.accepted
    assert delivered(ingest, app, [
        ("vitals/v1/P001/ox-1", "as a wearable"),
        ("vitals/v1/CANARY/canary", "as the canary"),
        ("vitals/v1/P002/app", "P002's check-in"),
        ("vitals/v1/P001/app", "P001's check-in")]) == [("vitals/v1/P001/app", b"P001's check-in"),
                                                      ("vitals/v1/P002/app", b"P002's check-in")]
    app.subscribe([("vitals/v1/#", 1)])
    open_session(sessions, broker, "P001.ox-1", pw["P001.ox-1"]).publish(
        "vitals/v1/P001/ox-1", "reading")
    assert ("vitals/v1/P001/ox-1", b"reading") in app.received(until="vitals/v1/P001/ox-1")


def test_the_health_check_account_reads_nothing_of_the_devices(
        broker: servers.Server, creds: Path, sessions: list[Session]) -> None:
    pw = passwords(creds)
    check = open_session(sessions, broker, "healthcheck", pw["healthcheck"])
    assert check.accepted
    check.subscribe([("vitals/v1/#", 1), ("$share/vitals-ingest/vitals/v1/+/+", 1),
                     ("healthcheck", 1)])
    ingest = ingest_reading_all(sessions, broker, pw)
    open_session(sessions, broker, "P001.ox-1", pw["P001.ox-1"]).publish(
        "vitals/v1/P001/ox-1", "reading")
    assert ingest.received(until="vitals/v1/P001/ox-1", settle=0) != []
    assert check.received(settle=0.2) == []


def test_ingest_accounts_share_one_password_and_are_kept_on_later_runs(tmp_path: Path) -> None:
    out = tmp_path / "creds"
    patients = _patients(tmp_path, DEVICES)
    generate(out, patients, ingest_accounts=["vitals-ingest-0", "vitals-ingest-1"])
    first = passwords(out)
    role = ("ingest", "vitals-ingest-0", "vitals-ingest-1", "healthcheck")
    assert len({first[u] for u in role}) == 1 and first["ingest"] != first["P001.ox-1"]
    acl = (out / "acl").read_text()
    for user in role[:3]:
        assert f"user {user}\ntopic read vitals/v1/#\n" in acl
    assert "user healthcheck\ntopic read healthcheck\n" in acl

    generate(out, patients)  # a later run without the option keeps them
    assert passwords(out) == first
    generate(out, patients, rotate=True)
    rotated = passwords(out)
    assert rotated.keys() == first.keys() and rotated["ingest"] != first["ingest"]
    assert len({rotated[u] for u in role}) == 1
    # an account leaves with its row in credentials.csv
    (out / "credentials.csv").write_text("".join(
        line for line in (out / "credentials.csv").read_text().splitlines(keepends=True)
        if ",vitals-ingest-1," not in line))
    generate(out, patients)
    assert "vitals-ingest-1" not in read_credentials(out / "credentials.csv")
    for bad in ("P001.ox-1", "healthcheck", "", "a/b"):
        with pytest.raises(ConfigError, match="--ingest-account"):
            generate(out, patients, ingest_accounts=[bad])


def test_two_ingests_on_their_own_accounts_share_the_traffic_where_the_broker_binds_ids(
        tmp_path: Path, kafka: servers.Server) -> None:
    """The production broker takes the account name as the client id
    (`use_username_as_clientid`): two ingests on one account would take one session from each
    other. Each on an ingest account of its own (one password for all), they share the traffic
    and neither is ever knocked off."""
    out = tmp_path / "creds"
    generate(out, _patients(tmp_path, DEVICES), ingest_accounts=["ingest-2"])
    pw = passwords(out)
    conf = (f"allow_anonymous false\npassword_file {out / 'passwords'}\n"
            f"acl_file {out / 'acl'}\nuser root\nuse_username_as_clientid true\n"
            "log_type information")
    with servers.mosquitto(tmp_path / "mosquitto", conf=conf) as broker:
        running = []
        for user in ("ingest", "ingest-2"):
            settings = load_settings(
                _env_file=None, mqtt_url=f"mqtt://{user}:{pw[user]}@127.0.0.1:{broker.port}",
                kafka_url=f"kafka://127.0.0.1:{kafka.port}", patients=tmp_path / "patients.yaml",
                ingest_metrics_addr=f"127.0.0.1:{servers.free_port()}", kafka_partitions=4,
                ingest_share_group=DEPLOYED_SHARE_GROUP)
            running.append(start_ingest(settings))  # the same (default) client id for both
        t = int(time.time() * 1000) - 60_000
        sent = [("vitals/v1/P001/ox-1", {"ts": t + i, "kind": "oximetry", "seq": i, "spo2": 97,
                                         "hr": 70}) for i in range(40)]
        publish(broker.port, sent, client_id="P001.ox-1", username="P001.ox-1",
                password=pw["P001.ox-1"])
        got = read_topic(running[0].settings.kafka_bootstrap, "vitals.readings", expect=40,
                         timeout=60, settle=1.0)
        counts = [r.stop() for r in running]
    log = broker.log.read_text()  # complete once the broker has stopped (stdout is buffered)
    assert sorted(v["seq"] for _, v in got) == list(range(40))
    assert [c.accepted for c in counts] == [20, 20]  # round-robin, each message once
    assert "already connected" not in log  # no takeover of either session
    assert "New client connected" in log and "as ingest-2 " in log, log


def test_device_cannot_subscribe_or_read(
        broker: servers.Server, creds: Path, sessions: list[Session]) -> None:
    pw = passwords(creds)
    spy = open_session(sessions, broker, "P001.ox-1", pw["P001.ox-1"])
    codes = spy.subscribe([("vitals/v1/#", 1), ("vitals/v1/P001/ox-1", 1), ("#", 1)])
    # Mosquitto 2.0.11 grants these SUBACKs (QoS 1, not 0x80) and enforces `read` on every
    # delivery instead; a broker that refused them (0x80) would be just as good. What matters
    # is that nothing arrives, checked below.
    assert {c.value for c in codes} <= {1, 0x80}

    ingest = ingest_reading_all(sessions, broker, pw)
    other = open_session(sessions, broker, "P002.ox-1", pw["P002.ox-1"])
    other.publish("vitals/v1/P002/ox-1", "reading")
    spy.publish("vitals/v1/P001/ox-1", "own")
    assert len(ingest.received(until="vitals/v1/P001/ox-1", settle=0)) == 2
    assert spy.received(settle=0.2) == []


def test_ingest_cannot_publish(broker: servers.Server, creds: Path,
                               sessions: list[Session]) -> None:
    pw = passwords(creds)
    listener = ingest_reading_all(sessions, broker, pw, client_id="listener")
    ingest5 = open_session(sessions, broker, "ingest", pw["ingest"], client_id="i5", v5=True)
    assert ingest5.publish("vitals/v1/P001/ox-1", "forged").getName() == "Not authorized"
    ingest = open_session(sessions, broker, "ingest", pw["ingest"], client_id="i3")
    ingest.publish("vitals/v1/P001/ox-1", "forged")
    dev = open_session(sessions, broker, "P001.ox-1", pw["P001.ox-1"])
    dev.publish("vitals/v1/P001/ox-1", "real")
    assert listener.received(until="vitals/v1/P001/ox-1") == [("vitals/v1/P001/ox-1", b"real")]


def reload_until(broker: servers.Server, sessions: list[Session], username: str, password: str,
                 accepted: bool) -> None:
    """SIGHUP makes Mosquitto re-read password_file and acl_file (as the README says to do)."""
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 2
    while open_session(sessions, broker, username, password).accepted != accepted:
        assert time.monotonic() < deadline, f"{username}: still {not accepted} after reload"
        time.sleep(0.05)


def test_rerun_keeps_passwords_rotate_changes_them_removed_device_loses_account(
        broker: servers.Server, creds: Path, tmp_path: Path, sessions: list[Session]) -> None:
    first = passwords(creds)
    hashes = (creds / "passwords").read_text()
    generate(creds, _patients(tmp_path, DEVICES), canary_patient="CANARY")
    assert passwords(creds) == first
    assert (creds / "passwords").read_text() != hashes  # fresh salts, same passwords
    reload_until(broker, sessions, "P001.ox-1", first["P001.ox-1"], accepted=True)

    in_field = open_session(sessions, broker, "P001.ox-1", first["P001.ox-1"])
    generate(creds, _patients(tmp_path, DEVICES), rotate=True, canary_patient="CANARY")
    rotated = passwords(creds)
    assert rotated.keys() == first.keys()
    assert all(rotated[u] != first[u] for u in first)
    reload_until(broker, sessions, "P001.ox-1", first["P001.ox-1"], accepted=False)
    # the reload also drops a connection made with the old password
    assert in_field.disconnected.wait(30)
    assert open_session(sessions, broker, "P001.ox-1", rotated["P001.ox-1"]).accepted

    removed = open_session(sessions, broker, "P002.ox-1", rotated["P002.ox-1"])
    generate(creds, _patients(tmp_path, {"P001": ["ox-1", "th-1"]}),  # P002's device removed
             canary_patient="CANARY")
    assert passwords(creds) == {u: p for u, p in rotated.items() if u != "P002.ox-1"}
    for name in ("passwords", "acl", "credentials.csv"):
        assert "P002" not in (creds / name).read_text()
    reload_until(broker, sessions, "P002.ox-1", rotated["P002.ox-1"], accepted=False)
    assert removed.disconnected.wait(30)
    assert open_session(sessions, broker, "P001.th-1", rotated["P001.th-1"]).accepted


def test_cli_writes_private_files_and_warns_about_patients_without_devices(
        tmp_path: Path) -> None:
    patients = write_patients(tmp_path / "patients.yaml", PATIENTS, DEVICES)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["credentials", "--out", str(out)],
                                env={"VITALS_PATIENTS": str(patients)})
    assert result.exit_code == 0, result.output
    assert "3 devices of 2 patients" in result.output
    assert "warning" in result.output and "P003" in result.output
    assert (out / "credentials.csv").stat().st_mode & 0o777 == 0o600
    assert (out / "passwords").stat().st_mode & 0o777 == 0o600


def test_ingest_runs_on_its_own_account_and_forwards_a_devices_reading(
        tmp_path: Path, broker: servers.Server, creds: Path, kafka: servers.Server) -> None:
    """The whole set-up as deployed: `vitals ingest` logs in with the generated read-only
    account, a device with its own credentials publishes, and the reading reaches Kafka."""
    pw = passwords(creds)
    settings = load_settings(
        _env_file=None, mqtt_url=f"mqtt://ingest:{pw['ingest']}@127.0.0.1:{broker.port}",
        kafka_url=f"kafka://127.0.0.1:{kafka.port}", patients=tmp_path / "patients.yaml",
        ingest_metrics_addr=f"127.0.0.1:{servers.free_port()}", kafka_partitions=4)
    ingest = start_ingest(settings)
    reading = {"ts": int(time.time() * 1000), "kind": "temperature", "temp": 38.4, "seq": 1}
    publish(broker.port, [("vitals/v1/P001/ox-1", reading), ("vitals/v1/P002/ox-1", reading)],
            client_id="P001.ox-1", username="P001.ox-1", password=pw["P001.ox-1"])
    got = read_topic(settings.kafka_bootstrap, "vitals.readings", expect=1, settle=1.0)
    ingest.stop()
    assert [(v["patient_id"], v["temp"]) for _, v in got] == [("P001", 38.4)]
