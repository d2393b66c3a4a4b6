"""A kind's minutes left unjudged while its rules stay quiet (issue #15).

A kind's rules ("temperature", "oximetry") are each judged every minute, and almost every
minute each is quiet: its `quiet` bound proves it cannot fire. Those bounds all read the same
way (`RuleSpec.bound`): no value of one signal in the rule's window reaches a limit set by the
rules file and the patient's baselines. So when every rule of a kind was proven quiet at one
minute, and the next minute brings each signal at most its own new value, within every limit
(or none), each window at the next minute holds values that passed, less its oldest: every
rule is quiet again, and a rule with nothing pending is left as it was. The kind's minute is
then skipped, which gives the same events as judging it.

What the proof rests on is kept beside the state (`PatientState.quiet`, not written with it):
the minute, the baselines the limits came from, and how many values each signal's series had
been set. A value set anywhere else since (a late minute filled in), or a baseline learned,
breaks the chain, and the kind's minute is judged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream_rules.rules.spec import RuleSpec
    from stream_rules.state import PatientState

__all__ = ["QuietKinds"]

Limits = dict[str, tuple[float, float]]  # signal -> (values must be above, and below)


class QuietKinds:
    """For one engine's rules: which kinds can be skipped, and when."""

    def __init__(self, judged_on: dict[str, list[tuple[RuleSpec, object]]]) -> None:
        # the kinds whose every rule has a bound, with their rules and signals
        self._rules = {group: rules for group, rules in judged_on.items()
                       if group != "combined" and rules and all(
                           rule.bound is not None and rule.quiet is not None
                           for rule, _ in rules)}
        self._signals = {group: tuple(sorted({str(rule.signal) for rule, _ in rules}))
                         for group, rules in self._rules.items()}
        self._limits: dict[str, tuple[tuple[float | None, ...], Limits]] = {}
        self.groups = frozenset(self._rules)  # the kinds whose minutes can be skipped

    def holds(self, state: PatientState, group: str, minute: int) -> bool:
        """Whether every rule of the kind is still proven quiet at `minute`: it was the
        minute before, the limits are the same, and each signal's series was since set at
        most at `minute`, with a value within its limits."""
        record = state.quiet.get(group)
        if record is None or record[0] != minute - 1:
            return False
        baselines = (state.hr_baseline, state.temp_baseline, state.spo2_baseline)
        if record[1] != baselines:
            return False
        kept = self._limits.get(group)
        limits = kept[1] if kept is not None and kept[0] == baselines else \
            self._limits_for(state, group, baselines)
        series_of = state.series
        for signal, changes in zip(self._signals[group], record[2], strict=True):
            series = series_of[signal]
            since = series.changes - changes
            if since and (since > 1 or series.last_set != minute):
                return False
            value = series.get(minute)
            above, below = limits[signal]
            if not above < value < below and value == value:  # NaN (no value) passes
                return False
        return True

    def note(self, state: PatientState, group: str, minute: int) -> None:
        """Every rule of the kind is proven quiet at `minute`."""
        state.quiet[group] = (
            minute, (state.hr_baseline, state.temp_baseline, state.spo2_baseline),
            tuple([state.series[signal].changes for signal in self._signals[group]]))

    def _limits_for(self, state: PatientState, group: str,
                    baselines: tuple[float | None, ...]) -> Limits:
        """Per signal, the tightest of the kind's rules' limits (kept per baselines)."""
        limits = {signal: (-math.inf, math.inf) for signal in self._signals[group]}
        for rule, config in self._rules[group]:
            assert rule.bound is not None
            bound = rule.bound(config, state)
            above, below = limits[bound.signal]
            limits[bound.signal] = (above, min(below, bound.limit)) if bound.upper else \
                (max(above, bound.limit), below)
        self._limits[group] = (baselines, limits)
        return limits
