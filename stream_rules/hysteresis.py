"""Fire and clear with a minimum duration each way, so one patient does not flap.

Conditions are three-valued: True, False, or None when the data to judge is missing. Missing
data never fires a rule and never clears one (a silent thermometer does not end a fever).
"""

from __future__ import annotations

from typing import Literal

from stream_rules.state import RuleState

Change = Literal["fired", "cleared"] | None  # what a judged minute changed, if anything


def step(rule_state: RuleState, minute: int, fire: bool | None, clear: bool | None,
         fire_after_min: float, clear_after_min: float,
         confirmed_since: int | None = None) -> Change:
    """Advance one judged minute; returns what changed. A firing condition `confirmed_since`
    a minute fires at once, as having begun then (or when it began pending, if earlier)."""
    if not rule_state.firing:
        if not fire:
            rule_state.pending_since = None
            return None
        if rule_state.pending_since is None:
            rule_state.pending_since = minute
        if confirmed_since is not None:
            rule_state.pending_since = min(rule_state.pending_since, confirmed_since)
        if (confirmed_since is not None
                or minute - rule_state.pending_since + 1 >= fire_after_min):
            rule_state.firing = True
            rule_state.start = rule_state.pending_since * 60_000
            rule_state.pending_since = rule_state.clearing_since = None
            rule_state.peak = None
            return "fired"
        return None
    if not clear:
        rule_state.clearing_since = None
        return None
    if rule_state.clearing_since is None:
        rule_state.clearing_since = minute
    if minute - rule_state.clearing_since + 1 >= clear_after_min:
        rule_state.firing = False
        rule_state.clearing_since = None
        return "cleared"
    return None
