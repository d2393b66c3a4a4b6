"""Stage `clear` (resolved events): the alert is marked resolved; when it was the last firing
alert of an open incident, the incident goes on to `escalate`, which holds or sends the
resolve."""

from __future__ import annotations

import dataclasses

from alerting.oncall import OnCall
from alerting.stages.pipeline import Decision, Flow, go_on, stop
from alerting.stages.records import RecordAlert, ResolveAlert
from alerting.store import Lookups


class Clear:
    """Resolves the alert; passes on its incident only when nothing else in it still fires."""

    name = "clear"

    def __init__(self, oncall: OnCall) -> None:
        self.oncall = oncall

    def exec(self, flow: Flow, lookups: Lookups) -> Decision:
        """Record the clearing; go on only with an open incident that has no alert firing."""
        event, known = flow.event, flow.known
        if known is None:  # cleared before we saw it fire (we started late): record it
            return stop("cleared", RecordAlert(event, "cleared_unseen"))
        resolve = ResolveAlert(event.alert_id)
        incident = lookups.incident(known["incident_id"]) if known["incident_id"] else None
        if incident is None or not incident.open:
            return stop("cleared", resolve)
        still_firing = [row for row in lookups.alerts_of(incident.id, firing_only=True)
                        if row["alert_id"] != event.alert_id]
        if still_firing:
            return stop("cleared", resolve)
        return go_on(dataclasses.replace(flow, incident=incident, incident_id=incident.id,
                                         policy=self.oncall.policy(incident.team)), resolve)
