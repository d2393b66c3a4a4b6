"""The SpO2 rules: desaturation and severe desaturation (NEWS2 SpO2 scale 1). At home on room
air any sustained fall matters; lower is worse."""

from __future__ import annotations

from typing import Any

from stream_rules.rules.spec import Judgement, Minute, RuleSpec
from stream_rules.rules.thresholds import LowLevel, judge_low


def judge_desaturation(at: Minute, config: LowLevel) -> Judgement:
    """The sustained SpO2 at or below the rule's threshold."""
    return judge_low(at.level("spo2", config.window_min, config.min_samples), config, "%")


def _measured(evidence: dict[str, Any]) -> str:
    return (f"SpO2 {evidence['value']:.0f} % over {evidence['window_min']:g} min, "
            f"<= {evidence['threshold']:g} %")


SPECS = (
    RuleSpec("desaturation", LowLevel, "oximetry", judge_desaturation, "low SpO2", _measured,
             signal="spo2", lower_is_worse=True),
    RuleSpec("severe_desaturation", LowLevel, "oximetry", judge_desaturation, "very low SpO2",
             _measured, signal="spo2", lower_is_worse=True),
)
