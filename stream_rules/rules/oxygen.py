"""The SpO2 rules: desaturation and severe desaturation (NEWS2 SpO2 scale 1). At home on room
air any sustained fall matters; lower is worse.

A fall is measured from the patient's own level: someone who lives at 94 % reads 93 % for five
minutes on most days (an oximeter is accurate to about 2-3 points), so the warning also asks for
`below_baseline` points under the patient's SpO2 baseline (learnt from the first hours, or set
per patient). The critical level (severe_desaturation) is absolute."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field

from stream_rules.rules.spec import Bound, Judgement, Minute, RuleSpec, rounded
from stream_rules.rules.thresholds import LowLevel, judge_low
from stream_rules.state import PatientState


class Desaturation(LowLevel):
    """A LowLevel that, once the patient's SpO2 baseline is known, also needs the level
    `below_baseline` points under it."""

    below_baseline: float | None = Field(default=None, ge=0, le=20)


def judge_desaturation(at: Minute, config: LowLevel) -> Judgement:
    """The sustained SpO2 at or below the rule's threshold (and far enough below the patient's
    baseline, for a rule with `below_baseline`)."""
    judgement = judge_low(at.level("spo2", config.window_min, config.min_samples), config, "%")
    below = getattr(config, "below_baseline", None)
    baseline = at.state.spo2_baseline
    if below is None or baseline is None or not judgement.fire:
        return judgement
    usual = judgement.value <= baseline - below
    return dataclasses.replace(judgement, fire=usual, explain=lambda: {
        **judgement.evidence, "baseline": rounded(baseline), "below_baseline": below})


def _measured(evidence: dict[str, Any]) -> str:
    text = (f"SpO2 {evidence['value']:.0f} % over {evidence['window_min']:g} min, "
            f"<= {evidence['threshold']:g} %")
    if evidence.get("baseline") is not None:
        text += f" and {evidence['baseline'] - evidence['value']:.0f} points below the " \
                f"patient's usual {evidence['baseline']:.0f} %"
    return text


def quiet_desaturation(at: Minute, config: LowLevel) -> bool:
    """No minute of the window is down to `fire_at`, so its level cannot be."""
    return at.lowest("spo2", config.window_min) > config.fire_at


def bound_desaturation(config: LowLevel, _state: PatientState) -> Bound:
    """`quiet_desaturation` in numbers."""
    return Bound("spo2", False, config.fire_at)


SPECS = (
    RuleSpec("desaturation", Desaturation, "oximetry", judge_desaturation, "low SpO2", _measured,
             signal="spo2", lower_is_worse=True, quiet=quiet_desaturation,
             bound=bound_desaturation),
    RuleSpec("severe_desaturation", LowLevel, "oximetry", judge_desaturation, "very low SpO2",
             _measured, signal="spo2", lower_is_worse=True, quiet=quiet_desaturation,
             bound=bound_desaturation),
)
