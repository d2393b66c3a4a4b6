"""The enrolled patients (`VITALS_PATIENTS`, CONTRACT section 3).

Patient ids are pseudonymous study ids. A patient may list its devices; when it does, ingest
accepts readings only from those devices and the broker credentials are generated for them.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator

from vitals.settings import ConfigError

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class Patient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    id: Ident
    infusion: dt.date
    team: Ident
    product: str | None = None
    devices: tuple[Ident, ...] | None = None

    def day_since_infusion(self, ts_ms: int) -> float:
        """Days since day 0 (midnight UTC of the infusion date) at event time `ts_ms`."""
        day0 = dt.datetime.combine(self.infusion, dt.time(), tzinfo=dt.UTC)
        return (ts_ms / 1000 - day0.timestamp()) / 86400


class PatientsFile(BaseModel):
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
        return self._by_id.get(patient_id)

    def knows_device(self, patient_id: str, device_id: str) -> bool:
        """True when the patient lists no devices, or lists this one."""
        allowed = self._devices.get(patient_id)
        return allowed is None or device_id in allowed


def default_patients_path() -> Path:
    return Path(str(resources.files("vitals") / "defaults" / "patients.yaml"))


def load_patients(path: Path | None) -> PatientRegistry:
    """Parse and validate a patients file (the embedded demo cohort when `path` is None)."""
    path = path or default_patients_path()
    data = read_yaml(path, "VITALS_PATIENTS")
    try:
        parsed = PatientsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"VITALS_PATIENTS ({path}): {first_error(exc)}") from None
    return PatientRegistry(parsed.patients, source=str(path))


def read_yaml(path: Path, setting: str) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{setting} ({path}): cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting} ({path}): cannot read: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{setting} ({path}): not valid YAML{line}") from None
    except ValueError as exc:  # a scalar YAML reads but cannot build, such as 2026-13-01
        raise ConfigError(f"{setting} ({path}): not valid YAML: {exc}") from None


def first_error(exc: ValidationError) -> str:
    """The validation errors as one line: `patients[2].infusion: Input should be a valid date`."""
    parts = []
    for err in exc.errors():
        loc = ""
        for p in err["loc"]:
            loc += f"[{p}]" if isinstance(p, int) else (f".{p}" if loc else str(p))
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
