"""The rules file (`VITALS_RULES`, YAML): every threshold and its source, validated at load.

A problem stops the command with one line naming the file and the field. Per-patient overrides
are merged over the defaults once, when a patient's engine is built. The `rules:` section has
one field per rule of the registry (`stream_rules.rules`), validated by that rule's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, ValidationError, create_model, model_validator

from stream_rules.rules import RULES
from stream_rules.rules.reports import ReportRules
from stream_rules.rules.spec import Celsius, Minutes, Severity, Strict
from vitals.configfile import embedded, first_error, load_model

__all__ = ["Baseline", "Evaluation", "Minutes", "Oximetry", "PatientRules", "Rules", "RulesFile",
           "Severity", "Temperature", "default_rules_path", "load_rules"]

Rules = create_model(  # one required field per registered rule, in the registry's order
    "Rules", __base__=Strict, __module__=__name__,
    __doc__="The `rules:` section: one section per registered rule.",
    **{rule.name: (rule.config, ...) for rule in RULES})  # type: ignore[call-overload]


class Evaluation(Strict):
    """Event-time settings: lateness, what counts as late, baselines, the CRS window."""

    lateness_s: float = Field(default=120, ge=0, le=3600)
    late_after_min: Minutes = Field(default=10, ge=0)
    baseline_hours: float = Field(default=6, gt=0, le=7 * 24)
    crs_window_days: float = Field(default=14, ge=0, le=60)


Site = Literal["core", "oral", "tympanic", "axillary", "skin"]


class Calibration(Strict):
    """A skin or axillary device's own offset to core, from a person's spot check (contract
    flag `manual`, at a core-like site) within `pair_within_min` of its reading; an offset
    outside `min_c`..`max_c` is not used. The device uses the mean of its last `keep`."""

    source: str = Field(min_length=1)
    pair_within_min: Minutes = Field(default=10, gt=0, le=60)
    min_c: float = Field(default=0.0, ge=0, le=3)
    max_c: float = Field(default=1.5, ge=0, le=3)
    keep: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _bounds(self) -> Calibration:
        if self.min_c > self.max_c:
            raise ValueError("min_c must not be above max_c")
        return self


class Temperature(Strict):
    """Site corrections to the core-equivalent, and the level below which a patch is off."""

    site_correction_c: dict[Site, Annotated[float, Field(ge=-2, le=2)]]
    sensor_off_below_c: Celsius
    calibration: Calibration | None = None


class Oximetry(Strict):
    """Which oximeter readings are trusted for SpO2, beyond the device's own flags: not one
    with a perfusion index below `min_pi` (as if flagged `low_perfusion`), nor one whose pulse
    is more than `max_hr_jump` from the last trusted reading's, for up to `leap_max_s` (the
    signature of motion; a real desaturation does not come with a pulse that leaps within
    seconds, and a pulse that stays up is real). Its pulse is kept."""

    source: str = Field(min_length=1)
    min_pi: float | None = Field(default=None, ge=0, le=20)
    max_hr_jump: float | None = Field(default=None, gt=0, le=200)
    leap_max_s: float = Field(default=60, gt=0, le=3600)


class Baseline(Strict):
    """A patient's known heart-rate, temperature and SpO2 baseline (else learnt from the
    data)."""

    hr: float | None = Field(default=None, gt=20, lt=250)
    temp: float | None = Field(default=None, gt=30, lt=42)
    spo2: float | None = Field(default=None, gt=50, le=100)


class PatientRules(Strict):
    """One patient's baseline and rule overrides."""

    baseline: Baseline = Baseline()
    rules: dict[str, dict[str, object]] = Field(default_factory=dict)


class RulesFile(Strict):
    """The whole rules file."""

    version: Literal[1]
    evaluation: Evaluation
    temperature: Temperature
    oximetry: Oximetry | None = None
    rules: Rules  # type: ignore[valid-type]
    reports: ReportRules
    patients: dict[str, PatientRules] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_valid(self) -> Self:
        for patient_id in self.patients:
            self.for_patient(patient_id)  # raises on an unknown rule or a bad value
        return self

    def for_patient(self, patient_id: str) -> RulesFile:
        """These rules with the patient's overrides merged in (the defaults when none)."""
        patient = self.patients.get(patient_id)
        if patient is None or not patient.rules:
            return self
        merged = self.rules.model_dump()
        for rule, changes in patient.rules.items():
            if rule not in merged:
                raise ValueError(f"patients.{patient_id}.rules: no rule named {rule!r}")
            merged[rule] = {**merged[rule], **changes}
        try:
            rules = Rules.model_validate(merged)
        except ValidationError as exc:
            raise ValueError(f"patients.{patient_id}.rules.{first_error(exc)}") from None
        return self.model_copy(update={"rules": rules})


def default_rules_path() -> Path:
    """The embedded default rules file (vitals/defaults/rules.yaml)."""
    return embedded("rules.yaml")


def load_rules(path: Path | None) -> RulesFile:
    """Parse and validate a rules file (the embedded defaults when `path` is None)."""
    return load_model(RulesFile, path or default_rules_path(), "VITALS_RULES")
