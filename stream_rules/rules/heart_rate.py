"""The heart-rate rules: tachycardia by NEWS2's threshold, against the patient's own baseline,
and out of proportion to the temperature (pulse rises ~10/min per degree of fever)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from stream_rules.rules.spec import (
    UNKNOWN,
    Bound,
    Judgement,
    Minute,
    RuleSpec,
    Threshold,
    Windowed,
    rounded,
)
from stream_rules.rules.temperature import fever_level
from stream_rules.rules.thresholds import HighLevel, judge_high
from stream_rules.state import PatientState


class Relative(Windowed):
    """Fires at the baseline + `above_baseline`; clears below the baseline + the clear margin."""

    above_baseline: float = Field(gt=0, le=200)
    clear_above_baseline: float = Field(ge=0, le=200)


class Disproportionate(Windowed):
    """Fires when the heart rate exceeds what the temperature explains by `excess`."""

    per_degree: float = Field(ge=0, le=50)
    excess: float = Field(gt=0, le=200)
    clear_excess: float = Field(ge=0, le=200)
    min_hr: Threshold = 0


def expected_hr(state: PatientState, temp: float, per_degree: float) -> float | None:
    """The heart rate the temperature explains: baseline + per_degree per degree of fever."""
    if state.hr_baseline is None:
        return None
    rise = 0.0
    if state.temp_baseline is not None and not math.isnan(temp):
        rise = max(0.0, temp - state.temp_baseline) * per_degree
    return state.hr_baseline + rise


def judge_tachycardia(at: Minute, config: HighLevel) -> Judgement:
    """Tachycardia: the sustained heart rate at or above NEWS2's 3."""
    baseline = at.state.hr_baseline
    return judge_high(at.level("hr", config.window_min, config.min_samples), config, "/min",
                      lambda: {"baseline": rounded(baseline)})


def judge_relative(at: Minute, config: Relative) -> Judgement:
    """The heart rate well above this patient's baseline (unknown until there is one)."""
    level = at.level("hr", config.window_min, config.min_samples)
    baseline = at.state.hr_baseline
    if not level.known or baseline is None:
        return UNKNOWN
    return Judgement(
        level.value >= baseline + config.above_baseline,
        level.value < baseline + config.clear_above_baseline, level.value,
        lambda: {"value": rounded(level.value), "unit": "/min", "baseline": rounded(baseline),
         "threshold": rounded(baseline + config.above_baseline),
         "window_min": config.window_min})


def judge_disproportionate(at: Minute, config: Disproportionate) -> Judgement:
    """The heart rate above what the temperature explains, and above `min_hr`."""
    level = at.level("hr", config.window_min, config.min_samples)
    temp = fever_level(at).value
    expected = expected_hr(at.state, temp, config.per_degree)
    if not level.known or expected is None:
        return UNKNOWN
    threshold = max(config.min_hr, expected + config.excess)
    hr_baseline, temp_baseline = at.state.hr_baseline, at.state.temp_baseline
    return Judgement(
        level.value >= threshold, level.value < expected + config.clear_excess, level.value,
        lambda: {"value": rounded(level.value), "unit": "/min", "expected": rounded(expected),
                 "threshold": rounded(threshold), "temperature": rounded(temp, 2),
                 "baseline": rounded(hr_baseline), "temp_baseline": rounded(temp_baseline, 2),
                 "per_degree": config.per_degree, "window_min": config.window_min})


def _measured_tachycardia(evidence: dict[str, Any]) -> str:
    return (f"heart rate {evidence['value']:.0f}/min over {evidence['window_min']:g} min, "
            f">= {evidence['threshold']:g}/min")


def _measured_relative(evidence: dict[str, Any]) -> str:
    return (f"heart rate {evidence['value']:.0f}/min over {evidence['window_min']:g} min, "
            f"baseline {evidence['baseline']:.0f}/min")


def _measured_disproportionate(evidence: dict[str, Any]) -> str:
    temp = ("not measured" if evidence["temperature"] is None
            else f"{evidence['temperature']:.1f} °C")
    return (f"heart rate {evidence['value']:.0f}/min where temperature ({temp}) explains about "
            f"{evidence['expected']:.0f}/min")


def quiet_tachycardia(at: Minute, config: HighLevel) -> bool:
    """No minute of the window reaches `fire_at`, so its level cannot."""
    return at.highest("hr", config.window_min) < config.fire_at


def quiet_relative(at: Minute, config: Relative) -> bool:
    """No baseline yet, or no minute of the window reaches baseline + `above_baseline`."""
    baseline = at.state.hr_baseline
    return baseline is None or \
        at.highest("hr", config.window_min) < baseline + config.above_baseline


def quiet_disproportionate(at: Minute, config: Disproportionate) -> bool:
    """No baseline yet, or no minute of the window reaches `min_hr` or baseline + `excess`:
    the threshold is at least both, since a fever only raises the expected rate."""
    baseline = at.state.hr_baseline
    return baseline is None or at.highest("hr", config.window_min) < max(
        config.min_hr, baseline + config.excess)


def bound_tachycardia(config: HighLevel, _state: PatientState) -> Bound:
    """`quiet_tachycardia` in numbers."""
    return Bound("hr", True, config.fire_at)


def bound_relative(config: Relative, state: PatientState) -> Bound:
    """`quiet_relative` in numbers (no baseline: no limit)."""
    baseline = state.hr_baseline
    return Bound("hr", True, math.inf if baseline is None else baseline + config.above_baseline)


def bound_disproportionate(config: Disproportionate, state: PatientState) -> Bound:
    """`quiet_disproportionate` in numbers (no baseline: no limit)."""
    baseline = state.hr_baseline
    return Bound("hr", True, math.inf if baseline is None else max(
        config.min_hr, baseline + config.excess))


TACHYCARDIA = RuleSpec("tachycardia", HighLevel, "oximetry", judge_tachycardia, "tachycardia",
                       _measured_tachycardia, signal="hr", quiet=quiet_tachycardia,
                       bound=bound_tachycardia)
RELATIVE = RuleSpec("tachycardia_relative", Relative, "oximetry", judge_relative,
                    "heart rate well above this patient's baseline", _measured_relative,
                    signal="hr", quiet=quiet_relative, bound=bound_relative)
DISPROPORTIONATE = RuleSpec("tachycardia_disproportionate", Disproportionate, "oximetry",
                            judge_disproportionate,
                            "heart rate out of proportion to temperature",
                            _measured_disproportionate, signal="hr",
                            quiet=quiet_disproportionate, bound=bound_disproportionate)
