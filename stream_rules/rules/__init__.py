"""The rule registry: every CRS rule, each described once by a `RuleSpec` (its section of the
rules file, its judge, which way is worse, the words of its page, its severity by day).

The engine judges, the describer words the pages, `config.Rules` validates the rules file and
the evaluation scores, all from here. Adding a rule: a module (or an entry in one) with its
`RuleSpec`, a line below, and its section in the rules YAML.

The order below is the order of the `rules:` model's fields and, within one judged minute, the
order in which rules are judged, so the order of the alert events that minute causes.
"""

from __future__ import annotations

from stream_rules.rules import crs, heart_rate, news2, no_data, oxygen, reports, temperature
from stream_rules.rules.spec import UNKNOWN, JudgedOn, Judgement, Minute, RuleSpec

__all__ = ["REPORT_RULES", "RULES", "UNKNOWN", "Judgement", "Minute", "RuleSpec", "find",
           "judged_on", "spec", "watching"]

RULES: tuple[RuleSpec, ...] = (
    *temperature.SPECS,  # fever, high_fever, rising_temperature
    heart_rate.TACHYCARDIA,
    *oxygen.SPECS,  # desaturation, severe_desaturation
    heart_rate.RELATIVE,
    heart_rate.DISPROPORTIONATE,
    *news2.SPECS,  # news2, news2_high
    crs.SPEC,
    no_data.SPEC,
    reports.MISSED,  # neuro_check_missed
)
# Rules judged per report as it arrives (red flags, ICE, a symptom with the vitals), not per
# minute: their thresholds are in the rules file's `reports:` section.
REPORT_RULES: tuple[RuleSpec, ...] = reports.SPECS
_BY_NAME = {rule.name: rule for rule in (*RULES, *REPORT_RULES)}
assert len(_BY_NAME) == len(RULES) + len(REPORT_RULES), "two rules share a name"


def spec(name: str) -> RuleSpec:
    """The rule called `name` (KeyError for an unknown name)."""
    return _BY_NAME[name]


def find(name: str) -> RuleSpec | None:
    """The rule called `name`, or None (an alert event from elsewhere may name any rule)."""
    return _BY_NAME.get(name)


def judged_on(kind: JudgedOn) -> tuple[RuleSpec, ...]:
    """The rules judged on a kind's minutes ("temperature", "oximetry") or on combined ones."""
    return tuple(rule for rule in RULES if rule.judged_on == kind)


def watching(signal: str) -> frozenset[str]:
    """The names of the rules that watch one vital sign ("temp", "hr", "spo2")."""
    return frozenset(rule.name for rule in RULES if rule.signal == signal)
