"""The number each team's patients call, from the on-call file (`VITALS_ONCALL`, a team's
optional `phone`). Only the phones are read here: the rest of the file is alerting's, which
validates all of it at its own start. A phone is checked as alerting checks it (digits,
spaces, + - ( ), at most 32 characters), so it can never be markup or another kind of link."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from vitals.configfile import embedded, load_model
from vitals.settings import ConfigError

PHONE = re.compile(r"[0-9 +()-]{1,32}")


def valid_phone(v: str) -> bool:
    return bool(PHONE.fullmatch(v)) and any(c.isdigit() for c in v)


class _Team(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    phone: str | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is not None and not valid_phone(v):
            raise ValueError("a phone number is at most 32 characters of digits, spaces, "
                             "+ - ( ), e.g. \"+44 20 7946 0000\"")
        return v


class _OnCallPhones(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    teams: dict[str, _Team]


def tel_uri(phone: str) -> str:
    """`tel:+442079460000`: the digits and a leading + (RFC 3966 global number)."""
    digits = "".join(c for c in phone if c.isdigit())
    return f"tel:{'+' if phone.lstrip().startswith('+') else ''}{digits}"


def load_phones(path: Path | None, teams_needed: set[str]) -> dict[str, str | None]:
    """Team -> phone (None where the file gives none) for every team the patients name;
    `ConfigError` in one line naming VITALS_ONCALL, the file and the field otherwise."""
    path = path or embedded("oncall.yaml")
    parsed = load_model(_OnCallPhones, path, "VITALS_ONCALL")
    missing = sorted(teams_needed - set(parsed.teams))
    if missing:
        raise ConfigError(f"VITALS_ONCALL ({path}): teams: no team {missing[0]}, which "
                          "VITALS_PATIENTS names")
    return {team: parsed.teams[team].phone for team in sorted(teams_needed)}
