"""The partial NEWS2 rules (RCP 2017): the parameters a wearable can score. Without blood
pressure, consciousness and O2 therapy the score is partial, and the page says so.

Also the combined minute every rule over several signals judges: the sustained level of each
signal and their partial NEWS2, which the trend point carries too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from stream_rules.features import level_value, news2_partial
from stream_rules.rules.spec import UNKNOWN, Judgement, Minute, Rule, RuleSpec
from stream_rules.state import PatientState

if TYPE_CHECKING:
    from stream_rules.config import RulesFile

NOT_MEASURED = ["blood pressure", "consciousness", "supplemental O2"]


class News2(Rule):
    """Fires on an aggregate of `aggregate_at`, or on `single_at` in any one parameter."""

    aggregate_at: int = Field(ge=1)
    single_at: int | None = Field(default=None, ge=1, le=3)


def combined_minute(state: PatientState, minute: int, rules_file: RulesFile, day: float
                    ) -> Minute:
    """A minute judged on every signal at once: the levels over the fever, tachycardia and
    desaturation windows (respiratory rate over 5 min), and their partial NEWS2."""
    rules, series = rules_file.rules, state.series
    at = Minute(state, minute, rules_file, rules, day)
    at.levels = {  # as `Minute.level` gives them
        "temp": level_value(series["temp"], minute, int(rules.fever.window_min),
                            rules.fever.min_samples),
        "hr": level_value(series["hr"], minute, int(rules.tachycardia.window_min)),
        "spo2": level_value(series["spo2"], minute, int(rules.desaturation.window_min)),
        "rr": level_value(series["rr"], minute, 5),
    }
    at.news2 = news2_partial(at.levels)
    return at


def judge_news2(at: Minute, config: News2) -> Judgement:
    """The partial NEWS2 against the rule's aggregate and single-parameter thresholds."""
    assert at.news2 is not None
    total, scores = at.news2
    if len(scores) < 2:  # one parameter alone is not a NEWS2
        return UNKNOWN
    fire = total >= config.aggregate_at or (
        config.single_at is not None and max(scores.values()) >= config.single_at)
    return Judgement(fire, not fire, float(total), lambda: {
        "value": total, "scores": scores, "aggregate_at": config.aggregate_at,
        "single_at": config.single_at, "partial": True,
        "not_measured": NOT_MEASURED + ([] if "rr" in scores else ["respiratory rate"])})


def quiet_news2(at: Minute, config: News2) -> bool:
    """Fewer than two parameters, or the aggregate and every parameter's score below the
    rule's thresholds: `judge_news2` would not fire."""
    assert at.news2 is not None
    total, scores = at.news2
    return len(scores) < 2 or (total < config.aggregate_at and (
        config.single_at is None or max(scores.values()) < config.single_at))


def _measured(evidence: dict[str, Any]) -> str:
    parts = ", ".join(f"{name} {score}" for name, score in evidence["scores"].items())
    return (f"partial NEWS2 {evidence['value']} ({parts}; not measured: "
            f"{', '.join(evidence['not_measured'])})")


SPECS = (
    RuleSpec("news2", News2, "combined", judge_news2, "raised partial NEWS2", _measured,
             quiet=quiet_news2),
    RuleSpec("news2_high", News2, "combined", judge_news2, "high partial NEWS2", _measured,
             quiet=quiet_news2),
)
