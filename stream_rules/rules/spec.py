"""What a rule is made of: its section of the rules file, its judge, and how its page reads.

A judge looks at one judged minute of a patient (`Minute`) and returns a `Judgement`: whether
the firing condition holds, whether the clearing condition holds (either may be None: not
enough data), the value a nurse should read, and the evidence. The engine does the rest
(hysteresis, peaks, alert events), the same way for every rule.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stream_rules.features import Level, level_of, slope_of
from stream_rules.rolling import window_of
from stream_rules.state import PatientState

if TYPE_CHECKING:
    from stream_rules.config import RulesFile

Severity = Literal["critical", "error", "warning", "info"]
# Numbers in the rules file: finite (NaN and inf are refused by Strict), and within what a
# clinician could mean. A threshold is a vital sign's value (temperature, rate, %, score).
Minutes = Annotated[float, Field(ge=0, le=7 * 24 * 60)]
Threshold = Annotated[float, Field(ge=0, le=1000)]
Celsius = Annotated[float, Field(ge=25, le=45)]
MINUTE = 60_000  # ms
JudgedOn = Literal["temperature", "oximetry", "combined"]


class Strict(BaseModel):
    """A section of a YAML file: frozen, and a key it does not know is an error (a typo)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Rule(Strict):
    """What every rule with hysteresis sets: its source, severity and durations each way."""

    source: str = Field(min_length=1)
    severity: Severity
    fire_after_min: Minutes = Field(default=10, ge=0)
    clear_after_min: Minutes = Field(default=15, ge=0)


class Windowed(Rule):
    """A rule over a sustained level: the median of `window_min` minutes."""

    window_min: Minutes = Field(gt=0)
    min_samples: int = Field(default=1, ge=1)


Evidence = dict[str, object]


def no_evidence() -> Evidence:
    """The evidence of a judgement that has none to show."""
    return {}


@dataclass(slots=True)  # not frozen, to be made at a quarter of the cost: never changed
class Judgement:
    """One rule's verdict on one minute: fire, clear (None: cannot tell), value, and how to
    explain it. Several are made every judged minute of every patient.

    `explain` builds the evidence a page shows. Every rule is judged every minute of every
    patient, and few minutes make an event, so the engine calls it only for those (rounding
    and building each evidence every minute was about a tenth of the engine's time). It runs
    right after the minute's judges, before the state changes again."""

    fire: bool | None
    clear: bool | None
    value: float = math.nan
    explain: Callable[[], Evidence] = no_evidence
    # the condition is confirmed already, and has held since this minute: fire at once,
    # without waiting `fire_after_min` (e.g. consecutive fever readings of a sparse device)
    confirmed_since: int | None = None

    @property
    def evidence(self) -> Evidence:
        """The evidence (built on each call)."""
        return self.explain()


UNKNOWN = Judgement(None, None)


@dataclass(slots=True)
class Minute:
    """What a judge sees: a patient's state at one judged minute, and the patient's rules
    (`Minute.of` builds one).

    On combined minutes (rules over every signal at once) also the infusion day, the sustained
    level of every signal and the partial NEWS2 (aggregate, score per parameter)."""

    state: PatientState
    minute: int
    rules_file: RulesFile
    rules: Any  # rules_file.rules, the `rules:` section (one attribute per rule)
    day: float | None = None
    levels: dict[str, float] | None = None
    news2: tuple[int, dict[str, int]] | None = None
    # what several judges of this minute read, computed by the first that needs it
    shared: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, state: PatientState, minute: int, rules_file: RulesFile,
           day: float | None = None) -> Minute:
        """The minute `minute` of a patient judged under `rules_file`."""
        return cls(state, minute, rules_file, rules_file.rules, day)

    def level(self, signal: str, window_min: float, min_samples: int = 1) -> Level:
        """The sustained level of `signal` over the window ending at this minute."""
        return level_of(self.state.series[signal], self.minute, int(window_min), min_samples)

    def slope(self, signal: str, window_min: int, min_samples: int) -> float:
        """The robust trend of `signal` per hour over the window ending at this minute."""
        return slope_of(self.state.series[signal], self.minute, window_min, min_samples)

    def highest(self, signal: str, window_min: float) -> float:
        """The highest value of `signal` in the window ending at this minute (-inf when it
        has none): no level, median or run of the window is above it."""
        values = window_of(self.state.series[signal], self.minute, int(window_min)).values
        return values[-1] if values else -math.inf

    def lowest(self, signal: str, window_min: float) -> float:
        """The lowest value of `signal` in the window ending at this minute (inf when it has
        none)."""
        values = window_of(self.state.series[signal], self.minute, int(window_min)).values
        return values[0] if values else math.inf


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """Everything about one rule, in one place: the engine, the describer and the evaluation
    read it here.

    - `config`: the model of its section under `rules:` in the rules file;
    - `judged_on`: the minutes that judge it: a kind of reading's, or the combined ones;
    - `judge(minute, config)`: its verdict; for a `per_device` rule
      `judge(minute, config, device_id)`, once per device, its state kept under
      "name:device_id";
    - `signal`: the one vital sign it watches ("temp", "hr", "spo2"), None for rules over
      several signals or over devices;
    - `lower_is_worse`: its value worsens downwards (SpO2), so its peak is the lowest value;
    - `what`, `measured(evidence)`, `firing_note`: the words of its page;
    - `severity(config, rules_file, day)`: its severity when it depends on the day after
      infusion (None: the configured severity);
    - `quiet(minute, config)` (per device: `quiet(minute, config, device_id)`): a cheap proof
      that the rule cannot fire this minute (e.g. no value in its window reaches the
      threshold), so that the engine may leave a rule with nothing pending unjudged; True only
      when `judge` would not fire. None: always judged.
    - `bound(config, state)`: `quiet` in numbers, from the rule's config and the patient's
      baselines only: `quiet` holds exactly when no value of `signal` in the rule's window
      reaches the limit. The engine skips a kind's minutes while its rules stay quiet
      (`stream_rules.quiet_kinds`) when every rule of the kind has one.
    """

    name: str
    config: type[Strict]
    judged_on: JudgedOn
    judge: Callable[..., Judgement]
    what: str
    measured: Callable[[dict[str, Any]], str]
    signal: str | None = None
    lower_is_worse: bool = False
    per_device: bool = False
    firing_note: str = ""
    severity: Callable[[Any, RulesFile, float], Severity] | None = None
    quiet: Callable[..., bool] | None = None
    bound: Callable[[Any, PatientState], Bound] | None = None


@dataclass(frozen=True, slots=True)
class Bound:
    """A rule's quiet bound in numbers (`RuleSpec.bound`): it cannot fire while every value of
    `signal` in its window is below `limit` (`upper`), or above it."""

    signal: str
    upper: bool
    limit: float


def rounded(value: float | None, digits: int = 1) -> float | None:
    """`value` rounded for the evidence; None when it is missing or NaN."""
    return None if value is None or math.isnan(value) else round(value, digits)


def hhmm(ms: int) -> str:
    """An event time as a nurse reads it: "20 Nov 14:05 UTC"."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%d %b %H:%M UTC")
