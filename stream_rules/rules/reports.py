"""What a patient or caregiver reports (CONTRACT section 6), judged the moment it arrives: no
sustain window, since a person who reports a seizure has seen it.

- A red flag (`reports.red_flags`) pages at once, each symptom its own incident, until a later
  check-in no longer reports it.
- A daily neuro check (the ICE screen) below 10, or below the patient's previous one, pages;
  the page reads "ICE 7/10, was 10/10 yesterday at 09:10 UTC, by caregiver" and never states an
  ICANS grade (a caregiver's screen is not a clinician's). A further fall while it is open is
  a new incident (the nurse must hear of it); a check of 10/10 clears it.
- A symptom together with what the wearables measured around it (`reports.combinations`):
  chills with a rising temperature, breathing difficulty with a falling SpO2, confusion with
  fever. The vitals are those judged when the report arrives.
- Anything else (a headache, fatigue) is stored and shown, not paged.

A missed daily check is not a report: `neuro_check_missed` (rules registry) judges it minute by
minute from `PatientState.last_ice`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, model_validator

from stream_rules.features import level_of, slope_of
from stream_rules.rules.spec import (
    UNKNOWN,
    Judgement,
    Minute,
    Minutes,
    RuleSpec,
    Severity,
    Strict,
    hhmm,
    rounded,
)
from stream_rules.state import IceCheck, PatientState
from vitals.records import Reading, Symptom

if TYPE_CHECKING:
    from stream_rules.config import RulesFile

MINUTE = 60_000
DAY_MS = 86_400_000
ICE_MAX = 10


class RedFlags(Strict):
    """Symptoms that page at once, by severity."""

    source: str = Field(min_length=1)
    critical: tuple[Symptom, ...]
    error: tuple[Symptom, ...]

    @model_validator(mode="after")
    def _once(self) -> RedFlags:
        both = set(self.critical) & set(self.error)
        if both:
            raise ValueError(f"{sorted(both)} listed as both critical and error")
        return self

    def severity(self, symptom: str) -> Severity | None:
        """The severity of a red flag; None for a symptom that is not one."""
        return "critical" if symptom in self.critical else (
            "error" if symptom in self.error else None)


class NeuroCheck(Strict):
    """An ICE total below `page_below` pages (error), at or below `critical_at_or_below`
    critical; so does any fall from the patient's previous total."""

    source: str = Field(min_length=1)
    page_below: int = Field(default=10, ge=1, le=ICE_MAX)
    critical_at_or_below: int = Field(default=6, ge=0, le=ICE_MAX)


class ChillsRising(Strict):
    """Chills while the temperature rises by `slope_per_h` (robust slope over `window_min`)
    from `from_c` up."""

    severity: Severity
    window_min: Minutes = Field(gt=0)
    min_samples: int = Field(default=4, ge=2)
    slope_per_h: float = Field(gt=0, le=5)
    from_c: float = Field(ge=35, le=42)


class BreathlessFallingSpo2(Strict):
    """Breathing difficulty while SpO2 (median of `window_min`) is at or below `at_or_below`,
    or `drop` points below the patient's baseline."""

    severity: Severity
    window_min: Minutes = Field(gt=0)
    at_or_below: float = Field(ge=50, le=100)
    drop: float = Field(gt=0, le=50)


class ConfusionFever(Strict):
    """Confusion with a fever (the fever rule's `fire_at`) within the last `within_min`."""

    severity: Severity
    within_min: Minutes = Field(gt=0)


class Combinations(Strict):
    source: str = Field(min_length=1)
    chills_rising_temperature: ChillsRising
    breathlessness_falling_spo2: BreathlessFallingSpo2
    confusion_fever: ConfusionFever


class ReportRules(Strict):
    """The `reports:` section of the rules file."""

    red_flags: RedFlags
    neuro_check: NeuroCheck
    combinations: Combinations


@dataclass(frozen=True, slots=True)
class Change:
    """A report's effect on one incident: the engine makes it an alert event."""

    rule: str
    key: str  # its state in `PatientState.rules`
    status: str  # "firing" or "resolved"
    start: int
    severity: Severity
    evidence: dict[str, Any]
    source: str


def judge(state: PatientState, reading: Reading, rules_file: RulesFile) -> list[Change]:
    """What one new report (not a duplicate) changes."""
    config: ReportRules = rules_file.reports
    if reading.kind == "neuro_check":
        return _neuro_check(state, reading, config.neuro_check)
    symptoms = set(reading.symptoms or ())
    about = {"by": reading.by, "reported_at": reading.ts, "symptoms": sorted(symptoms),
             "note": reading.note, "device": reading.device_id}
    changes = []
    flags = config.red_flags
    for symptom in (*flags.critical, *flags.error):
        changes += _toggle(state, "red_flag", f"red_flag:{symptom}", symptom in symptoms,
                           reading.ts, flags.severity(symptom) or "error",
                           {**about, "symptom": symptom}, flags.source)
    combos = config.combinations
    for name, symptom, found in (
            ("chills_rising_temperature", "chills", _rising_temperature),
            ("breathlessness_falling_spo2", "breathing_difficulty", _falling_spo2),
            ("confusion_fever", "confusion", _fever)):
        combo = getattr(combos, name)
        vitals = found(state, reading.ts // MINUTE, combo, rules_file) \
            if symptom in symptoms else None
        changes += _toggle(state, name, name, vitals is not None, reading.ts, combo.severity,
                           {**about, "symptom": symptom, **(vitals or {})}, combos.source)
    return changes


def _toggle(state: PatientState, rule: str, key: str, now: bool, ts: int, severity: Severity,
            evidence: dict[str, Any], source: str) -> list[Change]:
    """Open an incident reported now; close one a later check-in no longer reports."""
    rule_state = state.rules.get(key)
    firing = rule_state is not None and rule_state.firing
    if now and not firing:
        state.open(key, ts)
        return [Change(rule, key, "firing", ts, severity, evidence, source)]
    if firing and not now and rule_state is not None and ts > (rule_state.start or 0):
        start = rule_state.start or ts
        state.close(key, ts)
        return [Change(rule, key, "resolved", start, severity,
                       {**evidence, "ended_at": ts, "cleared": True}, source)]
    return []


def _neuro_check(state: PatientState, reading: Reading, config: NeuroCheck) -> list[Change]:
    total = reading.ice_total
    previous = state.last_ice
    if total is None or (previous is not None and reading.ts <= previous.ts):
        return []  # an older check sent late (an offline queue): stored, not judged
    state.last_ice = IceCheck(total, reading.ts, reading.by or "")
    rule_state = state.rules.get("ice")
    open_total = None if rule_state is None or not rule_state.firing else rule_state.peak
    evidence = {"ice_total": total, "ice": None if reading.ice is None else {
        f: getattr(reading.ice, f) for f in reading.ice.__struct_fields__},
        "by": reading.by, "reported_at": reading.ts, "device": reading.device_id,
        "previous_total": None if previous is None else previous.total,
        "previous_at": None if previous is None else previous.ts,
        "previous_by": None if previous is None else previous.by}
    severity: Severity = "critical" if total <= config.critical_at_or_below else "error"
    fell = previous is not None and total < previous.total
    changes = []
    if open_total is not None and (total >= ICE_MAX or total < open_total):
        assert rule_state is not None  # recovered, or worse again: this incident ends
        start = rule_state.start or reading.ts
        state.close("ice", reading.ts)
        changes.append(Change("ice_decline", "ice", "resolved", start, severity,
                              {**evidence, "ended_at": reading.ts}, config.source))
        open_total = None
    if open_total is None and (total < config.page_below or fell):
        state.open("ice", reading.ts).peak = total
        changes.append(Change("ice_decline", "ice", "firing", reading.ts, severity, evidence,
                              config.source))
    return changes


# --- the vitals around a report (None: they do not show it, or are not known) -----------

def _judged_until(state: PatientState, kind: str, minute: int) -> int | None:
    judged = state.kinds.get(kind)
    if judged is None or judged.cursor < 0:
        return None
    return min(minute, judged.cursor)


def _rising_temperature(state: PatientState, minute: int, config: ChillsRising,
                        _rules: RulesFile) -> dict[str, Any] | None:
    end = _judged_until(state, "temperature", minute)
    if end is None:
        return None
    slope = slope_of(state.series["temp"], end, int(config.window_min), config.min_samples)
    level = level_of(state.series["temp"], end, 10)
    if math.isnan(slope) or not level.known or slope < config.slope_per_h or \
            level.value < config.from_c:
        return None
    return {"temperature": rounded(level.value, 2), "temp_slope_per_h": rounded(slope, 2),
            "window_min": config.window_min}


def _falling_spo2(state: PatientState, minute: int, config: BreathlessFallingSpo2,
                  _rules: RulesFile) -> dict[str, Any] | None:
    end = _judged_until(state, "oximetry", minute)
    if end is None:
        return None
    level = level_of(state.series["spo2"], end, int(config.window_min))
    if not level.known:
        return None
    baseline = state.spo2_baseline
    low = level.value <= config.at_or_below
    dropped = baseline is not None and baseline - level.value >= config.drop
    if not (low or dropped):
        return None
    return {"spo2": rounded(level.value), "spo2_baseline": rounded(baseline),
            "window_min": config.window_min}


def _fever(state: PatientState, minute: int, config: ConfusionFever,
           rules: RulesFile) -> dict[str, Any] | None:
    end = _judged_until(state, "temperature", minute)
    if end is None:
        return None
    window = state.series["temp"].window(end, int(config.within_min))
    if not np.any(~np.isnan(window)):
        return None
    highest = float(np.nanmax(window))
    if highest < rules.rules.fever.fire_at:
        return None
    return {"temperature": rounded(highest, 2), "within_min": config.within_min}


# --- the words of the pages ------------------------------------------------------------

def symptom_words(code: str) -> str:
    return code.replace("_", " ")


def _reported(evidence: dict[str, Any]) -> str:
    said = f"reported by {evidence['by']} at {hhmm(evidence['reported_at'])}"
    note = evidence.get("note")
    return f'{said}; note: "{note}"' if note else said


def _no_longer(evidence: dict[str, Any]) -> str:
    """A cleared report rule: the later check-in that no longer reports the symptom."""
    return (f"{symptom_words(evidence['symptom'])} no longer reported (check-in by "
            f"{evidence['by']} at {hhmm(evidence['reported_at'])})")


def _red_flag(evidence: dict[str, Any]) -> str:
    if evidence.get("cleared"):
        return _no_longer(evidence)
    return f"{symptom_words(evidence['symptom'])} {_reported(evidence)}"


def when_before(earlier: int, later: int) -> str:
    """When `earlier` was, said from `later`'s day: "yesterday at 09:10 UTC"."""
    a = dt.datetime.fromtimestamp(earlier / 1000, dt.UTC)
    b = dt.datetime.fromtimestamp(later / 1000, dt.UTC)
    days = (b.date() - a.date()).days
    day = {0: "today", 1: "yesterday"}.get(days, a.strftime("on %d %b"))
    return f"{day} at {a.strftime('%H:%M')} UTC"


def ice_words(evidence: dict[str, Any]) -> str:
    """ "ICE 7/10, was 10/10 yesterday at 09:10 UTC, by caregiver" """
    now = f"ICE {evidence['ice_total']}/{ICE_MAX}"
    previous = evidence.get("previous_total")
    when = "" if previous is None else when_before(evidence["previous_at"],
                                                   evidence["reported_at"])
    was = "(the first check)" if previous is None else f"was {previous}/{ICE_MAX} {when}"
    return f"{now}, {was}, by {evidence['by']}"


def _combination(what: Callable[[dict[str, Any]], str], gone: str) -> Any:
    """The words of a symptom with a vital sign: firing, with the vital sign's values; cleared,
    the symptom no longer reported, or reported still but `gone` (no values then)."""
    def words(evidence: dict[str, Any]) -> str:
        said = f"{symptom_words(evidence['symptom'])} {_reported(evidence)}"
        if not evidence.get("cleared"):
            return f"{said}, with {what(evidence)}"
        if evidence["symptom"] not in evidence.get("symptoms", ()):
            return _no_longer(evidence)
        return f"{said}, {gone}"
    return words


def _neither(*_args: Any) -> Judgement:
    return UNKNOWN  # judged per report (`judge`), never per minute


SPECS = (
    RuleSpec("red_flag", RedFlags, "combined", _neither, "red flag reported", _red_flag,
             firing_note=". The patient was told to call at once: call them now"),
    RuleSpec("ice_decline", NeuroCheck, "combined", _neither, "neuro check (ICE) below normal",
             ice_words, firing_note=". Not an ICANS grade: a home screen, not a clinician's"),
    RuleSpec("chills_rising_temperature", ChillsRising, "combined", _neither,
             "chills with a rising temperature", _combination(
                 lambda e: f"temperature {e['temperature']:.1f} °C rising "
                           f"{e['temp_slope_per_h']:.1f} °C/h",
                 "the temperature no longer rising")),
    RuleSpec("breathlessness_falling_spo2", BreathlessFallingSpo2, "combined", _neither,
             "breathing difficulty with a falling SpO2", _combination(
                 lambda e: f"SpO2 {e['spo2']:.0f} %" + (
                     "" if e.get("spo2_baseline") is None
                     else f" (baseline {e['spo2_baseline']:.0f} %)"),
                 "SpO2 no longer low")),
    RuleSpec("confusion_fever", ConfusionFever, "combined", _neither, "confusion with fever",
             _combination(lambda e: f"a temperature of {e['temperature']:.1f} °C within "
                                    f"{e['within_min']:g} min", "no fever within the window")),
)


# --- a missed daily neuro check (judged per minute, from the registry) ------------------

class NeuroCheckMissed(Strict):
    """Once a patient has done a first neuro check, a warning when `every_h` + `grace_h` pass
    without one, in the first `within_days` after infusion: adherence, not a page."""

    source: str = Field(min_length=1)
    severity: Severity
    every_h: float = Field(gt=0, le=24 * 7)
    grace_h: float = Field(ge=0, le=24)
    within_days: float = Field(ge=0, le=60)


def judge_missed(at: Minute, config: NeuroCheckMissed) -> Judgement:
    last = at.state.last_ice
    if last is None:
        return UNKNOWN  # never done one: not enrolled in home checks
    overdue_min = at.minute + 1 - last.ts // MINUTE
    if at.day is not None and at.day > config.within_days:
        return Judgement(False, True, overdue_min / 60)
    fire = overdue_min >= (config.every_h + config.grace_h) * 60
    return Judgement(fire, not fire, overdue_min / 60, lambda: {
        "last_check_at": last.ts, "last_total": last.total, "last_by": last.by,
        "every_h": config.every_h, "hours_since": round(overdue_min / 60, 1)})


def quiet_missed(at: Minute, config: NeuroCheckMissed) -> bool:
    """No check ever done, the days checks are asked for over, or the last check within its
    hours: `judge_missed` would not fire."""
    last = at.state.last_ice
    if last is None or (at.day is not None and at.day > config.within_days):
        return True
    return at.minute + 1 - last.ts // MINUTE < (config.every_h + config.grace_h) * 60


def _missed_words(evidence: dict[str, Any]) -> str:
    last = evidence.get("last_check_at")
    if last is None:
        return "daily neuro check"
    return (f"no neuro check for {evidence['hours_since']:g} h (daily expected); the last, "
            f"ICE {evidence['last_total']}/{ICE_MAX} by {evidence['last_by']}, at {hhmm(last)}")


MISSED = RuleSpec("neuro_check_missed", NeuroCheckMissed, "combined", judge_missed,
                  "daily neuro check missed", _missed_words,
                  firing_note=". Adherence: ask the caregiver to do today's check",
                  quiet=quiet_missed)
