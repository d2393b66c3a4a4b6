"""Fire and clear with a minimum duration each way, so one patient does not flap.

Conditions are three-valued: True, False, or None when the data to judge is missing. Missing
data never fires a rule and never clears one (a silent thermometer does not end a fever).
"""

from __future__ import annotations

from typing import Literal

from stream_rules.state import RuleState

Change = Literal["fired", "cleared"] | None


def step(st: RuleState, minute: int, fire: bool | None, clear: bool | None,
         fire_after_min: float, clear_after_min: float) -> Change:
    """Advance one judged minute; returns what changed."""
    if not st.firing:
        if not fire:
            st.pending_since = None
            return None
        if st.pending_since is None:
            st.pending_since = minute
        if minute - st.pending_since + 1 >= fire_after_min:
            st.firing = True
            st.start = st.pending_since * 60_000
            st.pending_since = st.clearing_since = None
            st.peak = None
            return "fired"
        return None
    if not clear:
        st.clearing_since = None
        return None
    if st.clearing_since is None:
        st.clearing_since = minute
    if minute - st.clearing_since + 1 >= clear_after_min:
        st.firing = False
        st.clearing_since = None
        return "cleared"
    return None
