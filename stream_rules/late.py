"""Late readings: minutes judged already, filled in and judged again (issue #16).

A phone gateway that reconnects often sends live readings first and its buffer after. The
live readings moved the cursor past the buffer's minutes, which were judged empty, so the
buffer's samples wait in `KindState.late` until a cursor next moves: a point that depends only
on the sequence of readings, so any batching gives the same events. Then this pass:

1. fills each late minute that had no data with the median of its samples (a minute that had
   data keeps the value it was judged on; the late samples count as `stale_readings`);
2. judges again every minute from the first one filled to the newest judged, with the same
   rules, on rule states of its own that start clear (the live ones describe the present);
3. keeps what it found that live judging did not: an episode that overlaps none the rule had
   before (its `past`, or the one firing now) is sent, marked late with how late. One that
   ended within the span is sent firing, saying from when to when, then resolved; one still
   firing is taken over by the live rule, so it pages once and clears live.

An episode live judging paged is never taken back. Rules judged per device (no data) are
not judged again: the device's silence was paged live and is over once its buffer arrives.
The trend points of the minutes judged again are sent again, so storage holds the filled-in
values.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec

from stream_rules import calibration, describe
from stream_rules.config import Temperature
from stream_rules.series import DAY_MIN
from stream_rules.spike_filter import minute_median
from stream_rules.state import PAST_KEPT, PatientState, RuleState
from vitals.records import AlertEvent

if TYPE_CHECKING:
    from stream_rules.engine import Engine, Output

__all__ = ["judge", "pending"]


def pending(state: PatientState) -> bool:
    """Whether late samples wait for this pass."""
    return any(kind.late for kind in state.kinds.values())


def judge(engine: Engine, state: PatientState, out: Output) -> None:
    """Fill in the late minutes, judge again from the first, and add what is new to `out`."""
    firsts = _fill(state, engine.rules_file.temperature)
    if not firsts:
        return
    first = min(firsts.values())
    newest = max(kind.cursor for kind in state.kinds.values())
    # The CRS rule remembers the last fever minute; the span's own fevers are found again
    # below, in time order, so it starts from what was known before the span.
    live_fever = state.last_fever_minute
    if live_fever is not None and live_fever >= first:
        state.last_fever_minute = None
    shadow: dict[str, RuleState] = {}
    found: list[AlertEvent] = []
    for minute in range(first, newest + 1):
        for kind_name, kind_first in firsts.items():
            if kind_first <= minute <= state.kinds[kind_name].cursor:
                group = "temperature" if kind_name == "temperature" else "oximetry"
                found += engine.judge_kind_minute(state, group, minute, shadow, late=True)
        if minute <= state.combined_cursor:
            alerts, trend = engine.judge_combined_minute(state, minute, shadow, late=True,
                                                         per_device=False)
            found += alerts
            out.trends.append(trend)
    if live_fever is not None:
        state.last_fever_minute = max(live_fever, state.last_fever_minute or live_fever)
    _keep_new(state, shadow, found, out)


def _fill(state: PatientState, temperature: Temperature) -> dict[str, int]:
    """Put late samples into the minutes that had none (temperatures corrected as of their
    minute); per kind, the first minute filled."""
    firsts: dict[str, int] = {}
    for kind_name, kind in state.kinds.items():
        late, kind.late = kind.late, {}
        for minute in sorted(late):
            filled = False
            samples = late[minute]
            if kind_name == "temperature":
                samples = calibration.corrected(state, samples, minute, temperature, False)
            for signal, values in samples.items():
                series = state.series[signal]
                if minute > series.head - DAY_MIN and math.isnan(series.get(minute)):
                    series.set(minute, minute_median(values))
                    filled = True
            if filled:
                firsts.setdefault(kind_name, minute)
            else:
                state.stale_readings += max((len(values) for values in samples.values()),
                                            default=0)
    return firsts


def _keep_new(state: PatientState, shadow: dict[str, RuleState], found: list[AlertEvent],
              out: Output) -> None:
    """Send the episodes found that no live episode of the same rule overlaps."""
    episodes: dict[str, list[AlertEvent]] = {}
    for event in found:  # a clear rule state fires before it resolves: firing comes first
        episodes.setdefault(event.alert_id, []).append(event)
    for alert_id, (fired, *resolved) in episodes.items():
        # alert ids are "<patient>/<rule key>/<start>" (patient ids hold no "/")
        key = alert_id[len(state.patient_id) + 1:].rpartition("/")[0]
        live = state.rules.get(key)
        end = resolved[0].detected_at if resolved else None
        if live is not None and _overlaps(live, fired.start, end):
            continue
        past = live.past if live is not None else []
        if end is None:  # still firing at the newest minute: live judging goes on with it
            taken = shadow[key]
            taken.past = past
            state.rules[key] = taken
            out.alerts.append(fired)
            continue
        out.alerts += [_with_end(fired, end), *resolved]
        kept = state.rules.setdefault(key, RuleState())
        kept.past = sorted([*past, [fired.start, end]])[-PAST_KEPT:]


def _overlaps(live: RuleState, start: int, end: int | None) -> bool:
    """Whether [start, end) (end None: still going) overlaps an episode of the live rule."""
    spans = [(begun, ended) for begun, ended in live.past]
    if live.firing and live.start is not None:
        spans.append((live.start, math.inf))
    return any(start < ended and (end is None or end > begun) for begun, ended in spans)


def _with_end(fired: AlertEvent, end: int) -> AlertEvent:
    """The firing event of an episode that is over: its page says from when to when."""
    evidence = {**fired.evidence, "ended_at": end}
    return msgspec.structs.replace(fired, evidence=evidence, summary=describe.summary(
        fired.patient_id, fired.rule, "firing", fired.start, evidence, fired.day_since_infusion))
