"""What `vitals app` and `vitals app-links` need, checked once at start: the secret the links
are signed with, the enrolled patients, and their teams' phone numbers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from patient_app.phones import load_phones
from vitals.patients import PatientRegistry, load_patients
from vitals.settings import MIN_APP_SECRET, ConfigError, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppConfig:
    secret: str = field(repr=False)
    registry: PatientRegistry
    phones: dict[str, str | None]  # team -> the number its patients call

    def phone_of(self, patient_id: str) -> str | None:
        patient = self.registry.get(patient_id)
        return None if patient is None else self.phones.get(patient.team)


def require_secret(settings: Settings) -> str:
    if settings.app_secret is None:
        raise ConfigError(f"VITALS_APP_SECRET: not set; the personal links are signed with it "
                          f"(at least {MIN_APP_SECRET} characters, e.g. "
                          "`openssl rand -base64 32`)")
    return settings.app_secret


def load_app_config(settings: Settings) -> AppConfig:
    """The app's configuration; `ConfigError` in one line naming the setting otherwise."""
    secret = require_secret(settings)
    registry = load_patients(settings.patients)
    phones = load_phones(settings.oncall, {p.team for p in registry})
    without = sorted(team for team, phone in phones.items() if phone is None)
    if without:
        log.warning("no phone in VITALS_ONCALL for team %s: their patients' page says to call "
                    "the number their team gave them", ", ".join(without))
    return AppConfig(secret=secret, registry=registry, phones=phones)
