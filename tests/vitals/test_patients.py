"""The enrolled patients (`VITALS_PATIENTS`, CONTRACT section 3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from vitals.patients import Patient, PatientRegistry, default_patients_path, load_patients
from vitals.settings import ConfigError

VALID = """\
# a study cohort
patients:
  - id: P001
    infusion: 2026-11-18        # day 0
    product: axi-cel
    team: haem-a
  - id: study_42-b
    infusion: 2026-11-20
    team: haem-b
    devices: [ox-1, th_1]
    ward: 7                     # unknown keys are allowed (extensions)
"""


def test_the_embedded_default_cohort_loads() -> None:
    registry = load_patients(None)
    assert len(registry) == 20
    assert registry.source == str(default_patients_path())
    ids = [p.id for p in registry]
    assert ids == [f"P{i:03d}" for i in range(1, 21)]
    p1 = registry.get("P001")
    assert p1 is not None and p1.team == "haem-a" and p1.infusion == dt.date(2026, 11, 8)
    assert {p.team for p in registry} == {"haem-a", "haem-b"}
    assert all(p.devices is None for p in registry)


def test_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "patients.yaml"
    path.write_text(VALID)
    registry = load_patients(path)
    assert len(registry) == 2 and registry.source == str(path)
    p = registry.get("P001")
    assert p is not None
    assert (p.infusion, p.product, p.team, p.devices) == (
        dt.date(2026, 11, 18), "axi-cel", "haem-a", None)
    q = registry.get("study_42-b")
    assert q is not None and q.devices == ("ox-1", "th_1") and q.product is None
    assert registry.get("P002") is None


def test_knows_device() -> None:
    registry = PatientRegistry([
        Patient(id="A", infusion=dt.date(2026, 1, 1), team="t"),
        Patient(id="B", infusion=dt.date(2026, 1, 1), team="t", devices=("ox-1", "th-1")),
        Patient(id="C", infusion=dt.date(2026, 1, 1), team="t", devices=()),
    ])
    assert registry.knows_device("A", "anything")  # lists no devices: any device
    assert registry.knows_device("B", "ox-1") and registry.knows_device("B", "th-1")
    assert not registry.knows_device("B", "ox-2")
    assert not registry.knows_device("B", "OX-1")
    assert not registry.knows_device("C", "ox-1")  # lists none at all


def test_day_since_infusion() -> None:
    p = Patient(id="P001", infusion=dt.date(2026, 11, 18), team="haem-a")

    def ms(*args: int, tz: dt.tzinfo = dt.UTC) -> int:
        return int(dt.datetime(*args, tzinfo=tz).timestamp() * 1000)

    assert p.day_since_infusion(ms(2026, 11, 18)) == 0.0
    assert p.day_since_infusion(ms(2026, 11, 18, 12)) == 0.5
    assert p.day_since_infusion(ms(2026, 11, 25, 6)) == 7.25
    assert p.day_since_infusion(ms(2026, 11, 17, 18)) == -0.25  # the evening before
    # day 0 begins at midnight UTC, whatever the zone of the timestamp
    assert p.day_since_infusion(ms(2026, 11, 18, 1, tz=dt.timezone(dt.timedelta(hours=1)))
                                ) == 0.0


def bad_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "patients.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_patients(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"VITALS_PATIENTS ({path}): "), msg
    return msg


ONE = "patients:\n  - {id: %s, infusion: %s, team: %s}\n"


@pytest.mark.parametrize(("text", "says"), [
    ("patients:\n  - {id: P001, infusion: 2026-11-18, team: a}\n"
     "  - {id: P001, infusion: 2026-11-19, team: b}\n", "P001 is listed twice"),
    (ONE % ("P 001", "2026-11-18", "a"), "patients[0].id"),
    (ONE % ("Müller", "2026-11-18", "a"), "patients[0].id"),
    (ONE % ("P/001", "2026-11-18", "a"), "patients[0].id"),
    (ONE % ("'" + "P" * 65 + "'", "2026-11-18", "a"), "patients[0].id"),
    (ONE % ("P001", "2026-11-18", "'haem a'"), "patients[0].team"),
    ("patients:\n  - {id: P001, infusion: 2026-11-18}\n", "patients[0].team"),
    ("patients:\n  - {id: P001, team: a}\n", "patients[0].infusion"),
    (ONE % ("P001", "18/11/2026", "a"), "patients[0].infusion"),
    (ONE % ("P001", "'2026-02-30'", "a"), "patients[0].infusion"),
    (ONE % ("P001", "2026-13-01", "a"), "month must be in 1..12"),  # YAML reads it as a date
    (ONE % ("P001", "2026-02-30", "a"), "not valid YAML: day is out of range"),
    ("patients:\n  - {id: P001, infusion: 2026-11-18, team: a, devices: [ox 1]}\n",
     "patients[0].devices[0]"),
    ("patient:\n  - {id: P001, infusion: 2026-11-18, team: a}\n", "patients: Field required"),
    ("", "valid dictionary"),
    ("just a string\n", "valid dictionary"),
    ("patients: [\n", "not valid YAML at line 2"),
    ("patients:\n  - id: P001\n   team: a\n", "not valid YAML at line 3"),
    ("patients: {id: P001}\n", "patients: Input should be a valid tuple"),
])
def test_a_bad_file_is_one_line_naming_the_setting_and_the_file(
        tmp_path: Path, text: str, says: str) -> None:
    assert says in config_error(bad_file(tmp_path, text))


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    msg = config_error(bad_file(tmp_path, "patients:\n  - {id: P001, team: Fürth}\n".encode(
        "latin-1")))
    assert "UTF-8" in msg


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    assert "cannot read" in config_error(tmp_path / "missing.yaml")
    directory = tmp_path / "patients.d"
    directory.mkdir()
    assert "cannot read" in config_error(directory)
