"""The temperature rules: fever, high fever, and a temperature rising towards fever.

Thresholds apply to the core-equivalent temperature (the site correction added); the evidence
names the site and what it measured. Every temperature rule reads its site evidence from the
level over the fever rule's window, as the page shows one temperature.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from pydantic import Field

from stream_rules import calibration
from stream_rules.features import Level, median, memoised
from stream_rules.rules.spec import (
    UNKNOWN,
    Bound,
    Celsius,
    Evidence,
    Judgement,
    Minute,
    Minutes,
    RuleSpec,
    Windowed,
    hhmm,
    rounded,
)
from stream_rules.rules.thresholds import HighLevel, judge_high
from stream_rules.state import PatientState


class Rising(Windowed):
    """Fires on a slope of at least `slope_per_h` from `from_c` up to (not including) `below_c`."""

    slope_per_h: float = Field(gt=0, le=10)
    from_c: Celsius
    below_c: Celsius


class Fever(HighLevel):
    """A sustained temperature (the median over `window_min`, held `fire_after_min`), or, as
    soon as the readings make it sure, a run: the readings of the window from the newest
    back while each is >= `fire_at`, at least two, spanning at least `confirm_span_min`. The
    run fires at once, so the device's cadence sets the delay: two consecutive readings of a
    5- or 10-minute thermometer, four of a 2-minute patch, six of a 1-minute one. A lone
    spike is one reading and never a run."""

    confirm_span_min: Minutes | None = Field(default=None, gt=0)


def fever_run(at: Minute, config: Fever) -> tuple[int, float, int, int] | None:
    """The run that confirms a fever at this minute: (readings, their median, its first
    minute, minutes from its first reading to its last); None when there is none."""
    span_min = config.confirm_span_min
    if span_min is None:
        return None
    minute, fire_at = at.minute, config.fire_at

    def run_in(window: np.ndarray) -> tuple[int, float, int, int] | None:
        present = np.flatnonzero(~np.isnan(window))
        values = window[present]
        below = np.flatnonzero(values < fire_at)
        run = len(present) - (int(below[-1]) + 1 if len(below) else 0)
        if run < 2:
            return None
        span = int(present[-1] - present[-run])
        if span < span_min:
            return None
        first = minute - (len(window) - 1 - int(present[-run]))
        return run, median(values[-run:].tolist()), first, span

    window_min = int(config.window_min)
    return memoised(at.state.series["temp"], ("run", window_min, fire_at, span_min), minute,
                    window_min, run_in)


def judge_level_or_run(at: Minute, config: Fever) -> Judgement:
    """The fever shape (fever, high fever): the sustained level, or a confirming run."""
    judgement = judge_high(at.level("temp", config.window_min, config.min_samples), config,
                           "°C", lambda: {"trend_per_h": _trend(at), **_site(at)})
    run = fever_run(at, config)
    if run is None:
        return judgement
    readings, value, first, span = run

    def explain() -> Evidence:
        site = _site(at)
        return {**judgement.evidence, "value": rounded(value, 2), "unit": "°C",
                "threshold": config.fire_at, "run_readings": readings, "run_min": span,
                **site, "measured": rounded(value - float(site["site_correction_c"]), 2)}

    return dataclasses.replace(
        judgement, fire=True, value=value, confirmed_since=first,
        clear=judgement.clear if judgement.clear is not None else False, explain=explain)


def fever_level(at: Minute) -> Level:
    """The sustained temperature over the fever rule's window."""
    fever = at.rules.fever
    return at.level("temp", fever.window_min, fever.min_samples)


def _trend(at: Minute) -> float | None:
    """The temperature's trend per hour, rounded, as the temperature rules' pages show it."""
    rising = at.rules.rising_temperature
    return rounded(at.slope("temp", int(rising.window_min), rising.min_samples), 2)


def _site(at: Minute) -> Evidence:
    """The site evidence (from the fever window's level) every temperature rule's page shows,
    built once a minute, and only for a minute that makes an event."""
    site = at.shared.get("site")
    if site is None:
        level = fever_level(at)
        name, correction, calibrated_at = calibration.described(
            at.state, at.minute, at.rules_file.temperature)
        site = {"site": name, "site_correction_c": correction,
                "measured": rounded(level.value - correction, 2) if level.known else None}
        if calibrated_at >= 0:  # the correction came from a spot check
            site["calibrated_at"] = calibrated_at
        at.shared["site"] = site
    return site  # type: ignore[no-any-return]


def judge_fever(at: Minute, config: Fever) -> Judgement:
    """Fever; also remembers the patient's last feverish minute (crs_suspicion counts a fever
    of the last hours, which antipyretics may have hidden since)."""
    judgement = judge_level_or_run(at, config)
    if judgement.fire:
        at.state.last_fever_minute = at.minute
    return judgement


def judge_high_fever(at: Minute, config: Fever) -> Judgement:
    """High fever: the same shape as fever, at a higher threshold."""
    return judge_level_or_run(at, config)


def judge_rising(at: Minute, config: Rising) -> Judgement:
    """A temperature climbing towards fever; clears at half the slope or outside its band."""
    level = fever_level(at)
    slope = at.slope("temp", int(config.window_min), config.min_samples)
    if not level.known or math.isnan(slope):
        return UNKNOWN
    fire = slope >= config.slope_per_h and config.from_c <= level.value < config.below_c
    clear = (slope < config.slope_per_h / 2 or level.value < config.from_c
             or level.value >= config.below_c)
    return Judgement(fire, clear, slope, lambda: {
        "value": rounded(level.value, 2), "unit": "°C", "trend_per_h": rounded(slope, 2),
        "threshold_per_h": config.slope_per_h, "window_min": config.window_min,
        "from_c": config.from_c, "below_c": config.below_c, **_site(at)})


def _temperature(evidence: dict[str, Any]) -> str:
    text = f"temperature {evidence['value']:.1f} °C"
    if evidence.get("site_correction_c"):
        calibrated = evidence.get("calibrated_at")
        how = (f", {evidence['site_correction_c']:+.1f} °C from a spot check at "
               f"{hhmm(calibrated)}" if isinstance(calibrated, int) else "")
        text += (f" (core-equivalent; {evidence['site']} reading "
                 f"{evidence['measured']:.1f} °C{how})")
    return text


def _measured_level(evidence: dict[str, Any]) -> str:
    if evidence.get("run_readings"):
        return (f"{_temperature(evidence)}, {evidence['run_readings']} readings in a row "
                f">= {evidence['threshold']:g} °C over {evidence['run_min']:g} min")
    return (f"{_temperature(evidence)}, median over {evidence['window_min']:g} min, "
            f">= {evidence['threshold']:g} °C")


def _measured_rise(evidence: dict[str, Any]) -> str:
    return (f"{_temperature(evidence)} rising {evidence['trend_per_h']:+.2f} °C/h over "
            f"{evidence['window_min']:g} min (>= {evidence['threshold_per_h']:g} °C/h)")


def quiet_fever(at: Minute, config: Fever) -> bool:
    """No reading of the window reaches `fire_at`: neither its median nor a run can."""
    return at.highest("temp", config.window_min) < config.fire_at


def quiet_rising(at: Minute, config: Rising) -> bool:
    """The fever window's level, no higher than its highest reading, is below `from_c`."""
    return at.highest("temp", at.rules.fever.window_min) < config.from_c


def bound_fever(config: Fever, _state: PatientState) -> Bound:
    """`quiet_fever` in numbers."""
    return Bound("temp", True, config.fire_at)


def bound_rising(config: Rising, _state: PatientState) -> Bound:
    """`quiet_rising` in numbers."""
    return Bound("temp", True, config.from_c)


SPECS = (
    RuleSpec("fever", Fever, "temperature", judge_fever, "fever", _measured_level,
             signal="temp", quiet=quiet_fever, bound=bound_fever),
    RuleSpec("high_fever", Fever, "temperature", judge_high_fever, "high fever",
             _measured_level, signal="temp", quiet=quiet_fever, bound=bound_fever),
    RuleSpec("rising_temperature", Rising, "temperature", judge_rising, "rising temperature",
             _measured_rise, signal="temp", quiet=quiet_rising, bound=bound_rising),
)
