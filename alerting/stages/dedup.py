"""Stage `dedup`: an alert id is one alert's life. A `firing` event already recorded (a rules
worker restart, a replay) changes nothing; nor does a second `resolved`."""

from __future__ import annotations

import dataclasses

from alerting.stages.pipeline import Decision, Flow, go_on, stop
from alerting.stages.records import Audit
from alerting.store import Lookups

DETAIL_MAX = 500


class Dedup:
    """Drops an event already recorded; audits the others as received (or cleared)."""

    name = "dedup"

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Stop a repeat; let a new event on, with the alert as recorded if a resolve."""
        event = flow.event
        known = lookups.alert(event.alert_id)
        if event.status == "resolved":
            if known is not None and known["status"] == "resolved":
                return stop("duplicate")
            return go_on(dataclasses.replace(flow, known=known),
                         Audit("cleared", patient_id=event.patient_id, alert_id=event.alert_id,
                               detail=event.summary[:DETAIL_MAX]))
        if known is not None:
            return stop("duplicate")
        return go_on(flow, Audit("received", patient_id=event.patient_id,
                                 alert_id=event.alert_id, status=event.severity,
                                 detail=event.summary[:DETAIL_MAX]))
