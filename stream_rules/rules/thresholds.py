"""The two shapes of a threshold rule over a sustained level, shared by several rules: fires at
or above a level (fever, tachycardia), or at or below one (desaturation), with hysteresis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from pydantic import model_validator

from stream_rules.features import Level
from stream_rules.rules.spec import (
    UNKNOWN,
    Evidence,
    Judgement,
    Threshold,
    Windowed,
    no_evidence,
    rounded,
)


class HighLevel(Windowed):
    """Fires when the sustained value is >= fire_at; clears below clear_below."""

    fire_at: Threshold
    clear_below: Threshold

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.clear_below > self.fire_at:
            raise ValueError("clear_below must not be above fire_at")
        return self


class LowLevel(Windowed):
    """Fires when the sustained value is <= fire_at; clears above clear_above."""

    fire_at: Threshold
    clear_above: Threshold

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.clear_above < self.fire_at:
            raise ValueError("clear_above must not be below fire_at")
        return self


def judge_high(level: Level, config: HighLevel, unit: str,
               extra: Callable[[], Evidence] = no_evidence) -> Judgement:
    """A level against a HighLevel rule; `extra()` is added to the evidence."""
    if not level.known:
        return UNKNOWN
    return Judgement(level.value >= config.fire_at, level.value < config.clear_below,
                     level.value, lambda: {
                         "value": rounded(level.value, 2), "unit": unit,
                         "threshold": config.fire_at, "clears_below": config.clear_below,
                         "window_min": config.window_min, "minutes_with_data": level.samples,
                         **extra()})


def judge_low(level: Level, config: LowLevel, unit: str) -> Judgement:
    """A level against a LowLevel rule."""
    if not level.known:
        return UNKNOWN
    return Judgement(level.value <= config.fire_at, level.value >= config.clear_above,
                     level.value, lambda: {
                         "value": rounded(level.value), "unit": unit,
                         "threshold": config.fire_at, "clears_at_or_above": config.clear_above,
                         "window_min": config.window_min, "minutes_with_data": level.samples})
