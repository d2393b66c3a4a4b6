"""The enrolled patients (`VITALS_PATIENTS`, CONTRACT section 3).

Patient ids are pseudonymous study ids. A patient may list its devices; when it does, ingest
accepts readings only from those devices and the broker credentials are generated for them.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from vitals.configfile import embedded, load_model

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class Patient(BaseModel):
    """An enrolled patient: pseudonymous id, infusion date (day 0), team paged, devices."""
    model_config = ConfigDict(frozen=True, extra="allow")

    id: Ident
    infusion: dt.date
    team: Ident
    product: str | None = None
    devices: tuple[Ident, ...] | None = None

    def day_since_infusion(self, ts_ms: int) -> float:
        """Days since day 0 (midnight UTC of the infusion date) at event time `ts_ms`."""
        return (ts_ms / 1000 - _midnight_s(self.infusion)) / 86400


@functools.lru_cache(maxsize=1024)
def _midnight_s(day: dt.date) -> float:
    """Epoch seconds of midnight UTC of `day` (the engine asks every judged minute)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()


class PatientsFile(BaseModel):
    """The patients file (VITALS_PATIENTS), validated: unique ids."""
    model_config = ConfigDict(frozen=True, extra="allow")

    patients: tuple[Patient, ...]

    @model_validator(mode="after")
    def _unique(self) -> PatientsFile:
        seen: set[str] = set()
        for p in self.patients:
            if p.id in seen:
                raise ValueError(f"patient id {p.id} is listed twice")
            seen.add(p.id)
        return self


class PatientRegistry:
    """Look-ups by patient id; built once at start, read on every message."""

    def __init__(self, patients: tuple[Patient, ...] | list[Patient], source: str = "") -> None:
        self.source = source
        self._by_id = {p.id: p for p in patients}
        self._devices = {p.id: frozenset(p.devices) for p in patients if p.devices is not None}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):
        return iter(self._by_id.values())

    def get(self, patient_id: str) -> Patient | None:
        """The enrolled patient with this id, or None."""
        return self._by_id.get(patient_id)

    def knows_device(self, patient_id: str, device_id: str) -> bool:
        """True when the patient lists no devices, or lists this one."""
        allowed = self._devices.get(patient_id)
        return allowed is None or device_id in allowed


def default_patients_path() -> Path:
    """The embedded demo cohort's patients file."""
    return embedded("patients.yaml")


def load_patients(path: Path | None) -> PatientRegistry:
    """Parse and validate a patients file (the embedded demo cohort when `path` is None)."""
    path = path or default_patients_path()
    parsed = load_model(PatientsFile, path, "VITALS_PATIENTS")
    return PatientRegistry(parsed.patients, source=str(path))
