"""Broker accounts for the enrolled devices: Mosquitto `password_file` and `acl_file`, and a
CSV of the plain passwords for provisioning devices (`vitals credentials`).

Each device may publish only to its own topics, so a stolen or misconfigured device cannot put
readings into another patient's record; ingest gets read-only accounts, one per instance; the
canary (CONTRACT section 7) gets its one device's; the patients' page (`vitals app`, the app
device of CONTRACT section 6) one that may publish as each enrolled patient's `app` device and
read the devices' traffic (the page shows each device's state); the broker's health check one
that may read nothing of the devices'; nothing else exists.

Why one ingest account per instance: the production broker takes a client's account name as its
client id (`use_username_as_clientid`, deploy/mosquitto/mosquitto.conf), so that no device can
take over ingest's persistent session. Two ingest instances on one account would then share one
session and knock each other off. The ingest accounts share one password: they have the same
rights, and one Secret can then serve a StatefulSet whose pods log in under their own names.
The health check has an account of its own for the same reason: on ingest's, every check would
take over (and with its clean session wipe) that instance's session.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vitals import canary
from vitals.patients import Patient
from vitals.settings import ConfigError

INGEST_USER = "ingest"
INGEST_READ = "vitals/v1/#"
# The broker's health check (deploy/compose.yaml) subscribes to a topic no device can publish to.
HEALTHCHECK_USER = "healthcheck"
HEALTHCHECK_READ = "healthcheck"
# The patients' page: one server publishes for every patient's `app` device (patient_app/).
APP_USER = "patient-app"
APP_DEVICE = "app"
# Ingest account names: no dot, so that they never clash with a device's `{patient}.{device}`.
INGEST_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,64}")
# mosquitto_passwd's defaults in Mosquitto 2.0 (`$7$` = PBKDF2-HMAC-SHA512)
ITERATIONS = 101
SALT_BYTES = 12
CSV_FIELDS = ("patient_id", "device_id", "username", "password")


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    patient_id: str = ""  # empty for the ingest and health-check accounts
    device_id: str = ""
    reads: tuple[str, ...] = ()  # topic filters it may read; none for a device
    writes: tuple[str, ...] = ()  # topics a service account may publish to

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics a device may publish to (CONTRACT section 1)."""
        base = f"vitals/v1/{self.patient_id}/{self.device_id}"
        return (base, f"{base}/status")


def device_username(patient_id: str, device_id: str) -> str:
    # ids are [A-Za-z0-9_-], so the dot cannot be part of either and the name is unambiguous
    return f"{patient_id}.{device_id}"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The Mosquitto 2.0 password hash: `$7$<iterations>$<b64 salt>$<b64 pbkdf2-sha512>`."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def ingest_usernames(existing: Iterable[str], more: Iterable[str] = ()) -> list[str]:
    """`ingest`, the ingest accounts of an earlier run (`existing` usernames without a dot,
    other than the health check's) and `more`: each once, `ingest` first."""
    names = {INGEST_USER, *(u for u in existing if "." not in u and u != HEALTHCHECK_USER)}
    for name in more:
        if not INGEST_ACCOUNT.fullmatch(name) or name == HEALTHCHECK_USER:
            raise ConfigError(f"--ingest-account: expected 1-64 characters of A-Z a-z 0-9 _ - "
                              f"(not {HEALTHCHECK_USER!r}), got {name!r}")
        names.add(name)
    return [INGEST_USER, *sorted(names - {INGEST_USER})]


def build_accounts(patients: Iterable[Patient], existing: Mapping[str, str],
                   rotate: bool = False, canary_patient: str | None = None,
                   ingest_accounts: Iterable[str] = ()) -> tuple[list[Account], list[str]]:
    """The ingest accounts (`ingest`, those of an earlier run and `ingest_accounts`, one
    password for all), the health check's, the canary's (CONTRACT section 7: its one device, no
    enrolment) and one account per enrolled device, and the ids of patients that list no
    devices (they get no account). Passwords in `existing` (username -> password) are kept
    unless `rotate`, so devices in the field keep working; devices no longer enrolled are
    simply not in the result, so they lose their account."""

    def password(username: str) -> str:
        kept = None if rotate else existing.get(username)
        return kept or new_password()

    ingest_password = password(INGEST_USER)
    accounts = [Account(u, ingest_password, reads=(INGEST_READ,))
                for u in ingest_usernames(existing, ingest_accounts)]
    accounts.append(Account(HEALTHCHECK_USER, ingest_password, reads=(HEALTHCHECK_READ,)))
    if canary_patient:
        user = device_username(canary_patient, canary.DEVICE_ID)
        accounts.append(Account(user, password(user), canary_patient, canary.DEVICE_ID))
    # the page speaks for the patients enrolled with the broker (a device list); ingest takes
    # it from those whose list names `app`
    patients = list(patients)
    accounts.append(Account(APP_USER, password(APP_USER), reads=(INGEST_READ,), writes=tuple(
        f"vitals/v1/{p.id}/{APP_DEVICE}" for p in patients if p.devices)))
    without_devices = []
    for p in patients:
        if not p.devices:
            without_devices.append(p.id)
            continue
        for d in p.devices:
            user = device_username(p.id, d)
            accounts.append(Account(user, password(user), p.id, d))
    return accounts, without_devices


def password_file(accounts: Iterable[Account]) -> str:
    # a fresh salt on every run: the hashes change, the passwords do not
    return "".join(f"{a.username}:{hash_password(a.password)}\n" for a in accounts)


def acl_file(accounts: Iterable[Account]) -> str:
    """With an acl_file Mosquitto denies whatever is not granted, so listing only `write` for
    devices means they can neither subscribe nor read, and ingest (only `read`) cannot publish.
    Mosquitto 2.0 checks a shared subscription (`$share/GROUP/FILTER`) against FILTER, so
    `read vitals/v1/#` covers ingest's (tests/ingest/test_credentials.py)."""
    lines = ["# generated by `vitals credentials`; edits are lost when it runs again"]
    for a in accounts:
        lines += ["", f"user {a.username}"]
        if a.device_id:
            lines += [f"topic write {t}" for t in a.topics]
        else:
            lines += [f"topic read {t}" for t in a.reads]
            lines += [f"topic write {t}" for t in a.writes]
    return "\n".join(lines) + "\n"


def credentials_csv(accounts: Iterable[Account]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    w.writerows((a.patient_id, a.device_id, a.username, a.password) for a in accounts)
    return out.getvalue()


def read_credentials(path: Path) -> dict[str, str]:
    """username -> password from an earlier run; empty when there was none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    rows = csv.DictReader(io.StringIO(text))
    if tuple(rows.fieldnames or ()) != CSV_FIELDS:
        raise ConfigError(f"{path}: not a credentials file (header {','.join(CSV_FIELDS)})")
    return {r["username"]: r["password"] for r in rows if r["username"] and r["password"]}


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temporary file created with `mode` and renamed, so the file is never
    readable by others (not even briefly) and a broker reloading never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def generate(out: Path, patients: Iterable[Patient], rotate: bool = False,
             canary_patient: str | None = None, ingest_accounts: Iterable[str] = ()
             ) -> tuple[list[Account], list[str]]:
    """Write `out`/passwords, `out`/acl and `out`/credentials.csv; return what `build_accounts`
    returns."""
    csv_path = out / "credentials.csv"
    accounts, without_devices = build_accounts(patients, read_credentials(csv_path), rotate,
                                               canary_patient, ingest_accounts)
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the plain passwords
        # passwords and acl are 0600 too: the broker's user must own them (deploy/mosquitto)
        write_private(out / "passwords", password_file(accounts))
        write_private(out / "acl", acl_file(accounts))
        write_private(csv_path, credentials_csv(accounts))
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write: {exc.strerror}") from None
    return accounts, without_devices
