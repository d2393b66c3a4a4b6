"""The temperature rules: fever, high fever, and a temperature rising towards fever.

Thresholds apply to the core-equivalent temperature (the site correction added); the evidence
names the site and what it measured. Every temperature rule reads its site evidence from the
level over the fever rule's window, as the page shows one temperature.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from stream_rules.features import Level
from stream_rules.rules.spec import (
    UNKNOWN,
    Celsius,
    Judgement,
    Minute,
    RuleSpec,
    Windowed,
    rounded,
)
from stream_rules.rules.thresholds import HighLevel, judge_high


class Rising(Windowed):
    """Fires on a slope of at least `slope_per_h` from `from_c` up to (not including) `below_c`."""

    slope_per_h: float = Field(gt=0, le=10)
    from_c: Celsius
    below_c: Celsius


def fever_level(at: Minute) -> Level:
    """The sustained temperature over the fever rule's window."""
    fever = at.rules.fever
    return at.level("temp", fever.window_min, fever.min_samples)


def _shared(at: Minute) -> tuple[float | None, dict[str, object]]:
    """The rounded trend and the site evidence (from the fever window's level) the three
    temperature rules show, computed once a minute."""
    shared = at.shared.get("temperature")
    if shared is None:
        rising = at.rules.rising_temperature
        trend = at.slope("temp", int(rising.window_min), rising.min_samples)
        level = fever_level(at)
        site = at.state.temp_site or "axillary"
        correction = at.rules_file.temperature.site_correction_c.get(site, 0.0)  # type: ignore[call-overload]
        shared = at.shared["temperature"] = (rounded(trend, 2), {
            "site": site, "site_correction_c": correction,
            "measured": rounded(level.value - correction, 2) if level.known else None})
    return shared


def judge_fever(at: Minute, config: HighLevel) -> Judgement:
    """Fever; also remembers the patient's last feverish minute (crs_suspicion counts a fever
    of the last hours, which antipyretics may have hidden since)."""
    level = at.level("temp", config.window_min, config.min_samples)
    if level.known and level.value >= config.fire_at:
        at.state.last_fever_minute = at.minute
    trend, site = _shared(at)
    return judge_high(level, config, "°C", trend_per_h=trend, **site)


def judge_high_fever(at: Minute, config: HighLevel) -> Judgement:
    """High fever: the same shape as fever, at a higher threshold."""
    trend, site = _shared(at)
    return judge_high(at.level("temp", config.window_min, config.min_samples), config, "°C",
                      trend_per_h=trend, **site)


def judge_rising(at: Minute, config: Rising) -> Judgement:
    """A temperature climbing towards fever; clears at half the slope or outside its band."""
    level = fever_level(at)
    slope = at.slope("temp", int(config.window_min), config.min_samples)
    if not level.known or math.isnan(slope):
        return UNKNOWN
    fire = slope >= config.slope_per_h and config.from_c <= level.value < config.below_c
    clear = (slope < config.slope_per_h / 2 or level.value < config.from_c
             or level.value >= config.below_c)
    _, site = _shared(at)
    return Judgement(fire, clear, slope, {
        "value": rounded(level.value, 2), "unit": "°C", "trend_per_h": rounded(slope, 2),
        "threshold_per_h": config.slope_per_h, "window_min": config.window_min,
        "from_c": config.from_c, "below_c": config.below_c, **site})


def _temperature(evidence: dict[str, Any]) -> str:
    text = f"temperature {evidence['value']:.1f} °C"
    if evidence.get("site_correction_c"):
        text += (f" (core-equivalent; {evidence['site']} reading "
                 f"{evidence['measured']:.1f} °C)")
    return text


def _measured_level(evidence: dict[str, Any]) -> str:
    return (f"{_temperature(evidence)}, median over {evidence['window_min']:g} min, "
            f">= {evidence['threshold']:g} °C")


def _measured_rise(evidence: dict[str, Any]) -> str:
    return (f"{_temperature(evidence)} rising {evidence['trend_per_h']:+.2f} °C/h over "
            f"{evidence['window_min']:g} min (>= {evidence['threshold_per_h']:g} °C/h)")


SPECS = (
    RuleSpec("fever", HighLevel, "temperature", judge_fever, "fever", _measured_level,
             signal="temp"),
    RuleSpec("high_fever", HighLevel, "temperature", judge_high_fever, "high fever",
             _measured_level, signal="temp"),
    RuleSpec("rising_temperature", Rising, "temperature", judge_rising, "rising temperature",
             _measured_rise, signal="temp"),
)
