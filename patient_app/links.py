"""`vitals app-links --out DIR`: each enrolled patient's personal link as a QR code
(`DIR/{patient_id}.png`) and all of them in `DIR/links.csv`. A link is a credential (whoever
has it sees the patient's devices and reports for them), so the directory is the owner's only
(0700) and each file is written 0600, atomically: never readable by others, even for a moment."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import segno
from rich.table import Table

from patient_app.tokens import link
from vitals.patients import PatientRegistry
from vitals.settings import ConfigError, Settings

QR_SCALE = 10  # pixels per module: a version 4-5 code is ~400 px, easy for a phone at arm's length
QR_BORDER = 4  # the quiet zone the QR specification asks for


@dataclass(frozen=True)
class PatientLink:
    patient_id: str
    team: str
    link: str
    png: Path


def require_base_url(settings: Settings) -> str:
    if settings.app_base_url is None:
        raise ConfigError("VITALS_APP_BASE_URL: not set; the address patients open the app at, "
                          "e.g. https://app.example.org")
    return settings.app_base_url


def qr_png(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return buf.getvalue()


def write_private(path: Path, data: bytes) -> None:
    """`data` to `path`, mode 0600 from its first byte, replacing any old file in one step."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_links(out: Path, registry: PatientRegistry, secret: str, base_url: str
                ) -> list[PatientLink]:
    """Write every patient's QR code and the CSV; the links, in the patients file's order."""
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(out, 0o700)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot use it: {exc.strerror or exc}") from None
    links = []
    try:
        for patient in registry:
            url = link(base_url, secret, patient.id)
            png = out / f"{patient.id}.png"
            write_private(png, qr_png(url))
            links.append(PatientLink(patient.id, patient.team, url, png))
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(["patient_id", "link"])
        writer.writerows([p.patient_id, p.link] for p in links)
        write_private(out / "links.csv", rows.getvalue().encode())
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    return links


def summary(links: list[PatientLink], out: Path) -> Table:
    """What was written, for the terminal. The links themselves are in links.csv only: a
    terminal's scroll-back is no place for credentials, so the token is cut short here."""
    table = Table(title=f"Personal links in {out} (links.csv, one QR code each)")
    for column in ("patient", "team", "QR code", "link"):
        table.add_column(column)
    for p in links:
        shown = p.link[:p.link.rindex(".") + 5] + "…"
        table.add_row(p.patient_id, p.team, p.png.name, shown)
    return table
