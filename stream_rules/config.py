"""The rules file (`VITALS_RULES`, YAML): every threshold and its source, validated at load.

A problem stops the command with one line naming the file and the field. Per-patient overrides
are merged over the defaults once, when a patient's engine is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vitals.configfile import embedded, first_error, load_model

Severity = Literal["critical", "error", "warning", "info"]
Minutes = float


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Strict):
    source: str = Field(min_length=1)
    severity: Severity
    fire_after_min: Minutes = Field(default=10, ge=0)
    clear_after_min: Minutes = Field(default=15, ge=0)


class Windowed(Rule):
    window_min: Minutes = Field(gt=0)
    min_samples: int = Field(default=1, ge=1)


class HighLevel(Windowed):
    """Fires when the sustained value is >= fire_at; clears below clear_below."""

    fire_at: float
    clear_below: float

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.clear_below > self.fire_at:
            raise ValueError("clear_below must not be above fire_at")
        return self


class LowLevel(Windowed):
    """Fires when the sustained value is <= fire_at; clears above clear_above."""

    fire_at: float
    clear_above: float

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.clear_above < self.fire_at:
            raise ValueError("clear_above must not be below fire_at")
        return self


class Rising(Windowed):
    slope_per_h: float = Field(gt=0)
    from_c: float
    below_c: float


class Relative(Windowed):
    above_baseline: float = Field(gt=0)
    clear_above_baseline: float = Field(ge=0)


class Disproportionate(Windowed):
    per_degree: float = Field(ge=0)
    excess: float = Field(gt=0)
    clear_excess: float = Field(ge=0)
    min_hr: float = 0


class News2(Rule):
    aggregate_at: int = Field(ge=1)
    single_at: int | None = Field(default=None, ge=1, le=3)


class CrsSuspicion(Rule):
    severity_after_window: Severity
    fever_memory_h: float = Field(ge=0)


class NoData(_Strict):
    source: str = Field(min_length=1)
    severity: Severity
    after_min: Minutes = Field(gt=0)


class Rules(_Strict):
    fever: HighLevel
    high_fever: HighLevel
    rising_temperature: Rising
    tachycardia: HighLevel
    tachycardia_relative: Relative
    tachycardia_disproportionate: Disproportionate
    desaturation: LowLevel
    severe_desaturation: LowLevel
    news2: News2
    news2_high: News2
    crs_suspicion: CrsSuspicion
    no_data: NoData


class Evaluation(_Strict):
    lateness_s: float = Field(default=120, ge=0)
    late_after_min: Minutes = Field(default=10, ge=0)
    baseline_hours: float = Field(default=6, gt=0)
    crs_window_days: float = Field(default=14, ge=0)


Site = Literal["core", "oral", "tympanic", "axillary", "skin"]


class Temperature(_Strict):
    site_correction_c: dict[Site, float]
    sensor_off_below_c: float


class Baseline(_Strict):
    hr: float | None = Field(default=None, gt=20, lt=250)
    temp: float | None = Field(default=None, gt=30, lt=42)


class PatientRules(_Strict):
    baseline: Baseline = Baseline()
    rules: dict[str, dict[str, object]] = {}


class RulesFile(_Strict):
    version: Literal[1]
    evaluation: Evaluation
    temperature: Temperature
    rules: Rules
    patients: dict[str, PatientRules] = {}

    @model_validator(mode="after")
    def _overrides_valid(self) -> Self:
        for pid in self.patients:
            self.for_patient(pid)  # raises on an unknown rule or a bad value
        return self

    def for_patient(self, patient_id: str) -> RulesFile:
        """These rules with the patient's overrides merged in (the defaults when none)."""
        p = self.patients.get(patient_id)
        if p is None or not p.rules:
            return self
        merged = self.rules.model_dump()
        for rule, changes in p.rules.items():
            if rule not in merged:
                raise ValueError(f"patients.{patient_id}.rules: no rule named {rule!r}")
            merged[rule] = {**merged[rule], **changes}
        try:
            rules = Rules.model_validate(merged)
        except ValidationError as exc:
            raise ValueError(f"patients.{patient_id}.rules.{first_error(exc)}") from None
        return self.model_copy(update={"rules": rules})


def default_rules_path() -> Path:
    return embedded("rules.yaml")


def load_rules(path: Path | None) -> RulesFile:
    """Parse and validate a rules file (the embedded defaults when `path` is None)."""
    return load_model(RulesFile, path or default_rules_path(), "VITALS_RULES")
