"""Stage `severity`: only `paging.severities` page (default critical, error); the others are
recorded and shown (`not_paging`)."""

from __future__ import annotations

from alerting.oncall import OnCall
from alerting.stages.pipeline import Decision, Flow, go_on, stop
from alerting.stages.records import RecordAlert
from alerting.store import Lookups


class Severity:
    """Stops an event whose severity does not page."""

    name = "severity"

    def __init__(self, oncall: OnCall) -> None:
        self.oncall = oncall

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Stop with `not_paging` below the paging severities; otherwise go on."""
        if self.oncall.pages(flow.event.severity):
            return go_on(flow)
        return stop("not_paging", RecordAlert(flow.event, "not_paging"))
