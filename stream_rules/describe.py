"""The sentence a nurse reads: who, what was measured, how high, since when, and why it fired.
Never a CRS grade: a wearable cannot see blood pressure or oxygen therapy.

Each rule's words (its name on the page, what it measured, a note) are in its `RuleSpec`.
"""

from __future__ import annotations

from stream_rules.rules import find, spec
from stream_rules.rules.spec import hhmm

__all__ = ["hhmm", "measured", "summary"]


def _day(day: float | None) -> str:
    return "" if day is None else f"; day {int(day)} after infusion"


def measured(rule: str, evidence: dict) -> str:
    """What was measured, with its value and the window it was sustained over."""
    known = find(rule)
    return rule if known is None else known.measured(evidence)


def _late(evidence: dict) -> str:
    """How late the readings behind an event arrived (a device's buffer), if they did."""
    minutes = evidence.get("late_by_min")
    if not isinstance(minutes, int) or minutes <= 0:
        return ""
    hours, minutes = divmod(minutes, 60)
    took = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f" Reported late: its readings arrived {took} after they were measured."


def summary(patient_id: str, rule: str, status: str, start: int, evidence: dict,
            day: float | None) -> str:
    """The alert event's summary line, firing or cleared."""
    what = spec(rule).what
    if status == "firing":
        ended = evidence.get("ended_at")
        when = (f"from {hhmm(start)} to {hhmm(ended)}" if isinstance(ended, int)
                else f"since {hhmm(start)}")
        return (f"{patient_id}: {what}: {measured(rule, evidence)}, {when}"
                f"{_day(day)}{spec(rule).firing_note}.{_late(evidence)}")
    return (f"{patient_id}: {what} cleared: {measured(rule, evidence)} (began {hhmm(start)})"
            f"{_day(day)}.{_late(evidence)}")
