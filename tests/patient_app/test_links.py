"""`vitals app-links`: a QR code PNG per patient and links.csv, owner-only (the links are
credentials); without its settings, one line naming the missing one."""

from __future__ import annotations

import csv
import stat
import subprocess
from pathlib import Path

import pytest

from harness.command import vitals
from harness.services import environment
from patient_app.tokens import make_token, verify_token
from tests.patient_app.support import SECRET
from tests.support import write_patients
from vitals.patients import load_patients

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_links(tmp_path: Path, out: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(vitals("app-links", "--out", str(out)), cwd=tmp_path,
                          env=environment(settings), capture_output=True, text=True, timeout=120)


def test_a_qr_code_per_patient_and_a_csv_readable_by_the_owner_only(tmp_path: Path) -> None:
    patients = write_patients(tmp_path / "patients.yaml", ["P001", "P002", "P003"])
    out = tmp_path / "links"
    proc = run_links(tmp_path, out, patients=str(patients), app_secret=SECRET,
                     app_base_url="https://app.example.org/")
    assert proc.returncode == 0, proc.stderr
    assert "P001" in proc.stdout and "P003.png" in proc.stdout
    assert make_token(SECRET, "P001") not in proc.stdout  # the full links are in the CSV only
    assert sorted(p.name for p in out.iterdir()) == ["P001.png", "P002.png", "P003.png",
                                                     "links.csv"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for pid in ("P001", "P002", "P003"):
        png = (out / f"{pid}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR"
        width = int.from_bytes(png[16:20], "big")
        assert width >= 250  # scale 10: big enough for a phone camera at arm's length
    with (out / "links.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["patient_id"] for r in rows] == ["P001", "P002", "P003"]
    registry = load_patients(patients)
    for row in rows:
        base, _, token = row["link"].rpartition("/p/")
        assert base == "https://app.example.org"
        assert verify_token(SECRET, token, registry) == row["patient_id"]


def test_a_second_run_replaces_the_files_and_keeps_them_private(tmp_path: Path) -> None:
    patients = write_patients(tmp_path / "patients.yaml", ["P001"])
    out = tmp_path / "links"
    out.mkdir(mode=0o755)
    (out / "links.csv").write_text("old")
    (out / "links.csv").chmod(0o644)
    proc = run_links(tmp_path, out, patients=str(patients), app_secret=SECRET,
                     app_base_url="https://app.example.org")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((out / "links.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert (out / "links.csv").read_text().startswith("patient_id,link\nP001,https://")
    assert sorted(p.name for p in out.iterdir()) == ["P001.png", "links.csv"]  # no temp files


@pytest.mark.parametrize(("settings", "says"), [
    ({"app_base_url": "https://app.example.org"}, "VITALS_APP_SECRET: not set"),
    ({"app_secret": "short"}, "VITALS_APP_SECRET: must be 16"),
    ({"app_secret": SECRET}, "VITALS_APP_BASE_URL: not set"),
    ({"app_secret": SECRET, "app_base_url": "ftp://app.example.org"}, "VITALS_APP_BASE_URL"),
    ({"app_secret": SECRET, "app_base_url": "https://app.example.org/?x=1"},
     "VITALS_APP_BASE_URL"),
])
def test_a_missing_or_bad_setting_is_one_line_naming_it(tmp_path: Path, settings: dict,
                                                        says: str) -> None:
    out = tmp_path / "links"
    proc = run_links(tmp_path, out, **settings)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("vitals: ") and says in line, line
    assert "short" not in line  # a secret is never echoed
    assert not out.exists()
